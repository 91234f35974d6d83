#!/usr/bin/env python3
"""docs/architecture.svg: which vLLM process loads which entry-point group, and our plugins in each.

    python scripts/plot_architecture.py [--out docs/architecture.svg]

Which process loads which group is vLLM's behaviour (docs/architecture.md, checked by the
harness's probe in every engine test); which of our plugins sit in which group comes from their
pyproject.toml files. The figure records a digest of both, so `make facts` redraws it and the
facts test fails when a plugin's entry points changed and the figure was not redrawn.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "architecture.svg"
PROCESSES = ["front end\n(LLM or API server)", "model-registry\nsubprocess", "engine core", "worker\n(one per rank)"]
# group -> {process index: how}; "" = loaded and used there.
LOADS: dict[str, dict[int, str]] = {
    "vllm.general_plugins": {0: "", 1: "on a cache miss", 2: "", 3: ""},
    "vllm.platform_plugins": {0: "", 1: "", 2: "", 3: ""},
    "vllm.logits_processors": {0: "class only\n(validate_params)", 3: "instantiated,\napply() per step"},
    "vllm.stat_logger_plugins": {0: "AsyncLLM only"},
    "vllm.io_processor_plugins": {0: "pooling models"},
    "vllm.endpoint_plugins": {0: "API server, named\nin VLLM_PLUGINS"},
}


def plugins_by_group(root: Path = ROOT) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {g: [] for g in LOADS}
    for pyproject in sorted(root.glob("plugins/*/pyproject.toml")):
        for group, eps in tomllib.loads(pyproject.read_text())["project"].get("entry-points", {}).items():
            if group in out:
                out[group] += sorted(eps)
    return out


def digest(root: Path = ROOT) -> str:
    return hashlib.sha256(json.dumps([PROCESSES, LOADS, plugins_by_group(root)], sort_keys=True)
                          .encode()).hexdigest()[:16]


def recorded_digest(svg: Path) -> str | None:
    m = re.search(r"facts-input ([0-9a-f]{16})", svg.read_text()) if svg.is_file() else None
    return m.group(1) if m else None


def draw(out: Path, root: Path = ROOT) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    plt.rcParams.update({"svg.hashsalt": "vllm-ref", "svg.fonttype": "none", "font.size": 9})
    ours = plugins_by_group(root)
    groups = list(LOADS)
    fig, ax = plt.subplots(figsize=(7.8, 4.4))
    left, cw, rh = 3.0, 1.55, 0.62
    for j, proc in enumerate(PROCESSES):
        ax.text(left + j * cw + cw / 2, len(groups) * rh + 0.15, proc, ha="center", va="bottom", fontweight="bold")
    for i, group in enumerate(groups):
        y = (len(groups) - 1 - i) * rh
        names = ", ".join(ours[group]) or "(none of ours)"
        ax.text(0, y + rh / 2 + 0.08, group, va="center", fontfamily="monospace", fontsize=8.5)
        ax.text(0, y + rh / 2 - 0.14, names, va="center", color="#1565c0", fontsize=8.5)
        for j in range(len(PROCESSES)):
            how = LOADS[group].get(j)
            colour = "#c8e6c9" if how == "" else "#fff3c4" if how else "#f5f5f5"
            ax.add_patch(FancyBboxPatch((left + j * cw + 0.05, y + 0.05), cw - 0.1, rh - 0.1,
                                        boxstyle="round,pad=0,rounding_size=0.06", fc=colour, ec="#bbbbbb", lw=0.6))
            label = "loads" if how == "" else how if how else ""
            ax.text(left + j * cw + cw / 2, y + rh / 2, label, ha="center", va="center", fontsize=8,
                    color="#333333")
    ax.text(0, -0.35, "Processes start with spawn: only code run from an entry point, in each process, reaches it.\n"
            "The front end spawns the engine core, which spawns one worker per rank.", fontsize=8, color="#555555",
            va="top")
    ax.set_xlim(-0.05, left + len(PROCESSES) * cw + 0.05)
    ax.set_ylim(-0.8, len(groups) * rh + 0.6)
    ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Date": None, "Description": f"facts-input {digest(root)}"} if out.suffix == ".svg" else None
    fig.savefig(out, format=out.suffix[1:], metadata=meta)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    draw(args.out)
    print(f"plot_architecture: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
