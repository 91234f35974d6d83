import sys
from pathlib import Path

import pytest
from vllm_ref_harness import tiny_llama_embed

# io_cases, io_reference and io_offline (which the offline driver imports by name) sit here.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def embed_model() -> Path:
    return tiny_llama_embed()
