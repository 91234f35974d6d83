"""The schedule() benchmark runs end to end (tiny sizes; its figures come from full runs, see
the package README): both sides patched as intended, the same workload shape on each."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench" / "bench_schedule.py"


@pytest.mark.parametrize("extra", [[], ["--spread"], ["--aa"]])
def test_bench_runs_and_reports_a_ratio(extra):
    r = subprocess.run([sys.executable, str(BENCH), "--rounds", "1", "--warmup", "2", "--steps", "12",
                        "--waiting", "24", "--running", "4", "--max-tokens", "3", *extra],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"ratio of totals\s*:\s*([0-9.]+)", r.stdout)
    assert m and float(m.group(1)) > 0, r.stdout
