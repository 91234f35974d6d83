"""The harness under vLLM's Ray executors: a local Ray cluster, probed Ray workers, cleanup.

vLLM has two Ray executors; each is probed in one test, one boot apiece: the default one
(VLLM_USE_RAY_V2_EXECUTOR_BACKEND=1) in tests/integration/test_ray_plugins.py, with every
reference plugin and its tokens against the multiprocess executor's, and the legacy one here,
with the harness's probe plugins."""

import pytest

# exclusive: under pytest-xdist, never beside the other Ray test's cluster.
pytestmark = [pytest.mark.vllm, pytest.mark.exclusive]
CHECKS = {"registered": "vllm_ref_probe_plugin:registered", "platform": "vllm_ref_probe_plugin:platform_name"}
PROMPTS = [{"prompt": "Hello, my name is"}, {"prompt": "The capital of France is"}]
GREEDY = {"max_tokens": 8, "temperature": 0.0}
RAY_ROLES = ("front_end", "engine_core", "worker")


def test_ray_tp2_legacy_executor_probes_every_ray_worker(vllm, tiny_model, probe_plugin_site) -> None:
    env = {"PYTHONPATH": probe_plugin_site, "REF_PROBE_PLATFORM": "1"}
    plugins = ["ref_probe_ok", "ref_probe_platform"]
    cluster = vllm.ray_cluster(num_gpus=2, plugins=plugins, checks=CHECKS, env=env)
    run = vllm.run(
        tiny_model, requests=PROMPTS, sampling=GREEDY, plugins=plugins, checks=CHECKS,
        engine_args={"distributed_executor_backend": "ray", "tensor_parallel_size": 2},
        env={**env, **cluster.vllm_env(), "VLLM_USE_RAY_V2_EXECUTOR_BACKEND": "0"},
        run_dir=cluster.run_dir,
    )
    rep = run.report
    workers = rep.processes("worker")
    assert len(workers) == 2 and all(w.ray for w in workers), rep.describe()
    rep.assert_loaded("ref_probe_ok", roles=RAY_ROLES)
    rep.assert_check("registered", ["ok"], roles=RAY_ROLES)
    rep.assert_check("platform", "RayCpuPlatform", roles=RAY_ROLES)
    assert all(o["token_ids"] for o in run.outputs), run.outputs
    cluster.stop()  # raises if a Ray or vLLM process, or a shared-memory segment, is left
