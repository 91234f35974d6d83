"""End to end: one `python -m vllm.entrypoints.openai.api_server` with the parsers, shared by
every test here, the real OpenAI client against it.

The tiny model's weights are random, so the test-only ScriptedLogitsProcessor
(vllm_ref_parsers.testing) makes the engine write a given output token by token; the text
still comes out of the real engine, detokenizer and serving layer (special tokens kept by the
parsers' adjust_request), and with structured outputs the forced tokens pass only where the
grammar allows them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from vllm_ref_parsers.format import CALL_END, CALL_START, render
from vllm_ref_parsers.testing import script_arg, tiny_parsers_llama

pytestmark = pytest.mark.vllm

TOOLS = [{"type": "function", "function": {"name": n, "description": n, "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}} for n in ("get_weather", "get_time")]
MESSAGES = [{"role": "user", "content": "What is the weather in Paris and the time in Tokyo?"}]
OUTPUT = render("Two questions: weather, then time. {\"nested\": \"}\"}",
                ["I will check both.\n", ("get_weather", {"city": "Paris", "units": ["C", "F"], "note": "ü \"q\" }{"}),
                 "\n", ("get_time", {}), "\nOne moment."])


@pytest.fixture(scope="module")
def server(vllm_module: Any) -> Any:
    model = tiny_parsers_llama()
    s = vllm_module.serve(model, plugins=["ref_parsers"], checks={"parsers": "vllm_ref_parsers:status"},
                          timeout=600, args=[
                              "--dtype", "float32", "--max-num-seqs", "4",
                              "--reasoning-parser", "ref_reasoning", "--tool-call-parser", "ref_tools",
                              "--enable-auto-tool-choice",
                              "--logits-processors", "vllm_ref_parsers.testing:ScriptedLogitsProcessor"])
    from transformers import AutoTokenizer

    s.tok = AutoTokenizer.from_pretrained(model)
    return s


def _script(server: Any, text: str, eos: bool = True) -> dict[str, Any]:
    ids = server.tok.encode(text, add_special_tokens=False) + ([server.tok.eos_token_id] if eos else [])
    return {"vllm_xargs": script_arg(ids), "max_tokens": len(ids) + (0 if eos else 24)}


def _ask(server: Any, text: str, stream: bool, eos: bool = True, **kw: Any) -> dict[str, Any]:
    extra = _script(server, text, eos)
    body = {"model": server.model, "messages": MESSAGES, "temperature": 0, "max_tokens": extra.pop("max_tokens"),
            "extra_body": {**extra, **kw.pop("extra_body", {})}, **kw}
    client = server.client()
    if not stream:
        msg = client.chat.completions.create(**body).choices[0].message
        calls = [(c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls or []]
        return {"reasoning": getattr(msg, "reasoning", None), "content": msg.content, "calls": calls}
    reasoning, content, calls = [], [], {}
    for chunk in client.chat.completions.create(stream=True, **body):
        for choice in chunk.choices:
            d = choice.delta
            reasoning.append(getattr(d, "reasoning", None) or "")
            content.append(d.content or "")
            for tc in d.tool_calls or []:
                name, args = calls.get(tc.index, ("", ""))
                calls[tc.index] = (name + (tc.function.name or ""), args + (tc.function.arguments or ""))
    return {"reasoning": "".join(reasoning) or None, "content": "".join(content) or None,
            "calls": [(n, json.loads(a)) for _, (n, a) in sorted(calls.items())]}


def test_tool_calls_and_reasoning_streamed_and_not(server: Any) -> None:
    whole = _ask(server, OUTPUT, stream=False, tools=TOOLS, tool_choice="auto")
    assert whole == {
        "reasoning": "Two questions: weather, then time. {\"nested\": \"}\"}",
        "content": "I will check both.\n\n\nOne moment.",
        "calls": [("get_weather", {"city": "Paris", "units": ["C", "F"], "note": "ü \"q\" }{"}), ("get_time", {})]}
    assert _ask(server, OUTPUT, stream=True, tools=TOOLS, tool_choice="auto") == whole


def test_a_malformed_call_is_content_not_an_error(server: Any) -> None:
    bad = render("hmm", ["Calling: ", ("get_weather", '{"name": "get_weather", "arguments": {"city": "Par'), " sorry"])
    for stream in (False, True):
        got = _ask(server, bad, stream=stream, tools=TOOLS, tool_choice="auto")
        assert got == {"reasoning": "hmm", "calls": [],
                       "content": f"Calling: {CALL_START}" + '{"name": "get_weather", "arguments": {"city": "Par'
                                  + f"{CALL_END} sorry"}, stream


def test_grammar_applies_only_after_the_reasoning(server: Any) -> None:
    # The script is the reasoning section alone; then the model runs free under the grammar.
    # A grammar applied inside the thinking masks the forced tokens (the reasoning would not be
    # the script's); one never applied leaves the random model's text (not a choice).
    thinking = render("I should answer with one word, not JSON.", [])
    choices = ["sunny", "rainy", "cloudy"]
    for stream in (False, True):
        got = _ask(server, thinking, stream=stream, eos=False, extra_body={"structured_outputs": {"choice": choices}})
        assert got["reasoning"] == "I should answer with one word, not JSON." and got["content"] in choices, got
    # The engine core built the reasoning parser for these requests (structured outputs ask it).
    report = server.wait_for_check("parsers", ("engine_core",), until=lambda s: s["reasoning_parsers"] > 0)
    report.assert_check("parsers", lambda s: s["reasoning_parsers"] > 0, roles=("engine_core",))


def test_probe_shows_the_plugin_in_front_end_and_engine_core(server: Any) -> None:
    report = server.wait_for_check("parsers", ("front_end", "engine_core"), until=lambda s: s["effect"])
    report.assert_loaded("ref_parsers", roles=("front_end", "engine_core"))
    report.assert_check("parsers", lambda s: s["effect"] and s["tool_parser"] == "ref_tools"
                        and s["reasoning_parser"] == "ref_reasoning", roles=("front_end", "engine_core"))
    # The front end built parsers for the requests above and saw the calls.
    report.assert_check("parsers", lambda s: s["tool_parsers"] > 0 and s["calls"] > 0, roles=("front_end",))
