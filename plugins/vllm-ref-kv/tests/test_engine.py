"""The connector in real engines (tiny Llama, float32, blocks of 32 tokens), four engine boots
in all (the first two side by side):

1. two engines started at once on one fresh folder, waiting for each other (a barrier) before
   prompts A (400 tokens) and C (300): both compute and save the same blocks at the same time.
   Both answer the same tokens; for each prompt, the engine that saved first computed it
   (nothing was stored before it), so its answer is the recompute; the folder then holds
   exactly one whole file per block, no temporary files, and neither engine warned;
2. the same folder after a restart, vLLM's own prefix cache emptied before each prompt (so
   every lookup reaches the store), with a size cap just above what boot 1 and the first four
   prompts leave there:
   - A: every full block loaded (vLLM's num_cached_tokens counts them), same tokens and logprobs;
   - AB (A + 200 more tokens) with a cache_salt (a miss everywhere: the recompute reference),
     then AB: a partial hit (A's blocks) and the reference's tokens;
   - C with one block file bit-flipped between the boots: the blocks before it load, the
     worker reports it, vLLM recomputes from there: boot 1's tokens and one warning;
   - the folder removed while the engine serves, then A: a miss, the same tokens, no warning,
     the folder made again by the saves; A again: a full hit (saving resumed);
   - D and E (640 tokens each, new): E's saves pass the size cap, so the least recently used
     files (A's) are evicted while serving; D again: a full hit (the newest blocks stay); A:
     the same tokens from what is left (a partial hit or a miss). One warning in the whole boot
     (the bit flip's);
3. tensor_parallel_size=2 on a fresh folder, A twice: the probe shows the scheduler half in the
   engine core only and the worker half in each worker, each saving and loading its own rank's
   files; the second A is an external hit with boot 1's tokens.
"""

from __future__ import annotations

import threading

import pytest
from vllm_ref_kv.store import chain_keys
from vllm_ref_kv.testing import (
    BLOCK_SIZE,
    block_files,
    engine_args,
    flip_byte,
    kv_transfer_config,
    prompt,
    write_prompts,
)

pytestmark = pytest.mark.vllm

CHECKS = {"kv": "vllm_ref_kv:status"}
A, C = prompt(400, 1), prompt(300, 2)
AB = A + prompt(200, 3)
D, E = prompt(640, 4), prompt(640, 5)


def full(ids):
    """Full blocks the store can serve (never the last token)."""
    return (len(ids) - 1) // BLOCK_SIZE


FULL_A, FULL_C, FULL_AB, FULL_D = full(A), full(C), full(AB), full(D)
# Files in the folder once boot 2 has served A, AB (salted and not) and C: boot 1's, less the
# flipped one (removed on load), plus the salted AB's and AB's blocks past A's.
BEFORE_REMOVAL = FULL_A + FULL_C - 1 + FULL_AB + (FULL_AB - FULL_A)
CAP_FILES = BEFORE_REMOVAL + 2  # boot 2's size cap, in files: reached by E, not before
FLIPPED = 4  # C's block whose file is corrupted between boots 1 and 2
TP1_LOGPROB_TOL = 1e-4  # loaded KV is the same bytes: the difference is float summation order only
TP2_LOGPROB_TOL = 5e-3  # two ranks sum the attention output in another order than one


def boot(vllm_module, model, tmp_path_factory, folder, prompts, name, env=None, max_bytes="1G", **kw):
    spec = tmp_path_factory.mktemp(name)
    tp = kw.pop("tensor_parallel_size", 1)
    args = engine_args(folder, tensor_parallel_size=tp, kv_transfer_config=kv_transfer_config(folder, max_bytes))
    return vllm_module.run(model, engine_args=args, call="vllm_ref_kv.testing:generate", plugins=["ref_kv"],
                           checks=CHECKS, env={**write_prompts(spec / "prompts.json", prompts, **kw), **(env or {})},
                           timeout=600, run_dir=spec / "run")


def warnings_in(log):
    return [line for line in log.splitlines() if "WARNING" in line and "ref_kv:" in line]


@pytest.fixture(scope="module")
def model():
    from vllm_ref_harness import tiny_llama

    return tiny_llama()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("kv-store")


@pytest.fixture(scope="module")
def pair(vllm_module, model, tmp_path_factory, folder):
    """Boot 1: two engines on one folder, from two threads (run_engine only waits on its own
    subprocess). Each is pinned to a core of its own, so neither's OpenMP threads spin against
    the other's."""
    gate = str(tmp_path_factory.mktemp("barrier"))
    runs: dict[int, object] = {}

    def one(i):
        try:
            runs[i] = boot(vllm_module, model, tmp_path_factory, folder, [{"ids": A}, {"ids": C}], f"first{i}",
                           env={"VLLM_CPU_OMP_THREADS_BIND": str(i)}, barrier={"dir": gate, "parties": 2})
        except BaseException as exc:  # raised in the test's thread below
            runs[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (0, 1):
        if isinstance(runs[i], BaseException):
            raise runs[i]
    return [runs[0], runs[1]]


@pytest.fixture(scope="module")
def first(pair, folder):
    """Boot 1's reference answers: per prompt, the engine that computed it (cached == 0)."""
    ns = pair[0].extra["namespace"]
    [path] = folder.rglob(chain_keys(ns, C[:FULL_A * BLOCK_SIZE], BLOCK_SIZE)[FLIPPED] + ".*")
    flip_byte(path)
    return [next(r.extra["results"][i] for r in pair if r.extra["results"][i]["cached"] == 0) for i in (0, 1)]


@pytest.fixture(scope="module")
def second(vllm_module, model, tmp_path_factory, folder, first):
    prompts = [{"ids": A}, {"ids": AB, "salt": "reference"}, {"ids": AB}, {"ids": C},
               {"ids": A, "remove_folder": True}, {"ids": A}, {"ids": D}, {"ids": E}, {"ids": D}, {"ids": A}]
    size = max(p.stat().st_size for p in block_files(folder))  # every block file: one size, give or take
    return boot(vllm_module, model, tmp_path_factory, folder, prompts, "second", max_bytes=CAP_FILES * size,
                reset_prefix_cache=True)


def same(got, want, tol):
    assert got["token_ids"] == want["token_ids"]
    assert max(abs(a - b) for a, b in zip(got["logprobs"], want["logprobs"], strict=True)) <= tol


def test_two_engines_writing_the_same_prefix_at_once(pair, folder, first):
    for i in (0, 1):  # the same answers, whoever computed or loaded what
        same(pair[0].extra["results"][i], pair[1].extra["results"][i], TP1_LOGPROB_TOL)
    saved = [next(r for r in run.report if r.role == "worker").checks["kv"]["saved_blocks"] for run in pair]
    assert sum(saved) >= FULL_A + FULL_C  # every block saved by one engine at least
    files = block_files(folder)  # (one of them flipped since, by `first`)
    assert len(files) == FULL_A + FULL_C and len({p.stat().st_size for p in files}) <= 2
    assert not list(folder.rglob("*.tmp"))
    for run in pair:
        assert warnings_in(run.log) == [], run.log[-3000:]


def test_restarted_engine_loads_the_prefix_and_answers_the_same(first, second):
    a = second.extra["results"][0]
    assert a["cached"] == FULL_A * BLOCK_SIZE  # vLLM's own count: the whole stored prefix
    same(a, first[0], TP1_LOGPROB_TOL)


def test_a_longer_prompt_sharing_the_prefix_hits_partially(second):
    _, reference, ab = second.extra["results"][:3]
    assert reference["cached"] == 0  # the salted run saw neither vLLM's cache nor the store
    assert ab["cached"] == FULL_A * BLOCK_SIZE < (len(AB) - 1) // BLOCK_SIZE * BLOCK_SIZE
    same(ab, reference, TP1_LOGPROB_TOL)


def test_a_bit_flipped_block_is_recomputed_with_one_warning(first, second):
    c = second.extra["results"][3]
    same(c, first[1], TP1_LOGPROB_TOL)
    assert second.log.count("rejected: checksum mismatch") == 1, second.log[-3000:]
    # Every load of the boot (the last A's from what eviction left) and the flipped block's failure.
    last_a = second.extra["results"][9]["cached"] // BLOCK_SIZE
    second.report.assert_check("kv", lambda s: s["load_failed"] == 1 and s["load_missing"] == 0
                               and s["loaded_blocks"] == 3 * FULL_A + FLIPPED + FULL_D + last_a, roles=("worker",))


def test_the_folder_removed_while_serving(first, second):
    missed, again = second.extra["results"][4:6]
    assert missed["cached"] == 0  # the folder is gone: a miss, recomputed
    same(missed, first[0], TP1_LOGPROB_TOL)
    assert again["cached"] == FULL_A * BLOCK_SIZE  # the saves made the folder again
    same(again, first[0], TP1_LOGPROB_TOL)
    assert warnings_in(second.log) == [w for w in warnings_in(second.log) if "checksum mismatch" in w]


def test_the_size_cap_reached_while_serving(first, second):
    d, e, d_again, a = second.extra["results"][6:]
    assert d["cached"] == e["cached"] == 0
    assert d_again["cached"] == FULL_D * BLOCK_SIZE  # the newest blocks stayed; loads go on
    same(d_again, d, TP1_LOGPROB_TOL)
    assert a["cached"] < FULL_A * BLOCK_SIZE  # some of A's blocks (the least recently used) went
    same(a, first[0], TP1_LOGPROB_TOL)
    # Every save of the boot happened (none refused at the cap), and eviction removed files.
    second.report.assert_check("kv", lambda s: s["evicted"] >= 1 and not s["saving_stopped"] and s["saved_blocks"]
                               >= FULL_AB + (FULL_AB - FULL_A) + FULL_A + 2 * FULL_D, roles=("worker",))
    assert len(warnings_in(second.log)) == 1


def test_tensor_parallel_two_each_worker_its_own_half(vllm_module, model, tmp_path_factory, first):
    folder = tmp_path_factory.mktemp("kv-store-tp2")
    run = boot(vllm_module, model, tmp_path_factory, folder, [{"ids": A}, {"ids": A}], "tp2",
               tensor_parallel_size=2, reset_prefix_cache=True)
    computed, loaded = run.extra["results"]
    assert computed["cached"] == 0 and loaded["cached"] == FULL_A * BLOCK_SIZE
    same(loaded, computed, TP1_LOGPROB_TOL)
    same(loaded, first[0], TP2_LOGPROB_TOL)
    rep = run.report
    rep.assert_loaded("ref_kv", roles=("engine_core", "worker"), group="vllm.general_plugins")
    rep.assert_check("kv", lambda s: s["scheduler"] == 1 and s["worker"] == 0 and s["hit_blocks"] == FULL_A,
                     roles=("engine_core",))
    rep.assert_check("kv", lambda s: s["worker"] == 1 and s["scheduler"] == 0 and s["saved_blocks"] == FULL_A
                     and s["loaded_blocks"] == FULL_A, roles=("worker",))
    assert len([r for r in rep if r.role == "worker"]) == 2
    for rank in (0, 1):
        assert len(list(folder.rglob(f"*.tp{rank}of2-pp0of1.kvb"))) == FULL_A
