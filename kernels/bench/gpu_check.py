"""The correctness step of the device run: every kernel against the fp64 reference, fp16 and bf16.

Each case compares against the PyTorch reference run in fp64 on upcast inputs, by
||out - ref|| / ||ref|| (device/METHOD.md): fp32 under 1e-5, fp16 under 2e-3, bf16 under 1e-2;
NaN never passes. Inputs are fresh random batches (seed recorded), outputs and every cache row no
sequence owns are NaN-poisoned, and each case runs twice and must give bit-identical results (a
moving result is a race). `--tiny` runs small cases in fp32 and fp16: Triton's CPU interpreter gets
bf16 dots wrong.
"""

from __future__ import annotations

import traceback

import torch
from common import DEV, Call, Deadline, Sink, sync
from vllm_ref_kernels import reference, triton_ops
from vllm_ref_kernels.testing import make_batch, poisoned_like, rel_err

TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def _case(q_lens, seq_lens, heads, d, block, window=None, softcap=0.0) -> dict:
    return dict(q_lens=tuple(q_lens), seq_lens=tuple(seq_lens), hq=heads[0], hkv=heads[1], d=d, block=block,
                window=window, softcap=softcap)


GPU_CASES = {
    "decode ragged gqa4": _case([1] * 24, [1, 7, 16, 17, 100, 511, 512, 513, 1000, 2047, 4096, 4097] * 2,
                                (32, 8), 128, 16),
    "decode long few seqs": _case([1, 1], [32768, 20001], (32, 8), 128, 16),
    "prefill ragged": _case([1000, 333, 17, 2048], [1000, 333, 17, 2048], (32, 8), 128, 16),
    "mixed chunked": _case([512, 1, 1, 100, 1, 7], [3000, 4097, 1, 100, 777, 64], (32, 8), 128, 16),
    "mqa gqa8 d64 block32": _case([300, 1, 1], [300, 900, 33], (8, 1), 64, 32),
    "mha d256 block64": _case([200, 1], [500, 700], (4, 4), 256, 64),
    "d80 block128": _case([129, 1], [1000, 333], (8, 2), 80, 128),
    "window+softcap (gemma-like)": _case([700, 1, 1], [1500, 4000, 100], (16, 8), 128, 16, 512, 50.0),
    "window small": _case([64, 1], [64, 200], (8, 2), 64, 16, 7),
}
TINY_CASES = {
    "decode gqa4": _case([1, 1, 1], [5, 40, 70], (4, 1), 64, 16),
    "mixed window softcap": _case([9, 1], [30, 50], (4, 2), 64, 16, 12, 3.0),
}
# Per mode: (cases in the anchors' dtype, the cases also run in the other half-precision dtype, the
# case also run in fp32, head sizes checked one by one). The GPU list is cut to what ~40 kernel
# compilations cover (gpu_run.py counts them): every case in bf16, the paths whose code depends on
# the dtype once more in fp16, and the head sizes that the cases miss, one per padded size.
MODES = {
    False: (GPU_CASES, torch.bfloat16, ["decode ragged gqa4", "prefill ragged", "mixed chunked",
                                        "window+softcap (gemma-like)"], torch.float16, "mixed chunked",
            [32, 96, 160, 224]),
    # The interpreter gets bf16 dots wrong: fp32 stands in for it there.
    True: (TINY_CASES, torch.float32, list(TINY_CASES), torch.float16, "mixed window softcap", [80]),
}


def correctness_calls(tiny: bool) -> list[Call]:
    cases, dtype, again, other, fp32_case, heads = MODES[tiny]
    calls = [Call(name, dtype=dtype, **spec) for name, spec in cases.items()]
    calls += [Call(name, dtype=other, **cases[name]) for name in again]
    calls += [Call(f"head {d}", dtype=dtype, **_case([33, 1], [90, 300], (8, 2), d, 16)) for d in heads]
    if dtype != torch.float32:
        calls.append(Call(f"{fp32_case} fp32", dtype=torch.float32, **cases[fp32_case]))
    return calls


def check_call(call: Call, gen: torch.Generator) -> dict:
    batch = make_batch(list(call.q_lens), list(call.seq_lens), call.hq, call.hkv, call.d, call.block, call.dtype,
                       DEV, gen)
    kw = dict(scale=call.d ** -0.5, sliding_window=call.window, softcap=call.softcap)
    up = [t.double() if t.is_floating_point() else t for t in batch.args()]
    ref = reference.paged_attention(*up, **kw)
    outs = [triton_ops.paged_attention(*batch.args(), **kw, out=poisoned_like(batch.q),
                                       num_decodes=call.num_decodes) for _ in range(2)]
    sync()
    err = rel_err(outs[0], ref)
    same = torch.equal(outs[0], outs[1])
    return dict(relerr=err, tol=TOL[call.dtype], repeatable=same, ok=err < TOL[call.dtype] and same)


def check_cache_write(dtype: torch.dtype, gen: torch.Generator) -> dict:
    num_blocks, bs, hkv, d, n = 64, 16, 8, 128, 300
    key = torch.randn(n, hkv, d, generator=gen).to(dtype).to(DEV)
    value = torch.randn(n, hkv, d, generator=gen).to(dtype).to(DEV)
    slots = torch.randperm(num_blocks * bs, generator=gen)[:n]
    slots[::7] = -1
    slots = slots.to(DEV)
    want_k = torch.full((num_blocks, bs, hkv, d), float("nan"), dtype=dtype, device=DEV)
    want_v, got_k, got_v = want_k.clone(), want_k.clone(), want_k.clone()
    reference.reshape_and_cache(key, value, want_k, want_v, slots)
    triton_ops.reshape_and_cache(key, value, got_k, got_v, slots)
    ok = all(torch.equal(a.nan_to_num(7.0), b.nan_to_num(7.0)) for a, b in ((got_k, want_k), (got_v, want_v)))
    return dict(ok=ok)


def correctness(sink: Sink, tiny: bool, deadline: Deadline, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    calls = correctness_calls(tiny)
    for call in calls:
        row = dict(case=call.case, dtype=str(call.dtype).removeprefix("torch."), seed=seed)
        if deadline.spent():
            sink.add(**row, ok=False, skipped="step time budget spent")
            continue
        try:
            sink.add(**row, **check_call(call, gen))
        except Exception as e:  # noqa: BLE001 - record and go on: device time is scarce
            traceback.print_exc()
            sink.add(**row, ok=False, error=repr(e)[:300])
    for dt in dict.fromkeys(c.dtype for c in calls if c.dtype != torch.float32):
        row = dict(case="reshape_and_cache", dtype=str(dt).removeprefix("torch."), seed=seed)
        if deadline.spent():
            sink.add(**row, ok=False, skipped="step time budget spent")
        else:
            sink.add(**row, **check_cache_write(dt, gen))
