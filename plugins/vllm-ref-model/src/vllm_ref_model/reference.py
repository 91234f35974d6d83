"""Parallax in plain PyTorch: the definition the vLLM implementation is checked against.

No vLLM, no transformers, no KV cache: every step recomputes the whole sequence, which is slow
and obviously right. Each layer is

    h = RMSNorm(x)
    x = x + Attention(h) + SwiGLU(h)        # attention and MLP read the same input, in parallel
    Attention: q, k = RMSNorm_per_head(q), RMSNorm_per_head(k), then rotary (neox), causal GQA
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .layout import CheckpointValidator, dims


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * weight


def rotary(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Neox-style rotary embedding over the last dimension: halves, not interleaved pairs."""
    d = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    angles = positions.float()[:, None] * inv_freq[None, :]  # [T, d/2]
    cos, sin = angles.cos()[:, None, :], angles.sin()[:, None, :]  # broadcast over heads
    x1, x2 = x[..., : d // 2].float(), x[..., d // 2 :].float()
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


class ParallaxReference(nn.Module):
    def __init__(self, config: dict[str, Any], dtype: torch.dtype = torch.float32):
        super().__init__()
        self.config = config
        self.d = dims(config)
        self.eps = float(config.get("rms_norm_eps", 1e-5))
        self.theta = float(config.get("rope_theta", 10000.0))
        self.tied = bool(config.get("tie_word_embeddings", False))
        self.dtype = dtype
        self.w: dict[str, torch.Tensor] = {}

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype = torch.float32) -> ParallaxReference:
        from safetensors.torch import load_file

        path = Path(path)
        model = cls(json.loads((path / "config.json").read_text()), dtype)
        check = CheckpointValidator(model.config)
        for file in sorted(path.glob("*.safetensors")):
            for name, t in load_file(str(file)).items():
                if check.accept(name, tuple(t.shape)):
                    model.w[name] = t.to(dtype)
        check.finish()
        return model

    def _layer(self, i: int, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        d, w, p = self.d, self.w, f"model.layers.{i}."
        T, hd = x.shape[0], d["head_dim"]
        h = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)

        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, d["heads"], hd)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, d["kv_heads"], hd)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, d["kv_heads"], hd)
        q = rotary(rms_norm(q, w[p + "self_attn.q_norm.weight"], self.eps), pos, self.theta)
        k = rotary(rms_norm(k, w[p + "self_attn.k_norm.weight"], self.eps), pos, self.theta)
        group = d["heads"] // d["kv_heads"]
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        probs = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        attn = torch.einsum("hqk,khd->qhd", probs, v).reshape(T, d["heads"] * hd)
        attn = attn @ w[p + "self_attn.o_proj.weight"].T

        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        mlp = (nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
        return x + attn + mlp

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits [T, vocab] for a 1-D sequence of token ids."""
        x = self.w["model.embed_tokens.weight"][input_ids]
        pos = torch.arange(input_ids.shape[0])
        for i in range(self.d["layers"]):
            x = self._layer(i, x, pos)
        x = rms_norm(x, self.w["model.norm.weight"], self.eps)
        head = self.w["model.embed_tokens.weight" if self.tied else "lm_head.weight"]
        return (x @ head.T).float()

    def greedy(
        self, prompt_ids: list[int], max_new_tokens: int, top_k: int = 0,
    ) -> tuple[list[int], list[dict[int, float]]]:
        """Greedy continuation; with top_k, also the top-k log-probabilities of every step."""
        ids, steps = list(prompt_ids), []
        for _ in range(max_new_tokens):
            logprobs = torch.log_softmax(self.forward(torch.tensor(ids))[-1], dim=-1)
            if top_k:
                vals, idx = logprobs.topk(top_k)
                steps.append({int(i): float(v) for i, v in zip(idx.tolist(), vals.tolist(), strict=True)})
            ids.append(int(logprobs.argmax()))
        return ids[len(prompt_ids):], steps
