"""The benchmark steps of the device run: paged attention side by side on one card, in one run.

`headline`: the card's copy bandwidth and bf16 matmul rate, then the shapes of ../../shared/anchors
(Hq 32, Hkv 8, head 128, bf16, block 16) plus one mixed chunked-prefill + decode step, each with
torch SDPA (contiguous KV, FlashAttention where available), vLLM's own Triton unified-attention
kernel and this package's default launch options. `sweep`: the other launch variants below on the
same shapes, ours only. Prefill is reported in TFLOP/s (causal FLOPs, as the anchors count them),
decode in KV GB/s (KV bytes read / time) and as a fraction of the copy bandwidth.

Run through gpu_run.py, which checks that vLLM's kernel (the shim in .anchors/) is importable.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
import triton
from common import DEV, Call, Deadline, Sink, bench, rel, triton_ops
from vllm_ref_kernels import reference
from vllm_ref_kernels.testing import make_batch

FULL = dict(hq=32, hkv=8, d=128, block=16, dtype=torch.bfloat16,
            prefill=[(4, 2048), (1, 8192)], decode=[(64, 4096), (256, 1024), (8, 32768)],
            mixed=[(2048, 4096, 64, 4096)])  # one chunk of 2048 new tokens on 4096 keys + 64 decodes
TINY = dict(hq=4, hkv=2, d=64, block=16, dtype=torch.float32,
            prefill=[(1, 64)], decode=[(2, 64)], mixed=[(16, 48, 2, 40)])

# Launch variants (name, options); the first of each list is what the defaults pick on an H100/H200.
# Compile reports and predictions for each: kernels/BENCHMARKS.md.
PREFILL_VARIANTS = [
    ("128x128 w8 s3", dict(block_m=128, block_n=128, num_warps=8, num_stages=3)),
    ("128x64 w8 s3", dict(block_m=128, block_n=64, num_warps=8, num_stages=3)),
    ("128x128 w8 s2", dict(block_m=128, block_n=128, num_warps=8, num_stages=2)),
    ("128x128 w8 s3 per-key ids", dict(block_m=128, block_n=128, num_warps=8, num_stages=3, paging=2)),
    ("64x64 w4 s3", dict(block_m=64, block_n=64, num_warps=4, num_stages=3)),
]
DECODE_VARIANTS = [
    ("64 w4 s3", dict(block_n=64, num_warps=4, num_stages=3)),
    ("64 w4 s3 per-page ids", dict(block_n=64, num_warps=4, num_stages=3, paging=1)),
    ("128 w4 s3", dict(block_n=128, num_warps=4, num_stages=3)),
    ("64 w4 s4", dict(block_n=64, num_warps=4, num_stages=4)),
    ("64 w4 s3 16 splits", dict(block_n=64, num_warps=4, num_stages=3, num_splits=16)),
]


def calls(shape: dict, prefill_variants: list, decode_variants: list, mixed: bool) -> list[Call]:
    common = dict(hq=shape["hq"], hkv=shape["hkv"], d=shape["d"], block=shape["block"], dtype=shape["dtype"])
    out = []
    for (b, s), (name, cfg) in itertools.product(shape["prefill"], prefill_variants):
        out.append(Call(f"prefill B{b} S{s} causal", (s,) * b, (s,) * b, variant=name, prefill=cfg, **common))
    for (b, s), (name, cfg) in itertools.product(shape["decode"], decode_variants):
        out.append(Call(f"decode B{b} ctx{s}", (1,) * b, (s,) * b, variant=name, decode=cfg, **common))
    for chunk, total, nd, ctx in shape["mixed"] if mixed else []:
        out.append(Call(f"mixed prefill {chunk}/{total} + {nd} decodes ctx{ctx}", (chunk,) + (1,) * nd,
                        (total,) + (ctx,) * nd, **common))
    return out


def headline_calls(tiny: bool) -> list[Call]:
    # Ours as a caller gets it: no launch options given, so the defaults (the first variants on a GPU).
    return calls(TINY if tiny else FULL, [("default", None)], [("default", None)], mixed=True)


def sweep_calls(tiny: bool) -> list[Call]:
    return calls(TINY if tiny else FULL, PREFILL_VARIANTS[1:], DECODE_VARIANTS[1:], mixed=False)


def sdpa(q, k, v, causal):  # q [B, Sq, Hq, D], k/v [B, S, Hkv, D]
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                          is_causal=causal, enable_gqa=True).transpose(1, 2)


def paged(k: torch.Tensor, v: torch.Tensor, block: int):
    """Contiguous [B, S, Hkv, D] keys/values -> shuffled caches and a block table."""
    b, s, h, d = k.shape
    nb = -(-s // block)
    pad = nb * block - s
    if pad:
        k, v = F.pad(k, (0, 0, 0, 0, 0, pad)), F.pad(v, (0, 0, 0, 0, 0, pad))
    perm = torch.randperm(b * nb, device=k.device)
    kc = torch.empty(b * nb, block, h, d, device=k.device, dtype=k.dtype)
    vc = torch.empty_like(kc)
    kc[perm] = k.reshape(b * nb, block, h, d)
    vc[perm] = v.reshape(b * nb, block, h, d)
    return kc, vc, perm.view(b, nb).to(torch.int32)


def vllm_runner(kernel, q, kc, vc, table, q_lens, kv_lens, scale):
    """vLLM's unified attention, called the way its Triton backend calls it (3D split for decode)."""
    cu = torch.zeros(len(q_lens) + 1, dtype=torch.int32, device=q.device)
    cu[1:] = torch.tensor(q_lens, device=q.device).cumsum(0)
    seqused = torch.tensor(kv_lens, dtype=torch.int32, device=q.device)
    out = torch.empty_like(q)
    hq, d, hkv = q.shape[1], q.shape[2], kc.shape[2]
    thr, segs = 128 // hkv, 16
    so = torch.empty(thr, hq, segs, triton.next_power_of_2(d), dtype=torch.float32, device=q.device)
    sm = torch.empty(thr, hq, segs, dtype=torch.float32, device=q.device)
    se = torch.empty_like(sm)

    def run():
        kernel(q=q, k=kc, v=vc, out=out, cu_seqlens_q=cu, max_seqlen_q=max(q_lens), seqused_k=seqused,
               max_seqlen_k=max(kv_lens), softmax_scale=scale, causal=True, window_size=(-1, -1),
               block_table=table, softcap=0, q_descale=None, k_descale=None, v_descale=None,
               seq_threshold_3D=thr, num_par_softmax_segments=segs, softmax_segm_output=so,
               softmax_segm_max=sm, softmax_segm_expsum=se)
        return out
    run.out = out  # holds the result once run (or bench(run)) has been called
    return run


def ours_runner(call: Call, q, kc, vc, table):
    qsl = torch.zeros(len(call.q_lens) + 1, dtype=torch.int32, device=q.device)
    qsl[1:] = torch.tensor(call.q_lens, device=q.device).cumsum(0)
    lens = torch.tensor(call.seq_lens, dtype=torch.int32, device=q.device)
    out = torch.empty_like(q)
    kwargs = dict(scale=call.d ** -0.5, out=out, num_decodes=call.num_decodes, prefill=call.prefill,
                  decode=call.decode)
    launches = triton_ops.plan(q, kc, vc, table, lens, qsl, **kwargs)
    decode = [x for x in launches if x.kernel is triton_ops._decode_kernel]
    info = dict(launches=len(launches))
    if decode:
        info["splits"] = decode[0].grid[2]
        if DEV == "cuda":  # what the split count was computed from
            info["per_sm"] = triton_ops.measured_programs_per_sm(decode[0])

    def run():
        return triton_ops.paged_attention(q, kc, vc, table, lens, qsl, **kwargs)
    run.out, run.info = out, info
    return run


def ceilings(sink: Sink, tiny: bool) -> float:
    """The card's copy bandwidth (read + write, GB/s) and bf16 matmul rate; tiny sizes on the CPU."""
    n = 1 << (20 if tiny else 30)
    a = torch.empty(n, dtype=torch.uint8, device=DEV)
    b = torch.empty_like(a)
    ms = bench(lambda: b.copy_(a))
    copy = 2 * n / ms / 1e6
    sink.add(case=f"copy {n >> 20} MiB (read + write)", impl="torch", ms=ms, GBps=copy)
    m_size = 256 if tiny else 8192
    m = torch.randn(m_size, m_size, device=DEV, dtype=torch.float32 if tiny else torch.bfloat16)
    ms = bench(lambda: m @ m)
    sink.add(case=f"matmul {m_size}^3", impl="torch", ms=ms, TFLOPs=2 * m_size ** 3 / ms / 1e9)
    return copy


def run_calls(sink: Sink, calls_: list[Call], deadline: Deadline, vkernel, copy_gbps: float | None,
              baselines: bool) -> None:
    """Time each call (grouped by case: inputs built once), with SDPA and vLLM first if baselines."""
    gen = torch.Generator(device=DEV).manual_seed(0)
    for case, group in itertools.groupby(calls_, key=lambda c: c.case):
        if deadline.spent():
            sink.add(case=case, impl="ours", skipped="step time budget spent")
        else:
            run_case(sink, list(group), gen, vkernel, copy_gbps, baselines)


def run_case(sink: Sink, group: list[Call], gen: torch.Generator, vkernel, copy_gbps: float | None,
             baselines: bool) -> None:
    c0 = group[0]
    b, s = len(c0.q_lens), max(c0.seq_lens)
    flops = kv_bytes = None

    def randn(*size):
        return torch.randn(*size, device=DEV, dtype=c0.dtype, generator=gen)

    def add(impl, ms, out=None, **extra):
        row = dict(case=c0.case, impl=impl, ms=ms, **extra)
        if flops:
            row["TFLOPs"] = flops / ms / 1e9
        if kv_bytes:
            row["GBps"] = kv_bytes / ms / 1e6
            if copy_gbps:
                row["of_copy"] = row["GBps"] / copy_gbps
        if out is not None:
            row["relerr"] = rel(out, ref)
        sink.add(**row)

    if all(x == 1 for x in c0.q_lens) or c0.q_lens == c0.seq_lens:  # uniform: SDPA on contiguous KV
        ql = c0.q_lens[0]
        q, k, v = randn(b, ql, c0.hq, c0.d), randn(b, s, c0.hkv, c0.d), randn(b, s, c0.hkv, c0.d)
        causal = ql > 1
        if causal:
            flops = 4 * b * c0.hq * s * s * c0.d / 2
        else:
            kv_bytes = 2 * b * s * c0.hkv * c0.d * k.element_size()
        ref = sdpa(q, k, v, causal)
        if baselines:
            add("sdpa" if causal else "sdpa-contig", bench(lambda: sdpa(q, k, v, causal)))
        kc, vc, tab = paged(k, v, c0.block)
        qf = q.reshape(b * ql, c0.hq, c0.d)
    else:  # mixed: the reference on a random paged batch
        batch = make_batch(list(c0.q_lens), list(c0.seq_lens), c0.hq, c0.hkv, c0.d, c0.block, c0.dtype, DEV,
                           poison=False)
        qf, kc, vc, tab = batch.q, batch.key_cache, batch.value_cache, batch.block_table
        ref = reference.paged_attention(*batch.args(), scale=c0.d ** -0.5)
    if baselines and vkernel:
        run = vllm_runner(vkernel, qf, kc, vc, tab, list(c0.q_lens), list(c0.seq_lens), c0.d ** -0.5)
        add("vllm-triton", bench(run), run.out.view_as(ref))
    for c in group:
        run = ours_runner(c, qf, kc, vc, tab)
        add("ours", bench(run), run.out.view_as(ref), variant=c.variant, **run.info)


def headline(sink: Sink, tiny: bool, deadline: Deadline, vkernel) -> None:
    copy = ceilings(sink, tiny)
    run_calls(sink, headline_calls(tiny), deadline, vkernel, copy, baselines=True)


def sweep(sink: Sink, tiny: bool, deadline: Deadline, copy_gbps: float | None) -> None:
    run_calls(sink, sweep_calls(tiny), deadline, None, copy_gbps, baselines=False)


def summary(rows: list[dict]) -> list[str]:
    """Per case: ours (default) against each baseline, the best sweep variant, and the issue's goals."""
    by = {(r["case"], r.get("impl"), r.get("variant", "default")): r for r in rows if "ms" in r}
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows if r.get("impl") == "ours" and "ms" in r):
        ours = [r for (c, impl, _), r in by.items() if c == case and impl == "ours"]
        default, best = ours[0], min(ours, key=lambda r: r["ms"])
        parts = [f"{case}: ours {default['ms']:.4g} ms"]
        for other in ("sdpa", "sdpa-contig", "vllm-triton"):
            if (case, other, "default") in by:
                parts.append(f"{by[(case, other, 'default')]['ms'] / default['ms']:.2f}x {other}")
        if "of_copy" in default:
            parts.append(f"{100 * default['of_copy']:.0f}% of copy")
        if best is not default:
            parts.append(f"best variant {best['variant']} {best['ms']:.4g} ms")
        lines.append(", ".join(parts))
    copy = next((r["GBps"] for r in rows if r["case"].startswith("copy")), None)

    def speed(case, impl, key):
        r = by.get((case, impl, "default"))
        return r[key] if r and key in r else math.nan

    copy = copy or math.nan
    goals = [("decode B64 ctx4096 >= 90% copy", speed("decode B64 ctx4096", "ours", "GBps") / copy, 0.9),
             ("decode B8 ctx32768 >= 80% copy", speed("decode B8 ctx32768", "ours", "GBps") / copy, 0.8)]
    for case in ("prefill B4 S2048 causal", "prefill B1 S8192 causal"):
        ours = speed(case, "ours", "TFLOPs")
        goals.append((f"{case} >= 3x vLLM", ours / speed(case, "vllm-triton", "TFLOPs"), 3))
        goals.append((f"{case} >= 0.6x SDPA", ours / speed(case, "sdpa", "TFLOPs"), 0.6))
    for name, value, target in goals:
        if not math.isnan(value):
            lines.append(f"goal {name}: {value:.3g} -> {'MET' if value >= target else 'MISSED'}")
    return lines
