"""The apply() benchmark runs end to end in its tiny mode (its figures come from full runs, see
the package README): every yardstick is printed, every row gets a verdict against its goal."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench" / "bench_apply.py"


def test_bench_tiny_mode_prints_yardsticks_and_a_verdict_per_row():
    pytest.importorskip("vllm")
    r = subprocess.run([sys.executable, str(BENCH), "--tiny", "--eager"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    m = re.search(r"yardsticks \(median ms\): division ([0-9.e-]+), exp ([0-9.e-]+), "
                  r"floor \(exp \+ division\) ([0-9.e-]+), softmax \(allocating\) ([0-9.e-]+)", out)
    assert m and all(float(x) > 0 for x in m.groups()), out
    verdicts = dict(re.findall(r"^(all schedule|mixed 2:1:1|all entropy|mixed 2:1:1, eager|"
                               r"all entropy, eager) .*<= [0-9.]+ +(met|missed by \d+%)$", out, re.M))
    assert set(verdicts) == {"all schedule", "mixed 2:1:1", "all entropy", "mixed 2:1:1, eager",
                             "all entropy, eager"}, out
    # One compiled kernel served batches of 8 and of 2 entropy rows: no recompile per shape.
    assert re.search(r"entropy kernel compiles during the rounds: 0 ", out), out
