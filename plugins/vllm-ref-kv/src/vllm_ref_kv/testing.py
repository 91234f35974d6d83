"""Test tooling for vllm-ref-kv, imported by name by this package's tests, benchmark and the demo.
Needs the `test` extra (`pip install vllm-ref-kv[test]`); nothing at runtime imports it.

- `engine_args`, `prompt`: the engine settings and deterministic token-id prompts of the tests.
- `generate`: the offline front end's driver (the harness's `call=`): every prompt of the JSON
  file named by REF_KV_TEST_PROMPTS, greedy with logprobs, one at a time (so each request's
  lookup sees what the previous one saved), with vLLM's own count of cached prompt tokens;
  with "reset_prefix_cache" vLLM's own prefix cache is emptied before each, so a repeated
  prompt is served by the connector within one boot.
- `flip_byte`, `block_files`: fault injection on a store folder between boots.
"""

from __future__ import annotations

import json
import os
import random
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
    """float32 (exact comparisons), block size 32 (the CPU attention's smallest; many blocks per prompt), prompts up to 1024."""
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
    results = []
    for p in spec["prompts"]:
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
