"""The harness under vLLM's Ray executors: a local Ray cluster, probed Ray workers, cleanup.

Ray's tokens against the multiprocess executor's: tests/integration/test_ray_plugins.py. Here
the two Ray executors must agree with each other."""

import pytest
from vllm_ref_harness import ProbeReport

# exclusive: under pytest-xdist, never beside the other Ray test's cluster.
pytestmark = [pytest.mark.vllm, pytest.mark.exclusive]
CHECKS = {"registered": "vllm_ref_probe_plugin:registered", "platform": "vllm_ref_probe_plugin:platform_name"}
PROMPTS = [{"prompt": "Hello, my name is"}, {"prompt": "The capital of France is"}]
GREEDY = {"max_tokens": 8, "temperature": 0.0}
RAY_ROLES = ("front_end", "engine_core", "worker")


def test_ray_tp2_both_executors_probe_every_ray_worker(vllm, tiny_model, probe_plugin_site) -> None:
    env = {"PYTHONPATH": probe_plugin_site, "REF_PROBE_PLATFORM": "1"}
    plugins = ["ref_probe_ok", "ref_probe_platform"]
    cluster = vllm.ray_cluster(num_gpus=2, plugins=plugins, checks=CHECKS, env=env)
    seen: set[int] = set()
    tokens = []
    for legacy in ("0", "1"):
        run = vllm.run(
            tiny_model, requests=PROMPTS, sampling=GREEDY, plugins=plugins, checks=CHECKS,
            engine_args={"distributed_executor_backend": "ray", "tensor_parallel_size": 2},
            env={**env, **cluster.vllm_env(), "VLLM_USE_RAY_V2_EXECUTOR_BACKEND": "0" if legacy == "1" else "1"},
            run_dir=cluster.run_dir,
        )
        rep = ProbeReport([r for r in run.report if r.pid not in seen])
        seen |= {r.pid for r in rep}
        tokens.append([o["token_ids"] for o in run.outputs])
        workers = rep.processes("worker")
        assert len(workers) == 2 and all(w.ray for w in workers), rep.describe()
        rep.assert_loaded("ref_probe_ok", roles=RAY_ROLES)
        rep.assert_check("registered", ["ok"], roles=RAY_ROLES)
        rep.assert_check("platform", "RayCpuPlatform", roles=RAY_ROLES)
    assert tokens[0] == tokens[1] and all(tokens[0]), tokens
    cluster.stop()  # raises if a Ray or vLLM process, or a shared-memory segment, is left
