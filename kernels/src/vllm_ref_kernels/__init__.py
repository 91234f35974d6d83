"""Paged-attention kernels in Triton, with a plain PyTorch reference (`vllm_ref_kernels.reference`).

Two functions, same signatures in both implementations:

- `reshape_and_cache(key, value, key_cache, value_cache, slot_mapping)`: the KV-cache write.
- `paged_attention(q, key_cache, value_cache, block_table, seq_lens, query_start_loc, *, scale,
  sliding_window=None, softcap=0.0, out=None, num_decodes=None)`: causal varlen attention over the
  paged cache, prefill, chunked prefill and decode sequences in one batch, GQA/MQA.

Which implementation runs is chosen per call by `REF_KERNELS_IMPL`:
"triton", "reference", or "auto" (default): Triton when the tensors live on a GPU, or when
`TRITON_INTERPRET=1` asks for Triton's CPU interpreter; the PyTorch reference otherwise, because
Triton has no CPU back end.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from . import reference

__all__ = ["implementation", "paged_attention", "reference", "reshape_and_cache"]

logger = logging.getLogger("vllm_ref.kernels")
_warned: list[bool] = []  # the missing-triton warning is logged once per process
IMPL_ENV = "REF_KERNELS_IMPL"
_IMPLS = ("auto", "triton", "reference")
# Head sizes vLLM's attention back ends accept; any size up to 256 works here (masked tiles).
MAX_HEAD_SIZE = 256


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def implementation(device: torch.device | str | None = None) -> str:
    """"triton" or "reference": what a call with tensors on `device` would run."""
    choice = os.environ.get(IMPL_ENV, "auto").strip().lower() or "auto"
    if choice not in _IMPLS:
        raise ValueError(f"vllm_ref_kernels: {IMPL_ENV}={choice!r} is not one of {', '.join(_IMPLS)}")
    if choice == "reference":
        return choice
    on_cpu = device is None or torch.device(device).type == "cpu"
    if choice == "auto" and on_cpu and not _interpreting():
        return "reference"
    try:
        from . import triton_ops  # noqa: F401
    except ImportError as e:
        if choice == "triton":
            raise RuntimeError(f"vllm_ref_kernels: {IMPL_ENV}=triton, but triton cannot be imported ({e}); "
                               f"install triton or set {IMPL_ENV}=reference") from e
        if not on_cpu and not _warned:
            _warned.append(True)
            logger.warning("vllm_ref_kernels: triton cannot be imported (%s); attention on %s runs the "
                           "PyTorch reference (slow). Install triton to use the kernels.", e, device)
        return "reference"
    return "triton"


def _check_cache(key_cache: torch.Tensor, value_cache: torch.Tensor) -> None:
    if key_cache.dim() != 4 or key_cache.shape != value_cache.shape:
        raise ValueError(
            "vllm_ref_kernels: key_cache and value_cache must both be "
            f"[num_blocks, block_size, num_kv_heads, head_size]; got {tuple(key_cache.shape)} and "
            f"{tuple(value_cache.shape)}"
        )
    if key_cache.shape[-1] > MAX_HEAD_SIZE:
        raise ValueError(
            f"vllm_ref_kernels: head_size {key_cache.shape[-1]} is not supported (at most {MAX_HEAD_SIZE})"
        )


def reshape_and_cache(
    key: torch.Tensor,
    value: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    """Write key/value [num_tokens, num_kv_heads, head_size] into the paged caches
    [num_blocks, block_size, num_kv_heads, head_size] at `slot_mapping` (int, block * block_size +
    offset; negative = padding token, skipped)."""
    _check_cache(key_cache, value_cache)
    if key.shape != value.shape or key.dim() != 3 or key.shape[1:] != key_cache.shape[2:]:
        raise ValueError(
            "vllm_ref_kernels: key/value must be [num_tokens, num_kv_heads, head_size] matching the "
            f"cache's {tuple(key_cache.shape[2:])}; got {tuple(key.shape)} and {tuple(value.shape)}"
        )
    if slot_mapping.shape[0] < key.shape[0]:
        raise ValueError(
            f"vllm_ref_kernels: slot_mapping has {slot_mapping.shape[0]} entries for {key.shape[0]} tokens"
        )
    if implementation(key.device) == "triton":
        from . import triton_ops

        triton_ops.reshape_and_cache(key, value, key_cache, value_cache, slot_mapping)
    else:
        reference.reshape_and_cache(key, value, key_cache, value_cache, slot_mapping[: key.shape[0]])


def paged_attention(
    q: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    query_start_loc: torch.Tensor,
    *,
    scale: float,
    sliding_window: int | None = None,
    softcap: float = 0.0,
    out: torch.Tensor | None = None,
    num_decodes: int | None = None,
) -> torch.Tensor:
    """Causal varlen attention of q [num_tokens, num_q_heads, head_size] over the paged cache.

    block_table int32 [num_seqs, max_blocks]; seq_lens int32 [num_seqs] (context incl. the new
    tokens); query_start_loc int32 [num_seqs + 1]. A sequence with q_len 0 is skipped, but when
    num_tokens == num_seqs every sequence must have exactly one new token (the batch is then taken
    as pure decode from shapes alone, so nothing is read back from the device).
    Query i of a sequence with q_len new tokens sees keys at positions <= seq_len - q_len + i
    (and > that - sliding_window when given).
    num_decodes: the number of sequences with exactly one new token, when the caller knows it on
    the host (vLLM's attention metadata does); 0 skips the decode launch, num_seqs the prefill
    launch. None: both kernels are launched unless the shapes say pure decode. With 0, one-token
    sequences are still computed (by the prefill kernel), so 0 is never wrong, only slower.
    Returns `out` (allocated when None) [num_tokens, num_q_heads, head_size].
    """
    _check_cache(key_cache, value_cache)
    if q.dim() != 3 or q.shape[-1] != key_cache.shape[-1]:
        raise ValueError(
            "vllm_ref_kernels: q must be [num_tokens, num_q_heads, head_size] with the cache's head_size "
            f"{key_cache.shape[-1]}; got {tuple(q.shape)}"
        )
    if q.shape[1] % key_cache.shape[2]:
        raise ValueError(
            f"vllm_ref_kernels: num_q_heads {q.shape[1]} is not a multiple of "
            f"num_kv_heads {key_cache.shape[2]}"
        )
    if query_start_loc.shape[0] != seq_lens.shape[0] + 1 or block_table.shape[0] < seq_lens.shape[0]:
        raise ValueError(
            "vllm_ref_kernels: need query_start_loc [num_seqs + 1] and block_table [>= num_seqs, max_blocks] "
            f"for seq_lens [{seq_lens.shape[0]}]; got {tuple(query_start_loc.shape)} and "
            f"{tuple(block_table.shape)}"
        )
    if sliding_window is not None and sliding_window <= 0:
        sliding_window = None  # vLLM passes -1 / 0 for "no window"
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape:
        raise ValueError(
            f"vllm_ref_kernels: out must have q's shape {tuple(q.shape)}; got {tuple(out.shape)}"
        )
    args = (q, key_cache, value_cache, block_table, seq_lens, query_start_loc)
    kwargs: dict[str, Any] = dict(scale=scale, sliding_window=sliding_window, softcap=softcap, out=out)
    if implementation(q.device) == "triton":
        from . import triton_ops

        return triton_ops.paged_attention(*args, **kwargs, num_decodes=num_decodes)
    return reference.paged_attention(*args, **kwargs)
