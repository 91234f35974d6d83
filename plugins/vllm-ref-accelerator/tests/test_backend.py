"""The platform's limits and its attention backend's registration and refusals. No engine.

The backend against a plain attention runs in its own process (interpreted_backend.py): see there.
"""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from vllm.v1.attention.backends.registry import AttentionBackendEnum
from vllm_ref_accelerator import attention as attn
from vllm_ref_accelerator import platform as plat


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


def test_impl_refuses_features_the_kernels_lack():
    with pytest.raises(NotImplementedError, match="ALiBi"):
        attn.RefAcceleratorAttentionImpl(2, 64, 0.1, 1, [0.5, 0.25], None, "auto")
    with pytest.raises(NotImplementedError, match="attention type encoder_only"):
        attn.RefAcceleratorAttentionImpl(2, 64, 0.1, 1, None, None, "auto", attn_type="encoder_only")


def test_backend_matches_plain_attention_in_the_interpreter():
    """tests/interpreted_backend.py, in a fresh pytest process with TRITON_INTERPRET=1."""
    here = Path(__file__).parent
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(here / "interpreted_backend.py")], env=env, capture_output=True, text=True,
                       timeout=600, cwd=here.parents[2])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "3 passed" in r.stdout


def test_a_process_that_imported_triton_first_is_refused_clearly():
    code = ("import os, triton.language\n"
            "os.environ['TRITON_INTERPRET'] = '1'\n"
            "from vllm_ref_accelerator.attention import RefAcceleratorAttentionImpl as Impl\n"
            "Impl(2, 64, 0.125, 1, None, None, 'auto')\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "ref_accelerator platform: Triton was imported in this process before TRITON_INTERPRET=1" in r.stderr
