"""`python -m vllm_ref_common doctor` on this environment, and on one broken on purpose.

The broken one is this environment plus a folder on PYTHONPATH holding the metadata of two fake
distributions: a logits processor whose module does not exist, and a second copy of
vllm-ref-common's metadata (what a stale .egg-info looks like to importlib.metadata).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
from pathlib import Path


def doctor(env_extra: dict[str, str], drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("VLLM_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "vllm_ref_common", "doctor"], capture_output=True, text=True,
                          timeout=600, env=env)


def test_this_environment_is_clean():
    out = doctor({})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 problem(s)" in out.stdout
    assert "vllm.general_plugins       ref_scheduler" in out.stdout
    assert "ref_scheduler: supports vLLM >=0.28,<0.34; vLLM" in out.stdout and "is inside" in out.stdout


def _fake_dist(site: Path, name: str, version: str, entry_points: str = "") -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)


def test_a_broken_environment_is_reported_with_fixes(tmp_path):
    site = tmp_path / "site"
    _fake_dist(site, "broken-logits", "0.1.0",
               "[vllm.logits_processors]\nbroken_lp = broken_logits_missing:Processor\n")
    _fake_dist(site, "vllm-ref-common", md.version("vllm-ref-common"))  # a stale second copy
    out = doctor({"PYTHONPATH": str(site), "VLLM_PLUGINS": "ref_scheduler,ref_typo", "VLLM_TARGET_DEVICE": "cpu",
                  "VLLM_REF_OLD_NAME": "1", "REF_SCHEDULER_ANY_VERSION": "0"})
    text = out.stdout
    assert out.returncode == 1, text + out.stderr
    problems = [ln for ln in text.splitlines() if ln.startswith("PROBLEM: ")]
    assert any("'ref_typo'" in p and "no installed entry point" in p for p in problems), problems
    assert any("logits processor 'broken_lp'" in p and "ModuleNotFoundError" in p and "every engine fails" in p
               for p in problems), problems
    assert any("two metadata folders" in p and "vllm-ref-common" in p for p in problems), problems
    warnings = [ln for ln in text.splitlines() if ln.startswith("warning: ")]
    assert any("drops vLLM's own general plugins" in w for w in warnings)
    assert any("'ref_endpoint' is installed but VLLM_PLUGINS does not name it" in w for w in warnings)
    assert any("VLLM_TARGET_DEVICE=cpu" in w and "'ref_accelerator'" in w for w in warnings)
    assert any("VLLM_REF_OLD_NAME" in w and "--fail-on-environ-validation" in w for w in warnings)
    assert f"{len(problems)} problem(s)" in text
    assert "ref_model                    vllm-ref-model" in text and "no (VLLM_PLUGINS)" in text


def test_vllm_missing_is_a_problem(tmp_path):
    (tmp_path / "vllm.py").write_text("raise ImportError('no vLLM here')\n")
    out = doctor({"PYTHONPATH": str(tmp_path)})
    assert out.returncode == 1 and "PROBLEM: vLLM is not importable" in out.stdout
