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
from typing import Any, NamedTuple

import torch
import triton
import triton.language as tl

__all__ = ["DecodeConfig", "Launch", "PrefillConfig", "compile_key", "decode_config", "paged_attention", "plan",
           "measured_programs_per_sm", "prefill_config", "programs_per_sm", "reshape_and_cache", "split_count"]


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

LOG2E = 1.4426950408889634
MAX_SPLITS = 64
# Integer arguments Triton should not specialize on (value 1, divisibility by 16): they only
# select work or address one row, so each distinct value class would be one more compilation.
NO_SPECIALIZE = ("num_seqs", "num_splits", "window", "stride_bt", "head_size")


@triton.jit
def _tile_pages(table_row, start_n, kv_end, PAGE: tl.constexpr, BLOCK_N: tl.constexpr, PAGING: tl.constexpr,
                MASKED: tl.constexpr):
    """Page id and row inside the page of keys start_n .. start_n + BLOCK_N - 1 (start_n is a
    multiple of BLOCK_N). PAGING 0: the tile lies inside one page, so one id per tile. PAGING 1: the
    tile spans BLOCK_N // PAGE whole pages, one id per page. PAGING 2 (page and tile sizes that do
    not divide each other): one id per key. int64 because page * stride overflows int32 on caches
    over 2^31 elements."""
    r = tl.arange(0, BLOCK_N)
    if PAGING == 0:
        page = tl.load(table_row + start_n // PAGE).to(tl.int64)
        row = start_n % PAGE + r
    elif PAGING == 1:
        j = start_n // PAGE + tl.arange(0, BLOCK_N // PAGE)
        if MASKED:  # entries past the sequence's last page may hold anything
            ids = tl.load(table_row + j, mask=j * PAGE < kv_end, other=0)
        else:
            ids = tl.load(table_row + j)
        page = tl.reshape(tl.broadcast_to(ids.to(tl.int64)[:, None], (BLOCK_N // PAGE, PAGE)), (BLOCK_N,))
        row = r % PAGE
    else:
        n = start_n + r
        if MASKED:
            page = tl.load(table_row + n // PAGE, mask=n < kv_end, other=0).to(tl.int64)
        else:
            page = tl.load(table_row + n // PAGE).to(tl.int64)
        row = n % PAGE
    return page, row


@triton.jit
def _attend_tile(
    acc, m_i, l_i, q, q_pos, start_n, kv_end,
    k_cache, v_cache, table_row, k_head_off, v_head_off,
    stride_kb, stride_kt, stride_vb, stride_vt,
    qk_scale, softcap, window,
    PAGE: tl.constexpr, HEAD: tl.constexpr, HEAD_PAD: tl.constexpr, BLOCK_N: tl.constexpr,
    PAGING: tl.constexpr, MASKED: tl.constexpr, USE_SOFTCAP: tl.constexpr, USE_WINDOW: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """One step of the online softmax: fold keys start_n .. start_n + BLOCK_N - 1 into acc/m_i/l_i.

    Rows are query rows at positions q_pos; with MASKED, keys past the causal diagonal, at or past
    kv_end, or outside the sliding window are dropped. The softmax runs in base 2 (exp2 is cheaper)
    and the scores stay unscaled until the exponent: m_i is kept in units of qk_scale * score, so
    exp2(s * qk_scale - m) is one fused multiply-add per score, not a separate scaling pass. The
    soft-cap needs the scaled score first, so that path scales up front (qk_scale = scale / softcap).
    """
    n = start_n + tl.arange(0, BLOCK_N)
    d = tl.arange(0, HEAD_PAD)
    page, row = _tile_pages(table_row, start_n, kv_end, PAGE, BLOCK_N, PAGING, MASKED)
    if MASKED:
        kv_mask = (n < kv_end)[:, None] & (d < HEAD)[None, :]
    else:
        kv_mask = (d < HEAD)[None, :]
    k = tl.load(k_cache + (page * stride_kb + row * stride_kt + k_head_off)[:, None] + d[None, :],
                mask=kv_mask, other=0.0)
    v = tl.load(v_cache + (page * stride_vb + row * stride_vt + v_head_off)[:, None] + d[None, :],
                mask=kv_mask, other=0.0)
    s = tl.dot(q, tl.trans(k.to(q.dtype)), input_precision=PRECISION)
    if USE_SOFTCAP:
        # tanh(x) = 1 - 2 / (exp(2x) + 1): saturates cleanly to +-1, no tl.tanh needed.
        s = (softcap * 1.4426950408889634) * (1.0 - 2.0 / (tl.exp(2.0 * (s * qk_scale)) + 1.0))
        s_scale = 1.0
    else:
        s_scale = qk_scale
    if MASKED:
        visible = (n[None, :] <= q_pos[:, None]) & (n < kv_end)[None, :]
        if USE_WINDOW:
            visible = visible & (n[None, :] > q_pos[:, None] - window)
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1) * s_scale)
        # A row may have seen no visible key yet: subtract 0 instead of -inf to avoid NaN.
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    else:
        m_new = tl.maximum(m_i, tl.max(s, 1) * s_scale)
        m_use = m_new
    p = tl.math.exp2(s * s_scale - m_use[:, None])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 1)
    # The rescaled accumulator goes into the dot as its addend: wgmma accumulates in place, where
    # `acc * alpha + dot(p, v)` would hold a second full accumulator tile in registers.
    acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PRECISION)
    return acc, m_new, l_i


@triton.jit(do_not_specialize=["num_seqs", "window", "stride_bt"])
def _prefill_kernel(
    q, k_cache, v_cache, out, block_table, seq_lens, query_start_loc, num_seqs,
    qk_scale, softcap, window,
    stride_qt, stride_qh, stride_ot, stride_oh,
    stride_kb, stride_kt, stride_kh, stride_vb, stride_vt, stride_vh, stride_bt,
    GROUP: tl.constexpr, PAGE: tl.constexpr, HEAD: tl.constexpr, HEAD_PAD: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PAGING: tl.constexpr,
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

    # Two loops, each software-pipelined on its own: the whole tiles, then the masked ones (the
    # window's leading edge, if any, and the diagonal) walked as one range.
    for start_n in range(full_start, full_end, BLOCK_N):
        acc, m_i, l_i = _attend_tile(
            acc, m_i, l_i, qt, q_pos, start_n, kv_end, k_cache, v_cache, table_row,
            kv_head * stride_kh, kv_head * stride_vh, stride_kb, stride_kt, stride_vb, stride_vt,
            qk_scale, softcap, window, PAGE, HEAD, HEAD_PAD, BLOCK_N, PAGING, False, USE_SOFTCAP, USE_WINDOW,
            PRECISION)
    # The masked range runs x over [full_end, kv_end) preceded, with a window, by as many tiles as
    # the edge [start, full_start) has, mapped back there. (A loop over a plain range keeps the
    # no-window code as lean as possible: a computed start cost 10+ registers and spilled at 128x128.)
    if USE_WINDOW:
        lo_masked = start + full_end - full_start
    else:
        lo_masked = full_end
    for x in range(lo_masked, kv_end, BLOCK_N):
        if USE_WINDOW:
            start_n = tl.where(x < full_end, x - (full_end - full_start), x)
        else:
            start_n = x
        acc, m_i, l_i = _attend_tile(
            acc, m_i, l_i, qt, q_pos, start_n, kv_end, k_cache, v_cache, table_row,
            kv_head * stride_kh, kv_head * stride_vh, stride_kb, stride_kt, stride_vb, stride_vt,
            qk_scale, softcap, window, PAGE, HEAD, HEAD_PAD, BLOCK_N, PAGING, True, USE_SOFTCAP, USE_WINDOW,
            PRECISION)

    # Padding rows saw no key (l = 0): divide them by 1, not 0; they are not stored anyway.
    acc = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    tl.store(out + (q_start + m)[:, None] * stride_ot + q_head * stride_oh + d[None, :],
             acc.to(out.dtype.element_ty), mask=row_ok[:, None] & (d < HEAD)[None, :])


@triton.jit(do_not_specialize=["num_splits", "window", "stride_bt"])
def _decode_kernel(
    q, k_cache, v_cache, out, part_acc, part_m, part_l, block_table, seq_lens, query_start_loc, num_splits,
    qk_scale, softcap, window,
    stride_qt, stride_qh, stride_ot, stride_oh,
    stride_kb, stride_kt, stride_kh, stride_vb, stride_vt, stride_vh, stride_bt,
    GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, PAGE: tl.constexpr, HEAD: tl.constexpr,
    HEAD_PAD: tl.constexpr, BLOCK_N: tl.constexpr, PAGING: tl.constexpr, SPLIT_KV: tl.constexpr,
    USE_SOFTCAP: tl.constexpr, USE_WINDOW: tl.constexpr, PRECISION: tl.constexpr,
):
    seq = tl.program_id(0)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    q_start = tl.load(query_start_loc + seq)
    if tl.load(query_start_loc + seq + 1) - q_start != 1:
        return
    seq_len = tl.load(seq_lens + seq)

    # Keys this split covers: split i takes tiles [i * tiles // num_splits, (i + 1) * tiles //
    # num_splits) of the visible keys, so splits differ by at most one tile (the run time of the
    # slowest one is what counts), and the last split, which holds the newest key, is never empty.
    if USE_WINDOW:
        lo = tl.maximum(seq_len - window, 0) // BLOCK_N * BLOCK_N
    else:
        lo = 0
    tiles = (seq_len - lo + BLOCK_N - 1) // BLOCK_N
    split_start = lo + split * tiles // num_splits * BLOCK_N
    split_end = tl.minimum(lo + (split + 1) * tiles // num_splits * BLOCK_N, seq_len)

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
            kv_head * stride_kh, kv_head * stride_vh, stride_kb, stride_kt, stride_vb, stride_vt,
            qk_scale, softcap, window, PAGE, HEAD, HEAD_PAD, BLOCK_N, PAGING, True, USE_SOFTCAP, USE_WINDOW,
            PRECISION)

    if SPLIT_KV:
        # Unnormalised partial result; an empty split stores acc 0, m -inf, l 0, which the
        # combine step weighs by exp2(-inf) = 0.
        row = (seq * tl.num_programs(1) * GROUP + q_heads) * num_splits + split
        tl.store(part_acc + row[:, None] * HEAD_PAD + d[None, :], acc, mask=row_ok[:, None])
        tl.store(part_m + row, m_i, mask=row_ok)
        tl.store(part_l + row, l_i, mask=row_ok)
    else:
        acc = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
        tl.store(out + q_start * stride_ot + q_heads[:, None] * stride_oh + d[None, :],
                 acc.to(out.dtype.element_ty), mask=row_ok[:, None] & (d < HEAD)[None, :])


@triton.jit(do_not_specialize=["num_splits", "head_size"])
def _combine_kernel(
    out, part_acc, part_m, part_l, query_start_loc, num_splits, head_size, stride_ot, stride_oh,
    HEAD_PAD: tl.constexpr, SPLITS_PAD: tl.constexpr,
):
    # SPLITS_PAD is always MAX_SPLITS and head_size a run-time value, so one binary per padded head
    # size serves every split count and head size: fewer compilations for a kernel this small.
    seq = tl.program_id(0)
    q_head = tl.program_id(1)
    q_start = tl.load(query_start_loc + seq)
    if tl.load(query_start_loc + seq + 1) - q_start != 1:
        return
    row0 = (seq * tl.num_programs(1) + q_head) * num_splits
    sp = tl.arange(0, SPLITS_PAD)
    sp_ok = sp < num_splits
    m = tl.load(part_m + row0 + sp, mask=sp_ok, other=float("-inf"))
    l_ = tl.load(part_l + row0 + sp, mask=sp_ok, other=0.0)
    m_max = tl.max(m, 0)  # the last split is never empty, so the max is finite
    denom = tl.sum(l_ * tl.math.exp2(m - m_max), 0)
    d = tl.arange(0, HEAD_PAD)
    o = tl.zeros([HEAD_PAD], dtype=tl.float32)
    for s in range(0, num_splits):
        w = tl.math.exp2(tl.load(part_m + row0 + s) - m_max)
        o += w * tl.load(part_acc + (row0 + s) * HEAD_PAD + d)
    tl.store(out + q_start * stride_ot + q_head * stride_oh + d, (o / denom).to(out.dtype.element_ty),
             mask=d < head_size)


# --------------------------------------------------------------------------- launch configuration


class PrefillConfig(dict):
    """Launch options of the prefill kernel (keys: block_m, block_n, num_warps, num_stages, and
    optionally paging: 0/1/2 as in `_tile_pages`, otherwise chosen from the page and tile sizes)."""


class DecodeConfig(dict):
    """Launch options of the decode kernel (keys: block_n, num_warps, num_stages, and optionally
    num_splits and paging; without num_splits, `split_count` picks it)."""


def prefill_config(head_pad: int, device: torch.device, masked_extras: bool = False) -> PrefillConfig:
    """masked_extras: a sliding window or soft-cap is on (more live values per score tile)."""
    if device.type == "cpu":  # the interpreter: small tiles so that tests cross many tile edges
        return PrefillConfig(block_m=16, block_n=16, num_warps=4, num_stages=1)
    # Chosen from compile_check.py on sm_90 (no spills, wgmma, cp.async pipelining), not yet timed:
    # 128 x 128 tiles at head 128 take 242-244 registers with Triton 3.6-3.9, one program per SM;
    # with a window and soft-cap they reach 255 and spill, so those take 128 x 64.
    if head_pad <= 128:
        return PrefillConfig(block_m=128, block_n=64 if masked_extras else 128, num_warps=8, num_stages=3)
    return PrefillConfig(block_m=64, block_n=32, num_warps=8, num_stages=3)


def decode_config(head_pad: int, device: torch.device) -> DecodeConfig:
    if device.type == "cpu":  # the interpreter runs programs one by one: no point in splitting
        return DecodeConfig(block_n=16, num_warps=4, num_stages=1, num_splits=1)
    # 32 KB of keys + values per step at head 128; head 256 halves the tile to stay at ~160 registers.
    return DecodeConfig(block_n=64 if head_pad <= 128 else 32, num_warps=4, num_stages=3)


def paging_mode(page: int, block_n: int) -> int:
    """How `_tile_pages` finds a tile's pages: 0 one page per tile, 1 whole pages, 2 per key."""
    if page % block_n == 0:
        return 0
    return 1 if block_n % page == 0 else 2


def programs_per_sm(regs: int, shared: int, num_warps: int, *, regs_per_sm: int = 65536,
                    smem_per_sm: int = 233472, threads_per_sm: int = 2048, max_programs: int = 32) -> int:
    """Programs (CTAs) of one kernel resident on an SM at once, from its compile report.

    Defaults are Hopper's (H100/H200). Registers are allocated per warp in units of 256, and the
    driver reserves 1 KB of shared memory per CTA.
    """
    by_regs = regs_per_sm // (-(-regs * 32 // 256) * 256 * num_warps) if regs else max_programs
    by_smem = smem_per_sm // (shared + 1024)
    return max(1, min(by_regs, by_smem, threads_per_sm // (32 * num_warps), max_programs))


def split_count(pairs: int, num_sms: int, per_sm: int) -> int:
    """Key splits per (sequence, KV head): as many as fill one wave of resident programs.

    More programs than fit at once would run as a second, partial wave whose programs take as long
    as the first ones: fewer, longer splits that all run at once finish sooner.
    """
    return max(1, min(MAX_SPLITS, num_sms * per_sm // max(1, pairs)))


@functools.cache
def _num_sms(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


_resident: dict[tuple, int] = {}


def measured_programs_per_sm(launch: Launch) -> int:
    """programs_per_sm() of the decode kernel as compiled for this device (compiled once per key)."""
    kw = launch.kwargs
    key = (str(kw["q"].device), kw["q"].dtype,
           *sorted((k, v) for k, v in kw.items() if k.isupper() or k in ("num_warps", "num_stages")))
    if key not in _resident:
        kernel = launch.kernel.warmup(grid=launch.grid, **kw)
        if hasattr(kernel, "result"):  # compiled under triton.AsyncCompileMode: a future
            kernel = kernel.result()
        kernel._init_handles()  # loads the binary: sets n_regs
        props = torch.cuda.get_device_properties(kw["q"].device)
        _resident[key] = programs_per_sm(
            kernel.n_regs, kernel.metadata.shared, kw["num_warps"],
            regs_per_sm=getattr(props, "regs_per_multiprocessor", 65536),
            smem_per_sm=getattr(props, "shared_memory_per_multiprocessor", 233472),
            threads_per_sm=getattr(props, "max_threads_per_multi_processor", 2048))
    return _resident[key]


class Launch(NamedTuple):
    """One kernel launch: `kernel[grid](**kwargs)`."""

    kernel: Any
    grid: tuple[int, ...]
    kwargs: dict


def plan(
    q: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    query_start_loc: torch.Tensor,
    out: torch.Tensor,
    *,
    scale: float,
    sliding_window: int | None = None,
    softcap: float = 0.0,
    num_decodes: int | None = None,
    prefill: dict | None = None,
    decode: dict | None = None,
    num_sms: int | None = None,
    per_sm: int | None = None,
) -> list[Launch]:
    """The launches `paged_attention` makes, from shapes alone. On "meta" tensors this is a dry run
    (benchmarks count compilations with it): pass num_sms and per_sm there, which a GPU measures."""
    num_tokens, num_q_heads, head_size = q.shape
    num_seqs = seq_lens.shape[0]
    page, num_kv_heads = key_cache.shape[1], key_cache.shape[2]
    group = num_q_heads // num_kv_heads
    head_pad = max(16, triton.next_power_of_2(head_size))
    if num_tokens == 0 or num_seqs == 0:
        return []
    use_window = sliding_window is not None and sliding_window > 0
    use_softcap = softcap > 0
    common = dict(
        q=q, k_cache=key_cache, v_cache=value_cache, out=out, block_table=block_table, seq_lens=seq_lens,
        query_start_loc=query_start_loc,
        qk_scale=float(scale / softcap if use_softcap else scale * LOG2E), softcap=float(softcap),
        window=int(sliding_window) if use_window else 0,  # type: ignore[arg-type]  # use_window: not None
        stride_qt=q.stride(0), stride_qh=q.stride(1), stride_ot=out.stride(0), stride_oh=out.stride(1),
        stride_kb=key_cache.stride(0), stride_kt=key_cache.stride(1), stride_kh=key_cache.stride(2),
        stride_vb=value_cache.stride(0), stride_vt=value_cache.stride(1), stride_vh=value_cache.stride(2),
        stride_bt=block_table.stride(0),
        GROUP=group, PAGE=page, HEAD=head_size, HEAD_PAD=head_pad, USE_SOFTCAP=use_softcap, USE_WINDOW=use_window,
        # fp32 inputs: full-precision dots (tl.dot would otherwise round to tf32 on GPUs).
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
    )
    # Shapes alone say a batch is pure decode when there is one new token per sequence; the
    # caller's num_decodes (vLLM's metadata holds it on the host) says more: with 0, no decode
    # launch, and the prefill kernel takes any one-token sequence itself.
    launches = []
    has_decodes = num_decodes != 0
    if num_tokens != num_seqs and num_decodes != num_seqs:
        cfg: dict[str, Any] = PrefillConfig(prefill_config(head_pad, q.device, use_window or use_softcap),
                                            **(prefill or {}))
        launches.append(Launch(_prefill_kernel, (num_q_heads, num_tokens // cfg["block_m"] + num_seqs), dict(
            common, num_seqs=num_seqs, BLOCK_M=cfg["block_m"], BLOCK_N=cfg["block_n"],
            PAGING=cfg.get("paging", paging_mode(page, cfg["block_n"])), SKIP_DECODE=has_decodes,
            num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])))
    if not has_decodes:
        return launches
    cfg = DecodeConfig(decode_config(head_pad, q.device), **(decode or {}))
    # Decode keeps one page id per key where a tile spans pages: the per-page form costs it ~20
    # registers (compile report), one program fewer per SM, and those id loads hit L1 anyway.
    paging = paging_mode(page, cfg["block_n"])
    kwargs = dict(common, part_acc=out, part_m=out, part_l=out, num_splits=1,  # partials unused with one split
                  GROUP_PAD=max(16, triton.next_power_of_2(group)), BLOCK_N=cfg["block_n"],
                  PAGING=cfg.get("paging", 2 if paging == 1 else paging),
                  SPLIT_KV=False, num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])
    decode_launch = Launch(_decode_kernel, (num_seqs, num_kv_heads, 1), kwargs)
    splits = cfg.get("num_splits")
    if splits is None:
        per_sm = per_sm or measured_programs_per_sm(decode_launch)
        splits = split_count(num_seqs * num_kv_heads, num_sms or _num_sms(q.device), per_sm)
    if splits == 1:
        return launches + [decode_launch]
    rows = num_seqs * num_q_heads * splits
    part_m = torch.empty(rows, dtype=torch.float32, device=q.device)
    parts = dict(part_acc=torch.empty(rows, head_pad, dtype=torch.float32, device=q.device), part_m=part_m,
                 part_l=torch.empty_like(part_m))
    return launches + [
        Launch(_decode_kernel, (num_seqs, num_kv_heads, splits),
               dict(kwargs, **parts, num_splits=splits, SPLIT_KV=True)),
        Launch(_combine_kernel, (num_seqs, num_q_heads), dict(
            out=out, **parts, query_start_loc=query_start_loc, num_splits=splits, head_size=head_size,
            stride_ot=out.stride(0), stride_oh=out.stride(1), HEAD_PAD=head_pad, SPLITS_PAD=MAX_SPLITS,
            num_warps=4))]


def compile_key(launch: Launch) -> tuple:
    """What Triton compiles one binary for (a close model of its cache key): the kernel, its
    constexprs and launch options, the tensors' dtypes, and for each specialized integer whether
    it is 1 or a multiple of 16."""
    key: list = [launch.kernel.__name__]
    for name, v in sorted(launch.kwargs.items()):
        if name.isupper() or name in ("num_warps", "num_stages"):
            key.append((name, v))
        elif isinstance(v, torch.Tensor):
            key.append((name, v.dtype))
        elif isinstance(v, int) and name not in NO_SPECIALIZE:
            key.append((name, "1" if v == 1 else "16" if v % 16 == 0 else ""))
    return tuple(key)


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
    prefill: dict | None = None,
    decode: dict | None = None,
) -> torch.Tensor:
    """See `vllm_ref_kernels.paged_attention`. `prefill` / `decode` override launch options
    (see `prefill_config` / `decode_config`); benchmarks and tests use them."""
    if out is None:
        out = torch.empty_like(q)
    for name, t in (("q", q), ("out", out), ("key_cache", key_cache), ("value_cache", value_cache)):
        if t.stride(-1) != 1:
            raise ValueError(f"vllm_ref_kernels: {name} needs a contiguous last (head_size) dimension")
    for launch in plan(q, key_cache, value_cache, block_table, seq_lens, query_start_loc, out, scale=scale,
                       sliding_window=sliding_window, softcap=softcap, num_decodes=num_decodes, prefill=prefill,
                       decode=decode):
        launch.kernel[launch.grid](**launch.kwargs)
    return out
