"""The platform class. It builds on vLLM's CPU platform, so it runs on any machine; a real device
would subclass vllm.platforms.interface.Platform and fill in what the CPU platform provides.
"""

from __future__ import annotations

import logging

from vllm.platforms.cpu import CpuPlatform

logger = logging.getLogger("vllm.example_platform")


class MyAcceleratorPlatform(CpuPlatform):
    # Keep CpuPlatform's _enum (CPU) and device_type ("cpu"): vLLM asserts them for host memory
    # and takes its CPU code paths from is_cpu(). device_name is free: it shows in messages.
    device_name = "example_platform"

    @classmethod
    def get_device_name(cls, device_id: int = 0) -> str:
        return "example_platform"

    @classmethod
    def get_attn_backend_cls(cls, selected_backend, attn_selector_config, num_heads=None) -> str:
        # The place to return your own attention backend's class path. This example keeps vLLM's
        # CPU attention; see vllm-ref-accelerator for a backend of its own.
        path = super().get_attn_backend_cls(selected_backend, attn_selector_config, num_heads)
        logger.info("example_platform: attention backend %s", path)
        return path
