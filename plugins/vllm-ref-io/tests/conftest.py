from pathlib import Path

import pytest
from vllm_ref_harness import tiny_llama_embed


@pytest.fixture(scope="session")
def embed_model() -> Path:
    return tiny_llama_embed()
