#!/usr/bin/env python3
"""One long document as one plugin request vs. the same windows sent by a client, same server.

    python plugins/vllm-ref-io/bench/bench_io.py [--sentences 400] [--window 128] [--rounds 12]

One `vllm serve` of the harness's tiny pooling model (tiny_llama_embed, float32) with the
plugin. Each round times, back to back and in alternating order:

- plugin: one `POST /pooling` with `{"data": {"text": DOC, "window": W}}`;
- client, one by one: what a user does without the plugin: tokenize DOC with the model's
  tokenizer, cut the same windows, send each as its own `POST /pooling` (token ids, task
  "embed") and wait for it, then average the vectors weighted by tokens and normalise;
- client, concurrent: the same windows, all requests in flight at once (one thread each).

The figure is the median over rounds of each client time / plugin time (this machine's speed
drifts by tens of percent over seconds, so only times measured next to each other are
compared). Before timing, every side's document vector is checked equal (1e-5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import torch
from vllm_ref_harness.bench import machine, record_figures

# Every benchmark's latest ratios, drawn on docs/benchmarks.md (scripts/plot_bench.py).
FIGURES = Path(__file__).resolve().parents[3] / "docs" / "bench" / "figures.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=400, help="document length (sentences of the corpus)")
    ap.add_argument("--window", type=int, default=128, help="tokens per window")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--dry-run", action="store_true", help="build the document and the windows, boot nothing, "
                    "record nothing")
    ap.add_argument("--record", type=Path, default=FIGURES, help="where the ratios go (default: %(default)s)")
    args = ap.parse_args()

    from transformers import AutoTokenizer
    from vllm_ref_harness import VllmServer, tiny_llama_embed
    from vllm_ref_io.testing import SERVE_ARGS, document

    model = tiny_llama_embed()
    doc = document(args.sentences, 7)
    tok = AutoTokenizer.from_pretrained(model)
    if args.dry_run:
        n = len(tok(doc, add_special_tokens=False)["input_ids"])
        print(f"bench_io (dry run): {model}, {len(doc)} characters, {n} tokens, {-(-n // args.window)} windows of "
              f"{args.window}, {args.rounds} rounds; server {VllmServer.__name__} with {SERVE_ARGS}; "
              f"figures to {args.record}")
        return
    session = requests.Session()

    def plugin() -> list[float]:
        r = session.post(url + "/pooling", json={"data": {"text": doc, "window": args.window}}, timeout=600)
        r.raise_for_status()
        return r.json()["data"]["embedding"]

    def one_window(ids: list[int]) -> list[float]:
        r = requests.post(url + "/pooling", json={"input": ids, "task": "embed"}, timeout=600)
        r.raise_for_status()
        return r.json()["data"][0]["data"]

    def client(concurrent: bool) -> list[float]:
        ids = tok(doc, add_special_tokens=False)["input_ids"]
        windows = [ids[s:s + args.window] for s in range(0, len(ids), args.window)]
        if concurrent:
            with ThreadPoolExecutor(len(windows)) as ex:
                vecs = list(ex.map(one_window, windows))
        else:
            vecs = [one_window(w) for w in windows]
        w = torch.tensor([float(len(x)) for x in windows])
        mean = (torch.tensor(vecs) * w[:, None]).sum(0) / w.sum()
        return torch.nn.functional.normalize(mean, dim=0).tolist()

    sides = {"plugin": plugin, "client one by one": lambda: client(False),
             "client concurrent": lambda: client(True)}
    n_tokens = len(tok(doc, add_special_tokens=False)["input_ids"])
    n_windows = -(-n_tokens // args.window)
    with VllmServer(model, plugins=["ref_io"], args=SERVE_ARGS, timeout=600) as server:
        url = server.url
        ref = torch.tensor(plugin())
        for name, fn in sides.items():  # same answer on every side (and a warm-up)
            torch.testing.assert_close(torch.tensor(fn()), ref, atol=1e-5, rtol=0, msg=name)
        times: dict[str, list[float]] = {k: [] for k in sides}
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                t0 = time.perf_counter()
                sides[name]()
                times[name].append(time.perf_counter() - t0)

    print(f"machine: {machine()}; vLLM {__import__('vllm').__version__}; tiny_llama_embed float32")
    print(f"document: {len(doc)} characters, {n_tokens} tokens, {n_windows} windows of {args.window}; "
          f"{args.rounds} rounds, alternating order")
    for name, ts in times.items():
        print(f"  {name:18s} median {statistics.median(ts) * 1000:8.1f} ms")
    figures: dict[str, dict[str, Any]] = {}
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    for name in list(sides)[1:]:
        ratios = [c / p for c, p in zip(times[name], times["plugin"], strict=True)]
        q = statistics.quantiles(ratios, n=4)
        print(f"ratio {name} / plugin: median {statistics.median(ratios):.2f} (quartiles {q[0]:.2f}-{q[2]:.2f})")
        key = {"client one by one": "by_one", "client concurrent": "concurrent"}[name]
        figures[f"io_{key}_{args.window}"] = {
            "label": f"IO: {name} / plugin, {n_windows} windows of {args.window}", "panel": "speed-up",
            "median": round(statistics.median(ratios), 3), "q1": round(q[0], 3), "q3": round(q[2], 3),
            "n": args.rounds, "when": when, "what": f"{n_tokens}-token document, {args.rounds} rounds"}
    record_figures(args.record, figures)


if __name__ == "__main__":
    main()
