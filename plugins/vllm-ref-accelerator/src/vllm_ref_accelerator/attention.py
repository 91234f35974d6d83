"""The simulated device's attention backend: vLLM's backend interface over vllm_ref_kernels.

Three classes, the shape every vLLM attention backend has:
- RefAcceleratorAttentionBackend: what the backend supports, and its KV cache layout;
- RefAcceleratorMetadataBuilder: turns vLLM's per-batch metadata into what the kernels take,
  once per step (shared by all layers);
- RefAcceleratorAttentionImpl: one per layer; writes new keys/values into the paged cache
  (reshape_and_cache) and runs attention over it (paged_attention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import vllm_ref_kernels as kernels
from vllm.v1.attention.backend import (
    AttentionBackend,
    AttentionImpl,
    AttentionMetadataBuilder,
    AttentionType,
    CommonAttentionMetadata,
)

from . import STATE
from .platform import (
    BACKEND_NAME,
    PLATFORM_NAME,
    SUPPORTED_BLOCK_SIZES,
    SUPPORTED_DTYPES,
    SUPPORTED_HEAD_SIZES,
)

try:  # the KV cache layout descriptor; older vLLM uses get_kv_cache_stride_order instead
    from vllm.v1.kv_cache_layout import KVCacheLayout
except ImportError:  # pragma: no cover - depends on the vLLM version
    KVCacheLayout = None  # type: ignore[assignment,misc]

def check_interpreter() -> None:
    """Fail clearly if Triton in this process cannot interpret the kernels.

    Triton chooses interpreter or compiler when each @triton.jit function is defined, including
    its own library functions (tl.zeros, ...) defined when triton.language is first imported.
    register() sets TRITON_INTERPRET=1 before vLLM starts its engine and worker processes, so
    they are right from the start; a model running in a process that imported Triton earlier
    (e.g. VLLM_ENABLE_V1_MULTIPROCESSING=0) would otherwise fail inside the first kernel.
    """
    import triton.language.standard as std
    from triton.runtime.interpreter import InterpretedFunction

    probe = getattr(std, "zeros", None)
    if probe is not None and not isinstance(probe, InterpretedFunction):
        raise RuntimeError(
            f"{PLATFORM_NAME} platform: Triton was imported in this process before TRITON_INTERPRET=1 "
            f"was set, so its kernels cannot run on the simulated device. Set TRITON_INTERPRET=1 in the "
            f"environment before starting (or keep vLLM's default multiprocess engine).")


class RefAcceleratorAttentionBackend(AttentionBackend):
    # Keys/values are written by do_kv_cache_update, before forward.
    forward_includes_kv_cache_update: bool = False
    accept_output_buffer: bool = True
    supported_dtypes: ClassVar[list[torch.dtype]] = list(SUPPORTED_DTYPES)
    supported_kv_cache_dtypes: ClassVar[list] = ["auto"]

    @staticmethod
    def get_name() -> str:
        return BACKEND_NAME

    @staticmethod
    def get_impl_cls() -> type[RefAcceleratorAttentionImpl]:
        return RefAcceleratorAttentionImpl

    @staticmethod
    def get_builder_cls() -> type[RefAcceleratorMetadataBuilder]:
        return RefAcceleratorMetadataBuilder

    @staticmethod
    def get_supported_kernel_block_sizes(kv_cache_spec=None) -> list:
        return list(SUPPORTED_BLOCK_SIZES)

    @classmethod
    def get_supported_head_sizes(cls) -> list[int]:
        return list(SUPPORTED_HEAD_SIZES)

    @classmethod
    def supports_sliding_window(cls) -> bool:
        return True

    # vLLM hands each layer a logical [num_blocks, num_kv_heads, block_size, 2 * head_size]
    # view of its cache; the layout says how it sits in memory. Token-major blocks
    # ([num_blocks, block_size, num_kv_heads, ...]) are what the kernels index.
    @classmethod
    def supported_kv_cache_layouts(cls):
        return None if KVCacheLayout is None else (KVCacheLayout.LBNHC,)

    @staticmethod
    def get_kv_cache_shape(num_blocks: int, block_size: int, num_kv_heads: int, head_size: int,
                           cache_dtype_str: str = "auto") -> tuple[int, ...]:
        return (num_blocks, num_kv_heads, block_size, 2 * head_size)

    @staticmethod
    def get_kv_cache_stride_order(include_num_layers_dimension: bool = False) -> tuple[int, ...]:
        return (0, 1, 3, 2, 4) if include_num_layers_dimension else (0, 2, 1, 3)


def split_kv_cache(kv_cache: torch.Tensor, head_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Key and value caches, each [num_blocks, block_size, num_kv_heads, head_size] (views)."""
    return kv_cache.transpose(1, 2).split(head_size, dim=-1)


@dataclass
class RefAcceleratorMetadata:
    num_actual_tokens: int  # tokens of this step, without padding
    query_start_loc: torch.Tensor  # int32 [num_seqs + 1]
    seq_lens: torch.Tensor  # int32 [num_seqs], context including this step's tokens
    block_table: torch.Tensor  # int32 [num_seqs, max_blocks]
    slot_mapping: torch.Tensor  # int64 [num_tokens]
    num_decodes: int  # sequences with exactly one new token: lets the kernels skip a launch


class RefAcceleratorMetadataBuilder(AttentionMetadataBuilder[RefAcceleratorMetadata]):
    # Not removable: vLLM declares AttentionMetadataBuilder.__init__ abstract, so a builder that
    # inherits it cannot be instantiated ("abstract method __init__").
    def __init__(self, kv_cache_spec, layer_names: list[str], vllm_config, device: torch.device):
        super().__init__(kv_cache_spec, layer_names, vllm_config, device)

    def build(self, common_prefix_len: int, common_attn_metadata: CommonAttentionMetadata,
              fast_build: bool = False) -> RefAcceleratorMetadata:
        m = common_attn_metadata
        if m.causal is not True:
            raise NotImplementedError(f"{PLATFORM_NAME} platform: only causal attention is supported.")
        if m.max_query_len == 1:
            num_decodes = m.num_reqs
        else:  # counted once per step on the host copy vLLM keeps, never read back from the device
            q = m.query_start_loc_cpu[: m.num_reqs + 1]
            num_decodes = int((q[1:] - q[:-1] == 1).sum())
        return RefAcceleratorMetadata(
            num_actual_tokens=m.num_actual_tokens,
            query_start_loc=m.query_start_loc,
            seq_lens=m.seq_lens,
            block_table=m.block_table_tensor,
            slot_mapping=m.slot_mapping,
            num_decodes=num_decodes,
        )


# The bound of AttentionImpl's type variable is vLLM's empty AttentionMetadata class, which
# vLLM's own metadata classes (CPUAttentionMetadata among them) do not subclass either.
class RefAcceleratorAttentionImpl(AttentionImpl[RefAcceleratorMetadata]):  # type: ignore[type-var]
    def __init__(
        self,
        num_heads: int,
        head_size: int,
        scale: float,
        num_kv_heads: int | None = None,
        alibi_slopes: list[float] | None = None,
        sliding_window: int | None = None,
        kv_cache_dtype: str = "auto",
        logits_soft_cap: float | None = None,
        attn_type: str = AttentionType.DECODER,
        kv_sharing_target_layer_name: str | None = None,
        sinks: torch.Tensor | None = None,
    ) -> None:
        refused = {"ALiBi": alibi_slopes is not None, "attention sinks": sinks is not None,
                   f"attention type {attn_type}": attn_type != AttentionType.DECODER}
        for what, present in refused.items():
            if present:
                raise NotImplementedError(f"{PLATFORM_NAME} platform: {what} is not supported by "
                                          f"{BACKEND_NAME} (decoder self-attention only).")
        self.num_heads = num_heads
        self.head_size = head_size
        self.scale = float(scale)
        self.num_kv_heads = num_kv_heads or num_heads
        self.sliding_window = sliding_window
        self.softcap = float(logits_soft_cap or 0.0)
        self.kv_cache_dtype = kv_cache_dtype
        self.kv_sharing_target_layer_name = kv_sharing_target_layer_name
        self.attn_type = attn_type
        check_interpreter()
        STATE["layers"] += 1

    def do_kv_cache_update(self, layer, key: torch.Tensor, value: torch.Tensor, kv_cache: torch.Tensor,
                           slot_mapping: torch.Tensor) -> None:
        key_cache, value_cache = split_kv_cache(kv_cache, self.head_size)
        n = slot_mapping.shape[0]
        kernels.reshape_and_cache(key[:n], value[:n], key_cache, value_cache, slot_mapping)

    def forward(
        self,
        layer,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        kv_cache: torch.Tensor,
        attn_metadata: RefAcceleratorMetadata | None,
        output: torch.Tensor,
        output_scale: torch.Tensor | None = None,
        output_block_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if output_scale is not None or output_block_scale is not None:
            raise NotImplementedError(f"{PLATFORM_NAME} platform: fused output quantization is not "
                                      f"supported.")
        if attn_metadata is None:  # the profiling run: no cache yet
            return output
        n = attn_metadata.num_actual_tokens
        key_cache, value_cache = split_kv_cache(kv_cache, self.head_size)
        kernels.paged_attention(
            query[:n], key_cache, value_cache, attn_metadata.block_table, attn_metadata.seq_lens,
            attn_metadata.query_start_loc, scale=self.scale, sliding_window=self.sliding_window,
            softcap=self.softcap, out=output[:n], num_decodes=attn_metadata.num_decodes,
        )
        if STATE["kernels"] is None:
            STATE["kernels"] = kernels.implementation(query.device)
        return output
