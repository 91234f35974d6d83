"""Paged attention side by side on one card, in one run: this package's Triton kernels, torch SDPA
(contiguous KV, FlashAttention where available) and vLLM's own Triton unified-attention kernel,
plus the card's measured copy bandwidth and bf16 matmul rate.

Shapes are those of ../../shared/anchors (Hq 32, Hkv 8, head 128, bf16, block 16), plus one mixed
chunked-prefill + decode step. Prefill is reported in TFLOP/s (causal FLOPs, as the anchors
count them), decode in KV GB/s (KV bytes read / time) and as a fraction of the copy bandwidth.

vLLM's kernel is found as `vllm.v1.attention.ops.triton_unified_attention`: on a machine without
vLLM, build the shim with ../../shared/anchors/make_vllm_shim.sh into .anchors/ and put
.anchors/shim on PYTHONPATH (kernels/bench/gpu_run.sh does both).

  python kernels/bench/bench_attention.py [--sweep] [--out results.json]
  python kernels/bench/bench_attention.py --tiny      # CPU: checks the script on the interpreter
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout

import triton  # noqa: E402
from vllm_ref_kernels import reference, triton_ops  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"

FULL = dict(hq=32, hkv=8, d=128, block=16, dtype=torch.bfloat16,
            prefill=[(4, 2048), (1, 8192)], decode=[(64, 4096), (256, 1024), (8, 32768)],
            mixed=[(2048, 4096, 64, 4096)])  # one chunk of 2048 new tokens on 4096 keys + 64 decodes
TINY = dict(hq=4, hkv=2, d=64, block=16, dtype=torch.float32,
            prefill=[(1, 64)], decode=[(2, 64)], mixed=[(16, 48, 2, 40)])

# Launch options tried by --sweep (the first of each is the default on an H100/H200).
PREFILL_SWEEP = [dict(block_m=128, block_n=64, num_warps=8, num_stages=3),
                 dict(block_m=128, block_n=128, num_warps=8, num_stages=3),
                 dict(block_m=128, block_n=64, num_warps=4, num_stages=3),
                 dict(block_m=128, block_n=32, num_warps=4, num_stages=4),
                 dict(block_m=64, block_n=64, num_warps=4, num_stages=3),
                 dict(block_m=128, block_n=64, num_warps=8, num_stages=4)]
DECODE_SWEEP = [dict(block_n=64, num_warps=4, num_stages=3),
                dict(block_n=64, num_warps=4, num_stages=4),
                dict(block_n=128, num_warps=4, num_stages=3),
                dict(block_n=128, num_warps=8, num_stages=3),
                dict(block_n=32, num_warps=4, num_stages=4),
                dict(block_n=64, num_warps=8, num_stages=4),
                dict(block_n=64, num_warps=4, num_stages=3, splits_factor=2),
                dict(block_n=64, num_warps=4, num_stages=3, splits_factor=0.5)]


def bench(fn) -> float:
    """Median milliseconds (device events on a GPU; one host-timed call on the interpreter)."""
    if DEV == "cpu":
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


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


def sdpa(q, k, v, causal):  # q [B, Sq, Hq, D], k/v [B, S, Hkv, D]
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                          is_causal=causal, enable_gqa=True).transpose(1, 2)


def load_vllm_kernel():
    try:
        from vllm.v1.attention.ops import triton_unified_attention as mod
        # A CPU build of vLLM imports fine but hands its kernels a placeholder triton module.
        if not hasattr(mod.triton, "next_power_of_2"):
            raise ImportError("this vLLM build has no working triton")
    except Exception as e:  # noqa: BLE001 - any failure just drops the column
        print(f"vLLM kernel unavailable ({type(e).__name__}: {e}); put .anchors/shim on PYTHONPATH",
              file=sys.stderr)
        return None
    return mod.unified_attention


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


def ours_runner(q, kc, vc, table, q_lens, kv_lens, scale, prefill=None, decode=None):
    qsl = torch.zeros(len(q_lens) + 1, dtype=torch.int32, device=q.device)
    qsl[1:] = torch.tensor(q_lens, device=q.device).cumsum(0)
    lens = torch.tensor(kv_lens, dtype=torch.int32, device=q.device)
    out = torch.empty_like(q)
    if decode and "splits_factor" in decode:
        decode = dict(decode)
        head_pad = triton.next_power_of_2(q.shape[2])
        auto = triton_ops.decode_config(len(kv_lens), kc.shape[2], head_pad, q.device)
        decode["num_splits"] = max(1, round(auto["num_splits"] * decode.pop("splits_factor")))

    def run():
        return triton_ops.paged_attention(q, kc, vc, table, lens, qsl, scale=scale, out=out,
                                          prefill=prefill, decode=decode)
    run.out = out
    return run


def ceilings(rows: list[dict]) -> float | None:
    if DEV != "cuda":
        return None
    n = 1 << 30
    a = torch.empty(n, dtype=torch.uint8, device=DEV)
    b = torch.empty_like(a)
    ms = bench(lambda: b.copy_(a))
    copy = 2 * n / ms / 1e6
    rows.append(dict(case="copy 1 GiB (read + write)", impl="torch", ms=ms, GBps=copy))
    m = torch.randn(8192, 8192, device=DEV, dtype=torch.bfloat16)
    ms = bench(lambda: m @ m)
    rows.append(dict(case="bf16 matmul 8192^3", impl="torch", ms=ms, TFLOPs=2 * 8192**3 / ms / 1e9))
    return copy


def run_cases(shape: dict, vkernel, sweep: bool, copy_gbps: float | None) -> list[dict]:
    rows: list[dict] = []
    hq, hkv, d, block, dt = shape["hq"], shape["hkv"], shape["d"], shape["block"], shape["dtype"]
    scale = 1 / math.sqrt(d)
    gen = torch.Generator(device=DEV).manual_seed(0)

    def randn(*s):
        return torch.randn(*s, device=DEV, dtype=dt, generator=gen)

    def add(case, impl, ms, ref=None, out=None, flops=None, kv_bytes=None, **extra):
        row = dict(case=case, impl=impl, ms=ms, **extra)
        if flops:
            row["TFLOPs"] = flops / ms / 1e9
        if kv_bytes:
            row["GBps"] = kv_bytes / ms / 1e6
            if copy_gbps:
                row["of_copy"] = row["GBps"] / copy_gbps
        if ref is not None:
            row["relerr"] = rel(out, ref)
        rows.append(row)
        print(fmt(row), flush=True)

    for b, s in shape["prefill"]:
        case = f"prefill B{b} S{s} causal"
        q, k, v = randn(b, s, hq, d), randn(b, s, hkv, d), randn(b, s, hkv, d)
        flops = 4 * b * hq * s * s * d / 2
        ref = sdpa(q, k, v, True)
        add(case, "sdpa", bench(lambda q=q, k=k, v=v: sdpa(q, k, v, True)), flops=flops)
        kc, vc, tab = paged(k, v, block)
        qf = q.reshape(b * s, hq, d)
        if vkernel:
            run = vllm_runner(vkernel, qf, kc, vc, tab, [s] * b, [s] * b, scale)
            add(case, "vllm-triton", bench(run), ref, run.out.view_as(ref), flops=flops)
        for i, cfg in enumerate(PREFILL_SWEEP if sweep else [None]):
            run = ours_runner(qf, kc, vc, tab, [s] * b, [s] * b, scale, prefill=cfg)
            add(case, "ours" if i == 0 else f"ours {cfg}", bench(run), ref, run.out.view_as(ref), flops=flops)

    for b, s in shape["decode"]:
        case = f"decode B{b} ctx{s}"
        q, k, v = randn(b, 1, hq, d), randn(b, s, hkv, d), randn(b, s, hkv, d)
        kv_bytes = 2 * b * s * hkv * d * k.element_size()
        ref = sdpa(q, k, v, False)
        add(case, "sdpa-contig", bench(lambda q=q, k=k, v=v: sdpa(q, k, v, False)), kv_bytes=kv_bytes)
        kc, vc, tab = paged(k, v, block)
        qf = q.reshape(b, hq, d)
        if vkernel:
            run = vllm_runner(vkernel, qf, kc, vc, tab, [1] * b, [s] * b, scale)
            add(case, "vllm-triton", bench(run), ref, run.out.view_as(ref), kv_bytes=kv_bytes)
        for i, cfg in enumerate(DECODE_SWEEP if sweep else [None]):
            run = ours_runner(qf, kc, vc, tab, [1] * b, [s] * b, scale, decode=cfg)
            name = "ours" if i == 0 else f"ours {cfg}"
            add(case, name, bench(run), ref, run.out.view_as(ref), kv_bytes=kv_bytes)

    for chunk, total, nd, ctx in shape["mixed"]:
        case = f"mixed prefill {chunk}/{total} + {nd} decodes ctx{ctx}"
        q_lens, kv_lens = [chunk] + [1] * nd, [total] + [ctx] * nd
        pages = max(-(-x // block) for x in kv_lens)
        nblocks = sum(-(-x // block) for x in kv_lens)
        kc, vc = randn(nblocks, block, hkv, d), randn(nblocks, block, hkv, d)
        tab = torch.zeros(len(kv_lens), pages, dtype=torch.int32, device=DEV)
        perm, used = torch.randperm(nblocks, device=DEV).to(torch.int32), 0
        for i, x in enumerate(kv_lens):
            n = -(-x // block)
            tab[i, :n] = perm[used:used + n]
            used += n
        q = randn(sum(q_lens), hq, d)
        runs = {}
        if vkernel:
            runs["vllm-triton"] = vllm_runner(vkernel, q, kc, vc, tab, q_lens, kv_lens, scale)
        runs["ours"] = ours_runner(q, kc, vc, tab, q_lens, kv_lens, scale)
        qsl = torch.tensor([0] + torch.tensor(q_lens).cumsum(0).tolist(), dtype=torch.int32, device=DEV)
        ref = reference.paged_attention(q, kc, vc, tab, torch.tensor(kv_lens, dtype=torch.int32, device=DEV),
                                        qsl, scale=scale)
        for impl, run in runs.items():
            add(case, impl, bench(run), ref, run.out)
    return rows


def fmt(row: dict) -> str:
    return " | ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def summary(rows: list[dict], copy_gbps: float | None) -> list[str]:
    """Ratios per case, and the issue's goals where the full shapes ran on a GPU."""
    by = {(r["case"], r["impl"]): r for r in rows}
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows if "ours" == r["impl"]):
        ours = by[(case, "ours")]
        parts = [f"{case}: ours {ours['ms']:.4g} ms"]
        for other in ("sdpa", "sdpa-contig", "vllm-triton"):
            if (case, other) in by:
                parts.append(f"{by[(case, other)]['ms'] / ours['ms']:.2f}x {other}")
        if "of_copy" in ours:
            parts.append(f"{100 * ours['of_copy']:.0f}% of copy bandwidth")
        lines.append(", ".join(parts))
    if copy_gbps is None:
        return lines

    def speed(case, impl, key):
        r = by.get((case, impl))
        return r[key] if r else float("nan")

    goals = [
        ("decode B64 ctx4096 >= 90% copy BW", speed("decode B64 ctx4096", "ours", "GBps") / copy_gbps, 0.9),
        ("decode B8 ctx32768 >= 80% copy BW", speed("decode B8 ctx32768", "ours", "GBps") / copy_gbps, 0.8),
    ]
    for case in ("prefill B4 S2048 causal", "prefill B1 S8192 causal"):
        ours = speed(case, "ours", "TFLOPs")
        goals.append((f"{case} >= 3x vLLM", ours / speed(case, "vllm-triton", "TFLOPs"), 3))
        goals.append((f"{case} >= 0.6x SDPA", ours / speed(case, "sdpa", "TFLOPs"), 0.6))
    for name, value, target in goals:
        lines.append(f"goal {name}: {value:.3g} -> {'MET' if value >= target else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="small shapes in fp32 (CPU interpreter check)")
    p.add_argument("--sweep", action="store_true", help="also time the launch options in *_SWEEP")
    p.add_argument("--out", default=None, help="write rows and summary as JSON here")
    args = p.parse_args(argv)
    if DEV == "cpu" and not args.tiny:
        p.error("no GPU here: only --tiny runs on the CPU (Triton's interpreter)")
    env = dict(device=torch.cuda.get_device_name() if DEV == "cuda" else "cpu (TRITON_INTERPRET=1)",
               torch=torch.__version__, triton=triton.__version__)
    print(" | ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    rows: list[dict] = []
    copy = ceilings(rows)
    for r in rows:
        print(fmt(r), flush=True)
    rows += run_cases(TINY if args.tiny else FULL, load_vllm_kernel(), args.sweep, copy)
    lines = summary(rows, copy if not args.tiny else None)
    print("\n".join(["", "== summary (times are medians; ratios > 1x mean ours is faster)"] + lines))
    result = dict(env=env, rows=rows, summary=lines)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
