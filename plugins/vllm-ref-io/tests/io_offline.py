"""Run in the offline front end by the harness (`call="io_offline:encode"`): every request of
the JSON file named by REF_IO_TEST_REQUESTS through `LLM.encode(..., pooling_task="plugin")`,
one at a time; a refused one gives {"error": message}."""

from __future__ import annotations

import json
import os
from typing import Any


def encode(llm: Any) -> list[dict[str, Any]]:
    with open(os.environ["REF_IO_TEST_REQUESTS"]) as f:
        requests = json.load(f)
    results = []
    for data in requests:
        try:
            [out] = llm.encode({"data": data}, pooling_task="plugin", use_tqdm=False)
            results.append(out.outputs)
        except ValueError as exc:
            results.append({"error": str(exc)})
    return results
