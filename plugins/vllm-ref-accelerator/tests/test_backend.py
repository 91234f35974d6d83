"""The platform's limits and its attention backend, against a plain attention computed here.

No engine: the backend's classes run on tensors laid out exactly as vLLM lays out the KV cache
(logical [num_blocks, num_kv_heads, block_size, 2 * head_size], token-major in memory), with
the kernels in Triton's interpreter.
"""

import os
from types import SimpleNamespace

import pytest
import torch

os.environ["TRITON_INTERPRET"] = "1"  # before vllm_ref_kernels decorates its kernels

from vllm.v1.attention.backends.registry import AttentionBackendEnum  # noqa: E402
from vllm_ref_accelerator import attention as attn  # noqa: E402
from vllm_ref_accelerator import platform as plat  # noqa: E402


def test_backend_is_a_registered_enum_member_and_registration_is_idempotent():
    plat.register_attention_backend()
    member = AttentionBackendEnum[plat.BACKEND_NAME]
    assert member.get_class() is attn.RefAcceleratorAttentionBackend
    assert attn.RefAcceleratorAttentionBackend.get_name() == plat.BACKEND_NAME


def _config(dtype=torch.float32, head_size=64, block_size=32, cache_dtype="auto", use_mla=False):
    model = SimpleNamespace(dtype=dtype, use_mla=use_mla, get_head_size=lambda: head_size)
    return SimpleNamespace(model_config=model,
                           cache_config=SimpleNamespace(block_size=block_size, cache_dtype=cache_dtype))


def test_a_supported_configuration_passes():
    plat.validate_config(_config())
    plat.validate_config(_config(dtype=torch.float16, head_size=128, block_size=16))


@pytest.mark.parametrize(("kwargs", "setting", "accepted"), [
    ({"dtype": torch.bfloat16}, "dtype bfloat16", "float32, float16"),
    ({"head_size": 48}, "head size 48", "32, 64, 80"),
    ({"block_size": 48}, "block size 48", "16, 32, 64, 128"),
    ({"cache_dtype": "fp8"}, "kv cache dtype fp8", "auto"),
])
def test_unsupported_settings_name_the_platform_and_the_supported_values(kwargs, setting, accepted):
    with pytest.raises(ValueError) as err:
        plat.validate_config(_config(**kwargs))
    msg = str(err.value)
    assert msg.startswith("ref_accelerator platform:") and setting in msg and accepted in msg


def _selector(**over):
    base = dict(head_size=64, dtype=torch.float32, block_size=None, use_mla=False, use_sparse=False)
    return SimpleNamespace(**{**base, **over})


def test_attention_selection_returns_this_backend_and_refuses_what_it_cannot_run():
    p = plat.RefAcceleratorPlatform
    assert p.get_attn_backend_cls(None, _selector()) == plat.BACKEND_CLS
    assert p.get_attn_backend_cls(None, _selector(block_size=32)) == plat.BACKEND_CLS
    with pytest.raises(ValueError, match="head size 100 is not supported"):
        p.get_attn_backend_cls(None, _selector(head_size=100))
    with pytest.raises(ValueError, match="MLA"):
        p.get_attn_backend_cls(None, _selector(use_mla=True))


def test_platform_keeps_the_cpu_identity_vllm_relies_on():
    from vllm.platforms.interface import PlatformEnum

    p = plat.RefAcceleratorPlatform()
    assert p._enum == PlatformEnum.CPU and p.device_type == "cpu" and p.is_cpu()
    assert p.device_name == "ref_accelerator" and p.supported_dtypes == [torch.float32, torch.float16]


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
            causal=True, num_actual_tokens=sum(q_lens), query_start_loc=qsl,
            seq_lens=torch.tensor([b + n for b, n in seqs], dtype=torch.int32),
            block_table_tensor=block_table, slot_mapping=torch.tensor(slots, dtype=torch.int64))
        md = builder.build(0, common)
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
    assert attn.USAGE["attention_calls"] >= 2 and attn.USAGE["implementation"] == "triton"


def test_impl_refuses_features_the_kernels_lack():
    with pytest.raises(NotImplementedError, match="ALiBi"):
        attn.RefAcceleratorAttentionImpl(2, 64, 0.1, 1, [0.5, 0.25], None, "auto")
    with pytest.raises(NotImplementedError, match="attention type encoder_only"):
        attn.RefAcceleratorAttentionImpl(2, 64, 0.1, 1, None, None, "auto", attn_type="encoder_only")
