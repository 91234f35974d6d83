"""Test tooling of the parser plugin (imported by name by its tests, benchmark, demo and example test).

- `tiny_parsers_llama()`: the harness's tiny Llama with the format's markers (and, for the
  benchmark's comparison, Hermes's `<tool_call>` / `</tool_call>`) added to its tokenizer as
  special tokens; cached like every harness checkpoint.
- `ScriptedLogitsProcessor` (a vLLM V1 logits processor, `--logits-processors
  vllm_ref_parsers.testing:ScriptedLogitsProcessor`): the tiny model's weights are random, so
  the end-to-end tests make it write a given output. A request's `vllm_xargs`
  `{"ref_parsers_script": "3,17,5"}` forces those token ids one by one: every other logit of
  the row becomes -inf, the forced one keeps the value it had after vLLM's structured-output
  mask. So where the grammar forbids the forced token the row is all -inf and the output
  leaves the script: a grammar applied inside the reasoning shows. After the script the model
  runs free (under the grammar, if the request has one); the text still comes out of the real
  engine, detokenizer and serving layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vllm_ref_harness import cached_checkpoint, write_tokenizer, write_weights

from .format import CALL_END, CALL_START, THINK_END, THINK_START

HERMES_MARKERS = ("<tool_call>", "</tool_call>")
ADDED_TOKENS = (THINK_START, THINK_END, CALL_START, CALL_END, *HERMES_MARKERS)
SCRIPT_KEY = "ref_parsers_script"


def _llama_shapes(vocab: int, h: int, layers: int, heads: int, kv_heads: int, inter: int) -> dict[str, tuple[int, ...]]:
    hd = h // heads
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, h)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (heads * hd, h), p + "self_attn.k_proj.weight": (kv_heads * hd, h),
            p + "self_attn.v_proj.weight": (kv_heads * hd, h), p + "self_attn.o_proj.weight": (h, heads * hd),
            p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
            p + "mlp.down_proj.weight": (h, inter),
        })
    shapes["model.norm.weight"] = (h,)
    shapes["lm_head.weight"] = (vocab, h)
    return shapes


def tiny_parsers_llama(*, seed: int = 0) -> Path:
    """A tiny LlamaForCausalLM whose tokenizer has ADDED_TOKENS as special tokens (cached)."""
    h, layers, heads, kv_heads, inter = 128, 2, 2, 1, 256

    def build(out: Path) -> None:
        from tokenizers import AddedToken, Tokenizer

        write_tokenizer(out)
        tok = Tokenizer.from_file(str(out / "tokenizer.json"))
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ADDED_TOKENS])
        tok.save(str(out / "tokenizer.json"))
        vocab = tok.get_vocab_size()
        config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
                  "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
                  "num_key_value_heads": kv_heads, "head_dim": h // heads, "vocab_size": vocab,
                  "tie_word_embeddings": False}
        write_weights(out, config, _llama_shapes(vocab, h, layers, heads, kv_heads, inter), seed=seed,
                      init_std=0.5)

    return cached_checkpoint("tiny-llama-parsers", {"seed": seed, "tokens": list(ADDED_TOKENS)}, build)


def script_arg(token_ids: list[int]) -> dict[str, str]:
    """The request's vllm_xargs that make ScriptedLogitsProcessor force `token_ids`."""
    return {SCRIPT_KEY: ",".join(map(str, token_ids))}


def _scripted_class() -> type:
    import torch
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

    class ScriptedLogitsProcessor(AdapterLogitsProcessor):
        """Forces the token ids of the request's `ref_parsers_script`, then lets the model go."""

        def is_argmax_invariant(self) -> bool:
            return False

        def new_req_logits_processor(self, params: Any) -> Any:
            raw = (getattr(params, "extra_args", None) or {}).get(SCRIPT_KEY)
            if not raw:
                return None
            script = [int(x) for x in str(raw).split(",")]

            def force(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
                n = len(output_ids)
                if n >= len(script):
                    return logits
                forced = torch.full_like(logits, float("-inf"))
                forced[script[n]] = logits[script[n]]
                return forced

            return force

    return ScriptedLogitsProcessor


def __getattr__(name: str) -> Any:
    # Built on first use: importing this module for the checkpoint alone needs no vLLM.
    if name == "ScriptedLogitsProcessor":
        cls = _scripted_class()
        cls.__module__, cls.__qualname__ = __name__, name
        globals()[name] = cls
        return cls
    raise AttributeError(name)
