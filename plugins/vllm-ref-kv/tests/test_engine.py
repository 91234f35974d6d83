"""The connector in real engines (tiny Llama, float32, blocks of 32 tokens), three boots in all:

1. a fresh folder: prompts A (400 tokens) and C (300) computed and saved. The store only copies
   KV out after each forward pass, so these answers are the no-connector recompute;
2. the same folder after a restart, vLLM's own prefix cache emptied before each prompt (so
   every lookup reaches the store):
   - A: every full block loaded (vLLM's num_cached_tokens counts them), same tokens and logprobs;
   - AB (A + 200 more tokens) with a cache_salt (a miss everywhere: the recompute reference),
     then AB: a partial hit (A's blocks) and the reference's tokens;
   - C with one block file bit-flipped between the boots: the blocks before it load, the
     worker reports it, vLLM recomputes from there: boot 1's tokens and one warning;
3. tensor_parallel_size=2 on a fresh folder, A twice: the probe shows the scheduler half in the
   engine core only and the worker half in each worker, each saving and loading its own rank's
   files; the second A is an external hit with boot 1's tokens.
"""

from __future__ import annotations

import pytest
from vllm_ref_kv.store import chain_keys
from vllm_ref_kv.testing import BLOCK_SIZE, engine_args, flip_byte, prompt, write_prompts

pytestmark = pytest.mark.vllm

CHECKS = {"kv": "vllm_ref_kv:status"}
A, C = prompt(400, 1), prompt(300, 2)
AB = A + prompt(200, 3)
FULL_A = (len(A) - 1) // BLOCK_SIZE  # full blocks the store can serve (never the last token)
FLIPPED = 4  # C's block whose file is corrupted between boots 1 and 2
TP1_LOGPROB_TOL = 1e-4  # loaded KV is the same bytes: the difference is float summation order only
TP2_LOGPROB_TOL = 5e-3  # two ranks sum the attention output in another order than one


def boot(vllm_module, model, tmp_path_factory, folder, prompts, name, **kw):
    spec = tmp_path_factory.mktemp(name) / "prompts.json"
    tp = kw.pop("tensor_parallel_size", 1)
    return vllm_module.run(model, engine_args=engine_args(folder, tensor_parallel_size=tp),
                           call="vllm_ref_kv.testing:generate", plugins=["ref_kv"], checks=CHECKS,
                           env=write_prompts(spec, prompts, **kw), timeout=600)


@pytest.fixture(scope="module")
def model():
    from vllm_ref_harness import tiny_llama

    return tiny_llama()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("kv-store")


@pytest.fixture(scope="module")
def first(vllm_module, model, tmp_path_factory, folder):
    run = boot(vllm_module, model, tmp_path_factory, folder, [{"ids": A}, {"ids": C}], "first")
    ns = run.extra["namespace"]
    [path] = folder.rglob(chain_keys(ns, C[:FULL_A * BLOCK_SIZE], BLOCK_SIZE)[FLIPPED] + ".*")
    flip_byte(path)
    return run


@pytest.fixture(scope="module")
def second(vllm_module, model, tmp_path_factory, folder, first):
    prompts = [{"ids": A}, {"ids": AB, "salt": "reference"}, {"ids": AB}, {"ids": C}]
    return boot(vllm_module, model, tmp_path_factory, folder, prompts, "second", reset_prefix_cache=True)


def same(got, want, tol):
    assert got["token_ids"] == want["token_ids"]
    assert max(abs(a - b) for a, b in zip(got["logprobs"], want["logprobs"], strict=True)) <= tol


def test_first_boot_computes_and_saves(first):
    a, c = first.extra["results"]
    assert a["cached"] == 0 and c["cached"] == 0
    first.report.assert_check("kv", lambda s: s["saved_blocks"] == FULL_A + (len(C) - 1) // BLOCK_SIZE,
                              roles=("worker",))
    first.report.assert_check("kv", lambda s: s["miss_blocks"] > 0 and s["hit_blocks"] == 0, roles=("engine_core",))


def test_restarted_engine_loads_the_prefix_and_answers_the_same(first, second):
    a = second.extra["results"][0]
    assert a["cached"] == FULL_A * BLOCK_SIZE  # vLLM's own count: the whole stored prefix
    same(a, first.extra["results"][0], TP1_LOGPROB_TOL)


def test_a_longer_prompt_sharing_the_prefix_hits_partially(second):
    _, reference, ab, _ = second.extra["results"]
    assert reference["cached"] == 0  # the salted run saw neither vLLM's cache nor the store
    assert ab["cached"] == FULL_A * BLOCK_SIZE < (len(AB) - 1) // BLOCK_SIZE * BLOCK_SIZE
    same(ab, reference, TP1_LOGPROB_TOL)


def test_a_bit_flipped_block_is_recomputed_with_one_warning(first, second):
    c = second.extra["results"][3]
    same(c, first.extra["results"][1], TP1_LOGPROB_TOL)
    assert second.log.count("rejected: checksum mismatch") == 1, second.log[-3000:]
    second.report.assert_check("kv", lambda s: s["load_failed"] == 1 and s["loaded_blocks"] == 2 * FULL_A + FLIPPED,
                               roles=("worker",))


def test_tensor_parallel_two_each_worker_its_own_half(vllm_module, model, tmp_path_factory, first):
    folder = tmp_path_factory.mktemp("kv-store-tp2")
    run = boot(vllm_module, model, tmp_path_factory, folder, [{"ids": A}, {"ids": A}], "tp2",
               tensor_parallel_size=2, reset_prefix_cache=True)
    computed, loaded = run.extra["results"]
    assert computed["cached"] == 0 and loaded["cached"] == FULL_A * BLOCK_SIZE
    same(loaded, computed, TP1_LOGPROB_TOL)
    same(loaded, first.extra["results"][0], TP2_LOGPROB_TOL)
    rep = run.report
    rep.assert_loaded("ref_kv", roles=("engine_core", "worker"), group="vllm.general_plugins")
    rep.assert_check("kv", lambda s: s["scheduler"] == 1 and s["worker"] == 0 and s["hit_blocks"] == FULL_A,
                     roles=("engine_core",))
    rep.assert_check("kv", lambda s: s["worker"] == 1 and s["scheduler"] == 0 and s["saved_blocks"] == FULL_A
                     and s["loaded_blocks"] == FULL_A, roles=("worker",))
    assert len([r for r in rep if r.role == "worker"]) == 2
    for rank in (0, 1):
        assert len(list(folder.rglob(f"*.tp{rank}of2-pp0of1.kvb"))) == FULL_A
