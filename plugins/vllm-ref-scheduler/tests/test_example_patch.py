"""examples/patch: its patch works on a real Scheduler (no engine; examples/test_examples.py boots
it in vLLM, and examples/test_vendored.py keeps its vendored framework equal to this package's)."""

import importlib
import sys
from pathlib import Path

import pytest
from vllm_ref_scheduler.testing import make_request, make_scheduler, step

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "patch" / "src"
@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    mod = importlib.import_module("vllm_example_patch")
    yield mod
    mod.patching.remove(mod.StepTimer)
    for name in [m for m in sys.modules if m.startswith("vllm_example_patch")]:
        del sys.modules[name]


def test_example_patch_times_steps_on_the_scheduler_itself(example, tiny_model):
    from vllm.v1.core.sched.scheduler import Scheduler

    original = vars(Scheduler)["schedule"]
    assert example.patching.apply(example.StepTimer)
    assert example.status() == {"effect": True, "timed": False}
    s = make_scheduler(tiny_model)
    s.add_request(make_request("A"))
    step(s)
    step(s)
    stats = s.example_step_stats()
    assert stats["steps"] == 2 and stats["slowest_ms"] > 0 and example.status()["timed"]
    example.patching.remove(example.StepTimer)
    assert vars(Scheduler)["schedule"] is original and not hasattr(Scheduler, "example_step_stats")
