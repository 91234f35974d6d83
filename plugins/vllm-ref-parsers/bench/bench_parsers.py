#!/usr/bin/env python3
"""Streaming cost per token: at 1k vs 16k tokens, and beside vLLM's own Hermes tool parser.

    python plugins/vllm-ref-parsers/bench/bench_parsers.py [--short 1024] [--long 16384] [--rounds 5]

An output in the format (a reasoning section, then content and tool calls with JSON arguments,
about one call per 120 tokens), tokenized with the tiny tokenizer that has the markers, is
streamed one token per delta through this plugin's parsers exactly as vLLM's serving layer
calls them (reasoning parser until the reasoning ends, then the tool parser; previous and
current text and token ids built as vLLM builds them, outside the timed calls). Beside it, in
the same rounds, vLLM's `hermes` tool parser streams the equivalent Hermes-format output
(`<tool_call>{"name": ..., "arguments": ...}</tool_call>`, the same content and calls). Only
the parsers' calls are timed. Figures (median over rounds, alternating order):

- per-token cost at --long / per-token cost at --short, for each parser (1.0: linear; goal for
  this plugin <= 1.5);
- this plugin / Hermes, per token, at each length (goal: <= 1.0, no slower).

Every run checks that both parsers' assembled calls equal the calls written. --tiny: 100 and
400 tokens, one round, nothing recorded (the test runs that); --dry-run: build and check the
outputs, time nothing, write nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

from vllm_ref_harness.bench import machine, record_figures

FIGURES = Path(__file__).resolve().parents[3] / "docs" / "bench" / "figures.json"
WORDS = "the quick brown fox jumps over the lazy dog while vLLM serves plugins fast and easy".split()


def build(tok: Any, n_tokens: int) -> tuple[list[str], list[str], list[tuple[str, dict]]]:
    """(our output's token texts, Hermes's token texts, the calls) for about n_tokens tokens."""
    from vllm_ref_parsers.format import CALL_END, CALL_START, THINK_END, THINK_START

    ours = [THINK_START, " ".join(WORDS[: 8]) * max(1, n_tokens // 400), THINK_END]
    hermes: list[str] = []
    calls: list[tuple[str, dict]] = []
    i = 0
    while len(tok.encode("".join(ours), add_special_tokens=False)) < n_tokens:
        words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(20))
        args = {"query": words, "n": i, "nested": {"a": [1, 2, {"b": "}{\""}]}}
        name = f"tool_{i % 7}"
        calls.append((name, args))
        body = json.dumps({"name": name, "arguments": args})
        ours += [f"Step {i}: {words}.\n", CALL_START, body, CALL_END, "\n"]
        hermes += [f"Step {i}: {words}.\n", "<tool_call>", body, "</tool_call>", "\n"]
        i += 1
    pieces = []
    for text, out in (("".join(ours), "ours"), ("".join(hermes), "hermes")):
        ids = tok.encode(text, add_special_tokens=False)
        texts = [tok.decode([t], skip_special_tokens=False) for t in ids]
        assert "".join(texts) == text, f"{out}: the per-token texts do not add up to the output"
        pieces.append((texts, ids))
    return pieces[0][0], pieces[1][0], calls


def stream(texts: list[str], ids: list[int], reasoning: Any, tool: Any, request: Any) -> tuple[float, list]:
    """Seconds spent inside the parsers' streaming calls, and the calls they sent."""
    spent = 0.0
    calls: dict[int, list[str]] = {}
    prev_text, prev_ids = "", []
    in_reasoning = reasoning is not None
    for text, tid in zip(texts, ids, strict=True):
        cur_text, cur_ids = prev_text + text, prev_ids + [tid]
        t0 = time.perf_counter()
        if in_reasoning:
            d = reasoning.extract_reasoning_streaming(prev_text, cur_text, text, prev_ids, cur_ids, [tid])
            ended = reasoning.is_reasoning_end_streaming(cur_ids, [tid])
            spent += time.perf_counter() - t0
            if ended:
                in_reasoning = False
                rest = (d.content if d else None) or ""
                prev_text, prev_ids = "", []
                if rest:
                    t0 = time.perf_counter()
                    d = tool.extract_tool_calls_streaming("", rest, rest, [], [], [], request)
                    spent += time.perf_counter() - t0
                    _collect(d, calls)
                    prev_text = rest
                continue
        else:
            d = tool.extract_tool_calls_streaming(prev_text, cur_text, text, prev_ids, cur_ids, [tid], request)
            spent += time.perf_counter() - t0
            _collect(d, calls)
        prev_text, prev_ids = cur_text, cur_ids
    finish = getattr(tool, "finish_streaming", None)
    if finish is not None:
        _collect(finish(), calls)
    return spent, [("".join(v[:1]), json.loads("".join(v[1:]))) for _, v in sorted(calls.items())]


def _collect(d: Any, calls: dict[int, list[str]]) -> None:
    for tc in (d.tool_calls if d else None) or []:
        entry = calls.setdefault(tc.index, [""])
        if tc.function and tc.function.name:
            entry[0] += tc.function.name
        if tc.function and tc.function.arguments:
            entry.append(tc.function.arguments)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", type=int, default=1024)
    ap.add_argument("--long", type=int, default=16384)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tiny", action="store_true", help="100 and 400 tokens, one round, record nothing")
    ap.add_argument("--dry-run", action="store_true", help="build and check the outputs, time nothing")
    ap.add_argument("--record", type=Path, default=FIGURES, help="where the ratios go (default: %(default)s)")
    args = ap.parse_args()
    if args.tiny:
        args.short, args.long, args.rounds = 100, 400, 1

    import vllm_ref_parsers
    from transformers import AutoTokenizer
    from vllm_ref_parsers.testing import tiny_parsers_llama

    vllm_ref_parsers.register()
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    tok = AutoTokenizer.from_pretrained(tiny_parsers_llama())
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "parameters": {"type": "object"}}}
             for i in range(7)]
    request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "go"}], tools=tools,
                                    tool_choice="auto")
    ours_r = ReasoningParserManager.get_reasoning_parser(vllm_ref_parsers.REASONING_PARSER)
    ours_t = ToolParserManager.get_tool_parser(vllm_ref_parsers.TOOL_PARSER)
    hermes_t = ToolParserManager.get_tool_parser("hermes")
    outputs = {}
    for n in (args.short, args.long):
        ours, hermes, calls = build(tok, n)
        ours_ids, hermes_ids = (tok.encode("".join(x), add_special_tokens=False) for x in (ours, hermes))
        outputs[n] = (ours, ours_ids, hermes, hermes_ids, json.loads(json.dumps(calls)))
    if args.dry_run:
        print(f"bench_parsers (dry run): outputs of {[len(o[1]) for o in outputs.values()]} tokens (ours), "
              f"{[len(o[3]) for o in outputs.values()]} (Hermes); nothing timed or written")
        return

    per_token: dict[tuple[str, int], list[float]] = {}
    for r in range(args.rounds):
        for n, (ours, ours_ids, hermes, hermes_ids, calls) in outputs.items():
            runs = [("ours", ours, ours_ids, ours_r, ours_t), ("hermes", hermes, hermes_ids, None, hermes_t)]
            for name, texts, ids, rp, tp in (runs if r % 2 == 0 else runs[::-1]):
                spent, got = stream(texts, ids, rp(tok) if rp else None, tp(tok, request.tools), request)
                got = [(a, b) for a, b in got]
                assert [list(c) for c in got] == [list(c) for c in calls], f"{name} at {n}: wrong calls"
                per_token.setdefault((name, n), []).append(spent / len(ids))

    print(f"machine: {machine()}; vLLM {__import__('vllm').__version__}; {args.rounds} rounds, alternating order")
    med = {k: statistics.median(v) for k, v in per_token.items()}
    for (name, n), v in sorted(med.items()):
        print(f"  {name:7s} {len(outputs[n][1 if name == 'ours' else 3]):6d} tokens: {v * 1e6:8.2f} us/token")
    figures: dict[str, Any] = {}
    s, lg = args.short, args.long
    for name, label in (("ours", "parsers (ours)"), ("hermes", "vLLM hermes")):
        ratios = [b / a for a, b in zip(per_token[(name, s)], per_token[(name, lg)], strict=True)]
        print(f"ratio {name} per token {lg} / {s}: median {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f})" + ("; goal <= 1.5" if name == "ours" else ""))
        figures[f"parsers_linear_{name}"] = {
            "label": f"{label}: per-token cost, {lg // 1024}k / {s // 1024}k tokens", "panel": "cost",
            "median": round(statistics.median(ratios), 3), "lo": round(min(ratios), 3), "hi": round(max(ratios), 3),
            "n": args.rounds, **({"goal": 1.5, "goal_is": "max"} if name == "ours" else {})}
    for n in (s, lg):
        ratios = [a / b for a, b in zip(per_token[("ours", n)], per_token[("hermes", n)], strict=True)]
        print(f"ratio ours / hermes per token at {n}: median {statistics.median(ratios):.3f} "
              f"(range {min(ratios):.3f}-{max(ratios):.3f}); goal <= 1.0")
        figures[f"parsers_vs_hermes_{n // 1024}k"] = {
            "label": f"parsers / vLLM hermes, per token at {n // 1024}k tokens", "panel": "cost",
            "median": round(statistics.median(ratios), 3), "lo": round(min(ratios), 3), "hi": round(max(ratios), 3),
            "n": args.rounds, "goal": 1.0, "goal_is": "max"}
    if args.tiny:
        return
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    for f in figures.values():
        f.update(when=when, what=f"one token per delta, {args.rounds} rounds")
    record_figures(args.record, figures)


if __name__ == "__main__":
    main()
