"""End to end: a real vLLM on the stock CPU platform, then on the simulated accelerator.

Four boots in all (about 3-5 minutes on 2 busy cores; the accelerator's attention runs in Triton's
interpreter, so its tokens are slow): stock TP=1, accelerator TP=1, accelerator TP=2, and one
start-up refused for an unsupported dtype.
"""

import importlib.util

import pytest
from vllm_ref_harness import ALL_ROLES

pytestmark = pytest.mark.vllm

CHECKS = {"status": "vllm_ref_accelerator:status"}
ON = {"REF_ACCELERATOR": "1"}
OFF: dict[str, str] = {}
REQUESTS = [{"prompt": "Hello, my name is"}, {"prompt": "The capital of France is"},
            {"prompt": "one two three four five six"}]
SAMPLING = {"max_tokens": 8, "temperature": 0.0, "logprobs": 3}
# fp32 on both sides; the kernels and the CPU backend only sum in different orders.
LOGPROB_TOL = 1e-3


def _boot(vllm, model, env, **engine_args):
    return vllm.run(model, engine_args={"dtype": "float32", **engine_args}, requests=REQUESTS,
                    sampling=SAMPLING, plugins=["ref_accelerator"], checks=CHECKS, env=env, timeout=600)


@pytest.fixture(scope="module")
def stock(vllm_module, tiny_model):
    return _boot(vllm_module, tiny_model, OFF)


@pytest.fixture(scope="module")
def accel(vllm_module, tiny_model):
    return _boot(vllm_module, tiny_model, ON)


def _max_logprob_gap(a, b):
    """Largest |difference| over every (step, token) both runs report."""
    gaps = [abs(sa[t] - sb[t]) for sa, sb in zip(a["logprobs"], b["logprobs"], strict=True)
            for t in sa.keys() & sb.keys()]
    assert gaps, "no common logprobs to compare"
    return max(gaps)


def test_same_greedy_tokens_as_the_stock_cpu_platform(stock, accel):
    assert [o["token_ids"] for o in accel.outputs] == [o["token_ids"] for o in stock.outputs]
    assert all(len(o["token_ids"]) == 8 for o in accel.outputs)


def test_logprobs_agree_within_tolerance(stock, accel):
    for s, a in zip(stock.outputs, accel.outputs, strict=True):
        # Same top-3 candidates at every step, and the same values up to summation order.
        assert [set(x) for x in a["logprobs"]] == [set(x) for x in s["logprobs"]]
        assert _max_logprob_gap(s, a) < LOGPROB_TOL


def test_platform_resolved_in_every_process(stock, accel):
    accel.report.assert_loaded("ref_accelerator", roles=ALL_ROLES, group="vllm.platform_plugins")
    accel.report.assert_check("status", lambda s: s["effect"] and s["platform"] == "RefAcceleratorPlatform",
                              roles=ALL_ROLES)
    # Without the activation variable the plugin is called, declines, and the CPU platform runs.
    stock.report.assert_check("status", lambda s: not s["effect"] and s["platform"] == "CpuPlatform",
                              roles=ALL_ROLES)


def test_attention_ran_on_the_triton_kernels_in_the_worker(stock, accel):
    # Every layer of the tiny model (2) built on the kernels, and a forward pass ran them.
    accel.report.assert_check("status", lambda s: s["attention"] >= 2 and s["kernels"] == "triton",
                              roles=("worker",))
    # Attention is a worker affair: the front end and engine core never load the backend.
    accel.report.assert_check("status", lambda s: s["attention"] == 0 and s["kernels"] is None,
                              roles=("front_end", "engine_core"))
    stock.report.assert_check("status", lambda s: s["attention"] == 0, roles=ALL_ROLES)
    if importlib.util.find_spec("vllm.v1.kv_cache_layout"):  # vLLM with the layout descriptor
        assert "Using LBNHC KV cache layout" in accel.log


def test_tensor_parallel_2_gives_the_same_tokens(vllm, tiny_model, stock):
    run = _boot(vllm, tiny_model, ON, tensor_parallel_size=2)
    assert [o["token_ids"] for o in run.outputs] == [o["token_ids"] for o in stock.outputs]
    workers = run.report.processes("worker")
    assert sorted(w.rank for w in workers) == [0, 1]
    run.report.assert_check("status", True, roles=ALL_ROLES)
    run.report.assert_check("status", lambda s: s["kernels"] == "triton", roles=("worker",))


def test_unsupported_dtype_is_refused_at_start_up_naming_the_platform(vllm, tiny_model):
    run = vllm.run(tiny_model, engine_args={"dtype": "bfloat16"}, requests=REQUESTS[:1],
                   sampling=SAMPLING, plugins=["ref_accelerator"], env=ON, timeout=600, expect_failure=True)
    err = run.extra["error"]
    assert "ref_accelerator platform: dtype bfloat16 is not supported" in err
    assert "float32, float16" in err
    assert not run.outputs
