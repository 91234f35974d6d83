"""End to end: a real vLLM on the stock CPU platform, then on the simulated accelerator.

Four boots in all (about 3-5 minutes on 2 busy cores; the accelerator's attention runs in Triton's
interpreter, so its tokens are slow): stock TP=1, accelerator TP=1, accelerator TP=2, and one
start-up refused for an unsupported dtype.
"""

import importlib.util
from pathlib import Path

import pytest
from vllm_ref_harness import ALL_ROLES, run_engine

pytestmark = pytest.mark.vllm

HERE = Path(__file__).parent
CHECKS = {"platform": "accel_checks:platform", "attention": "accel_checks:attention"}
ON = {"VLLM_REF_ACCELERATOR": "1", "PYTHONPATH": str(HERE)}
OFF = {"PYTHONPATH": str(HERE)}
REQUESTS = [{"prompt": "Hello, my name is"}, {"prompt": "The capital of France is"},
            {"prompt": "one two three four five six"}]
SAMPLING = {"max_tokens": 8, "temperature": 0.0, "logprobs": 3}
# fp32 on both sides; the kernels and the CPU backend only sum in different orders.
LOGPROB_TOL = 1e-3


def _boot(model, run_dir, env, **engine_args):
    return run_engine(model, engine_args={"dtype": "float32", **engine_args}, requests=REQUESTS,
                      sampling=SAMPLING, plugins=["ref_accelerator"], checks=CHECKS, env=env,
                      timeout=600, run_dir=run_dir)


@pytest.fixture(scope="module")
def stock(tiny_model, tmp_path_factory):
    return _boot(tiny_model, tmp_path_factory.mktemp("stock"), OFF)


@pytest.fixture(scope="module")
def accel(tiny_model, tmp_path_factory):
    return _boot(tiny_model, tmp_path_factory.mktemp("accel"), ON)


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
    accel.report.assert_check("platform", "RefAcceleratorPlatform", roles=ALL_ROLES)
    # Without the activation variable the plugin is called, declines, and the CPU platform runs.
    stock.report.assert_check("platform", "CpuPlatform", roles=ALL_ROLES)


def test_attention_ran_on_the_triton_kernels_in_the_worker(stock, accel):
    accel.report.assert_check(
        "attention", lambda u: bool(u) and u["attention_calls"] > 0 and u["cache_writes"] > 0
        and u["implementation"] == "triton", roles=("worker",))
    # Attention is a worker affair: the front end and engine core never load the backend.
    accel.report.assert_check("attention", None, roles=("front_end", "engine_core"))
    stock.report.assert_check("attention", None, roles=ALL_ROLES)
    if importlib.util.find_spec("vllm.v1.kv_cache_layout"):  # vLLM with the layout descriptor
        assert "Using LBNHC KV cache layout" in accel.log


def test_tensor_parallel_2_gives_the_same_tokens(tiny_model, tmp_path, stock):
    run = _boot(tiny_model, tmp_path, ON, tensor_parallel_size=2)
    assert [o["token_ids"] for o in run.outputs] == [o["token_ids"] for o in stock.outputs]
    workers = run.report.processes("worker")
    assert sorted(w.rank for w in workers) == [0, 1]
    run.report.assert_check("platform", "RefAcceleratorPlatform", roles=ALL_ROLES)
    run.report.assert_check("attention", lambda u: bool(u) and u["attention_calls"] > 0, roles=("worker",))


def test_unsupported_dtype_is_refused_at_start_up_naming_the_platform(tiny_model, tmp_path):
    run = run_engine(tiny_model, engine_args={"dtype": "bfloat16"}, requests=REQUESTS[:1],
                     sampling=SAMPLING, plugins=["ref_accelerator"], env=ON, timeout=600,
                     run_dir=tmp_path, expect_failure=True)
    err = run.extra["error"]
    assert "ref_accelerator platform: dtype bfloat16 is not supported" in err
    assert "float32, float16" in err
    assert not run.outputs
