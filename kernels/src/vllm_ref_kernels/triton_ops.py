"""Triton kernels: the KV-cache write and paged attention (varlen prefill + split-KV decode).

Layout shared with vLLM: caches are [num_blocks, block_size (a "page"), num_kv_heads, head_size];
block_table[s, j] names the page holding keys j*block_size .. (j+1)*block_size - 1 of sequence s.

Attention runs as up to three launches, none of which needs the host to read a device tensor
(so the call can be captured in a CUDA graph):

1. `_prefill_kernel`, for sequences with more than one new token: flash attention. A program owns
   BLOCK_M query tokens of one query head and walks the sequence's keys BLOCK_N at a time with
   tl.dot and an online softmax. Key tiles entirely below the causal diagonal (and inside the
   sliding window) skip the mask arithmetic.
2. `_decode_kernel`, for sequences with one new token: flash decoding. A program owns one
   sequence, one KV head and one contiguous slice ("split") of its keys, and computes every query
   head of that KV head at once (GQA rows packed into one tl.dot), so each key is read once.
   Splitting the keys keeps the GPU busy when there are few sequences but long contexts.
3. `_combine_kernel` merges the splits' partial softmax results (only when there are several).

Padding (head sizes that are not powers of two, partial pages, partial tiles) is handled with
masks over power-of-two tl.arange ranges.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

__all__ = ["DecodeConfig", "PrefillConfig", "decode_config", "paged_attention", "prefill_config",
           "reshape_and_cache"]


# --------------------------------------------------------------------------- KV-cache write


@triton.jit
def _reshape_and_cache_kernel(
    key, value, key_cache, value_cache, slot_mapping,
    stride_kt, stride_kh, stride_vt, stride_vh,
    stride_kcb, stride_kct, stride_kch, stride_vcb, stride_vct, stride_vch,
    PAGE: tl.constexpr, HEAD: tl.constexpr, HEAD_PAD: tl.constexpr,
):
    token = tl.program_id(0)
    head = tl.program_id(1)
    slot = tl.load(slot_mapping + token).to(tl.int64)
    if slot < 0:  # padding token
        return
    page = slot // PAGE
    offset = slot % PAGE
    d = tl.arange(0, HEAD_PAD)
    dmask = d < HEAD
    k = tl.load(key + token * stride_kt + head * stride_kh + d, mask=dmask)
    v = tl.load(value + token * stride_vt + head * stride_vh + d, mask=dmask)
    tl.store(key_cache + page * stride_kcb + offset * stride_kct + head * stride_kch + d,
             k.to(key_cache.dtype.element_ty), mask=dmask)
    tl.store(value_cache + page * stride_vcb + offset * stride_vct + head * stride_vch + d,
             v.to(value_cache.dtype.element_ty), mask=dmask)


def reshape_and_cache(
    key: torch.Tensor,
    value: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    """See `vllm_ref_kernels.reshape_and_cache`. The head dimension must be contiguous."""
    num_tokens, num_kv_heads, head_size = key.shape
    if num_tokens == 0:
        return
    for name, t in (("key", key), ("value", value), ("key_cache", key_cache), ("value_cache", value_cache)):
        if t.stride(-1) != 1:
            raise ValueError(f"vllm_ref_kernels: {name} needs a contiguous last (head_size) dimension")
    _reshape_and_cache_kernel[(num_tokens, num_kv_heads)](
        key, value, key_cache, value_cache, slot_mapping,
        key.stride(0), key.stride(1), value.stride(0), value.stride(1),
        key_cache.stride(0), key_cache.stride(1), key_cache.stride(2),
        value_cache.stride(0), value_cache.stride(1), value_cache.stride(2),
        PAGE=key_cache.shape[1], HEAD=head_size, HEAD_PAD=triton.next_power_of_2(head_size),
    )


# --------------------------------------------------------------------------- attention


@triton.jit
def _attend_tile(
    acc, m_i, l_i, q, q_pos, start_n, kv_end,
    k_cache, v_cache, table_row, kv_head_off,
    stride_kb, stride_kt, stride_vb, stride_vt,
    scale, softcap, window,
    PAGE: tl.constexpr, HEAD: tl.constexpr, HEAD_PAD: tl.constexpr, BLOCK_N: tl.constexpr,
    MASKED: tl.constexpr, USE_SOFTCAP: tl.constexpr, USE_WINDOW: tl.constexpr, PRECISION: tl.constexpr,
):
    """One step of the online softmax: fold keys start_n .. start_n + BLOCK_N - 1 into acc/m_i/l_i.

    Rows are query rows at positions q_pos; with MASKED, keys past the causal diagonal, at or past
    kv_end, or outside the sliding window are dropped. Scores are kept in base 2 (exp2 is cheaper).
    """
    n = start_n + tl.arange(0, BLOCK_N)
    d = tl.arange(0, HEAD_PAD)
    # The paged gather: key n lives at row n % PAGE of page table_row[n // PAGE]. int64 because
    # page * stride overflows int32 for caches over 2^31 elements.
    if MASKED:
        n_ok = n < kv_end
        kv_mask = n_ok[:, None] & (d < HEAD)[None, :]
        page = tl.load(table_row + n // PAGE, mask=n_ok, other=0).to(tl.int64)
    else:
        kv_mask = (d < HEAD)[None, :]
        page = tl.load(table_row + n // PAGE).to(tl.int64)
    k = tl.load(k_cache + (page * stride_kb + (n % PAGE) * stride_kt + kv_head_off)[:, None] + d[None, :],
                mask=kv_mask, other=0.0)
    v = tl.load(v_cache + (page * stride_vb + (n % PAGE) * stride_vt + kv_head_off)[:, None] + d[None, :],
                mask=kv_mask, other=0.0)
    s = tl.dot(q, tl.trans(k.to(q.dtype)), input_precision=PRECISION)
    if USE_SOFTCAP:
        x = s * (scale / softcap)
        # tanh(x) = 1 - 2 / (exp(2x) + 1): saturates cleanly to +-1, no tl.tanh needed.
        s = softcap * (1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)) * 1.4426950408889634
    else:
        s = s * (scale * 1.4426950408889634)
    if MASKED:
        visible = (n[None, :] <= q_pos[:, None]) & n_ok[None, :]
        if USE_WINDOW:
            visible = visible & (n[None, :] > q_pos[:, None] - window)
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # A row may have seen no visible key yet: subtract 0 instead of -inf to avoid NaN.
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    else:
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_use = m_new
    p = tl.math.exp2(s - m_use[:, None])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return acc, m_new, l_i


@triton.jit
def _prefill_kernel(
    q, k_cache, v_cache, out, block_table, seq_lens, query_start_loc, num_seqs,
    scale, softcap, window,
    stride_qt, stride_qh, stride_ot, stride_oh,
    stride_kb, stride_kt, stride_kh, stride_vb, stride_vt, stride_vh, stride_bt,
    GROUP: tl.constexpr, PAGE: tl.constexpr, HEAD: tl.constexpr, HEAD_PAD: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    USE_SOFTCAP: tl.constexpr, USE_WINDOW: tl.constexpr, SKIP_DECODE: tl.constexpr,
    PRECISION: tl.constexpr,
):
    q_head = tl.program_id(0)
    # Last tiles first: they see the most keys, and starting them early shortens the tail.
    tile = tl.num_programs(1) - 1 - tl.program_id(1)

    # Which sequence owns this tile, without a host-built map: sequence s's tiles are numbered
    # from query_start_loc[s] // BLOCK_M + s on (an upper bound of the tiles before it, so the
    # numbering is increasing and leaves gaps). Binary search for the last s starting <= tile.
    lo = tl.program_id(1) * 0  # a tensor from the start (the interpreter needs one after the loop)
    hi = num_seqs
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if tl.load(query_start_loc + mid) // BLOCK_M + mid <= tile:
            lo = mid
        else:
            hi = mid
    seq = lo
    q_start = tl.load(query_start_loc + seq)
    q_len = tl.load(query_start_loc + seq + 1) - q_start
    local = tile - (q_start // BLOCK_M + seq)
    if local * BLOCK_M >= q_len:  # a gap in the numbering
        return
    if SKIP_DECODE and q_len == 1:  # the decode kernel takes these
        return
    seq_len = tl.load(seq_lens + seq)
    context = seq_len - q_len

    m = local * BLOCK_M + tl.arange(0, BLOCK_M)
    d = tl.arange(0, HEAD_PAD)
    row_ok = m < q_len
    q_pos = context + m
    qt = tl.load(q + (q_start + m)[:, None] * stride_qt + q_head * stride_qh + d[None, :],
                 mask=row_ok[:, None] & (d < HEAD)[None, :], other=0.0)
    kv_head = q_head // GROUP
    table_row = block_table + seq.to(tl.int64) * stride_bt

    acc = tl.zeros([BLOCK_M, HEAD_PAD], dtype=tl.float32)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)

    first_pos = context + local * BLOCK_M
    last_pos = context + tl.minimum(local * BLOCK_M + BLOCK_M, q_len) - 1
    kv_end = last_pos + 1
    # Keys every row of the tile sees: (last_pos - window, first_pos]. Whole tiles in there skip
    # the mask; the tiles before (window edge) and after (diagonal) are masked.
    if USE_WINDOW:
        start = tl.maximum(first_pos - window + 1, 0) // BLOCK_N * BLOCK_N
        full_lo = tl.maximum(last_pos - window + 1, 0)
    else:
        start = 0
        full_lo = 0
    full_start = tl.maximum((full_lo + BLOCK_N - 1) // BLOCK_N * BLOCK_N, start)
    full_end = (first_pos + 1) // BLOCK_N * BLOCK_N
    if full_end <= full_start:
        full_start = start
        full_end = start

    for start_n in range(start, full_start, BLOCK_N):
        acc, m_i, l_i = _attend_tile(
            acc, m_i, l_i, qt, q_pos, start_n, kv_end, k_cache, v_cache, table_row,
            kv_head * stride_kh, stride_kb, stride_kt, stride_vb, stride_vt, scale, softcap, window,
            PAGE, HEAD, HEAD_PAD, BLOCK_N, True, USE_SOFTCAP, USE_WINDOW, PRECISION)
    for start_n in range(full_start, full_end, BLOCK_N):
        acc, m_i, l_i = _attend_tile(
            acc, m_i, l_i, qt, q_pos, start_n, kv_end, k_cache, v_cache, table_row,
            kv_head * stride_kh, stride_kb, stride_kt, stride_vb, stride_vt, scale, softcap, window,
            PAGE, HEAD, HEAD_PAD, BLOCK_N, False, USE_SOFTCAP, USE_WINDOW, PRECISION)
    for start_n in range(full_end, kv_end, BLOCK_N):
        acc, m_i, l_i = _attend_tile(
            acc, m_i, l_i, qt, q_pos, start_n, kv_end, k_cache, v_cache, table_row,
            kv_head * stride_kh, stride_kb, stride_kt, stride_vb, stride_vt, scale, softcap, window,
            PAGE, HEAD, HEAD_PAD, BLOCK_N, True, USE_SOFTCAP, USE_WINDOW, PRECISION)

    # Padding rows saw no key (l = 0): divide them by 1, not 0; they are not stored anyway.
    acc = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    tl.store(out + (q_start + m)[:, None] * stride_ot + q_head * stride_oh + d[None, :],
             acc.to(out.dtype.element_ty), mask=row_ok[:, None] & (d < HEAD)[None, :])


@triton.jit
def _decode_kernel(
    q, k_cache, v_cache, out, part_acc, part_m, part_l, block_table, seq_lens, query_start_loc,
    scale, softcap, window,
    stride_qt, stride_qh, stride_ot, stride_oh,
    stride_kb, stride_kt, stride_kh, stride_vb, stride_vt, stride_vh, stride_bt,
    GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, PAGE: tl.constexpr, HEAD: tl.constexpr,
    HEAD_PAD: tl.constexpr, BLOCK_N: tl.constexpr, NUM_SPLITS: tl.constexpr,
    USE_SOFTCAP: tl.constexpr, USE_WINDOW: tl.constexpr, PRECISION: tl.constexpr,
):
    seq = tl.program_id(0)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    q_start = tl.load(query_start_loc + seq)
    if tl.load(query_start_loc + seq + 1) - q_start != 1:
        return
    seq_len = tl.load(seq_lens + seq)

    # Keys this split covers: an equal, BLOCK_N-aligned share of the keys the token can see.
    if USE_WINDOW:
        lo = tl.maximum(seq_len - window, 0) // BLOCK_N * BLOCK_N
    else:
        lo = 0
    per_split = ((seq_len - lo + NUM_SPLITS - 1) // NUM_SPLITS + BLOCK_N - 1) // BLOCK_N * BLOCK_N
    split_start = lo + split * per_split
    split_end = tl.minimum(split_start + per_split, seq_len)

    g = tl.arange(0, GROUP_PAD)
    d = tl.arange(0, HEAD_PAD)
    q_heads = kv_head * GROUP + g
    row_ok = g < GROUP
    qt = tl.load(q + q_start * stride_qt + q_heads[:, None] * stride_qh + d[None, :],
                 mask=row_ok[:, None] & (d < HEAD)[None, :], other=0.0)
    q_pos = tl.zeros([GROUP_PAD], dtype=tl.int32) + (seq_len - 1)
    table_row = block_table + seq.to(tl.int64) * stride_bt

    acc = tl.zeros([GROUP_PAD, HEAD_PAD], dtype=tl.float32)
    m_i = tl.full([GROUP_PAD], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([GROUP_PAD], dtype=tl.float32)
    for start_n in range(split_start, split_end, BLOCK_N):
        acc, m_i, l_i = _attend_tile(
            acc, m_i, l_i, qt, q_pos, start_n, split_end, k_cache, v_cache, table_row,
            kv_head * stride_kh, stride_kb, stride_kt, stride_vb, stride_vt, scale, softcap, window,
            PAGE, HEAD, HEAD_PAD, BLOCK_N, True, USE_SOFTCAP, USE_WINDOW, PRECISION)

    if NUM_SPLITS == 1:
        acc = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
        tl.store(out + q_start * stride_ot + q_heads[:, None] * stride_oh + d[None, :],
                 acc.to(out.dtype.element_ty), mask=row_ok[:, None] & (d < HEAD)[None, :])
    else:
        # Unnormalised partial result; an empty split stores acc 0, m -inf, l 0, which the
        # combine step weighs by exp2(-inf) = 0.
        row = (seq * tl.num_programs(1) * GROUP + q_heads) * NUM_SPLITS + split
        tl.store(part_acc + row[:, None] * HEAD_PAD + d[None, :], acc, mask=row_ok[:, None])
        tl.store(part_m + row, m_i, mask=row_ok)
        tl.store(part_l + row, l_i, mask=row_ok)


@triton.jit
def _combine_kernel(
    out, part_acc, part_m, part_l, query_start_loc, stride_ot, stride_oh,
    HEAD: tl.constexpr, HEAD_PAD: tl.constexpr, NUM_SPLITS: tl.constexpr, SPLITS_PAD: tl.constexpr,
):
    seq = tl.program_id(0)
    q_head = tl.program_id(1)
    q_start = tl.load(query_start_loc + seq)
    if tl.load(query_start_loc + seq + 1) - q_start != 1:
        return
    sp = tl.arange(0, SPLITS_PAD)
    d = tl.arange(0, HEAD_PAD)
    row = (seq * tl.num_programs(1) + q_head) * NUM_SPLITS + sp
    sp_ok = sp < NUM_SPLITS
    m = tl.load(part_m + row, mask=sp_ok, other=float("-inf"))
    l_ = tl.load(part_l + row, mask=sp_ok, other=0.0)
    acc = tl.load(part_acc + row[:, None] * HEAD_PAD + d[None, :], mask=sp_ok[:, None], other=0.0)
    w = tl.math.exp2(m - tl.max(m, 0))  # the split holding the newest key is never empty
    o = tl.sum(acc * w[:, None], 0) / tl.sum(l_ * w, 0)
    tl.store(out + q_start * stride_ot + q_head * stride_oh + d, o.to(out.dtype.element_ty), mask=d < HEAD)


# --------------------------------------------------------------------------- launch configuration


class PrefillConfig(dict):
    """Tile shape and launch options of the prefill kernel (keys: block_m, block_n, num_warps, num_stages)."""


class DecodeConfig(dict):
    """Options of the decode kernel (keys: block_n, num_splits, num_warps, num_stages)."""


def prefill_config(head_pad: int, device: torch.device) -> PrefillConfig:
    if device.type == "cpu":  # the interpreter: small tiles so that tests cross many tile edges
        return PrefillConfig(block_m=16, block_n=16, num_warps=4, num_stages=1)
    # Chosen from compile_check.py on sm_90 (no spills, wgmma, cp.async pipelining), not yet timed:
    # head 64 -> 127 registers (two programs per SM), 128 -> 181, 256 -> 192.
    if head_pad <= 128:
        return PrefillConfig(block_m=128, block_n=64, num_warps=8, num_stages=3)
    return PrefillConfig(block_m=64, block_n=32, num_warps=8, num_stages=3)


@functools.cache
def _num_sms(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def decode_config(num_seqs: int, num_kv_heads: int, head_pad: int, device: torch.device,
                  num_sms: int | None = None) -> DecodeConfig:
    # Enough programs for several waves on every SM, from shapes alone (no device->host read):
    # splits per (sequence, KV head) = programs wanted / programs we already have.
    if device.type == "cpu":  # the interpreter runs programs one by one: no point in splitting
        return DecodeConfig(block_n=16, num_splits=1, num_warps=4, num_stages=1)
    wanted = 8 * (num_sms or _num_sms(device))
    num_splits = max(1, min(64, triton.cdiv(wanted, max(1, num_seqs * num_kv_heads))))
    # 32 KB of keys + values per step at head 128; head 256 halves the tile to stay at ~160 registers.
    block_n = 64 if head_pad <= 128 else 32
    return DecodeConfig(block_n=block_n, num_splits=num_splits, num_warps=4, num_stages=3)


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
    prefill: dict | None = None,
    decode: dict | None = None,
) -> torch.Tensor:
    """See `vllm_ref_kernels.paged_attention`. `prefill` / `decode` override launch options
    (see `prefill_config` / `decode_config`); benchmarks and tests use them."""
    num_tokens, num_q_heads, head_size = q.shape
    num_seqs = seq_lens.shape[0]
    page, num_kv_heads = key_cache.shape[1], key_cache.shape[2]
    group = num_q_heads // num_kv_heads
    head_pad = max(16, triton.next_power_of_2(head_size))
    if out is None:
        out = torch.empty_like(q)
    if num_tokens == 0 or num_seqs == 0:
        return out
    for name, t in (("q", q), ("out", out), ("key_cache", key_cache), ("value_cache", value_cache)):
        if t.stride(-1) != 1:
            raise ValueError(f"vllm_ref_kernels: {name} needs a contiguous last (head_size) dimension")
    use_window = sliding_window is not None and sliding_window > 0
    common = dict(
        scale=float(scale), softcap=float(softcap), window=int(sliding_window) if use_window else 0,
        stride_qt=q.stride(0), stride_qh=q.stride(1), stride_ot=out.stride(0), stride_oh=out.stride(1),
        stride_kb=key_cache.stride(0), stride_kt=key_cache.stride(1), stride_kh=key_cache.stride(2),
        stride_vb=value_cache.stride(0), stride_vt=value_cache.stride(1), stride_vh=value_cache.stride(2),
        stride_bt=block_table.stride(0),
        PAGE=page, HEAD=head_size, HEAD_PAD=head_pad,
        USE_SOFTCAP=softcap > 0, USE_WINDOW=use_window,
        # fp32 inputs: full-precision dots (tl.dot would otherwise round to tf32 on GPUs).
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
    )
    # One new token per sequence means a pure decode batch: no prefill launch needed. Otherwise
    # launch both; each kernel returns at once for the sequences the other one handles.
    decode_only = num_tokens == num_seqs
    if not decode_only:
        cfg = prefill_config(head_pad, q.device)
        cfg.update(prefill or {})
        num_tiles = num_tokens // cfg["block_m"] + num_seqs
        _prefill_kernel[(num_q_heads, num_tiles)](
            q, key_cache, value_cache, out, block_table, seq_lens, query_start_loc, num_seqs,
            GROUP=group, BLOCK_M=cfg["block_m"], BLOCK_N=cfg["block_n"], SKIP_DECODE=True,
            num_warps=cfg["num_warps"], num_stages=cfg["num_stages"], **common,
        )
    cfg = decode_config(num_seqs, num_kv_heads, head_pad, q.device)
    cfg.update(decode or {})
    splits = cfg["num_splits"]
    if splits > 1:
        rows = num_seqs * num_q_heads * splits
        part_acc = torch.empty(rows, head_pad, dtype=torch.float32, device=q.device)
        part_m = torch.empty(rows, dtype=torch.float32, device=q.device)
        part_l = torch.empty_like(part_m)
    else:
        part_acc = part_m = part_l = out  # unused
    _decode_kernel[(num_seqs, num_kv_heads, splits)](
        q, key_cache, value_cache, out, part_acc, part_m, part_l, block_table, seq_lens, query_start_loc,
        GROUP=group, GROUP_PAD=max(16, triton.next_power_of_2(group)), BLOCK_N=cfg["block_n"],
        NUM_SPLITS=splits, num_warps=cfg["num_warps"], num_stages=cfg["num_stages"], **common,
    )
    if splits > 1:
        _combine_kernel[(num_seqs, num_q_heads)](
            out, part_acc, part_m, part_l, query_start_loc, out.stride(0), out.stride(1),
            HEAD=head_size, HEAD_PAD=head_pad, NUM_SPLITS=splits, SPLITS_PAD=triton.next_power_of_2(splits),
        )
    return out
