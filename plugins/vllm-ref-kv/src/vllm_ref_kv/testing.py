"""Test tooling for vllm-ref-kv, imported by name by this package's tests, benchmark and the demo.
Needs the `test` extra (`pip install vllm-ref-kv[test]`); nothing at runtime imports it.

- `engine_args`, `prompt`: the engine settings and deterministic token-id prompts of the tests.
- `generate`: the offline front end's driver (the harness's `call=`): every prompt of the JSON
  file named by REF_KV_TEST_PROMPTS, greedy with logprobs, one at a time (so each request's
  lookup sees what the previous one saved), with vLLM's own count of cached prompt tokens;
  with "reset_prefix_cache" vLLM's own prefix cache is emptied before each, so a repeated
  prompt is served by the connector within one boot; with "barrier" several engines wait for
  each other before their first prompt (they then write the same blocks at the same time); a
  prompt with "remove_folder" first deletes the store's folder (a fault while serving).
- `flip_byte`, `block_files`: fault injection on a store folder between boots.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from . import CONNECTOR
from .store import SUFFIX

PROMPTS_ENV = "REF_KV_TEST_PROMPTS"
BLOCK_SIZE = 32


def kv_transfer_config(folder: str | Path, max_bytes: int | str = "1G", role: str = "kv_both") -> dict[str, Any]:
    return {"kv_connector": CONNECTOR, "kv_role": role,
            "kv_connector_extra_config": {"folder": str(folder), "max_bytes": max_bytes}}


def engine_args(folder: str | Path | None, **extra: Any) -> dict[str, Any]:
    """float32 (exact comparisons), block size 32 (the CPU attention's smallest: many blocks per
    prompt), prompts up to 1024 tokens; `folder` None: no connector."""
    args: dict[str, Any] = {"dtype": "float32", "block_size": BLOCK_SIZE, "max_model_len": 1024,
                            "enable_prefix_caching": True}
    if folder is not None:
        args["kv_transfer_config"] = kv_transfer_config(folder)
    args.update(extra)
    return args


def prompt(n: int, seed: int, vocab: int = 500) -> list[int]:
    """n deterministic token ids of the tiny Llama's vocabulary (no tokenizer round trip)."""
    rng = random.Random(seed)
    return [rng.randrange(10, vocab) for _ in range(n)]


def generate(llm: Any) -> dict[str, Any]:
    """{"namespace": the engine's key namespace (so a test can name block files), "results":
    per prompt {"token_ids", "logprobs" (of the chosen tokens), "cached" (vLLM's
    num_cached_tokens)}}. A prompt is {"ids": [...], "salt": optional cache_salt}."""
    from vllm import SamplingParams

    from .connector import namespace

    with open(os.environ[PROMPTS_ENV]) as f:
        spec = json.load(f)
    params = SamplingParams(temperature=0.0, max_tokens=spec.get("max_tokens", 8), logprobs=1)
    if spec.get("barrier"):
        barrier(spec["barrier"]["dir"], spec["barrier"]["parties"])
    results = []
    for p in spec["prompts"]:
        if p.get("remove_folder"):  # from this process, while the engine core and worker serve
            shutil.rmtree(llm.llm_engine.vllm_config.kv_transfer_config.kv_connector_extra_config["folder"])
        if spec.get("reset_prefix_cache"):  # so the next lookup goes past vLLM's own cache to the store
            llm.reset_prefix_cache()
        request: dict[str, Any] = {"prompt_token_ids": p["ids"]}
        if p.get("salt"):
            request["cache_salt"] = p["salt"]
        [out] = llm.generate([request], params, use_tqdm=False)
        c = out.outputs[0]
        results.append({"token_ids": list(c.token_ids), "cached": out.num_cached_tokens,
                        "logprobs": [step[t].logprob for step, t in zip(c.logprobs, c.token_ids, strict=True)]})
    return {"namespace": namespace(llm.llm_engine.vllm_config), "results": results}


def barrier(folder: str, parties: int, timeout: float = 600) -> None:
    """Wait until `parties` processes have called this on `folder` (a file each), so that engines
    booted side by side start their requests together, whatever their start-up times."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{os.getpid()}.ready").touch()
    deadline = time.monotonic() + timeout
    while len(list(Path(folder).glob("*.ready"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"ref_kv testing: barrier {folder}: {parties} parties never arrived")
        time.sleep(0.005)


def write_prompts(path: Path, prompts: list[dict[str, Any]], **options: Any) -> dict[str, str]:
    """The spec file for `generate`; returns the environment entry naming it."""
    path.write_text(json.dumps({"prompts": prompts, **options}))
    return {PROMPTS_ENV: str(path)}


def block_files(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).rglob(f"*{SUFFIX}"))


def flip_byte(path: Path, offset_from_end: int = 7) -> None:
    """Flip one bit of a payload byte (the header stays valid: only the checksum can tell)."""
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x10
    path.write_bytes(bytes(data))


# --- the benchmark's model and driver -----------------------------------------------------------

def bench_llama(hidden: int = 256, layers: int = 4, heads: int = 4, kv_heads: int = 2, inter: int = 704,
                max_len: int = 8448) -> Path:
    """A Llama of the harness's tiny family, with room for 8k-token prompts (the tiny one stops at
    2048), deterministic and cached: small enough for two cores, large enough that an 8k prefill
    takes seconds (attention grows with the square of the prompt)."""
    from vllm_ref_harness import tiny_llama

    return tiny_llama(hidden_size=hidden, num_layers=layers, num_heads=heads, num_kv_heads=kv_heads,
                      intermediate_size=inter, max_len=max_len)


def timings(llm: Any) -> dict[str, Any]:
    """The benchmark's driver (`call=`), from the JSON spec named by REF_KV_TEST_PROMPTS:
    {"lengths": [...], "rounds": n, "sides": [...], "prime": bool, "throughput": {...} | None}.

    - prime: each prompt once first (the store saves it);
    - per round, per length, the sides in alternating order, vLLM's prefix cache emptied before
      each: "hit" = the prompt itself (served by the connector where it stored it), "recompute"
      = the same tokens with a fresh cache_salt (a miss everywhere); each is one request of
      max_tokens=1, so its time is the time to first token;
    - throughput: `batches` times (default 1), n fresh prompts of `len` tokens in one batch,
      `max_tokens` each: tokens/s per batch (a list), after `warmup` batches not counted.
    """
    import uuid

    from vllm import SamplingParams

    with open(os.environ[PROMPTS_ENV]) as f:
        spec = json.load(f)
    one = SamplingParams(temperature=0.0, max_tokens=1)
    prompts = {n: prompt(n, n) for n in spec["lengths"]}

    def ttft(ids: list[int], salt: str | None) -> float:
        llm.reset_prefix_cache()
        request: dict[str, Any] = {"prompt_token_ids": ids}
        if salt:
            request["cache_salt"] = salt
        t0 = time.perf_counter()
        llm.generate([request], one, use_tqdm=False)
        return time.perf_counter() - t0

    if spec.get("prime"):
        for ids in prompts.values():
            ttft(ids, None)
    out: dict[str, Any] = {side: {str(n): [] for n in prompts} for side in spec["sides"]}
    for r in range(spec["rounds"]):
        for n, ids in prompts.items():
            for side in (spec["sides"] if r % 2 == 0 else spec["sides"][::-1]):
                out[side][str(n)].append(ttft(ids, None if side == "hit" else uuid.uuid4().hex))
    tp = spec.get("throughput")
    if tp:
        params = SamplingParams(temperature=0.0, max_tokens=tp["max_tokens"], ignore_eos=True)
        out["throughput"] = []
        for b in range(tp.get("warmup", 0) + tp.get("batches", 1)):
            llm.reset_prefix_cache()
            batch = [{"prompt_token_ids": prompt(tp["len"], 1000 + i), "cache_salt": uuid.uuid4().hex}
                     for i in range(tp["n"])]
            t0 = time.perf_counter()
            done = llm.generate(batch, params, use_tqdm=False)
            dt = time.perf_counter() - t0
            if b >= tp.get("warmup", 0):
                out["throughput"].append(sum(len(o.outputs[0].token_ids) + len(o.prompt_token_ids) for o in done) / dt)
    return out
