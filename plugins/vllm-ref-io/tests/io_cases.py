"""Shared by the engine tests and the benchmark: engine settings and deterministic documents."""

from __future__ import annotations

import random
from pathlib import Path

from vllm_ref_harness.tinymodel import CORPUS

HERE = Path(__file__).resolve().parent

# The tiny pooling model in float32 on both sides, so vLLM and the reference agree to ~1e-6
# (vLLM's CPU default for it would be float16).
ENGINE = {"runner": "pooling", "dtype": "float32", "io_processor_plugin": "ref_io"}
SERVE_ARGS = ["--runner", "pooling", "--dtype", "float32", "--io-processor-plugin", "ref_io"]
EXTRA = "Grüße aus Köln — 你好 — naïve café."  # multi-byte characters: spans are characters, not bytes


def document(sentences: int, seed: int) -> str:
    """A deterministic document of `sentences` sentences drawn from the tokenizer's corpus."""
    rng = random.Random(seed)
    return " ".join(rng.choice([*CORPUS, EXTRA]).strip() for _ in range(sentences))
