"""The streaming benchmark runs end to end at its tiny size (its figures come from full runs,
docs/benchmarks.md): both parsers stream their outputs with the right calls (the script checks
them) and every ratio is printed."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "bench" / "bench_parsers.py"


def test_bench_tiny_mode_checks_both_parsers_and_prints_the_ratios(tmp_path: Path) -> None:
    record = tmp_path / "figures.json"
    r = subprocess.run([sys.executable, str(BENCH), "--tiny", "--record", str(record)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    for name in ("ours", "hermes"):
        assert re.search(rf"ratio {name} per token 400 / 100: median [0-9.]+", out), out
        assert len(re.findall(rf"^  {name} +\d+ tokens: +[0-9.]+ us/token$", out, re.M)) == 2, out
    assert len(re.findall(r"ratio ours / hermes per token at \d+: median [0-9.]+", out)) == 2, out
    assert not record.exists(), "the tiny mode records nothing"
