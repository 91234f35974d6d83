"""The GPU session's checks in one call: correctness in fp16, bf16 (and fp32), then the benchmark.

Correctness compares against the PyTorch reference run in fp64 on upcast inputs, by
||out - ref|| / ||ref|| (device/METHOD.md): fp32 under 1e-5, fp16 under 2e-3, bf16 under 1e-2;
NaN never passes. Inputs are fresh random batches (seed printed), outputs and every cache row no
sequence owns are NaN-poisoned, and each case runs twice and must give bit-identical results
(a moving result is a race). Then `bench_attention.main` runs unless --no-bench.

  PYTHONPATH=.anchors/shim:kernels/src python3 kernels/bench/gpu_check.py --out DIR [--sweep]
  python kernels/bench/gpu_check.py --tiny      # CPU: the same flow on the interpreter, small cases
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import bench_attention  # noqa: E402
from vllm_ref_kernels import reference, triton_ops  # noqa: E402
from vllm_ref_kernels.testing import make_batch, poisoned_like, rel_err  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}

# name: q_lens, seq_lens, (Hq, Hkv), head_size, block_size, window, softcap
GPU_CASES = {
    "decode ragged gqa4": ([1] * 24, [1, 7, 16, 17, 100, 511, 512, 513, 1000, 2047, 4096, 4097] * 2,
                           (32, 8), 128, 16, None, 0.0),
    "decode long few seqs": ([1, 1], [32768, 20001], (32, 8), 128, 16, None, 0.0),
    "prefill ragged": ([1000, 333, 17, 2048], [1000, 333, 17, 2048], (32, 8), 128, 16, None, 0.0),
    "mixed chunked": ([512, 1, 1, 100, 1, 7], [3000, 4097, 1, 100, 777, 64], (32, 8), 128, 16, None, 0.0),
    "mqa gqa8 d64 block32": ([300, 1, 1], [300, 900, 33], (8, 1), 64, 32, None, 0.0),
    "mha d256 block64": ([200, 1], [500, 700], (4, 4), 256, 64, None, 0.0),
    "d80 block128": ([129, 1], [1000, 333], (8, 2), 80, 128, None, 0.0),
    "window+softcap (gemma-like)": ([700, 1, 1], [1500, 4000, 100], (16, 8), 128, 16, 512, 50.0),
    "window small": ([64, 1], [64, 200], (8, 2), 64, 16, 7, 0.0),
}
TINY_CASES = {
    "decode gqa4": ([1, 1, 1], [5, 40, 70], (4, 1), 64, 16, None, 0.0),
    "mixed window softcap": ([9, 1], [30, 50], (4, 2), 64, 16, 12, 3.0),
}
HEAD_SIZES = [32, 64, 80, 96, 112, 128, 160, 192, 224, 256]


def check_case(name, spec, dtype, gen) -> dict:
    q_lens, seq_lens, (hq, hkv), d, bs, window, softcap = spec
    batch = make_batch(q_lens, seq_lens, hq, hkv, d, bs, dtype, DEV, gen)
    scale = d ** -0.5
    up = [t.double() if t.is_floating_point() else t for t in batch.args()]
    ref = reference.paged_attention(*up, scale=scale, sliding_window=window, softcap=softcap)
    outs = []
    for _ in range(2 if DEV == "cuda" else 1):  # the interpreter cannot race: one run is enough there
        out = poisoned_like(batch.q)
        triton_ops.paged_attention(*batch.args(), scale=scale, sliding_window=window, softcap=softcap,
                                   out=out)
        outs.append(out)
    if DEV == "cuda":
        torch.cuda.synchronize()
    err = rel_err(outs[0], ref)
    same = torch.equal(outs[0], outs[-1])
    ok = err < TOL[dtype] and same
    return dict(case=name, dtype=str(dtype).replace("torch.", ""), relerr=err, tol=TOL[dtype],
                repeatable=same, ok=ok)


def check_cache_write(dtype, gen) -> dict:
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
    return dict(case="reshape_and_cache", dtype=str(dtype).replace("torch.", ""), relerr=0.0 if ok else 1.0,
                tol=0.0, repeatable=True, ok=ok)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="small cases, fp32/fp16 (CPU interpreter)")
    p.add_argument("--out", default=None, help="folder for check.json and bench.json")
    p.add_argument("--sweep", action="store_true", help="pass --sweep to the benchmark")
    p.add_argument("--no-bench", action="store_true")
    args = p.parse_args(argv)
    seed = int(os.environ.get("VLLM_REF_KERNELS_SEED", random.randrange(1 << 31)))
    gen = torch.Generator().manual_seed(seed)
    print(f"device={DEV} torch={torch.__version__} seed={seed}", flush=True)
    cases = TINY_CASES if args.tiny else GPU_CASES
    # The interpreter mishandles bf16 dots: fp16 only there (the unit tests cover fp32 too).
    dtypes = [torch.float16] if DEV == "cpu" else [torch.float16, torch.bfloat16]
    rows = []
    t0 = time.time()
    plan = [(f"{name}", spec, dt) for dt in dtypes for name, spec in cases.items()]
    sizes = HEAD_SIZES if not args.tiny else [80]
    plan += [(f"head {d}", ([33, 1], [90, 300], (8, 2), d, 16, None, 0.0), dtypes[-1]) for d in sizes]
    if DEV == "cuda":
        plan.append(("fp32 mixed", cases["mixed chunked"], torch.float32))
    for name, spec, dt in plan:
        try:
            row = check_case(name, spec, dt, gen)
        except Exception as e:  # noqa: BLE001 - record and go on: device time is scarce
            traceback.print_exc()
            row = dict(case=name, dtype=str(dt), relerr=float("nan"), ok=False, error=repr(e)[:300])
        rows.append(row)
        print(bench_attention.fmt(row), flush=True)
    for dt in dtypes:
        rows.append(check_cache_write(dt, gen))
        print(bench_attention.fmt(rows[-1]), flush=True)
    failed = [r for r in rows if not r["ok"]]
    print(f"\n== correctness: {len(rows) - len(failed)}/{len(rows)} passed in {time.time() - t0:.0f}s "
          f"(seed {seed})" + "".join(f"\nFAILED {r['case']} {r['dtype']}: {r}" for r in failed), flush=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        Path(args.out, "check.json").write_text(json.dumps(dict(seed=seed, rows=rows), indent=1))
    if not args.no_bench:
        bench_args = (["--tiny"] if args.tiny else []) + (["--sweep"] if args.sweep else [])
        if args.out:
            bench_args += ["--out", str(Path(args.out, "bench.json"))]
        bench_attention.main(bench_args)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
