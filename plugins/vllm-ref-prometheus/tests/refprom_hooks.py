"""Run inside vLLM processes: the driver's `call` hooks (the effect check is the plugin's status())."""

from __future__ import annotations

import time
import urllib.request
from typing import Any


async def read_own_endpoint(engine: Any) -> dict[str, Any]:
    """After generation in an embedded AsyncLLM: read the plugin's own /metrics endpoint, then
    stay up long enough for a 1 s Prometheus scrape to see the final numbers."""
    import asyncio
    import os

    url = f"http://{os.environ['REF_PROMETHEUS_LISTEN']}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    await asyncio.sleep(float(os.environ.get("REFPROM_HOLD_S", "4")))
    return {"metrics": text, "t": time.time()}
