"""Deterministic, offline tiny checkpoints in Hugging Face layout.

Every test, the demo and the examples use these instead of a hub model. The same arguments
always give the same bytes (seeded weights, a tokenizer trained on a fixed corpus), and a
checkpoint is written once into a cache folder keyed by those arguments.

Shapes are chosen for vLLM's CPU attention: head size 64, which it supports (16 does not).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

GENERATOR_VERSION = "1"

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


def cache_root() -> Path:
    """Where checkpoints are cached: $VLLM_REF_CACHE, else ~/.cache/vllm-ref."""
    root = os.environ.get("VLLM_REF_CACHE") or os.path.join(Path.home(), ".cache", "vllm-ref")
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


def _cached(name: str, params: dict[str, Any], build) -> Path:
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
) -> Path:
    """A tiny LlamaForCausalLM checkpoint (config, safetensors, tokenizer, chat template).

    init_std is large on purpose: peaked logits make greedy decoding stable across
    tensor-parallel layouts, so token-for-token comparisons test the code, not float noise.
    """
    params = dict(
        hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
        num_kv_heads=num_kv_heads, intermediate_size=intermediate_size,
        vocab_size=vocab_size, seed=seed, init_std=init_std,
    )

    def build(out: Path) -> None:
        import torch
        from safetensors.torch import save_file

        vocab = write_tokenizer(out, vocab_size)
        head_dim = hidden_size // num_heads
        config = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": hidden_size,
            "intermediate_size": intermediate_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": num_heads,
            "num_key_value_heads": num_kv_heads,
            "head_dim": head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "vocab_size": vocab,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 2,
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
        }
        (out / "config.json").write_text(json.dumps(config, indent=2))
        (out / "generation_config.json").write_text(
            json.dumps({"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2}, indent=2)
        )
        g = torch.Generator().manual_seed(seed)

        def rnd(*shape: int, std: float = init_std) -> torch.Tensor:
            return (torch.randn(*shape, generator=g) * std / (shape[-1] ** 0.5) * 8).contiguous()

        t: dict[str, torch.Tensor] = {"model.embed_tokens.weight": rnd(vocab, hidden_size)}
        for i in range(num_layers):
            p = f"model.layers.{i}."
            t[p + "input_layernorm.weight"] = torch.ones(hidden_size)
            t[p + "post_attention_layernorm.weight"] = torch.ones(hidden_size)
            t[p + "self_attn.q_proj.weight"] = rnd(num_heads * head_dim, hidden_size)
            t[p + "self_attn.k_proj.weight"] = rnd(num_kv_heads * head_dim, hidden_size)
            t[p + "self_attn.v_proj.weight"] = rnd(num_kv_heads * head_dim, hidden_size)
            t[p + "self_attn.o_proj.weight"] = rnd(hidden_size, num_heads * head_dim)
            t[p + "mlp.gate_proj.weight"] = rnd(intermediate_size, hidden_size)
            t[p + "mlp.up_proj.weight"] = rnd(intermediate_size, hidden_size)
            t[p + "mlp.down_proj.weight"] = rnd(hidden_size, intermediate_size)
        t["model.norm.weight"] = torch.ones(hidden_size)
        t["lm_head.weight"] = rnd(vocab, hidden_size)
        save_file(t, str(out / "model.safetensors"), metadata={"format": "pt"})

    return _cached("tiny-llama", params, build)


if __name__ == "__main__":
    print(tiny_llama())
