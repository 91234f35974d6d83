"""The compatibility grid fits the docs site's content column at 1280 px, in a real browser.

Builds the site (mkdocs, as `make docs` does, into a temporary folder), adds one script to the
built compatibility page that measures the grid and the column once the page has loaded, and
reads the measurement back from headless Chromium's DOM. Chromium is Debian's `chromium`,
installed by scripts/install.sh beside Prometheus.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASURE = """<script>window.addEventListener("load", () => {
  const t = document.querySelector("table.ref-matrix"), c = document.querySelector(".md-content__inner");
  const tr = t.getBoundingClientRect(), cr = c.getBoundingClientRect();
  document.title = "MEASURED" + JSON.stringify({left: tr.left, right: tr.right, colLeft: cr.left,
    colRight: cr.right, page: document.documentElement.scrollWidth, window: window.innerWidth,
    rows: t.tBodies[0].rows.length});
});</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert found, "no Chromium: `apt-get install chromium` (scripts/install.sh installs it; SKIP_APT=1 skips that)"
    return found


def test_the_grid_fits_the_content_column_at_1280_px(tmp_path: Path) -> None:
    browser = chromium()
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "--strict", "-d", str(site)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    page = site / "compatibility" / "index.html"
    page.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    r = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--virtual-time-budget=5000", "--window-size=1280,900", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"MEASURED(\{[^<]*\})", r.stdout)
    assert m, f"Chromium gave no measurement (exit {r.returncode}):\n{r.stderr[-2000:]}"
    got = json.loads(m.group(1).replace("&quot;", '"'))
    assert got["rows"] >= 7, got  # every plugin has its row
    assert got["left"] >= got["colLeft"] - 0.5 and got["right"] <= got["colRight"] + 0.5, (
        f"the grid ({got['left']:.0f}-{got['right']:.0f} px) leaves the content column "
        f"({got['colLeft']:.0f}-{got['colRight']:.0f} px) at 1280 px")
    assert got["page"] <= got["window"], f"the page scrolls sideways at 1280 px: {got}"
