"""Test tooling for vllm-ref-model: tiny Parallax checkpoints, for this package's tests, the
demo and anyone trying the plugin. Needs the `test` extra (`pip install vllm-ref-model[test]`:
the harness trains the tokenizer and writes seeded weights); nothing at runtime imports it.

    python -m vllm_ref_model.testing [OUT_DIR]   # prints the folder of a tiny checkpoint

The tensor layout comes from this package (layout.py), so the writer, `load_weights` and the
PyTorch reference cannot disagree about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vllm_ref_harness import cached_checkpoint, write_tokenizer, write_weights

from . import ARCHITECTURE, MODEL_TYPE
from .layout import tensor_shapes


def write_parallax(
    out_dir: str | Path,
    *,
    seed: int = 0,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    head_dim: int | None = None,
    intermediate_size: int = 256,
    vocab_size: int = 512,
    tie_word_embeddings: bool = False,
    init_std: float = 0.5,
) -> Path:
    """A random Parallax checkpoint (config, safetensors, tokenizer) in out_dir, uncached."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": [ARCHITECTURE], "model_type": MODEL_TYPE, "vocab_size": write_tokenizer(out, vocab_size),
        "hidden_size": hidden_size, "intermediate_size": intermediate_size, "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads, "num_key_value_heads": num_kv_heads,
        "head_dim": head_dim or hidden_size // num_heads, "tie_word_embeddings": tie_word_embeddings,
    }
    # Norms near 1 but not 1: a loader that swaps or drops one shows up.
    write_weights(out, config, tensor_shapes(config), seed=seed, init_std=init_std, norm_jitter=0.1)
    return out


def tiny_parallax(**kwargs: Any) -> Path:
    """write_parallax(**kwargs) into the harness's cache, once per distinct kwargs; the folder."""
    return cached_checkpoint("parallax", kwargs, lambda out: write_parallax(out, **kwargs))


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 2:
        sys.exit(f"usage: python -m vllm_ref_model.testing [OUT_DIR]; got {sys.argv[1:]}")
    print(write_parallax(sys.argv[1]) if len(sys.argv) == 2 else tiny_parallax())
