"""Write a tiny random ToyLM checkpoint: python -m vllm_example_custom_model.make_checkpoint OUT_DIR

config.json, model.safetensors (Hugging Face names), a byte-level BPE tokenizer trained on a
few sentences, and a chat template. Seeded: the same folder every time.
"""

import json
import sys
from pathlib import Path

CORPUS = ["Hello, how are you? I am a tiny model.", "The capital of France is Paris.",
          "vLLM plugins can add new model architectures.", "one two three four five six seven"]
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def main(out: Path, hidden: int = 128, layers: int = 2, heads: int = 2, kv_heads: int = 1,
         inter: int = 256) -> Path:
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "chat_template": TEMPLATE}))
    vocab, head_dim = tok.get_vocab_size(), 64
    config = {"architectures": ["ToyForCausalLM"], "model_type": "toy_lm", "vocab_size": vocab,
              "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
              "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim,
              "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "float32"}
    (out / "config.json").write_text(json.dumps(config, indent=2))

    g = torch.Generator().manual_seed(0)
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes |= {p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
                   p + "self_attn.q_proj.weight": (heads * head_dim, hidden),
                   p + "self_attn.k_proj.weight": (kv_heads * head_dim, hidden),
                   p + "self_attn.v_proj.weight": (kv_heads * head_dim, hidden),
                   p + "self_attn.o_proj.weight": (hidden, heads * head_dim),
                   p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
                   p + "mlp.down_proj.weight": (hidden, inter)}
    tensors = {n: torch.ones(s) if len(s) == 1 else torch.randn(*s, generator=g) * 2 / s[-1] ** 0.5
               for n, s in shapes.items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "toy-checkpoint")))
