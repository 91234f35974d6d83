import pytest
from vllm_ref_scheduler.testing import recorder_site


@pytest.fixture(scope="session")
def sched_recorder_site(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The recorder plugin (vllm_ref_scheduler.testing) declared in a throwaway folder (never in
    the dev venv) for the server's PYTHONPATH."""
    return str(recorder_site(tmp_path_factory.mktemp("sched-recorder-site")))
