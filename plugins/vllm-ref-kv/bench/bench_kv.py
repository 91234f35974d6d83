#!/usr/bin/env python3
"""Time to first token with the prefix KV store: stored prefix on a restarted engine vs
recomputing it, misses vs no connector, and vLLM's own example disk connector as the anchor.

    python plugins/vllm-ref-kv/bench/bench_kv.py [--lengths 1024,2048,4096,8192] [--rounds 3]

Model: `vllm_ref_kv.testing.bench_llama()` (a Llama of the harness's tiny family with 8k
context, float32, made locally and cached), blocks of 128 tokens (vLLM's CPU default). Four
offline boots, one after the other:

1. ref_kv on a fresh folder: every prompt once (saved), then per round and length one fresh
   miss ("recompute": a new cache_salt, so neither vLLM's cache nor the store has it, and the
   store saves it), and `--batches` throughput batches;
2. ref_kv on the same folder, restarted: per round and length, in alternating order, the
   stored prompt ("hit": vLLM's prefix cache is emptied first, so the prefix comes from the
   store) and a fresh miss: side by side in one engine;
3. no connector: the same misses and batches (the baseline for 1);
4. vLLM's ExampleConnector (safetensors per layer) on a fresh folder: every prompt once
   (saved), then "hit" as in 2, within the same boot.

Time to first token is one request of max_tokens=1, timed around `LLM.generate`. The store's
load rate is the workers' bytes_loaded / load_s (read + verify + copy into the KV cache); the
disk's read rate is a plain read of the same files in this process right after. Both come from
the OS page cache where the files were written moments before (no root to drop it): the
physical disk is not what either measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from vllm_ref_harness.bench import machine, record_figures

FIGURES = Path(__file__).resolve().parents[3] / "docs" / "bench" / "figures.json"


def read_rate(folder: Path) -> float:
    """GB/s of plain whole-file reads of every file under `folder` (best of three passes)."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    best = 0.0
    for _ in range(3):
        t0, n = time.perf_counter(), 0
        for p in files:
            with open(p, "rb") as f:
                n += len(f.read())
        best = max(best, n / (time.perf_counter() - t0) / 1e9)
    return best


def ab(args: argparse.Namespace, model: Path, work: Path, tput: dict[str, Any]) -> None:
    """Throughput on misses, boots alternated so that slow drifts of the machine hit every arm:
    "none" (no connector), "consumer" (the connector, lookups only: kv_role kv_consumer, so
    nothing is saved) and "both" (every miss saved). consumer vs none is the connector's
    presence and lookups; both vs consumer is the saves."""
    from vllm_ref_harness import run_engine
    from vllm_ref_kv.testing import engine_args, kv_transfer_config, write_prompts

    arms = {"none": None, "consumer": "kv_consumer", "both": "kv_both"}
    got: dict[str, list[float]] = {arm: [] for arm in arms}
    for r in range(args.ab):
        for arm, role in (arms.items() if r % 2 == 0 else reversed(arms.items())):
            folder = work / f"ab-{r}-{arm}"
            kv = {} if role is None else {"kv_transfer_config": kv_transfer_config(folder, role=role)}
            eargs = engine_args(None, max_model_len=640, block_size=128, **kv)
            run = run_engine(model, engine_args=eargs, call="vllm_ref_kv.testing:timings", plugins=["ref_kv"],
                             env=write_prompts(work / f"ab-{r}-{arm}.json", [], lengths=[], rounds=0, sides=[],
                                               throughput=tput), timeout=1800, run_dir=work / f"run-ab-{r}-{arm}")
            got[arm] += run.extra["throughput"]
            print(f"round {r} {arm:>8}: {', '.join(f'{x:.0f}' for x in run.extra['throughput'])} tokens/s", flush=True)
    med = {arm: statistics.median(v) for arm, v in got.items()}
    print(f"machine: {machine()}; medians over {args.ab} rounds x {args.batches} batches: "
          + ", ".join(f"{arm} {v:.0f}" for arm, v in med.items()) + " tokens/s")
    print(f"both/none {med['both'] / med['none']:.3f}; consumer/none {med['consumer'] / med['none']:.3f}; "
          f"both/consumer {med['both'] / med['consumer']:.3f}")
    # The recorded figure: per round, the ratio of the two arms' batch medians.
    rounds = [statistics.median(got["both"][r * args.batches:(r + 1) * args.batches])
              / statistics.median(got["none"][r * args.batches:(r + 1) * args.batches]) for r in range(args.ab)]
    record_figures(args.record, {"kv_miss_throughput": {
        "label": "KV: throughput, misses with the store / no connector", "panel": "cost", "goal": 0.95,
        "goal_is": "min", "median": round(statistics.median(rounds), 3), "q1": round(min(rounds), 3),
        "q3": round(max(rounds), 3), "n": len(rounds),
        "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "what": f"bench_kv.py --ab {args.ab}: boots alternated (no connector, loading only, saving), "
                f"{args.batches} batches of {args.batch} prompts of 512 tokens + 32 new per boot after "
                f"{args.warmup} warm-up; median and min/max of the {args.ab} rounds' ratios of medians"}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="1024,2048,4096,8192", help="prompt lengths in tokens")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8, help="throughput batch: prompts of 512 tokens, 32 new each")
    ap.add_argument("--batches", type=int, default=5, help="throughput batches per boot (fresh prompts each)")
    ap.add_argument("--warmup", type=int, default=1, help="throughput batches run first and not counted")
    ap.add_argument("--ab", type=int, default=0, metavar="N", help="instead: throughput only, N rounds of three "
                    "boots in turn (no connector, the store loading only, the store saving every miss), "
                    "--batches batches each; records the throughput figure only")
    ap.add_argument("--dry-run", action="store_true", help="make the model and the specs, boot nothing, "
                    "record nothing")
    ap.add_argument("--resume", type=Path, help="the work folder of an interrupted run: boots that finished "
                    "there are read back, not run again")
    ap.add_argument("--record", type=Path, default=FIGURES, help="where the ratios go (default: %(default)s)")
    args = ap.parse_args()

    from vllm_ref_harness import ProbeReport, run_engine
    from vllm_ref_kv import STATE
    from vllm_ref_kv.testing import bench_llama, engine_args, prompt, write_prompts

    lengths = [int(x) for x in args.lengths.split(",")]
    model = bench_llama()
    work = args.resume or Path(tempfile.mkdtemp(prefix="ref-kv-bench-"))
    store, example = work / "store", work / "example"
    tput = {"n": args.batch, "len": 512, "max_tokens": 32, "batches": args.batches, "warmup": args.warmup}
    base = {"lengths": lengths, "rounds": args.rounds}
    example_kv = {"kv_connector": "ExampleConnector", "kv_role": "kv_both",
                  "kv_connector_extra_config": {"shared_storage_path": str(example)}}
    boots: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("miss", engine_args(store, max_model_len=max(lengths) + 64, block_size=128),
         {**base, "prime": True, "sides": ["recompute"], "throughput": tput}),
        ("restart", engine_args(store, max_model_len=max(lengths) + 64, block_size=128),
         {**base, "sides": ["hit", "recompute"]}),
        ("none", engine_args(None, max_model_len=max(lengths) + 64, block_size=128),
         {**base, "sides": ["recompute"], "throughput": tput}),
        # Whole prompts in one step: vLLM's ExampleConnector saves only a request's first chunk,
        # then fails loading a prompt longer than it (shape mismatch).
        ("example", engine_args(None, max_model_len=max(lengths) + 64, block_size=128, kv_transfer_config=example_kv,
                                max_num_batched_tokens=max(lengths) + 64),
         {**base, "prime": True, "sides": ["hit"]}),
    ]
    if args.ab:
        ab(args, model, work, tput)
        return
    if args.dry_run:
        assert all(len(prompt(n, n)) == n for n in lengths) and (model / "config.json").is_file()
        print(f"bench_kv (dry run): {model}, prompts {lengths}, {args.rounds} rounds, boots "
              f"{[name for name, _, _ in boots]}, {sorted(STATE)[:3]}...; figures to {args.record}")
        return
    results: dict[str, Any] = {}
    worker: dict[str, Any] = {}
    saver: dict[str, Any] = {}
    print(f"bench_kv: work folder {work}")
    for name, eargs, spec in boots:
        run_dir = work / f"run-{name}"
        done = run_dir / "result.json"
        if done.is_file() and "error" not in json.loads(done.read_text()):
            results[name] = json.loads(done.read_text())["extra"]
            report = ProbeReport.read(run_dir / "probe")
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            env = write_prompts(work / f"{name}.json", [], **spec)
            run = run_engine(model, engine_args=eargs, call="vllm_ref_kv.testing:timings",
                             plugins=["ref_kv"], checks={"kv": "vllm_ref_kv:status"}, env=env, timeout=1800,
                             run_dir=run_dir)
            results[name], report = run.extra, run.report
        if name == "restart":
            worker = next(r for r in report if r.role == "worker").checks["kv"]
        if name == "miss":
            saver = next(r for r in report if r.role == "worker").checks["kv"]
    disk = read_rate(store)

    def med(name: str, side: str, n: int) -> float:
        return statistics.median(results[name][side][str(n)])

    print(f"machine: {machine()}; vLLM {__import__('vllm').__version__}; bench_llama float32, "
          f"{args.rounds} rounds")
    print(f"{'tokens':>7} {'recompute s':>12} {'stored s':>9} {'stored/re':>10} {'miss s':>8} {'none s':>8} "
          f"{'miss/none':>10} {'example s':>10} {'ours/example':>13}")
    figures: dict[str, dict[str, Any]] = {}
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    for n in lengths:
        pairs = [h / r for h, r in zip(results["restart"]["hit"][str(n)], results["restart"]["recompute"][str(n)],
                                       strict=True)]
        hit, re_ = med("restart", "hit", n), med("restart", "recompute", n)
        miss, none, ex = med("miss", "recompute", n), med("none", "recompute", n), med("example", "hit", n)
        print(f"{n:>7} {re_:>12.3f} {hit:>9.3f} {statistics.median(pairs):>10.3f} {miss:>8.3f} {none:>8.3f} "
              f"{miss / none:>10.3f} {ex:>10.3f} {hit / ex:>13.3f}")
        if n == max(lengths):
            figures["kv_hit_ttft"] = {
                "label": f"KV: stored prefix / recompute, TTFT, {n} tokens", "panel": "cost",
                "goal": 0.25, "goal_is": "max",
                "median": round(statistics.median(pairs), 3), "q1": round(min(pairs), 3),
                "q3": round(max(pairs), 3), "n": len(pairs), "when": when,
                "what": f"restarted engine, {args.rounds} rounds (q1/q3: min/max)"}
            miss_pairs = [m / o for m, o in zip(results["miss"]["recompute"][str(n)],
                                                results["none"]["recompute"][str(n)], strict=True)]
            figures["kv_miss_ttft"] = {
                "label": f"KV: miss with the store / no connector, TTFT, {n} tokens", "panel": "cost",
                "goal": 1.10, "goal_is": "max", "median": round(miss / none, 3), "q1": round(min(miss_pairs), 3),
                "q3": round(max(miss_pairs), 3), "n": len(miss_pairs), "when": when,
                "what": f"two boots, {args.rounds} rounds each (q1/q3: min/max of round pairs)"}
    tput_pairs = [m / o for m, o in zip(results["miss"]["throughput"], results["none"]["throughput"], strict=True)]
    tp = statistics.median(results["miss"]["throughput"]) / statistics.median(results["none"]["throughput"])
    rate = worker["bytes_loaded"] / worker["load_s"] / 1e9 if worker.get("load_s") else float("nan")
    print(f"throughput, misses with the store / no connector: {tp:.3f} (medians of {len(tput_pairs)} batches: "
          f"{statistics.median(results['miss']['throughput']):.0f} vs "
          f"{statistics.median(results['none']['throughput']):.0f} tokens/s; batch pairs "
          f"{', '.join(f'{x:.2f}' for x in tput_pairs)})")
    per_block = saver["save_s"] / saver["saved_blocks"] if saver.get("saved_blocks") else float("nan")
    print(f"the store's own save work (miss boot): {saver.get('saved_blocks', 0)} blocks, "
          f"{saver.get('save_s', 0):.2f} s "
          f"({per_block * 1e3:.1f} ms a block: copy out on the step, checksum + write + rename on the writer "
          f"thread), {saver.get('save_dropped', 0)} dropped")
    print(f"store load rate {rate:.2f} GB/s ({worker.get('bytes_loaded', 0) / 1e6:.0f} MB in "
          f"{worker.get('load_s', 0):.2f} s: read + verify + copy); plain read of the same files {disk:.2f} GB/s "
          f"(page cache); ratio {rate / disk:.2f}")
    figures["kv_miss_throughput"] = {
        "label": "KV: throughput, misses with the store / no connector", "panel": "cost", "goal": 0.95,
        "goal_is": "min", "median": round(tp, 3), "q1": round(min(tput_pairs), 3), "q3": round(max(tput_pairs), 3),
        "n": len(tput_pairs), "when": when,
        "what": f"{args.batch} prompts of 512 tokens + 32 new, {len(tput_pairs)} batches per boot, two boots "
                f"(q1/q3: min/max of batch pairs)"}
    record_figures(args.record, figures)


if __name__ == "__main__":
    main()
