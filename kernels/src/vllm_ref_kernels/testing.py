"""Random paged batches and error measures, shared by the tests, the GPU check and the benchmark.

Every batch is built to catch indexing mistakes, not just arithmetic ones: the block table is a
random permutation of a larger pool, cache rows no sequence owns (unused pages, the tail of each
partial last page) hold NaN, and table entries past a sequence's last page hold an index far
outside the cache. A kernel that reads anything it should not returns NaN or faults.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PagedBatch", "make_batch", "meta_batch", "poisoned_like", "rel_err"]

BAD_PAGE = 1 << 30  # table entries past the last page: out of bounds if ever read


@dataclass
class PagedBatch:
    q: torch.Tensor
    key_cache: torch.Tensor
    value_cache: torch.Tensor
    block_table: torch.Tensor
    seq_lens: torch.Tensor
    query_start_loc: torch.Tensor
    q_lens: list[int]
    lens: list[int]

    def args(self) -> tuple[torch.Tensor, ...]:
        return (self.q, self.key_cache, self.value_cache, self.block_table, self.seq_lens,
                self.query_start_loc)


def make_batch(
    q_lens: list[int],
    seq_lens: list[int],
    num_q_heads: int,
    num_kv_heads: int,
    head_size: int,
    block_size: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    spare_blocks: int = 3,
    poison: bool = True,
) -> PagedBatch:
    """A varlen batch: sequence s has q_lens[s] new tokens and seq_lens[s] keys in total."""
    pairs = zip(q_lens, seq_lens, strict=True)
    if len(q_lens) != len(seq_lens) or any(not 0 <= ql <= sl or sl < 1 for ql, sl in pairs):
        raise ValueError(f"need 0 <= q_len <= seq_len, 1 <= seq_len per sequence; got {q_lens} / {seq_lens}")
    pages = [-(-sl // block_size) for sl in seq_lens]
    max_pages = max(pages)
    num_blocks = sum(pages) + spare_blocks
    shape = (num_blocks, block_size, num_kv_heads, head_size)

    def randn(*size: int) -> torch.Tensor:
        return torch.randn(*size, generator=generator, dtype=torch.float32).to(dtype).to(device)

    key_cache, value_cache = randn(*shape), randn(*shape)
    perm = torch.randperm(num_blocks, generator=generator).tolist()
    block_table = torch.full((len(seq_lens), max_pages), BAD_PAGE if poison else 0, dtype=torch.int32)
    owned = torch.zeros(num_blocks, block_size, dtype=torch.bool)
    used = 0
    for s, (n, sl) in enumerate(zip(pages, seq_lens, strict=True)):
        mine = perm[used:used + n]
        used += n
        block_table[s, :n] = torch.tensor(mine, dtype=torch.int32)
        for j, b in enumerate(mine):
            owned[b, : min(block_size, sl - j * block_size)] = True
    if poison:
        key_cache[~owned.to(device)] = float("nan")
        value_cache[~owned.to(device)] = float("nan")
    q = randn(sum(q_lens), num_q_heads, head_size)
    qsl = torch.tensor([0] + torch.tensor(q_lens).cumsum(0).tolist(), dtype=torch.int32)
    lens = torch.tensor(seq_lens, dtype=torch.int32, device=device)
    return PagedBatch(q, key_cache, value_cache, block_table.to(device), lens, qsl.to(device), list(q_lens),
                      list(seq_lens))


def meta_batch(
    q_lens: list[int],
    seq_lens: list[int],
    num_q_heads: int,
    num_kv_heads: int,
    head_size: int,
    block_size: int,
    dtype: torch.dtype = torch.bfloat16,
) -> PagedBatch:
    """The shapes, strides and dtypes of `make_batch`'s batch with no data ("meta" tensors): what a
    dry run of `triton_ops.plan` needs to list the launches, and so the compilations, of a call."""
    pages = [-(-sl // block_size) for sl in seq_lens]
    cache = (sum(pages) + 3, block_size, num_kv_heads, head_size)

    def meta(*size: int, dt: torch.dtype = dtype) -> torch.Tensor:
        return torch.empty(*size, dtype=dt, device="meta")

    return PagedBatch(meta(sum(q_lens), num_q_heads, head_size), meta(*cache), meta(*cache),
                      meta(len(seq_lens), max(pages), dt=torch.int32), meta(len(seq_lens), dt=torch.int32),
                      meta(len(seq_lens) + 1, dt=torch.int32), list(q_lens), list(seq_lens))


def poisoned_like(t: torch.Tensor) -> torch.Tensor:
    """An output buffer full of NaN: elements a kernel forgets to write stay NaN."""
    return torch.full_like(t, float("nan"))


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in fp64; inf when out holds any NaN or inf."""
    out, ref = out.double().cpu(), ref.double().cpu()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()
