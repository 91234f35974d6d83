"""python -m vllm_ref_endpoint URL [--api-key KEY] [--json]: which plugin loaded where, as a table.

Reads GET {URL}/v1/ref/plugins from a vLLM server started with VLLM_PLUGINS naming ref_endpoint,
prints one row per vLLM process and one column per plugin that some process imported or that
VLLM_PLUGINS names, and lists problems: allowlisted names nothing provides, plugins filtered out.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from . import PREFIX


def fetch(url: str, api_key: str | None = None) -> dict[str, Any]:
    req = urllib.request.Request(url.rstrip("/") + PREFIX + "/plugins")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def _cell(ep: dict[str, Any] | None) -> str:
    if ep is None:
        return "-"
    if ep["filtered"]:
        return "filtered"
    status = ep.get("status") or {}
    if not ep["imported"]:
        return "not loaded"
    return "loaded + effect" if status.get("effect") else "loaded"


def table(report: dict[str, Any]) -> str:
    """One row per process, one column per entry point (group:name) worth showing."""
    procs = report["processes"]
    shown: list[str] = []
    for p in procs:
        for ep in p["entry_points"]:
            key = f"{ep['name']}"
            worth = ep["imported"] or ep.get("settings_set") is not None or ep["name"] in (p["vllm_plugins"] or [])
            if worth and key not in shown:
                shown.append(key)
    head = ["process", "pid", *shown]
    rows = []
    for p in procs:
        name = p["role"] + ("" if p["rank"] is None else f"[{p['rank']}]") + (" (ray)" if p["ray"] else "")
        by_name: dict[str, dict[str, Any]] = {}
        for ep in p["entry_points"]:  # an entry point name may be in two groups: the loaded one wins
            if ep["name"] not in by_name or ep["imported"]:
                by_name[ep["name"]] = ep
        rows.append([name, str(p["pid"]), *(_cell(by_name.get(k)) for k in shown)])
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))  # noqa: E731
    lines = [fmt(head), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]
    unknown = sorted({n for p in procs for n in p["unknown_names"]})
    if unknown:
        lines.append(f"VLLM_PLUGINS names no installed entry point: {', '.join(unknown)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vllm_ref_endpoint", description=__doc__.splitlines()[0])
    ap.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    ap.add_argument("--api-key", default=os.environ.get("VLLM_API_KEY"), help="default: $VLLM_API_KEY")
    ap.add_argument("--json", action="store_true", help="print the report as JSON instead")
    args = ap.parse_args(argv)
    try:
        report = fetch(args.url, args.api_key)
    except urllib.error.HTTPError as exc:
        hint = {401: "wrong or missing --api-key", 404: "the server does not name ref_endpoint in VLLM_PLUGINS"}
        print(f"{args.url}{PREFIX}/plugins: HTTP {exc.code} ({hint.get(exc.code, exc.reason)})", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{args.url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
