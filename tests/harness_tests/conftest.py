import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def probe_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The test plugin, pip-installed into a throwaway folder (never into the dev venv)."""
    site = tmp_path_factory.mktemp("probe-plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(HERE / "probe_plugin")],
        check=True,
    )
    return str(site)
