"""Parallax built from vLLM's own layers, so tensor parallelism, the paged KV cache and
vLLM's weight loaders all apply. Loaded lazily by vLLM ("vllm_ref_model.model:ParallaxForCausalLM").

What makes it custom (see reference.py for the plain definition):
- parallel residual: attention and MLP read the same normalised input and their outputs are
  added to the stream together, so under TP their two row-parallel outputs share ONE all-reduce;
- QK-norm: RMSNorm over each head of q and k before the rotary embedding.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from vllm.compilation.decorators import support_torch_compile
from vllm.config import VllmConfig
from vllm.distributed import get_tensor_model_parallel_world_size, tensor_model_parallel_all_reduce
from vllm.model_executor.layers.activation import SiluAndMul
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import (
    MergedColumnParallelLinear,
    QKVParallelLinear,
    RowParallelLinear,
)
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.rotary_embedding import get_rope
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.model_loader.weight_utils import default_weight_loader
from vllm.sequence import IntermediateTensors

from . import PLUGIN
from .layout import CheckpointValidator

try:  # moved under model_executor in newer vLLM
    from vllm.model_executor.layers.attention import Attention
except ImportError:  # pragma: no cover - older vLLM
    from vllm.attention import Attention  # type: ignore[import-not-found,no-redef]  # not in the vLLM checked

# HF tensor name piece -> (vLLM parameter name piece, shard id of the fused parameter)
FUSED = {
    ".q_proj.": (".qkv_proj.", "q"),
    ".k_proj.": (".qkv_proj.", "k"),
    ".v_proj.": (".qkv_proj.", "v"),
    ".gate_proj.": (".gate_up_proj.", 0),
    ".up_proj.": (".gate_up_proj.", 1),
}


def _config_error(setting: str, value: object, accepted: str) -> ValueError:
    return ValueError(f"{PLUGIN}: Parallax config {setting}={value!r} cannot run here; accepted: {accepted}")


class ParallaxAttention(nn.Module):
    def __init__(self, vllm_config: VllmConfig, prefix: str):
        super().__init__()
        config = vllm_config.model_config.hf_config
        tp = get_tensor_model_parallel_world_size()
        heads, kv_heads, hd = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        if heads % tp:
            raise _config_error("num_attention_heads", heads, f"a multiple of tensor_parallel_size={tp}")
        if kv_heads % tp and tp % kv_heads:
            raise _config_error("num_key_value_heads", kv_heads,
                                f"a multiple or a divisor of tensor_parallel_size={tp}")
        if heads % kv_heads:
            raise _config_error("num_key_value_heads", kv_heads, f"a divisor of num_attention_heads={heads}")
        self.num_heads, self.num_kv_heads = heads // tp, max(1, kv_heads // tp)
        self.head_dim = hd
        self.q_size, self.kv_size = self.num_heads * hd, self.num_kv_heads * hd

        self.qkv_proj = QKVParallelLinear(config.hidden_size, hd, heads, kv_heads, bias=False,
                                          quant_config=vllm_config.quant_config, prefix=f"{prefix}.qkv_proj")
        # No all-reduce here: the decoder layer reduces attention + MLP together.
        self.o_proj = RowParallelLinear(heads * hd, config.hidden_size, bias=False, reduce_results=False,
                                        quant_config=vllm_config.quant_config, prefix=f"{prefix}.o_proj")
        self.q_norm = RMSNorm(hd, eps=config.rms_norm_eps)
        self.k_norm = RMSNorm(hd, eps=config.rms_norm_eps)
        self.rotary_emb = get_rope(hd, max_position=config.max_position_embeddings, is_neox_style=True,
                                   rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta})
        self.attn = Attention(self.num_heads, hd, hd**-0.5, num_kv_heads=self.num_kv_heads,
                              cache_config=vllm_config.cache_config, quant_config=vllm_config.quant_config,
                              prefix=f"{prefix}.attn")
        # vLLM would only fail at the first forward pass (deep in a kernel); say it at load time.
        backend = getattr(self.attn, "attn_backend", None)
        if backend is not None and not backend.supports_head_size(hd):
            raise _config_error("head_dim", hd, f"{sorted(backend.get_supported_head_sizes())} "
                                f"(the {backend.get_name()} attention backend in use)")

    def forward(self, positions: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.qkv_proj(hidden_states)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        # RMSNorm over each head: view [tokens, heads, head_dim], normalise the last dim. The same
        # pattern as vLLM's Qwen3, which its QK-norm + RoPE compile fusion pass targets.
        q = self.q_norm(q.view(*q.shape[:-1], self.num_heads, self.head_dim)).view(q.shape)
        k = self.k_norm(k.view(*k.shape[:-1], self.num_kv_heads, self.head_dim)).view(k.shape)
        q, k = self.rotary_emb(positions, q, k)
        out, _ = self.o_proj(self.attn(q, k, v))
        return out


class ParallaxMLP(nn.Module):
    def __init__(self, vllm_config: VllmConfig, prefix: str):
        super().__init__()
        config = vllm_config.model_config.hf_config
        if config.hidden_act != "silu":
            raise _config_error("hidden_act", config.hidden_act, "'silu'")
        self.gate_up_proj = MergedColumnParallelLinear(
            config.hidden_size, [config.intermediate_size] * 2, bias=False,
            quant_config=vllm_config.quant_config, prefix=f"{prefix}.gate_up_proj")
        self.down_proj = RowParallelLinear(
            config.intermediate_size, config.hidden_size, bias=False, reduce_results=False,
            quant_config=vllm_config.quant_config, prefix=f"{prefix}.down_proj")
        self.act_fn = SiluAndMul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.gate_up_proj(x)
        x, _ = self.down_proj(self.act_fn(x))
        return x


class ParallaxDecoderLayer(nn.Module):
    def __init__(self, vllm_config: VllmConfig, prefix: str):
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = ParallaxAttention(vllm_config, prefix=f"{prefix}.self_attn")
        self.mlp = ParallaxMLP(vllm_config, prefix=f"{prefix}.mlp")
        self.tp = get_tensor_model_parallel_world_size()

    def forward(
        self, positions: torch.Tensor, hidden_states: torch.Tensor, residual: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # The fused add+norm adds the previous layer's output to the residual stream first.
        if residual is None:
            residual, h = hidden_states, self.input_layernorm(hidden_states)
        else:
            h, residual = self.input_layernorm(hidden_states, residual)
        out = self.self_attn(positions, h) + self.mlp(h)
        if self.tp > 1:
            out = tensor_model_parallel_all_reduce(out)
        return out, residual


@support_torch_compile(dynamic_arg_dims={"input_ids": 0, "positions": 0, "inputs_embeds": 0})
class ParallaxModel(nn.Module):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.embed_tokens = VocabParallelEmbedding(config.vocab_size, config.hidden_size,
                                                   prefix=f"{prefix}.embed_tokens")
        # Attention prefixes must hold exactly one integer: model.layers.N.self_attn.attn.
        self.layers = nn.ModuleList(
            ParallaxDecoderLayer(vllm_config, prefix=f"{prefix}.layers.{i}")
            for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)

    def forward(
        self, input_ids: torch.Tensor | None, positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None, inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden = inputs_embeds if inputs_embeds is not None else self.embed_tokens(input_ids)
        residual = None
        for layer in self.layers:
            hidden, residual = layer(positions, hidden, residual)
        hidden, _ = self.norm(hidden, residual)
        return hidden


class ParallaxForCausalLM(nn.Module):
    # Lets LoRA and quantisation code find the fused projections by their checkpoint names.
    packed_modules_mapping = {
        "qkv_proj": ["q_proj", "k_proj", "v_proj"],
        "gate_up_proj": ["gate_proj", "up_proj"],
    }

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        self.model = ParallaxModel(vllm_config=vllm_config, prefix=f"{prefix}.model" if prefix else "model")
        self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size,
                                      prefix=f"{prefix}.lm_head" if prefix else "lm_head")
        if config.tie_word_embeddings:
            self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)
        self.logits_processor = LogitsProcessor(config.vocab_size)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)

    get_input_embeddings = embed_input_ids  # the name older vLLM versions call

    def forward(
        self, input_ids: torch.Tensor | None, positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None, inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.model(input_ids, positions, intermediate_tensors, inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.logits_processor(self.lm_head, hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Load Hugging Face named tensors; q/k/v and gate/up go into their fused parameters.

        Every tensor is checked against the shapes config.json implies before it is sharded, so
        a bad checkpoint fails with the tensor's name, not deep inside a weight loader.
        """
        params = dict(self.named_parameters())
        check = CheckpointValidator(self.config)
        loaded: set[str] = set()
        for name, tensor in weights:
            if not check.accept(name, tuple(tensor.shape)):
                continue
            param_name, shard = name, None
            for hf_piece, (piece, shard_id) in FUSED.items():
                if hf_piece in name:
                    param_name, shard = name.replace(hf_piece, piece), shard_id
                    break
            param = params[param_name]
            if shard is None:
                getattr(param, "weight_loader", default_weight_loader)(param, tensor)
            else:
                # vLLM's fused layers attach weight_loader to their parameters at run time.
                param.weight_loader(param, tensor, shard)  # type: ignore[attr-defined]
            loaded.add(param_name)
        check.finish()
        return loaded
