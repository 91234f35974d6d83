"""Compile the kernels for a Hopper GPU without one, and report what the compiler made of them.

Triton compiles ahead of time for any target it has a back end for (ptxas ships in its wheel),
so on a CPU-only machine this shows, per kernel and launch configuration: registers per thread,
stack frame (spills), shared memory, programs that fit on one SM, and whether the code uses the
instructions we designed for (wgmma for prefill, mma + cp.async for decode, 16-byte global
accesses). The launches are the ones `triton_ops.plan` makes for real shapes (a dry run on "meta"
tensors), with the integer specializations Triton's launcher would add at run time.

  python kernels/bench/compile_check.py [--arch 90] [--sweep]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# The device machine runs this from a copy of the checkout where nothing is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from vllm_ref_kernels import triton_ops as T  # noqa: E402
from vllm_ref_kernels.testing import meta_batch  # noqa: E402

DTYPES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", torch.int32: "i32",
          torch.int64: "i64"}
H200_SMS, DEFAULT_PER_SM = 132, 4  # the dry run's stand-ins for what a GPU measures

# Shapes of the anchors (Hq 32, Hkv 8, head 128, block 16): name -> (q_lens, seq_lens).
PREFILL_B4 = ([2048] * 4, [2048] * 4)
DECODE_B64 = ([1] * 64, [4096] * 64)
DECODE_B8 = ([1] * 8, [32768] * 8)


def plan_launches(q_lens: list[int], seq_lens: list[int], *, hq: int = 32, hkv: int = 8, d: int = 128,
                  block: int = 16, dtype: torch.dtype = torch.bfloat16, window: int | None = None,
                  softcap: float = 0.0, prefill: dict | None = None, decode: dict | None = None,
                  num_decodes: int | None = None) -> list[T.Launch]:
    """The launches one paged_attention call makes for these shapes, without data or a GPU."""
    b = meta_batch(q_lens, seq_lens, hq, hkv, d, block, dtype)
    if num_decodes is None:
        num_decodes = sum(1 for x in q_lens if x == 1)
    return T.plan(*b.args(), b.q, scale=d ** -0.5, sliding_window=window, softcap=softcap,
                  num_decodes=num_decodes, prefill=prefill, decode=decode, num_sms=H200_SMS, per_sm=DEFAULT_PER_SM)


def cache_write_launch(hkv: int = 8, d: int = 128, block: int = 16, dtype: torch.dtype = torch.bfloat16) -> T.Launch:
    kv = torch.empty(64, hkv, d, dtype=dtype, device="meta")
    cache = torch.empty(100, block, hkv, d, dtype=dtype, device="meta")
    return T.Launch(T._reshape_and_cache_kernel, (64, hkv), dict(
        key=kv, value=kv, key_cache=cache, value_cache=cache,
        slot_mapping=torch.empty(64, dtype=torch.int64, device="meta"),
        stride_kt=kv.stride(0), stride_kh=kv.stride(1), stride_vt=kv.stride(0), stride_vh=kv.stride(1),
        stride_kcb=cache.stride(0), stride_kct=cache.stride(1), stride_kch=cache.stride(2),
        stride_vcb=cache.stride(0), stride_vct=cache.stride(1), stride_vch=cache.stride(2),
        PAGE=block, HEAD=d, HEAD_PAD=triton.next_power_of_2(d), num_warps=4))


def compile_launch(launch: T.Launch, arch: int) -> dict:
    fn, kw = launch.kernel, launch.kwargs
    sig, consts, attrs = {}, {}, {}
    for i, name in enumerate(fn.arg_names):
        v = kw[name]
        specialize = name not in T.NO_SPECIALIZE
        if name.isupper() or (specialize and isinstance(v, int) and v == 1):
            sig[name], consts[name] = "constexpr", v
        elif isinstance(v, torch.Tensor):
            sig[name] = "*" + DTYPES[v.dtype]
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(v, float):
            sig[name] = "fp32"
        else:
            sig[name] = "i32"
            if specialize and v % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    opts = {k: kw[k] for k in ("num_warps", "num_stages") if k in kw}
    k = triton.compile(ASTSource(fn, sig, consts, attrs), target=GPUTarget("cuda", arch, 32), options=opts)
    ptx = k.asm["ptx"]
    cuobjdump = Path(triton.__file__).parent / "backends/nvidia/bin/cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(k.asm["cubin"])
    try:
        res = subprocess.run([str(cuobjdump), "--dump-resource-usage", f.name], capture_output=True,
                             text=True).stdout
    finally:
        os.unlink(f.name)
    usage = dict(re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", res))
    regs = int(usage.get("REG", -1))
    return dict(regs=regs, stack=int(usage.get("STACK", -1)), smem=k.metadata.shared,
                per_sm=T.programs_per_sm(regs, k.metadata.shared, opts.get("num_warps", 4)),
                wgmma=ptx.count("wgmma.mma_async"), mma=ptx.count("mma.sync"),
                cp_async=ptx.count("cp.async.cg") + ptx.count("cp.async.ca"),
                ld_v4=len(re.findall(r"ld\.global[.\w]*\.v4", ptx)))


def jobs(sweep: bool) -> list[tuple[str, T.Launch]]:
    import bench_attention as B

    out: list[tuple[str, list[T.Launch]]] = []
    # "default": no options given, as a caller runs it (the first variant of each list).
    for name, cfg in [("default", None)] + (B.PREFILL_VARIANTS[1:] if sweep else []):
        out.append((f"prefill d128 {name}", plan_launches(*PREFILL_B4, prefill=cfg)))
    for name, cfg in [("default", None)] + (B.DECODE_VARIANTS[1:] if sweep else []):
        out.append((f"decode d128 {name}", plan_launches(*DECODE_B64, decode=cfg)))
        out.append((f"decode d128 {name} split", plan_launches(*DECODE_B8, decode=cfg)))
    for d in (64, 80, 256):
        out.append((f"prefill d{d} default", plan_launches([1000], [1000], d=d)))
    out.append(("prefill+decode d128 window+softcap", plan_launches([700, 1], [1500, 4000], window=512,
                                                                   softcap=50.0)))
    out.append(("reshape_and_cache d128", [cache_write_launch()]))
    seen: set = set()
    flat = []
    for name, launches in out:
        for launch in launches:
            key = T.compile_key(launch)
            if key not in seen:
                seen.add(key)
                flat.append((f"{launch.kernel.__name__.strip('_').split('_')[0]} | {name}", launch))
    return flat


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=int, default=90, help="compute capability x10 (90 = H100/H200, 80 = A100)")
    p.add_argument("--sweep", action="store_true", help="also the variants bench_attention times in its sweep")
    args = p.parse_args(argv)
    rows = []
    print(f"triton {triton.__version__}, target sm_{args.arch}, bf16, Hq 32 Hkv 8 block 16")
    for name, launch in jobs(args.sweep):
        opts = {k: v for k, v in launch.kwargs.items() if k in ("num_warps", "num_stages")}
        try:
            row = dict(kernel=name, **opts, **compile_launch(launch, args.arch))
        except Exception as e:  # noqa: BLE001 - report and go on
            row = dict(kernel=name, error=f"{type(e).__name__}: {str(e)[:300]}")
        rows.append(row)
        print(" | ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return rows


if __name__ == "__main__":
    main()
