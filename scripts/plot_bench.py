#!/usr/bin/env python3
"""The benchmarks' ratios with their spread, drawn from docs/bench/figures.json.

    python scripts/plot_bench.py [--dry-run] [--figures docs/bench/figures.json] [--out docs/bench/ratios.svg]

The benchmark scripts write their latest ratios into the figures file (`make bench` runs this
after them); each entry has a median and, where the script measured one, its spread: `q1`/`q3`
(quartiles over pairs or rounds) or `lo`/`hi` (the range over runs), and the goal it is held to.
Two panels: costs, where 1.0 means "no cost" and the goal is a bound near it; and the IO
plugin's speed-ups over a client doing the same work itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "bench" / "figures.json"
OUT = ROOT / "docs" / "bench" / "ratios.svg"


def setup_matplotlib():  # a dev tool (scripts/install.sh), imported only where a chart is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The same input draws the same SVG: no date, fixed ids, text kept as text.
    plt.rcParams.update({"svg.hashsalt": "vllm-ref", "svg.fonttype": "none", "font.size": 9})
    return plt


def draw(figures: dict, out: Path) -> None:
    plt = setup_matplotlib()
    panels = {"cost": [], "speed-up": []}
    for key, f in sorted(figures.items()):
        panels[f.get("panel", "cost")].append((key, f))
    heights = [max(len(v), 1) for v in panels.values()]
    fig, axes = plt.subplots(2, 1, figsize=(8, 0.42 * sum(heights) + 1.6),
                             gridspec_kw={"height_ratios": heights})
    titles = {"cost": "cost ratios (1.0 = no cost; goal: the dashed bound)",
              "speed-up": "IO plugin: client time / plugin time (higher = the plugin is faster)"}
    for ax, (panel, items) in zip(axes, panels.items(), strict=True):
        for y, (_key, f) in enumerate(items):
            lo, hi = f.get("q1", f.get("lo")), f.get("q3", f.get("hi"))
            colour = "#1565c0"
            if "goal" in f:
                met = f["median"] >= f["goal"] if f.get("goal_is") == "min" else f["median"] <= f["goal"]
                colour = "#2e7d32" if met else "#c62828"
                ax.plot([f["goal"]] * 2, [y - 0.38, y + 0.38], ls="--", color="#555555", lw=1)
            if lo is not None and hi is not None:
                ax.plot([lo, hi], [y, y], color=colour, lw=6, alpha=0.35, solid_capstyle="butt")
            ax.plot([f["median"]], [y], "o", color=colour)
            text = f"{f['median']:.3f}" if panel == "cost" else f"{f['median']:.2f}"
            ax.annotate(text, (f["median"], y), xytext=(6, 4), textcoords="offset points", fontsize=8, color=colour)
        ax.set_yticks(range(len(items)), [f["label"] for _, f in items])
        ax.invert_yaxis()
        ax.set_title(titles[panel], fontsize=9, loc="left")
        ax.grid(axis="x", color="#dddddd")
        if panel == "cost":
            ax.axvline(1.0, color="#999999", lw=0.8)
    fig.text(0.01, 0.005, "dot: median; bar: quartiles over pairs or rounds (or the range over runs); "
             "green: goal met, red: missed, blue: no goal", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=out.suffix[1:], metadata={"Date": None} if out.suffix == ".svg" else None)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--figures", type=Path, default=FIGURES)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--dry-run", action="store_true", help="read the figures and import matplotlib; write nothing")
    args = ap.parse_args(argv)
    figures = json.loads(args.figures.read_text())
    if args.dry_run:
        setup_matplotlib()
        print(f"plot_bench (dry run): {len(figures)} figures from {args.figures}; would write {args.out}")
        return 0
    draw(figures, args.out)
    print(f"plot_bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
