"""A plain transformers/PyTorch reference of the plugin: the same windows and aggregation,
written again from the contract (not imported from the plugin), on `LlamaModel`.

The tiny pooling model is a LlamaModel that vLLM serves with last-token pooling and L2
normalisation, so a window's vector is normalize(last_hidden_state[-1]).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any


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
    if how == "none":
        doc = None
    else:
        if how == "first":
            doc = vecs[0]
        elif how == "max":
            doc = vecs.max(dim=0).values
        else:
            weights = torch.tensor([float(w["tokens"]) for w in windows])
            doc = (vecs * weights[:, None]).sum(0) / weights.sum()
        doc = torch.nn.functional.normalize(doc, dim=0).tolist()
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
