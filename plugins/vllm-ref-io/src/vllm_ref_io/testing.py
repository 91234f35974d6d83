"""Test tooling for vllm-ref-io, imported by name by this package's tests and benchmark. Needs
the `test` extra (`pip install vllm-ref-io[test]`); nothing at runtime imports it.

- Engine settings and deterministic documents (`ENGINE`, `SERVE_ARGS`, `document`).
- `encode`: the offline front end's driver (the harness's `call=`).
- `reference`: a plain transformers/PyTorch reference of the plugin: the same windows and
  aggregation, written again from the contract (not imported from the plugin), on `LlamaModel`.
  The tiny pooling model is a LlamaModel that vLLM serves with last-token pooling and L2
  normalisation, so a window's vector is normalize(last_hidden_state[-1]).
"""

from __future__ import annotations

import json
import os
import random
from functools import cache
from pathlib import Path
from typing import Any

# --- engine settings and documents --------------------------------------------------------------

# The tiny pooling model in float32 on both sides, so vLLM and the reference agree to ~1e-6
# (vLLM's CPU default for it would be float16).
ENGINE = {"runner": "pooling", "dtype": "float32", "io_processor_plugin": "ref_io"}
SERVE_ARGS = ["--runner", "pooling", "--dtype", "float32", "--io-processor-plugin", "ref_io"]
EXTRA = "Grüße aus Köln — 你好 — naïve café."  # multi-byte characters: spans are characters, not bytes


def document(sentences: int, seed: int) -> str:
    """A deterministic document of `sentences` sentences drawn from the tokenizer's corpus."""
    from vllm_ref_harness.tinymodel import CORPUS  # the tokenizer's own sentences

    rng = random.Random(seed)
    return " ".join(rng.choice([*CORPUS, EXTRA]).strip() for _ in range(sentences))


# --- the offline driver -------------------------------------------------------------------------

def encode(llm: Any) -> list[dict[str, Any]]:
    """Run in the offline front end by the harness (`call="vllm_ref_io.testing:encode"`): every
    request of the JSON file named by REF_IO_TEST_REQUESTS through
    `LLM.encode(..., pooling_task="plugin")`, one at a time; a refused one gives {"error": message}."""
    with open(os.environ["REF_IO_TEST_REQUESTS"]) as f:
        requests = json.load(f)
    results = []
    for data in requests:
        try:
            [out] = llm.encode({"data": data}, pooling_task="plugin", use_tqdm=False)
            results.append(out.outputs)
        except ValueError as exc:
            results.append({"error": str(exc)})
    return results


# --- the reference ------------------------------------------------------------------------------

@cache
def _load(model: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoTokenizer, LlamaModel

    return AutoTokenizer.from_pretrained(model), LlamaModel.from_pretrained(model, dtype=torch.float32).eval()


def reference(model: str | Path, data: dict[str, Any], max_model_len: int = 512) -> dict[str, Any]:
    """What the plugin must answer for `data`, computed without vLLM."""
    import torch

    tok, net = _load(str(model))
    text, size = data["text"], data.get("window") or max_model_len
    overlap, how = data.get("overlap") or 0, data.get("aggregate", "mean")
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offs = enc["input_ids"], enc["offset_mapping"]
    windows, start = [], 0
    while True:  # this tokenizer adds no special tokens: a window is `size` document tokens
        chunk = ids[start:start + size]
        with torch.no_grad():
            h = net(torch.tensor([chunk])).last_hidden_state[0, -1]
        windows.append({"start": offs[start][0], "end": offs[start + len(chunk) - 1][1], "tokens": len(chunk),
                        "embedding": torch.nn.functional.normalize(h, dim=0)})
        if start + size >= len(ids):
            break
        start += size - overlap
    vecs = torch.stack([w["embedding"] for w in windows])
    doc: list[float] | None = None
    if how != "none":
        if how == "first":
            vec = vecs[0]
        elif how == "max":
            vec = vecs.max(dim=0).values
        else:
            weights = torch.tensor([float(w["tokens"]) for w in windows])
            vec = (vecs * weights[:, None]).sum(0) / weights.sum()
        doc = torch.nn.functional.normalize(vec, dim=0).tolist()
    return {"embedding": doc, "tokens": len(ids),
            "windows": [{**w, "embedding": w["embedding"].tolist()} for w in windows]}


def assert_close(got: dict[str, Any], want: dict[str, Any], atol: float = 1e-5) -> None:
    """Same token counts and spans exactly; vectors within atol (float32 on both sides)."""
    import torch

    assert got["tokens"] == want["tokens"]
    if want["embedding"] is None:
        assert got["embedding"] is None
    else:
        torch.testing.assert_close(torch.tensor(got["embedding"]), torch.tensor(want["embedding"]),
                                   atol=atol, rtol=0)
    if "windows" in got:
        assert [(w["start"], w["end"], w["tokens"]) for w in got["windows"]] == \
            [(w["start"], w["end"], w["tokens"]) for w in want["windows"]]
        torch.testing.assert_close(torch.tensor([w["embedding"] for w in got["windows"]]),
                                   torch.tensor([w["embedding"] for w in want["windows"]]), atol=atol, rtol=0)
