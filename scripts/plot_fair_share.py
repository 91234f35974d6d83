#!/usr/bin/env python3
"""The fair-share scheduler's admission order per tenant, as a timeline (docs/benchmarks.md).

    python scripts/plot_fair_share.py [--dry-run] [--out docs/bench/fair-share.svg]

Runs the plugin's own queue (`vllm_ref_scheduler.fair_share.FairShareQueue`, on vLLM's FCFS
queues; no engine) on one burst: tenant `free` (weight 1) sends 24 requests first, then `gold`
(weight 3) and `silver` (weight 1) send 12 each, every request 64 prompt tokens. It pops them
one by one as vLLM's scheduler admits them and draws, per tenant, at which admission each
request got in, next to the first-come-first-served order vLLM uses without the patch. The
admitted counts are checked against the weights before anything is drawn.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "bench" / "fair-share.svg"
WEIGHTS = {"gold": 3, "silver": 1, "free": 1}
BURST = [("free", 24), ("gold", 12), ("silver", 12)]  # in arrival order
PROMPT_TOKENS = 64


def requests() -> list[SimpleNamespace]:
    out, t = [], 0.0
    for tenant, n in BURST:
        for i in range(n):
            t += 0.001
            out.append(SimpleNamespace(request_id=f"{tenant}-{i}", arrival_time=t, priority=0,
                                       num_tokens=PROMPT_TOKENS, num_computed_tokens=0,
                                       sampling_params=SimpleNamespace(extra_args={"ref_tenant": tenant})))
    return out


def fair_share_order() -> list[str]:
    """The tenants in the order the plugin's queue admits the burst."""
    from fractions import Fraction

    from vllm.v1.core.sched.request_queue import SchedulingPolicy
    from vllm_ref_scheduler.fair_share import FairShareQueue, tenant_of

    q = FairShareQueue(SchedulingPolicy.FCFS, {t: Fraction(w) for t, w in WEIGHTS.items()})
    for r in requests():
        q.add_request(r)
    return [tenant_of(q.pop_request()) for _ in range(len(q))]


def check(order: list[str]) -> None:
    # While every tenant still waits (the first 20 admissions), gold gets 3 of every 5.
    first = Counter(order[:20])
    assert (first["gold"], first["silver"], first["free"]) == (12, 4, 4), first


def draw(order: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "vllm-ref", "svg.fonttype": "none", "font.size": 9})
    fcfs = [t for t, n in BURST for _ in range(n)]
    tenants = [t for t, _ in BURST][::-1]
    colours = {"gold": "#f9a825", "silver": "#78909c", "free": "#1565c0"}
    fig, axes = plt.subplots(2, 1, figsize=(8, 3.6), sharex=True)
    for ax, (title, seq) in zip(axes, [("vLLM without the patch: first come, first served", fcfs),
                                       (f"fair share, weights {', '.join(f'{t}={w}' for t, w in WEIGHTS.items())}",
                                        order)], strict=True):
        for tenant in tenants:
            xs = [i + 1 for i, t in enumerate(seq) if t == tenant]
            ax.scatter(xs, [tenant] * len(xs), s=22, color=colours[tenant], marker="s")
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(axis="x", color="#eeeeee")
        ax.set_ylim(-0.6, len(tenants) - 0.4)
    axes[-1].set_xlabel(f"admission (one request of {PROMPT_TOKENS} prompt tokens each); "
                        "free sent its 24 before gold and silver sent 12 each")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=out.suffix[1:], metadata={"Date": None} if out.suffix == ".svg" else None)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--dry-run", action="store_true", help="run and check the queue; draw nothing")
    args = ap.parse_args(argv)
    order = fair_share_order()
    check(order)
    if args.dry_run:
        print(f"plot_fair_share (dry run): {len(order)} admissions checked; would write {args.out}")
        return 0
    draw(order, args.out)
    print(f"plot_fair_share: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
