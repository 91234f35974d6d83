"""Generation throughput: Parallax (this plugin) vs vLLM's in-tree Llama of the same size.

Not a test. Both engines run in this one process, side by side, with the same shapes (hidden,
heads, KV heads, head size, MLP width, layers, vocabulary), dummy weights, the same prompts
and the same number of generated tokens (ignore_eos), compiled as vLLM does by default
(--eager for enforce_eager). Timed rounds alternate A B B A ... so
drift on a shared machine falls on both. Prints tokens/s of each and the ratio
Parallax / Llama (goal: >= 0.95).

    REF_HARNESS_CACHE=.cache .venv/bin/python plugins/vllm-ref-model/bench/bench_throughput.py --size small
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

SIZES = {
    # The tests' checkpoint: per-step overhead dominates.
    "tiny": dict(hidden_size=128, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=256,
                 vocab_size=512),
    # Big enough that the matmuls, attention and norms show.
    "small": dict(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=2, intermediate_size=1536,
                  vocab_size=8192),
}


def write_configs(out: Path, size: dict) -> dict[str, Path]:
    """config.json for each architecture; weights are vLLM's dummy ones, tokens go in as ids."""
    common = {
        "vocab_size": size["vocab_size"], "hidden_size": size["hidden_size"],
        "intermediate_size": size["intermediate_size"], "num_hidden_layers": size["num_layers"],
        "num_attention_heads": size["num_heads"], "num_key_value_heads": size["num_kv_heads"],
        "head_dim": size["hidden_size"] // size["num_heads"], "hidden_act": "silu",
        "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "float32",
    }
    paths = {}
    for name, arch, model_type in (("parallax", "ParallaxForCausalLM", "parallax"),
                                   ("llama", "LlamaForCausalLM", "llama")):
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        config = {"architectures": [arch], "model_type": model_type, **common}
        (d / "config.json").write_text(json.dumps(config))
        paths[name] = d
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--batch", type=int, default=8, help="concurrent requests per round")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=6, help="timed rounds per engine")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--eager", action="store_true",
                    help="enforce_eager (default: vLLM's own default, torch.compile)")
    args = ap.parse_args()

    # Only this plugin: other general plugins (schedulers, loggers) would change what is timed.
    os.environ.setdefault("VLLM_PLUGINS", "ref_model")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM, SamplingParams

    size = SIZES[args.size]
    paths = write_configs(Path(tempfile.mkdtemp(prefix="parallax-bench-")), size)
    engines = {
        name: LLM(model=str(p), load_format="dummy", skip_tokenizer_init=True, dtype=args.dtype,
                  enforce_eager=args.eager, max_model_len=512, seed=0)
        for name, p in paths.items()
    }
    prompts = [{"prompt_token_ids": [(7 * i + j) % size["vocab_size"] for j in range(args.prompt_len)]}
               for i in range(args.batch)]
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0, ignore_eos=True)

    def timed(name: str) -> float:
        t0 = time.perf_counter()
        outs = engines[name].generate(prompts, params, use_tqdm=False)
        dt = time.perf_counter() - t0
        return sum(len(o.outputs[0].token_ids) for o in outs) / dt

    for name in engines:  # warm-up: first-call allocations and caches
        timed(name)
    tps: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(args.rounds):
        order = ["parallax", "llama"] if r % 2 == 0 else ["llama", "parallax"]
        for name in order:
            tps[name].append(timed(name))

    med = {name: statistics.median(v) for name, v in tps.items()}
    pairs = [a / b for a, b in zip(tps["parallax"], tps["llama"], strict=True)]
    print(f"size={args.size} {size} batch={args.batch} prompt_len={args.prompt_len} "
          f"max_tokens={args.max_tokens} rounds={args.rounds} dtype={args.dtype} "
          f"{'eager' if args.eager else 'compiled'} cpus={os.cpu_count()}")
    for name in engines:
        print(f"  {name:9s} median {med[name]:8.1f} tok/s   rounds {[round(x, 1) for x in tps[name]]}")
    print(f"  ratio parallax/llama: {med['parallax'] / med['llama']:.3f} (median of round pairs "
          f"{statistics.median(pairs):.3f}; goal >= 0.95)")
    for llm in engines.values():
        llm.llm_engine.engine_core.shutdown()


if __name__ == "__main__":
    main()
