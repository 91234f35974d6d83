"""Compile the kernels for a Hopper GPU without one, and report what the compiler made of them.

Triton compiles ahead of time for any target it has a back end for (ptxas ships in its wheel),
so on a CPU-only machine this shows, per kernel and launch configuration: registers per thread,
stack frame (spills), shared memory, and whether the code uses the instructions we designed for
(wgmma for prefill, mma + cp.async for decode, 16-byte global accesses). Integer arguments are
marked divisible by 16, as Triton's launcher marks them at run time for such values.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from vllm_ref_kernels import triton_ops as T  # noqa: E402

PTR_ARGS = {"q", "k_cache", "v_cache", "out", "key", "value", "key_cache", "value_cache"}


def signature(fn, dtype: str, consts: dict) -> tuple[dict, dict]:
    sig = {}
    for name in fn.arg_names:
        if name in consts:
            sig[name] = "constexpr"
        elif name in PTR_ARGS:
            sig[name] = "*" + dtype
        elif name in ("part_acc", "part_m", "part_l"):
            sig[name] = "*fp32"
        elif name in ("block_table", "seq_lens", "query_start_loc"):
            sig[name] = "*i32"
        elif name == "slot_mapping":
            sig[name] = "*i64"
        elif name in ("scale", "softcap"):
            sig[name] = "fp32"
        else:
            sig[name] = "i32"
    attrs = {(i,): [["tt.divisibility", 16]] for i, a in enumerate(fn.arg_names)
             if sig[a].startswith("*") or a.startswith("stride")}
    return sig, attrs


def compile_one(fn, consts: dict, opts: dict, arch: int, dtype: str = "bf16") -> dict:
    sig, attrs = signature(fn, dtype, consts)
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
    return dict(regs=int(usage.get("REG", -1)), stack=int(usage.get("STACK", -1)),
                smem=k.metadata.shared, wgmma=ptx.count("wgmma.mma_async"), mma=ptx.count("mma.sync"),
                cp_async=ptx.count("cp.async.cg") + ptx.count("cp.async.ca"),
                ld_v4=len(re.findall(r"ld\.global[.\w]*\.v4", ptx)))


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=int, default=90, help="compute capability x10 (90 = H100/H200, 80 = A100)")
    p.add_argument("--sweep", action="store_true", help="also the options bench_attention --sweep times")
    args = p.parse_args(argv)
    import bench_attention as B

    common = dict(PAGE=16, HEAD=128, HEAD_PAD=128, USE_SOFTCAP=False, USE_WINDOW=False, PRECISION="tf32")
    pre = [T.prefill_config(128, _gpu())] + (B.PREFILL_SWEEP[1:] if args.sweep else [])
    dec = [T.decode_config(64, 8, 128, _gpu(), num_sms=132)] + (B.DECODE_SWEEP[1:] if args.sweep else [])
    jobs = []
    for c in pre:
        jobs.append((f"prefill d128 {_short(c)}", T._prefill_kernel,
                     dict(common, GROUP=4, BLOCK_M=c["block_m"], BLOCK_N=c["block_n"], SKIP_DECODE=True), c))
    for c in dec:
        if "splits_factor" in c:
            continue
        jobs.append((f"decode d128 {_short(c)}", T._decode_kernel,
                     dict(common, GROUP=4, GROUP_PAD=16, BLOCK_N=c["block_n"], NUM_SPLITS=4), c))
    for d in (64, 80, 256):
        hp = triton.next_power_of_2(d)
        c = T.prefill_config(hp, _gpu())
        jobs.append((f"prefill d{d} {_short(c)}", T._prefill_kernel,
                     dict(common, HEAD=d, HEAD_PAD=hp, GROUP=4, BLOCK_M=c["block_m"], BLOCK_N=c["block_n"],
                          SKIP_DECODE=True), c))
    jobs.append(("prefill d128 window+softcap", T._prefill_kernel,
                 dict(common, USE_WINDOW=True, USE_SOFTCAP=True, GROUP=4, BLOCK_M=128, BLOCK_N=64,
                      SKIP_DECODE=True), pre[0]))
    jobs.append(("combine d128 4 splits", T._combine_kernel,
                 dict(HEAD=128, HEAD_PAD=128, NUM_SPLITS=4, SPLITS_PAD=4), dict(num_warps=4)))
    jobs.append(("reshape_and_cache d128", T._reshape_and_cache_kernel, dict(PAGE=16, HEAD=128, HEAD_PAD=128),
                 dict(num_warps=4)))
    rows = []
    print(f"triton {triton.__version__}, target sm_{args.arch}, bf16")
    for name, fn, consts, cfg in jobs:
        opts = {k: v for k, v in cfg.items() if k in ("num_warps", "num_stages")}
        try:
            row = dict(kernel=name, **compile_one(fn, consts, opts, args.arch))
        except Exception as e:  # noqa: BLE001 - report and go on
            row = dict(kernel=name, error=f"{type(e).__name__}: {str(e)[:300]}")
        rows.append(row)
        print(" | ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return rows


class _gpu:  # a device stand-in so the configs pick their GPU branch
    type = "cuda"


def _short(c: dict) -> str:
    keys = ("block_m", "block_n", "num_warps", "num_stages")
    return "/".join(str(c[k]) for k in keys if k in c)


if __name__ == "__main__":
    main()
