"""Deterministic, offline tiny checkpoints in Hugging Face layout: the one place that makes them.

Every test, the demo, the benchmarks and the examples' tests use these instead of a hub model:
a Llama (`tiny_llama`) and a pooling Llama (`tiny_llama_embed`). A plugin with an architecture
of its own writes its checkpoints with the generic pieces (`write_tokenizer`, `write_weights`,
`cached_checkpoint`), from its own `testing` module (the model plugin's Parallax:
`vllm_ref_model.testing`). The same arguments always give the same bytes (seeded weights, a
tokenizer trained on a fixed corpus), and a checkpoint is written once into a cache folder keyed
by those arguments. This is test and demo tooling: no plugin's runtime wheel ships a tokenizer
trainer.

Shapes are chosen for vLLM's CPU attention: head size 64, which it supports (16 does not).

    python -m vllm_ref_harness.tinymodel [llama|llama-embed]   # prints the folder
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

GENERATOR_VERSION = "2"

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "vLLM is a fast and easy-to-use library for LLM inference and serving.",
    "Plugins extend vLLM with new models, schedulers, loggers, logits processors and platforms.",
    "Once upon a time there was a small model that answered every question with numbers.",
    "Hello, my name is Ada. The capital of France is Paris. The future of AI is open.",
    "def add(a, b):\n    return a + b\n",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "A paged KV cache stores keys and values in fixed-size blocks addressed by a block table.",
    "Tensor parallelism splits each layer across devices; pipeline parallelism splits layers.",
    "Prometheus scrapes metrics; Grafana draws them. Temperature makes sampling hotter or colder.",
]
SPECIAL_TOKENS = ["<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


BOS, EOS, PAD = 0, 1, 2


def cache_root() -> Path:
    """Where checkpoints are cached: $REF_HARNESS_CACHE, else ~/.cache/vllm-ref (absolute)."""
    root = os.environ.get("REF_HARNESS_CACHE") or os.path.join(Path.home(), ".cache", "vllm-ref")
    return Path(root).absolute()  # engines and servers may run from another directory


def write_tokenizer(out: Path, vocab_size: int = 512, max_len: int = 2048) -> int:
    """Train a byte-level BPE tokenizer on CORPUS and write it with a chat template.

    Returns the real vocabulary size (the trainer may stop below vocab_size on a small corpus).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    tok.save(str(out / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "model_max_length": max_len,
        "add_bos_token": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}, indent=2)
    )
    return tok.get_vocab_size()


def cached_checkpoint(name: str, params: dict[str, Any], build: Callable[[Path], object]) -> Path:
    """The folder of checkpoint `name` for `params` under the cache, made by build(folder) the
    first time (in a temporary folder renamed into place, so parallel runs never see half of one)."""
    key = hashlib.sha256(
        json.dumps([GENERATOR_VERSION, name, params], sort_keys=True).encode()
    ).hexdigest()[:12]
    target = cache_root() / "models" / f"{name}-{key}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        build(tmp)
        # Rename is atomic: parallel test runs either see a whole checkpoint or none.
        os.rename(tmp, target)
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_weights(out: Path, config: dict[str, Any], shapes: dict[str, tuple[int, ...]], *, seed: int,
                  init_std: float, norm_jitter: float = 0.0) -> None:
    """config.json (`config` over Llama-like defaults), generation_config.json and seeded weights
    for `shapes` into `out`: 1-D tensors are norm weights (1, or near 1 with `norm_jitter`), the
    others drawn with standard deviation about init_std * 8 / sqrt(fan-in)."""
    import torch
    from safetensors.torch import save_file

    config = {"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD, "torch_dtype": "float32",
              "hidden_act": "silu", "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, **config}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD}, indent=2))
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            # Norms near 1 but not 1 (norm_jitter): a loader that swaps or drops one shows up.
            t = 1.0 + norm_jitter * torch.randn(*shape, generator=g) if norm_jitter else torch.ones(*shape)
        else:
            t = torch.randn(*shape, generator=g) * init_std / (shape[-1] ** 0.5) * 8
        tensors[name] = t.contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})


def _llama_body_shapes(vocab: int, h: int, num_layers: int, num_heads: int, num_kv_heads: int,
                       inter: int) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a LlamaModel (embeddings, layers, final norm), in the order the seeded
    weights are drawn: tiny_llama adds its LM head after them, tiny_llama_embed nothing."""
    hd = h // num_heads
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, h)}
    for i in range(num_layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (num_heads * hd, h),
            p + "self_attn.k_proj.weight": (num_kv_heads * hd, h),
            p + "self_attn.v_proj.weight": (num_kv_heads * hd, h),
            p + "self_attn.o_proj.weight": (h, num_heads * hd),
            p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
            p + "mlp.down_proj.weight": (h, inter),
        })
    shapes["model.norm.weight"] = (h,)
    return shapes


def tiny_llama(
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    intermediate_size: int = 256,
    vocab_size: int = 512,
    seed: int = 0,
    init_std: float = 0.5,
    max_len: int = 2048,
) -> Path:
    """A tiny LlamaForCausalLM checkpoint (config, safetensors, tokenizer, chat template), cached.

    init_std is large on purpose: peaked logits make greedy decoding stable across
    tensor-parallel layouts, so token-for-token comparisons test the code, not float noise.
    max_len: the context (2048, Llama's default; longer for prefill-bound benchmarks).
    """
    params: dict[str, Any] = dict(
        hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
        num_kv_heads=num_kv_heads, intermediate_size=intermediate_size,
        vocab_size=vocab_size, seed=seed, init_std=init_std,
    )
    if max_len != 2048:  # the default's checkpoints keep the cache key they always had
        params["max_len"] = max_len

    def build(out: Path) -> None:
        vocab = write_tokenizer(out, vocab_size, max_len)
        hd, h, inter = hidden_size // num_heads, hidden_size, intermediate_size
        shapes = _llama_body_shapes(vocab, h, num_layers, num_heads, num_kv_heads, inter)
        shapes["lm_head.weight"] = (vocab, h)
        config = {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
            "intermediate_size": inter, "num_hidden_layers": num_layers, "num_attention_heads": num_heads,
            "num_key_value_heads": num_kv_heads, "head_dim": hd, "vocab_size": vocab,
            "tie_word_embeddings": False, "max_position_embeddings": max_len,
        }
        write_weights(out, config, shapes, seed=seed, init_std=init_std, norm_jitter=0.0)

    return cached_checkpoint("tiny-llama", params, build)


def tiny_llama_embed(
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    intermediate_size: int = 256,
    vocab_size: int = 512,
    max_len: int = 512,
    seed: int = 0,
    init_std: float = 0.5,
) -> Path:
    """A tiny pooling checkpoint: a `LlamaModel` (no LM head), which vLLM serves as an
    embedding model without flags (last-token pooling, normalised), cached.

    The same tokenizer as `tiny_llama`, but a context of max_len (512, like BERT-sized
    embedders) so that "a document longer than the context" is a few sentences. Tensors are
    named as in a LlamaForCausalLM checkpoint (`model.` prefix, which vLLM's loader needs) but
    without an LM head; `LlamaModel.from_pretrained` reads them as they are and is the plain
    reference the IO-processor tests compare vLLM with.
    """
    params = dict(
        hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
        num_kv_heads=num_kv_heads, intermediate_size=intermediate_size,
        vocab_size=vocab_size, max_len=max_len, seed=seed, init_std=init_std,
    )

    def build(out: Path) -> None:
        vocab = write_tokenizer(out, vocab_size, max_len=max_len)
        hd, h, inter = hidden_size // num_heads, hidden_size, intermediate_size
        shapes = _llama_body_shapes(vocab, h, num_layers, num_heads, num_kv_heads, inter)
        config = {
            "architectures": ["LlamaModel"], "model_type": "llama", "hidden_size": h,
            "intermediate_size": inter, "num_hidden_layers": num_layers, "num_attention_heads": num_heads,
            "num_key_value_heads": num_kv_heads, "head_dim": hd, "vocab_size": vocab,
            "max_position_embeddings": max_len, "tie_word_embeddings": False,
        }
        write_weights(out, config, shapes, seed=seed, init_std=init_std, norm_jitter=0.0)

    return cached_checkpoint("tiny-llama-embed", params, build)


if __name__ == "__main__":
    import sys

    kind, *rest = sys.argv[1:] or ["llama"]
    if kind not in ("llama", "llama-embed") or rest:
        sys.exit(f"usage: python -m vllm_ref_harness.tinymodel [llama|llama-embed]; got {sys.argv[1:]}")
    makers: dict[str, Callable[[], Path]] = {"llama": tiny_llama, "llama-embed": tiny_llama_embed}
    print(makers[kind]())
