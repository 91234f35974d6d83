"""Process roles: one detection for the patching framework, the harness's probe and operators."""

import multiprocessing
import subprocess
import sys
import types

import pytest
from vllm_ref_common import roles


@pytest.mark.parametrize(("proc_name", "env", "role", "rank", "all_roles"), [
    ("MainProcess", "1", "front_end", None, {"front_end"}),
    ("MainProcess", "0", "front_end", None, {"front_end", "engine_core"}),  # engine in-process
    ("EngineCore", "1", "engine_core", None, {"engine_core"}),
    ("EngineCore_DP1", "1", "engine_core", None, {"engine_core"}),
    ("VllmWorker-0", "1", "worker", 0, {"worker"}),
    ("VllmWorker-3", "1", "worker", 3, {"worker"}),
    ("ApiServer_2", "1", "front_end", None, {"front_end"}),
    ("SomeThread", "1", "other", None, {"other"}),
])
def test_roles_from_the_process_name(monkeypatch, proc_name, env, role, rank, all_roles):
    monkeypatch.setattr(multiprocessing.current_process(), "name", proc_name)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", env)
    got = roles.process_role()
    assert (got.role, got.rank, got.ray, set(got.roles)) == (role, rank, False, all_roles)
    assert roles.process_roles() == all_roles


def test_model_registry_subprocess(monkeypatch):
    # vLLM inspects models in `python -m vllm.model_executor.models.registry`, a MainProcess.
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name="vllm.model_executor.models.registry")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert roles.process_role().role == "registry"


def test_ray_worker_is_a_worker_marked_ray(monkeypatch):
    monkeypatch.setattr(roles, "_cmdline", lambda: "python .../ray/_private/workers/default_worker.py --x")
    monkeypatch.setattr(multiprocessing.current_process(), "name", "MainProcess")
    got = roles.process_role()
    assert (got.role, got.ray, set(got.roles)) == ("worker", True, {"worker"})


_CHILD = """
import multiprocessing, sys
from vllm_ref_common import process_role

def report(queue):
    r = process_role()
    queue.put([r.role, r.rank])

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=report, args=(q,), name=sys.argv[1])
    p.start()
    print(q.get(timeout=60))
    p.join(30)
"""


@pytest.mark.parametrize(("name", "want"), [("EngineCore", "['engine_core', None]"),
                                            ("VllmWorker-1", "['worker', 1]")])
def test_roles_in_a_spawned_process_named_like_vllm_does(tmp_path, name, want):
    # vLLM starts its engine core and workers as spawned multiprocessing.Process objects with
    # these names, before any plugin loads.
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    out = subprocess.run([sys.executable, str(script), name], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == want, out.stderr
