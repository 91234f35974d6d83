import sys
from pathlib import Path

import pytest
from vllm_ref_harness import pip_install_target

HERE = Path(__file__).parent

# Helper modules of these tests (sched_helpers, sched_workload) are imported by name: by the tests
# here, by the benchmark, and inside vLLM processes through PYTHONPATH.
sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def sched_recorder_site(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test-only recorder plugin (sched_recorder/), pip-installed into a throwaway folder
    (never into the dev venv) for the server's PYTHONPATH."""
    return str(pip_install_target(tmp_path_factory.mktemp("sched-recorder-site"), HERE / "sched_recorder"))
