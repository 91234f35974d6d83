"""Plain PyTorch versions of the two kernels: the definition the Triton kernels are tested against.

Written for clarity, not speed: one Python loop iteration per sequence, scores in fp32 (in fp64
when given fp64 inputs: GPU checks compare against upcast inputs).
"""

from __future__ import annotations

import torch

__all__ = ["paged_attention", "reshape_and_cache"]


def reshape_and_cache(
    key: torch.Tensor,
    value: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    """Write new keys/values into the paged cache: token t goes to slot `slot_mapping[t]`.

    key/value: [num_tokens, num_kv_heads, head_size];
    key_cache/value_cache: [num_blocks, block_size, num_kv_heads, head_size];
    slot = block_idx * block_size + offset; a negative slot marks a padding token (skipped).
    """
    block_size = key_cache.shape[1]
    slots = slot_mapping.to(torch.long)
    keep = slots >= 0
    slots = slots[keep]
    blocks, offsets = slots // block_size, slots % block_size
    key_cache[blocks, offsets] = key[keep].to(key_cache.dtype)
    value_cache[blocks, offsets] = value[keep].to(value_cache.dtype)


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
) -> torch.Tensor:
    """Causal attention of a varlen batch of queries over a paged KV cache.

    Sequence s owns query rows query_start_loc[s]:query_start_loc[s+1] (its q_len newest
    tokens) and seq_lens[s] keys, stored in the blocks listed by block_table[s]. Query i of the
    sequence sits at position seq_len - q_len + i and sees keys at positions <= its own, and with
    a sliding window w only keys at positions > its own - w. softcap c > 0 applies
    c * tanh(score / c) before the softmax.
    """
    num_tokens, num_q_heads, head_size = q.shape
    block_size, num_kv_heads = key_cache.shape[1], key_cache.shape[2]
    group = num_q_heads // num_kv_heads
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    if out is None:
        out = torch.empty_like(q)
    starts = query_start_loc.tolist()
    lens = seq_lens.tolist()
    for s, seq_len in enumerate(lens):
        q_start, q_end = starts[s], starts[s + 1]
        q_len = q_end - q_start
        if q_len == 0:
            continue
        num_blocks = -(-seq_len // block_size)
        blocks = block_table[s, :num_blocks].to(torch.long)
        k = key_cache[blocks].reshape(-1, num_kv_heads, head_size)[:seq_len].to(acc)
        v = value_cache[blocks].reshape(-1, num_kv_heads, head_size)[:seq_len].to(acc)
        # GQA: query head h reads KV head h // group.
        k = k.repeat_interleave(group, dim=1).transpose(0, 1)  # [Hq, seq_len, D]
        v = v.repeat_interleave(group, dim=1).transpose(0, 1)
        qs = q[q_start:q_end].to(acc).transpose(0, 1)  # [Hq, q_len, D]
        scores = torch.matmul(qs, k.transpose(1, 2)) * scale  # [Hq, q_len, seq_len]
        if softcap > 0:
            scores = softcap * torch.tanh(scores / softcap)
        q_pos = torch.arange(seq_len - q_len, seq_len, device=q.device)[:, None]
        k_pos = torch.arange(seq_len, device=q.device)[None, :]
        visible = k_pos <= q_pos
        if sliding_window is not None:
            visible &= k_pos > q_pos - sliding_window
        scores = scores.masked_fill(~visible, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out[q_start:q_end] = torch.matmul(probs, v).transpose(0, 1).to(out.dtype)
    return out
