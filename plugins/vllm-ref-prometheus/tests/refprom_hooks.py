"""Run inside vLLM processes: probe checks (cheap, read-only) and the driver's `call` hooks."""

from __future__ import annotations

import sys
import time
import urllib.request
from typing import Any


def logger_built() -> bool:
    """True where vLLM built this plugin's stat logger in this process."""
    mod = sys.modules.get("vllm_ref_prometheus.logger")
    return bool(mod is not None and getattr(mod, "INSTANCES", 0) > 0)


async def read_own_endpoint(engine: Any) -> dict[str, Any]:
    """After generation in an embedded AsyncLLM: read the plugin's own /metrics endpoint, then
    stay up long enough for a 1 s Prometheus scrape to see the final numbers."""
    import asyncio
    import os

    url = f"http://{os.environ['VLLM_REF_PROMETHEUS_LISTEN']}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    await asyncio.sleep(float(os.environ.get("REFPROM_HOLD_S", "4")))
    return {"metrics": text, "t": time.time()}
