from pathlib import Path

import pytest
from vllm_ref_harness import pip_install_target

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def probe_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test plugin, pip-installed into a throwaway folder (never into the dev venv)."""
    return str(pip_install_target(tmp_path_factory.mktemp("probe-plugin-site"), HERE / "probe_plugin"))
