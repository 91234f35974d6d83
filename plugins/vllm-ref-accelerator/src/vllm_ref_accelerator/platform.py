"""The platform class: vLLM's CPU platform, plus the simulated device's own attention and limits.

It subclasses CpuPlatform rather than Platform because the device's memory is host memory:
about 85 `current_platform.is_cpu()` branches in vLLM (workers, model runner, distributed
set-up, memory accounting) must keep taking their CPU path, so `_enum` stays CPU and
`device_type` stays "cpu". What makes it a different device is what a vendor changes: its
name, its attention backend, the dtypes/head sizes/block sizes its kernels accept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from vllm.logger import init_logger
from vllm.platforms.cpu import CpuPlatform
from vllm.v1.attention.backends.registry import AttentionBackendEnum, register_backend

from . import PLUGIN

if TYPE_CHECKING:
    from vllm.config import VllmConfig
    from vllm.v1.attention.selector import AttentionSelectorConfig

# The package's logger, with vLLM's info_once / warning_once methods.
logger = init_logger("vllm_ref.accelerator")

PLATFORM_NAME = PLUGIN  # the device is named after the plugin
BACKEND_NAME = "REF_ACCELERATOR_ATTN"
BACKEND_CLS = "vllm_ref_accelerator.attention.RefAcceleratorAttentionBackend"

# What the kernels accept here. bfloat16 is refused: Triton's interpreter computes bf16 dot
# products wrongly. The kernels mask partial head tiles, so any of vLLM's usual head sizes
# up to 256 works.
SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16)
SUPPORTED_HEAD_SIZES: tuple[int, ...] = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)
SUPPORTED_BLOCK_SIZES: tuple[int, ...] = (16, 32, 64, 128)
DEFAULT_BLOCK_SIZE = 32


def register_attention_backend() -> None:
    """Add REF_ACCELERATOR_ATTN to vLLM's backend enum in this process (idempotent).

    vLLM resolves a backend class and checks that its get_name() is an enum member, in every
    process that builds a model, so this runs on import of this module, which every process
    does while resolving current_platform.
    """
    if BACKEND_NAME not in AttentionBackendEnum.__members__:
        register_backend(BACKEND_NAME, BACKEND_CLS)


register_attention_backend()


def _names(values: tuple) -> str:
    return ", ".join(str(v).replace("torch.", "") for v in values)


def unsupported(setting: str, value: object, accepted: tuple) -> ValueError:
    return ValueError(f"{PLATFORM_NAME} platform: {setting} {str(value).replace('torch.', '')} is not "
                      f"supported; supported values: {_names(accepted)}.")


class RefAcceleratorPlatform(CpuPlatform):
    device_name: str = PLATFORM_NAME
    # Ray places one worker per device and looks up Ray accelerator ids, which exist only for
    # accelerator resource types: the simulated devices are advertised to Ray as "GPU"
    # (`ray start --num-gpus=N`). CpuPlatform leaves this empty, which refuses Ray.
    ray_device_key: str = "GPU"
    # Kept from CpuPlatform on purpose (see the module docstring): _enum = CPU,
    # device_type = "cpu", dispatch_key = "CPU", dist_backend = "gloo".

    @property
    def supported_dtypes(self) -> list[torch.dtype]:
        # The first entry is what dtype="auto" picks for a float32 checkpoint.
        return list(SUPPORTED_DTYPES)

    @classmethod
    def get_device_name(cls, device_id: int = 0) -> str:
        return PLATFORM_NAME

    @classmethod
    def check_and_update_config(cls, vllm_config: VllmConfig) -> None:
        """CPU set-up, then this device's limits: a bad setting fails here, at start-up."""
        cache_config = vllm_config.cache_config
        user_block_size = getattr(cache_config, "user_specified_block_size", False)
        super().check_and_update_config(vllm_config)
        if not user_block_size:
            cache_config.block_size = DEFAULT_BLOCK_SIZE
        validate_config(vllm_config)

    @classmethod
    def get_attn_backend_cls(
        cls,
        selected_backend: AttentionBackendEnum | None,
        attn_selector_config: AttentionSelectorConfig,
        num_heads: int | None = None,
    ) -> str:
        c = attn_selector_config
        if c.use_mla or c.use_sparse:
            raise ValueError(f"{PLATFORM_NAME} platform: MLA and sparse attention are not supported; "
                             f"supported: standard multi-head / grouped-query attention.")
        if selected_backend is not None and selected_backend.name != BACKEND_NAME:
            logger.warning_once("%s platform: attention backend %s was requested; this device runs "
                                "only %s.", PLATFORM_NAME, selected_backend.name, BACKEND_NAME)
        if c.head_size not in SUPPORTED_HEAD_SIZES:
            raise unsupported("head size", c.head_size, SUPPORTED_HEAD_SIZES)
        if c.dtype not in SUPPORTED_DTYPES:
            raise unsupported("dtype", c.dtype, SUPPORTED_DTYPES)
        if c.block_size is not None and c.block_size not in SUPPORTED_BLOCK_SIZES:
            raise unsupported("block size", c.block_size, SUPPORTED_BLOCK_SIZES)
        logger.info_once("%s platform: using attention backend %s.", PLATFORM_NAME, BACKEND_NAME)
        return BACKEND_CLS


def validate_config(vllm_config: VllmConfig) -> None:
    """Raise ValueError naming the platform, the setting and the supported values."""
    model_config = vllm_config.model_config
    if model_config is None:
        return
    if model_config.dtype not in SUPPORTED_DTYPES:
        raise unsupported("dtype", model_config.dtype, SUPPORTED_DTYPES)
    if getattr(model_config, "use_mla", False):
        raise ValueError(f"{PLATFORM_NAME} platform: MLA models are not supported; "
                         f"supported: standard multi-head / grouped-query attention.")
    head_size = model_config.get_head_size()
    if head_size not in SUPPORTED_HEAD_SIZES:
        raise unsupported("head size", head_size, SUPPORTED_HEAD_SIZES)
    cache_config = vllm_config.cache_config
    if cache_config.block_size not in SUPPORTED_BLOCK_SIZES:
        raise unsupported("block size", cache_config.block_size, SUPPORTED_BLOCK_SIZES)
    if cache_config.cache_dtype not in ("auto",):
        raise unsupported("kv cache dtype", cache_config.cache_dtype, ("auto",))
