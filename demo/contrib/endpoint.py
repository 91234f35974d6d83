"""ref_endpoint in the demo: the server's own answer to "which plugin loaded where".

The endpoint plugin's general half adds report methods to the engine core and the workers; its
endpoint half serves GET /v1/ref/plugins on the demo server. The demo prints that answer as a
table: it should match the probe's table above, process by process.
"""

from __future__ import annotations

ORDER = 90  # after the others: the tenants the scheduler's section created show up here
PLUGIN = "ref_endpoint"
CHECK = "vllm_ref_endpoint:status"
ENV: dict[str, str] = {}
SERVER_ARGS: list[str] = []


def exercise(server, model: str) -> list[str]:
    import requests
    from vllm_ref_endpoint.__main__ import table

    report = requests.get(server.url + "/v1/ref/plugins", headers=server.headers(), timeout=120)
    report.raise_for_status()
    tenants = requests.get(server.url + "/v1/ref/scheduler/tenants", headers=server.headers(), timeout=120)
    return ["GET /v1/ref/plugins (python -m vllm_ref_endpoint URL):", *table(report.json()).splitlines(),
            f"GET /v1/ref/scheduler/tenants -> HTTP {tenants.status_code}: {tenants.text[:160]}"]
