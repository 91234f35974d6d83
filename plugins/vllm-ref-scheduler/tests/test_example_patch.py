"""examples/patch: its vendored framework matches this package's, and its patch works on a real
Scheduler (no engine; the examples test in the repository root boots it in vLLM)."""

import importlib
import sys
from pathlib import Path

import pytest
import vllm_ref_scheduler.patching as framework
from sched_helpers import make_request, make_scheduler, step

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "patch" / "src"
IMPORT = "from vllm_ref_common import version_in_range, vllm_version, warn_once"
VENDORED_IMPORT = "from ._gate import version_in_range, vllm_version, warn_once"


def test_vendored_framework_is_a_verbatim_copy():
    ours = Path(framework.__file__).read_text()
    theirs = (EXAMPLE / "vllm_patch_example" / "patching.py").read_text()
    assert IMPORT in ours
    assert theirs == ours.replace(IMPORT, VENDORED_IMPORT), (
        "examples/patch/src/vllm_patch_example/patching.py drifted from vllm_ref_scheduler/patching.py: "
        "copy it again and change only the vllm_ref_common import")


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    mod = importlib.import_module("vllm_patch_example")
    yield mod
    mod.patching.remove(mod.StepTimer)
    for name in [m for m in sys.modules if m.startswith("vllm_patch_example")]:
        del sys.modules[name]


def test_example_patch_times_steps_on_the_scheduler_itself(example, tiny_model):
    from vllm.v1.core.sched.scheduler import Scheduler

    original = vars(Scheduler)["schedule"]
    assert example.patching.apply(example.StepTimer)
    assert example.is_patched()
    s = make_scheduler(tiny_model)
    s.add_request(make_request("A"))
    step(s)
    step(s)
    stats = s.example_step_stats()
    assert stats["steps"] == 2 and stats["slowest_ms"] > 0 and example.steps_timed()
    example.patching.remove(example.StepTimer)
    assert vars(Scheduler)["schedule"] is original and not hasattr(Scheduler, "example_step_stats")
