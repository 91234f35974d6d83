"""Every reference plugin under vLLM's Ray executor, proven in the Ray worker processes.

The simulated accelerator is the Ray-capable platform (ray_device_key "GPU"); the custom
model, the scheduler patch and the logits processor ride along. Greedy and seeded tokens
under Ray (vLLM's default Ray executor; the legacy one is the harness's own Ray test's) must
equal those of the multiprocess executor.
"""

import pytest

# exclusive: under pytest-xdist, never beside the other Ray test's cluster.
pytestmark = [pytest.mark.vllm, pytest.mark.exclusive]
PLUGINS = ["ref_model", "ref_scheduler", "ref_accelerator"]
# Each plugin's own status() (see docs/architecture.md): the same reading the demo prints.
CHECKS = {p: f"vllm_{p}:status" for p in PLUGINS + ["ref_temperature"]}
SCHEDULE = {"ref_temp_mode": "schedule", "ref_temp_start": 2.0, "ref_temp_end": 0.0, "ref_temp_steps": 4}
REQUESTS = [
    {"prompt": "Hello, my name is"},
    {"prompt": "The capital of France is", "sampling": {"temperature": 1.0, "seed": 7, "extra_args": SCHEDULE}},
]
# The platform's activation and the interpreter must reach the Ray workers, which the raylet
# starts: they are in the environment of `ray start` (see docs/ray.md).
ENV = {"REF_ACCELERATOR": "1", "TRITON_INTERPRET": "1"}
ARGS = {"tensor_parallel_size": 2, "dtype": "float32"}


def test_reference_plugins_in_ray_workers(vllm) -> None:
    from vllm_ref_model.testing import tiny_parallax

    model = tiny_parallax()
    common = dict(requests=REQUESTS, sampling={"max_tokens": 6, "temperature": 0.0}, plugins=PLUGINS)
    mp = vllm.run(model, engine_args=ARGS, env=ENV, **common)
    cluster = vllm.ray_cluster(num_gpus=2, plugins=PLUGINS, checks=CHECKS, env=ENV)
    ray = vllm.run(model, engine_args={**ARGS, "distributed_executor_backend": "ray"}, checks=CHECKS,
                   env={**ENV, **cluster.vllm_env()}, run_dir=cluster.run_dir, **common)
    assert [o["token_ids"] for o in ray.outputs] == [o["token_ids"] for o in mp.outputs]

    rep = ray.report
    workers = rep.processes("worker")
    assert len(workers) == 2 and all(w.ray for w in workers), rep.describe()
    everywhere = ("front_end", "engine_core", "worker")
    for name in ("ref_model", "ref_scheduler", "ref_accelerator"):
        rep.assert_loaded(name, roles=everywhere)
    rep.assert_check("ref_model", True, roles=everywhere)          # architecture registered
    rep.assert_check("ref_accelerator", True, roles=everywhere)    # platform resolved
    # The scheduler patch runs in the engine core only, tenant validation in the front end only.
    rep.assert_check("ref_scheduler", lambda s: s["scheduler"] and not s["validation"], roles=("engine_core",))
    rep.assert_check("ref_scheduler", lambda s: s["validation"] and not s["scheduler"], roles=("front_end",))
    rep.assert_check("ref_scheduler", False, roles=("worker",))
    rep.assert_check("ref_temperature", True, roles=("worker",))  # processor built in workers
    cluster.stop()  # raises if a Ray or vLLM process, or a shared-memory segment, is left
