"""Writes a small random Parallax checkpoint: config, safetensors, tokenizer, chat template.

The same arguments always give the same bytes (seeded weights, a tokenizer trained on a fixed
corpus), so tests, the demo and the benchmark share one cached copy:

    from vllm_ref_model.checkpoint import cached_checkpoint, write_checkpoint
    path = cached_checkpoint()                 # under $VLLM_REF_CACHE/models, made once
    write_checkpoint("/tmp/parallax", seed=1)  # anywhere, uncached

Needs torch, safetensors and tokenizers, not vLLM.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .config import MODEL_TYPE
from .layout import tensor_shapes

ARCHITECTURE = "ParallaxForCausalLM"
WRITER_VERSION = "1"

CORPUS = [
    "Parallax runs attention and the feed-forward block side by side on the same input.",
    "Queries and keys are normalised per head before the rotary embedding is applied.",
    "The quick brown fox jumps over the lazy dog. Hello, how are you today?",
    "vLLM serves large language models quickly with a paged key-value cache.",
    "A plugin registers a new architecture so that vLLM can load and serve it.",
    "The capital of France is Paris. The sky is blue. Two plus two is four.",
    "def greet(name):\n    return 'hello ' + name\n",
    "one two three four five six seven eight nine ten",
]
SPECIAL_TOKENS = ["<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
# The chat template ships in tokenizer_config.json; vLLM's chat endpoint uses it as is.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
BOS, EOS, PAD = 0, 1, 2


def write_tokenizer(out: Path, vocab_size: int) -> int:
    """A byte-level BPE tokenizer trained on CORPUS; returns its real vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    tok.save(str(out / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 2048,
        "add_bos_token": False, "chat_template": CHAT_TEMPLATE, **special,
    }, indent=2))
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    return tok.get_vocab_size()


def write_checkpoint(
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
    tokenizer_dir: str | Path | None = None,
) -> Path:
    """Write a random Parallax checkpoint into out_dir (created if needed) and return it.

    tokenizer_dir: copy that folder's tokenizer files instead of training the built-in one
    (the vocabulary size then comes from config.json's caller: pass vocab_size to match).
    init_std is large on purpose: peaked logits keep greedy decoding stable across tensor
    parallel layouts, so token-for-token comparisons test the code, not float noise.
    """
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is None:
        vocab = write_tokenizer(out, vocab_size)
    else:
        for f in Path(tokenizer_dir).iterdir():
            if f.name.startswith(("tokenizer", "special_tokens")):
                shutil.copy(f, out / f.name)
        vocab = vocab_size
    config = {
        "architectures": [ARCHITECTURE],
        "model_type": MODEL_TYPE,
        "vocab_size": vocab,
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "head_dim": head_dim or hidden_size // num_heads,
        "hidden_act": "silu",
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": tie_word_embeddings,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
        "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD}, indent=2))

    g = torch.Generator().manual_seed(seed)
    tensors: dict[str, Any] = {}
    for name, shape in tensor_shapes(config).items():
        if len(shape) == 1:
            # Norm weights near 1 but not 1: a loader that swaps or drops a norm shows up.
            t = 1.0 + 0.1 * torch.randn(*shape, generator=g)
        else:
            t = torch.randn(*shape, generator=g) * init_std * 8 / shape[-1] ** 0.5
        tensors[name] = t.contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def cache_root() -> Path:
    """$VLLM_REF_CACHE, else ~/.cache/vllm-ref (the same place the repo's harness uses)."""
    root = os.environ.get("VLLM_REF_CACHE") or os.path.join(Path.home(), ".cache", "vllm-ref")
    return Path(root)


def cached_checkpoint(**kwargs: Any) -> Path:
    """write_checkpoint(**kwargs) into the cache, once per distinct kwargs; returns the folder."""
    key = hashlib.sha256(json.dumps([WRITER_VERSION, kwargs], sort_keys=True, default=str).encode())
    target = cache_root() / "models" / f"parallax-{key.hexdigest()[:12]}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".parallax-", dir=target.parent))
    try:
        write_checkpoint(tmp, **kwargs)
        # Rename is atomic: parallel runs see a whole checkpoint or none.
        os.rename(tmp, target)
    except OSError:
        if not (target / "config.json").exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


if __name__ == "__main__":
    import sys

    print(write_checkpoint(sys.argv[1]) if len(sys.argv) > 1 else cached_checkpoint())
