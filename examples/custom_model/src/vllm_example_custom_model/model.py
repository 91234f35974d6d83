"""ToyLM in vLLM layers: a pre-norm decoder (RMSNorm, rotary GQA attention, SwiGLU MLP) with
tied embeddings. vLLM's parallel layers make tensor parallelism work without extra code."""

from collections.abc import Iterable

import torch
from torch import nn
from vllm.config import VllmConfig
from vllm.distributed import get_tensor_model_parallel_world_size
from vllm.model_executor.layers.activation import SiluAndMul
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import MergedColumnParallelLinear, QKVParallelLinear, RowParallelLinear
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.rotary_embedding import get_rope
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.model_loader.weight_utils import default_weight_loader

try:
    from vllm.model_executor.layers.attention import Attention
except ImportError:  # older vLLM
    from vllm.attention import Attention


class ToyLayer(nn.Module):
    def __init__(self, vllm_config: VllmConfig, prefix: str):
        super().__init__()
        c = vllm_config.model_config.hf_config
        tp = get_tensor_model_parallel_world_size()
        self.heads, self.kv_heads = c.num_attention_heads // tp, max(1, c.num_key_value_heads // tp)
        self.q_size, self.kv_size = self.heads * c.head_dim, self.kv_heads * c.head_dim
        self.input_layernorm = RMSNorm(c.hidden_size, eps=c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, eps=c.rms_norm_eps)
        self.qkv_proj = QKVParallelLinear(c.hidden_size, c.head_dim, c.num_attention_heads,
                                          c.num_key_value_heads, bias=False, prefix=f"{prefix}.qkv_proj")
        self.o_proj = RowParallelLinear(c.num_attention_heads * c.head_dim, c.hidden_size, bias=False,
                                        prefix=f"{prefix}.o_proj")
        self.rotary_emb = get_rope(c.head_dim, max_position=c.max_position_embeddings, is_neox_style=True,
                                   rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta})
        # The prefix must contain exactly one integer (the layer index): "layers.3.attn".
        self.attn = Attention(self.heads, c.head_dim, c.head_dim**-0.5, num_kv_heads=self.kv_heads,
                              cache_config=vllm_config.cache_config, prefix=f"{prefix}.attn")
        self.gate_up_proj = MergedColumnParallelLinear(c.hidden_size, [c.intermediate_size] * 2, bias=False,
                                                       prefix=f"{prefix}.gate_up_proj")
        self.down_proj = RowParallelLinear(c.intermediate_size, c.hidden_size, bias=False,
                                           prefix=f"{prefix}.down_proj")
        self.act = SiluAndMul()

    def forward(self, positions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.qkv_proj(self.input_layernorm(x))
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q, k = self.rotary_emb(positions, q, k)
        x = x + self.o_proj(self.attn(q, k, v))[0]
        h, _ = self.gate_up_proj(self.post_attention_layernorm(x))
        return x + self.down_proj(self.act(h))[0]


class ToyForCausalLM(nn.Module):
    # checkpoint name piece -> (fused vLLM parameter piece, shard id)
    stacked = {
        ".q_proj.": (".qkv_proj.", "q"), ".k_proj.": (".qkv_proj.", "k"), ".v_proj.": (".qkv_proj.", "v"),
        ".gate_proj.": (".gate_up_proj.", 0), ".up_proj.": (".gate_up_proj.", 1),
    }

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__()
        c = vllm_config.model_config.hf_config
        self.embed_tokens = VocabParallelEmbedding(c.vocab_size, c.hidden_size)
        n = c.num_hidden_layers
        self.layers = nn.ModuleList(ToyLayer(vllm_config, prefix=f"layers.{i}") for i in range(n))
        self.norm = RMSNorm(c.hidden_size, eps=c.rms_norm_eps)
        self.lm_head = ParallelLMHead(c.vocab_size, c.hidden_size).tie_weights(self.embed_tokens)
        self.logits_processor = LogitsProcessor(c.vocab_size)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)

    get_input_embeddings = embed_input_ids  # older vLLM

    def forward(self, input_ids, positions, intermediate_tensors=None, inputs_embeds=None) -> torch.Tensor:
        x = inputs_embeds if inputs_embeds is not None else self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(positions, x)
        return self.norm(x)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.logits_processor(self.lm_head, hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Checkpoint names are Hugging Face style: model.layers.N.self_attn.q_proj.weight, ..."""
        params = dict(self.named_parameters())
        loaded = set()
        for name, tensor in weights:
            name = name.removeprefix("model.").replace(".self_attn.", ".").replace(".mlp.", ".")
            for piece, (fused, shard) in self.stacked.items():
                if piece in name:
                    param = params[name.replace(piece, fused)]
                    param.weight_loader(param, tensor, shard)
                    loaded.add(name.replace(piece, fused))
                    break
            else:
                if name not in params:
                    raise ValueError(f"example_custom_model: unexpected tensor {name!r} in the checkpoint")
                getattr(params[name], "weight_loader", default_weight_loader)(params[name], tensor)
                loaded.add(name)
        return loaded
