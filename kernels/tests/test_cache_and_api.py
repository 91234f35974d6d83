"""The KV-cache write, the implementation switch and the input checks."""

from __future__ import annotations

import sys

import pytest
import torch
import vllm_ref_kernels as K
from vllm_ref_kernels import reference, triton_ops


@pytest.mark.parametrize(("dtype", "block_size", "head_size"),
                         [(torch.float32, 16, 64), (torch.float16, 32, 80)])
def test_reshape_and_cache_matches_reference(dtype: torch.dtype, block_size: int, head_size: int,
                                             device: str) -> None:
    g = torch.Generator().manual_seed(torch.seed() & 0x7FFFFFFF)
    num_blocks, hkv, n = 6, 2, 11
    key = torch.randn(n, hkv, head_size, generator=g).to(dtype).to(device)
    value = torch.randn(n, hkv, head_size, generator=g).to(dtype).to(device)
    slots = torch.randperm(num_blocks * block_size, generator=g)[:n]
    slots[[2, 7]] = -1  # padding tokens
    slots = slots.to(device)
    want_k = torch.full((num_blocks, block_size, hkv, head_size), float("nan"), dtype=dtype, device=device)
    want_v, got_k, got_v = want_k.clone(), want_k.clone(), want_k.clone()
    reference.reshape_and_cache(key, value, want_k, want_v, slots)
    triton_ops.reshape_and_cache(key, value, got_k, got_v, slots)
    # Written slots equal the inputs, and every other slot is untouched (still NaN).
    torch.testing.assert_close(got_k, want_k, equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(got_v, want_v, equal_nan=True, rtol=0, atol=0)
    assert int((~got_k.isnan()).all(-1).all(-1).sum()) == n - 2
    b, o = int(slots[0]) // block_size, int(slots[0]) % block_size
    assert torch.equal(got_k[b, o], key[0])


def test_public_reshape_and_cache_uses_triton(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(triton_ops, "reshape_and_cache", lambda *a: calls.append(a))
    k = torch.zeros(3, 1, 32, device=device)
    cache = torch.zeros(2, 16, 1, 32, device=device)
    K.reshape_and_cache(k, k, cache, cache.clone(), torch.arange(3, device=device))
    assert len(calls) == 1


def test_implementation_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REF_KERNELS_IMPL", "reference")
    assert K.implementation("cpu") == "reference"
    monkeypatch.setenv("REF_KERNELS_IMPL", "auto")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert K.implementation("cpu") == "reference"  # no CPU back end in Triton: the interpreter is opt-in
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert K.implementation("cpu") == "triton"
    monkeypatch.setenv("REF_KERNELS_IMPL", "cuda-graphs")
    with pytest.raises(ValueError, match="IMPL='cuda-graphs' is not one of auto, triton, reference"):
        K.implementation("cpu")


def test_reference_fallback_without_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where triton is not installed, "auto" falls back to the reference instead of failing.
    monkeypatch.setitem(sys.modules, "vllm_ref_kernels.triton_ops", None)
    monkeypatch.delattr(K, "triton_ops", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert K.implementation("cpu") == "reference"
    q = torch.randn(2, 2, 32)
    cache = torch.randn(1, 16, 1, 32)
    table, lens, qsl = torch.zeros(1, 1, dtype=torch.int32), torch.tensor([2]), torch.tensor([0, 2])
    out = K.paged_attention(q, cache, cache, table, lens, qsl, scale=0.2)
    torch.testing.assert_close(out, reference.paged_attention(q, cache, cache, table, lens, qsl, scale=0.2))


def test_missing_triton_is_one_warning_or_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "vllm_ref_kernels.triton_ops", None)
    monkeypatch.delattr(K, "triton_ops", raising=False)
    monkeypatch.setattr(K, "_warned", [])
    with caplog.at_level("WARNING", logger="vllm_ref.kernels"):
        assert K.implementation("cuda") == "reference"
        assert K.implementation("cuda") == "reference"
    assert [r.getMessage() for r in caplog.records if "triton cannot be imported" in r.getMessage()] != []
    assert len(caplog.records) == 1
    monkeypatch.setenv("REF_KERNELS_IMPL", "triton")
    with pytest.raises(RuntimeError, match="REF_KERNELS_IMPL=triton, but triton cannot be imported"):
        K.implementation("cpu")


def _args(**change):
    i32 = torch.int32
    args = dict(q=torch.zeros(3, 4, 64), key_cache=torch.zeros(2, 16, 2, 64),
                value_cache=torch.zeros(2, 16, 2, 64), block_table=torch.zeros(2, 2, dtype=i32),
                seq_lens=torch.tensor([1, 2], dtype=i32), query_start_loc=torch.tensor([0, 1, 3], dtype=i32))
    args.update(change)
    return args


@pytest.mark.parametrize(("change", "message"), [
    (dict(q=torch.zeros(3, 3, 64)), "num_q_heads 3 is not a multiple of num_kv_heads 2"),
    (dict(q=torch.zeros(3, 4, 32)), "q must be .num_tokens, num_q_heads, head_size. with the cache"),
    (dict(value_cache=torch.zeros(2, 16, 1, 64)), "key_cache and value_cache must both be"),
    (dict(key_cache=torch.zeros(2, 16, 2, 512), value_cache=torch.zeros(2, 16, 2, 512),
          q=torch.zeros(3, 4, 512)), "head_size 512 is not supported"),
    (dict(query_start_loc=torch.tensor([0, 3], dtype=torch.int32)), "need query_start_loc .num_seqs . 1."),
])
def test_bad_input_is_named(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match="vllm_ref_kernels: " + message):
        K.paged_attention(**_args(**change), scale=1.0)


def test_bad_out_shape() -> None:
    with pytest.raises(ValueError, match="out must have q's shape"):
        K.paged_attention(**_args(), scale=1.0, out=torch.zeros(3, 4, 32))
