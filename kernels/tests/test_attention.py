"""Triton paged attention against the PyTorch reference, on fresh random inputs every run.

Without a GPU these run on Triton's interpreter (see conftest.py). Set REF_KERNELS_SEED to
replay a failing run: the seed is in every failure message.
"""

from __future__ import annotations

import os
import random
import zlib

import pytest
import torch
import vllm_ref_kernels as K
from vllm_ref_kernels import reference, triton_ops
from vllm_ref_kernels.testing import make_batch, poisoned_like, rel_err

SEED = int(os.environ.get("REF_KERNELS_SEED", random.randrange(1 << 31)))
TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def gen(*salt: object) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr((SEED, *salt)).encode()))


def check(batch, device, *, window=None, softcap=0.0, tol=None, **launch) -> None:
    scale = batch.q.shape[-1] ** -0.5
    ref = reference.paged_attention(*batch.args(), scale=scale, sliding_window=window, softcap=softcap)
    out = poisoned_like(batch.q)
    got = triton_ops.paged_attention(*batch.args(), scale=scale, sliding_window=window, softcap=softcap,
                                     out=out, **launch)
    assert got is out
    err = rel_err(out, ref)
    limit = tol or TOL[batch.q.dtype]
    assert err < limit, f"rel err {err:.3g} >= {limit} (seed {SEED}; q_lens {batch.q_lens} lens {batch.lens})"


# name: q_lens, seq_lens, (Hq, Hkv), head_size, block_size, dtype, window, softcap.
# "window-mixed" puts the oldest visible key on the last row of a 16-key tile (decode 44 - 13,
# prefill rows at 27 + 16k - 13 + 1): an off-by-one in where the window's loop starts shows.
CASES = {
    "decode-gqa4": ([1, 1, 1, 1], [1, 17, 64, 100], (8, 2), 64, 16, torch.float32, None, 0.0),
    "decode-mqa8-fp16": ([1, 1, 1], [5, 48, 129], (8, 1), 128, 32, torch.float16, None, 0.0),
    "prefill-mha": ([37, 16, 5], [37, 16, 5], (2, 2), 64, 16, torch.float32, None, 0.0),
    "chunked-prefill": ([20, 7], [50, 7], (4, 1), 64, 16, torch.float16, None, 0.0),
    "mixed-gqa4-d80": ([1, 9, 1, 30], [33, 9, 70, 45], (4, 1), 80, 16, torch.float16, None, 0.0),
    "window-mixed": ([1, 24, 1, 1, 1, 32], [90, 40, 9, 45, 44, 59], (4, 2), 64, 16, torch.float32, 13, 0.0),
    "window-wide": ([40], [40], (2, 1), 64, 32, torch.float32, 100, 0.0),
    "softcap-mixed": ([1, 12], [60, 30], (4, 2), 64, 16, torch.float16, None, 2.0),
    "window-softcap-gqa8": ([3, 1], [50, 50], (8, 1), 96, 16, torch.float32, 20, 5.0),
    "block128": ([1, 19], [200, 150], (4, 2), 64, 128, torch.float32, None, 0.0),
    "block64-d32": ([2, 1], [70, 65], (4, 4), 32, 64, torch.float16, None, 0.0),
    # Page sizes that are not powers of two: 24 and 16-key tiles divide neither way (one page id
    # per key); 48 holds three whole tiles (one page id per tile).
    "block24": ([1, 30], [61, 50], (4, 2), 64, 24, torch.float32, None, 0.0),
    "block48-window": ([1, 20], [100, 99], (4, 2), 64, 48, torch.float16, 40, 0.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name: str, device: str) -> None:
    q_lens, seq_lens, (hq, hkv), d, bs, dtype, window, softcap = CASES[name]
    batch = make_batch(q_lens, seq_lens, hq, hkv, d, bs, dtype, device, gen(name))
    check(batch, device, window=window, softcap=softcap)


@pytest.mark.parametrize("head_size", [112, 160, 192, 224, 256])
def test_other_head_sizes(head_size: int, device: str) -> None:
    # One decode and one prefill sequence per size: padded (non power of two) head dims.
    batch = make_batch([1, 5], [21, 18], 2, 1, head_size, 16, torch.float32, device, gen(head_size))
    check(batch, device)


@pytest.mark.parametrize(("splits", "window", "softcap"), [(1, None, 0.0), (3, None, 0.0), (8, None, 0.0),
                                                       (3, 21, 4.0)])
def test_decode_splits(splits: int, window: int | None, softcap: float, device: str) -> None:
    # 8 splits over a 10-key sequence leaves most splits empty; the combine must ignore them.
    # With a window the slices cover only the keys inside it (48 - 21 = 27 starts off a tile edge).
    batch = make_batch([1, 1, 1], [10, 48, 96], 4, 2, 64, 16, torch.float32, device, gen("splits", splits))
    check(batch, device, window=window, softcap=softcap, decode={"num_splits": splits})


def test_num_decodes_hint_chooses_the_launches(device: str) -> None:
    # vLLM knows on the host how many sequences decode: 0 means no decode (and no combine) launch,
    # and one-token sequences, if any, are then served by the prefill kernel.
    batch = make_batch([7, 1, 12, 1], [30, 40, 12, 9], 4, 2, 64, 16, torch.float32, device, gen("hint"))
    launches = triton_ops.plan(*batch.args(), batch.q, scale=0.125, num_decodes=0)
    assert [x.kernel for x in launches] == [triton_ops._prefill_kernel]
    check(batch, device, num_decodes=0)
    both = triton_ops.plan(*batch.args(), batch.q, scale=0.125, num_decodes=2, decode={"num_splits": 3})
    assert [x.kernel for x in both] == [triton_ops._prefill_kernel, triton_ops._decode_kernel,
                                        triton_ops._combine_kernel]
    check(batch, device, num_decodes=2)
    decode_only = make_batch([1, 1], [30, 9], 4, 2, 64, 16, torch.float32, device, gen("hint-decode"))
    one = triton_ops.plan(*decode_only.args(), decode_only.q, scale=0.125, num_decodes=2)
    assert [x.kernel for x in one] == [triton_ops._decode_kernel]  # one split: no combine either


def test_split_count_fills_one_wave() -> None:
    # Programs per SM from compile reports (Hopper: 64K registers, 228 KB shared memory per SM):
    # decode at 117-128 registers and 38 KB -> 4; at 96 -> 5; prefill 128 x 128 at 244 and 161 KB -> 1.
    assert triton_ops.programs_per_sm(117, 39168, 4) == 4
    assert triton_ops.programs_per_sm(128, 39168, 4) == 4
    assert triton_ops.programs_per_sm(96, 39168, 4) == 5
    assert triton_ops.programs_per_sm(244, 164864, 8) == 1
    assert triton_ops.programs_per_sm(32, 100_000, 4) == 2  # shared memory bound
    # H200 (132 SMs) x 4: 528 programs at once. B64 x Hkv 8 = 512 pairs already fill it: no split;
    # B8 x 8 = 64 pairs -> 8 splits (512 programs, one wave); a single sequence -> the cap, 64.
    assert triton_ops.split_count(64 * 8, 132, 4) == 1
    assert triton_ops.split_count(256 * 8, 132, 4) == 1
    assert triton_ops.split_count(8 * 8, 132, 4) == 8
    assert triton_ops.split_count(1 * 8, 132, 4) == 64


def test_sequences_without_new_tokens_are_skipped(device: str) -> None:
    # Padding sequences (q_len 0) own no output rows; the kernels must step over them.
    # (num_tokens != num_seqs here: equal counts would declare a pure decode batch, see the API.)
    batch = make_batch([0, 3, 1, 0, 2], [10, 20, 30, 5, 2], 4, 2, 64, 16, torch.float32, device, gen("empty"))
    check(batch, device)


def test_prefill_tile_wider_than_page(device: str) -> None:
    # A key tile of 32 spans two 16-key pages: the gather must take each key from its own page.
    batch = make_batch([30, 1], [45, 40], 4, 2, 64, 16, torch.float32, device, gen("wide"))
    check(batch, device, prefill={"block_m": 16, "block_n": 32}, decode={"block_n": 32})


@pytest.mark.parametrize(("block_n", "window", "softcap"), [(128, None, 0.0), (64, 50, 3.0)])
def test_gpu_tile_sizes(block_n: int, window: int | None, softcap: float, device: str) -> None:
    # The tiles a GPU launches (128 x 128 prefill, 128 x 64 with window and soft-cap, 64-key
    # decode), here on the interpreter too: a 150-token prefill spans two query tiles, the first
    # query tile's diagonal lies inside one key tile, the decode slices span several pages.
    batch = make_batch([150, 1, 1], [170, 200, 7], 4, 1, 64, 16, torch.float16, device, gen("gpu-tiles"))
    check(batch, device, window=window, softcap=softcap, prefill={"block_m": 128, "block_n": block_n},
          decode={"block_n": 64, "num_splits": 2})


@pytest.mark.parametrize("paging", [0, 1, 2])
def test_page_id_modes(paging: int, device: str) -> None:
    # Each way of finding a tile's pages, forced on both kernels: one id per tile (pages of 64
    # holding two 32-key tiles), one per page (32-key tiles over 16-key pages), one per key.
    page = 64 if paging == 0 else 16
    batch = make_batch([40, 1, 1], [75, 99, 3], 4, 2, 64, page, torch.float32, device, gen("paging", paging))
    check(batch, device, window=30, prefill={"block_m": 16, "block_n": 32, "paging": paging},
          decode={"block_n": 32, "paging": paging, "num_splits": 3})


def test_strided_views_like_vllm(device: str) -> None:
    # vLLM hands q as a view into the fused qkv projection and each cache as one half of a
    # [num_blocks, 2, ...] tensor: neither is contiguous outside the head dimension.
    b = make_batch([1, 6], [30, 6], 4, 2, 64, 16, torch.float32, device, gen("views"))
    qkv = torch.randn(b.q.shape[0], 8, 64, generator=gen("qkv")).to(device)
    qkv[:, :4] = b.q
    kv = torch.stack([b.key_cache, b.value_cache], dim=1)
    q, kc, vc = qkv[:, :4], kv[:, 0], kv[:, 1]
    assert not q.is_contiguous() and not kc.is_contiguous()
    scale = 0.125
    ref = reference.paged_attention(*b.args(), scale=scale)
    out = poisoned_like(b.q)
    triton_ops.paged_attention(q, kc, vc, b.block_table, b.seq_lens, b.query_start_loc, scale=scale, out=out)
    assert rel_err(out, ref) < TOL[torch.float32], f"seed {SEED}"


def test_public_api_runs_triton_and_writes_out(device: str) -> None:
    batch = make_batch([1, 4], [20, 9], 4, 2, 64, 16, torch.float32, device, gen("api"))
    assert K.implementation(batch.q.device) == "triton"
    out = poisoned_like(batch.q)
    got = K.paged_attention(*batch.args(), scale=0.125, sliding_window=-1, out=out)  # -1: no window
    assert got is out
    assert rel_err(out, reference.paged_attention(*batch.args(), scale=0.125)) < TOL[torch.float32]


def test_reference_matches_sdpa() -> None:
    # The reference itself, against torch SDPA on a contiguous copy of the same keys.
    g = gen("sdpa")
    b = make_batch([6, 1], [10, 7], 4, 2, 32, 4, torch.float64, "cpu", g)
    out = reference.paged_attention(*b.args(), scale=0.3)
    for s, (ql, sl) in enumerate(zip(b.q_lens, b.lens, strict=True)):
        pages = b.block_table[s, : -(-sl // 4)].long()
        k = b.key_cache[pages].reshape(-1, 2, 32)[:sl].transpose(0, 1)
        v = b.value_cache[pages].reshape(-1, 2, 32)[:sl].transpose(0, 1)
        start = int(b.query_start_loc[s])
        q = b.q[start:start + ql].transpose(0, 1)
        mask = torch.ones(ql, sl, dtype=torch.bool).tril(diagonal=sl - ql)
        want = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, scale=0.3, enable_gqa=True).transpose(0, 1)
        torch.testing.assert_close(out[start:start + ql], want)


def test_reference_window_and_softcap_by_hand() -> None:
    # One query at position 4 of 5 keys, window 2: it sees keys 3 and 4 only.
    q = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    keys = torch.tensor([[9.0, 0], [9, 0], [9, 0], [1, 0], [2, 0]], dtype=torch.float64)
    vals = torch.arange(5, dtype=torch.float64)[:, None].repeat(1, 2)
    kc, vc = keys.view(5, 1, 1, 2), vals.view(5, 1, 1, 2)  # one-key pages
    table = torch.tensor([[0, 1, 2, 3, 4]], dtype=torch.int32)
    args = (q, kc, vc, table, torch.tensor([5], dtype=torch.int32), torch.tensor([0, 1], dtype=torch.int32))
    out = reference.paged_attention(*args, scale=1.0, sliding_window=2, softcap=1.5)
    s = 1.5 * torch.tanh(torch.tensor([1.0, 2.0], dtype=torch.float64) / 1.5)
    p = torch.softmax(s, 0)
    assert out[0, 0, 0].item() == pytest.approx((p * torch.tensor([3.0, 4.0])).sum().item())
