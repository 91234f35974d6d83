"""Tokens/s of the tiny Llama on the simulated accelerator vs the stock CPU platform, side by side.

    .venv/bin/python plugins/vllm-ref-accelerator/bench/bench_throughput.py [--prompts 4] [--tokens 16]

Two real vLLM boots (harness), one per platform, the same greedy requests in each; the timing
is taken inside the front-end process around LLM.generate, after a warm-up request, so start-up
is not counted. Prints a Markdown table and the ratio. Expect the accelerator to be far slower:
its attention runs in Triton's interpreter (NumPy, one program instance at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

PROMPTS = ["Hello, my name is", "The capital of France is", "one two three four", "The weather today"]


def timed_generate(llm) -> dict:
    """Runs in the vLLM front end (harness `call`): a warm-up, then the timed batch."""
    from vllm import SamplingParams

    n, tokens = int(os.environ["BENCH_PROMPTS"]), int(os.environ["BENCH_TOKENS"])
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
    llm.generate(prompts[:1], SamplingParams(max_tokens=2, temperature=0.0), use_tqdm=False)
    params = SamplingParams(max_tokens=tokens, temperature=0.0, ignore_eos=True)
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    return {"tokens": sum(len(o.outputs[0].token_ids) for o in outs), "seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=16)
    args = ap.parse_args()
    from vllm_ref_harness import run_engine, tiny_llama

    env = {"PYTHONPATH": str(Path(__file__).parent), "BENCH_PROMPTS": str(args.prompts),
           "BENCH_TOKENS": str(args.tokens)}
    results = {}
    for name, extra in (("stock CPU platform (CPU_ATTN)", {}),
                        ("ref_accelerator (Triton, interpreted)", {"REF_ACCELERATOR": "1"})):
        run = run_engine(tiny_llama(), engine_args={"dtype": "float32"}, call="throughput:timed_generate",
                         plugins=["ref_accelerator"], env={**env, **extra}, timeout=1200)
        results[name] = run.extra
        print(f"{name}: {json.dumps(run.extra)}", file=sys.stderr)
    print(f"\nMachine: {os.cpu_count()}-core CPU container ({platform.machine()}), tiny Llama "
          f"(hidden 128, 2 layers, head 64), float32, {args.prompts} prompts x {args.tokens} tokens, "
          f"greedy, enforce_eager.\n")
    print("| platform | tokens | seconds | tokens/s |\n|---|---|---|---|")
    rates = {}
    for name, r in results.items():
        rates[name] = r["tokens"] / r["seconds"]
        print(f"| {name} | {r['tokens']} | {r['seconds']:.2f} | {rates[name]:.1f} |")
    stock, accel = rates.values()
    print(f"\nref_accelerator / stock = {accel / stock:.3f} (the accelerator is {stock / accel:.0f}x slower)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("REF_HARNESS_CACHE", str(Path(__file__).resolve().parents[3] / ".cache"))
    sys.exit(main())
