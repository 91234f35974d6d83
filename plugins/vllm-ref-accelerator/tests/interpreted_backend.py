"""The attention backend's classes against a plain attention, with the kernels in Triton's interpreter.

Not collected by itself (no test_ prefix): test_backend.py runs it with pytest in a fresh process
whose environment has TRITON_INTERPRET=1 from the start, because Triton decides "interpret or
compile" when triton.language is first imported, and the outer pytest process may have imported
it already (through vLLM). No engine: the tensors are laid out exactly as vLLM lays out the KV
cache (logical [num_blocks, num_kv_heads, block_size, 2 * head_size], token-major in memory).
"""

import os
from types import SimpleNamespace

import pytest
import torch
import vllm_ref_accelerator
from vllm_ref_accelerator import attention as attn

assert os.environ.get("TRITON_INTERPRET") == "1", "run through test_backend.py"


def _naive(q, k, v, scale, window=None):
    """Causal attention of one sequence whose last len(q) tokens are the queries."""
    n_q, n_k = q.shape[0], k.shape[0]
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = torch.einsum("qhd,khd->hqk", q.double(), k.double()) * scale
    qpos = torch.arange(n_k - n_q, n_k)[:, None]
    kpos = torch.arange(n_k)[None, :]
    mask = kpos <= qpos
    if window:
        mask &= kpos > qpos - window
    s = s.masked_fill(~mask, float("-inf"))
    return torch.einsum("hqk,khd->qhd", s.softmax(-1), v.double())


@pytest.mark.parametrize(("head_size", "window"), [(64, None), (80, 3)])
def test_prefill_then_mixed_step_matches_plain_attention(head_size, window):
    torch.manual_seed(0)
    heads, kv_heads, block, num_blocks = 4, 2, 16, 8
    scale = head_size ** -0.5
    # vLLM's allocation for the LBNHC layout: token-major memory, head-major logical view.
    physical = torch.zeros(num_blocks, block, kv_heads, 2 * head_size)
    kv_cache = physical.permute(0, 2, 1, 3)
    impl = attn.RefAcceleratorAttentionImpl(heads, head_size, scale, kv_heads, None, window, "auto")
    builder = attn.RefAcceleratorMetadataBuilder.__new__(attn.RefAcceleratorMetadataBuilder)
    block_table = torch.tensor([[3, 5, 0], [6, 1, 0]], dtype=torch.int32)

    def step(lens_before, q_lens, k_all, v_all):
        seqs = list(zip(lens_before, q_lens, strict=True))
        slots = []
        for s, (before, n) in enumerate(seqs):
            for pos in range(before, before + n):
                slots.append(int(block_table[s, pos // block]) * block + pos % block)
        qsl = torch.tensor([0] + list(torch.tensor(q_lens).cumsum(0)), dtype=torch.int32)
        common = SimpleNamespace(
            causal=True, num_actual_tokens=sum(q_lens), query_start_loc=qsl, query_start_loc_cpu=qsl,
            num_reqs=len(q_lens), max_query_len=max(q_lens),
            seq_lens=torch.tensor([b + n for b, n in seqs], dtype=torch.int32),
            block_table_tensor=block_table, slot_mapping=torch.tensor(slots, dtype=torch.int64))
        md = builder.build(0, common)
        assert md.num_decodes == sum(n == 1 for n in q_lens)
        new = [slice(b, b + n) for b, n in seqs]
        q = torch.randn(sum(q_lens), heads, head_size)
        k = torch.cat([k_all[s][r] for s, r in enumerate(new)])
        v = torch.cat([v_all[s][r] for s, r in enumerate(new)])
        impl.do_kv_cache_update(None, k, v, kv_cache, md.slot_mapping)
        out = torch.full_like(q, float("nan"))
        impl.forward(None, q, k, v, kv_cache, md, out)
        for s, (b, n) in enumerate(seqs):
            rows = slice(int(qsl[s]), int(qsl[s + 1]))
            want = _naive(q[rows], k_all[s][: b + n], v_all[s][: b + n], scale, window)
            torch.testing.assert_close(out[rows].double(), want, atol=1e-4, rtol=1e-4)

    k_all = [torch.randn(40, kv_heads, head_size) for _ in range(2)]
    v_all = [torch.randn(40, kv_heads, head_size) for _ in range(2)]
    step([0, 0], [20, 7], k_all, v_all)  # two prefills, crossing a block boundary
    step([20, 7], [1, 3], k_all, v_all)  # a decode and a chunked-prefill continuation
    step([21, 10], [1, 1], k_all, v_all)  # pure decode: the decode kernel alone
    assert vllm_ref_accelerator.STATE["layers"] >= 1 and vllm_ref_accelerator.STATE["kernels"] == "triton"


def test_this_process_interprets_the_kernels():
    attn.check_interpreter()  # raises where Triton was imported before TRITON_INTERPRET=1
