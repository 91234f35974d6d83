"""The checkpoint layout of Parallax in Hugging Face naming: one source of truth for the
checkpoint writer, the PyTorch reference and vLLM's `load_weights`.

Only plain config values are read (a dict or any object with attributes), so nothing here
imports vLLM or transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import PLUGIN


class CheckpointError(ValueError):
    """A checkpoint that does not match its config: names the tensor and what was expected."""


def _get(config: Any, name: str, default: Any = None) -> Any:
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def dims(config: Any) -> dict[str, int]:
    """The sizes every implementation needs, with the config's defaults filled in."""
    hidden = int(_get(config, "hidden_size"))
    heads = int(_get(config, "num_attention_heads"))
    return {
        "hidden": hidden,
        "heads": heads,
        "kv_heads": int(_get(config, "num_key_value_heads") or heads),
        "head_dim": int(_get(config, "head_dim") or hidden // heads),
        "inter": int(_get(config, "intermediate_size")),
        "layers": int(_get(config, "num_hidden_layers")),
        "vocab": int(_get(config, "vocab_size")),
    }


def tensor_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """Every tensor a Parallax checkpoint holds, by Hugging Face name, with its full shape."""
    d = dims(config)
    h, hd = d["hidden"], d["head_dim"]
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (d["vocab"], h)}
    for i in range(d["layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (h,)
        shapes[p + "self_attn.q_proj.weight"] = (d["heads"] * hd, h)
        shapes[p + "self_attn.k_proj.weight"] = (d["kv_heads"] * hd, h)
        shapes[p + "self_attn.v_proj.weight"] = (d["kv_heads"] * hd, h)
        shapes[p + "self_attn.q_norm.weight"] = (hd,)
        shapes[p + "self_attn.k_norm.weight"] = (hd,)
        shapes[p + "self_attn.o_proj.weight"] = (h, d["heads"] * hd)
        shapes[p + "mlp.gate_proj.weight"] = (d["inter"], h)
        shapes[p + "mlp.up_proj.weight"] = (d["inter"], h)
        shapes[p + "mlp.down_proj.weight"] = (h, d["inter"])
    shapes["model.norm.weight"] = (h,)
    if not _get(config, "tie_word_embeddings", False):
        shapes["lm_head.weight"] = (d["vocab"], h)
    return shapes


class CheckpointValidator:
    """Checks tensors one by one as a loader streams them, then reports what never came.

    A tied model may still carry `lm_head.weight` (some exporters write it): it is skipped,
    not an error.
    """

    def __init__(self, config: Any):
        self.expected = tensor_shapes(config)
        self.tied = bool(_get(config, "tie_word_embeddings", False))
        self.seen: set[str] = set()

    def accept(self, name: str, shape: tuple[int, ...]) -> bool:
        """True if the tensor should be loaded, False if it is to be skipped; raises if bad."""
        if name == "lm_head.weight" and self.tied:
            return False
        if name not in self.expected:
            raise CheckpointError(
                f"{PLUGIN}: unexpected tensor {name!r} in the checkpoint (shape {list(shape)}); a "
                f"Parallax checkpoint holds only: model.embed_tokens, model.layers.N.{{input_layernorm, "
                f"self_attn.{{q,k,v,o}}_proj, self_attn.{{q,k}}_norm, mlp.{{gate,up,down}}_proj}}, "
                f"model.norm, lm_head")
        want = self.expected[name]
        if tuple(shape) != want:
            raise CheckpointError(
                f"{PLUGIN}: tensor {name!r} has shape {list(shape)}, but config.json implies "
                f"{list(want)}")
        self.seen.add(name)
        return True

    def finish(self) -> None:
        missing = sorted(set(self.expected) - self.seen)
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise CheckpointError(
                f"{PLUGIN}: the checkpoint is missing tensor(s) {missing[:5]}{more}")
