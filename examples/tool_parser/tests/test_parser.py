"""The example parser through vLLM's own composed parser: streamed, one character per delta,
it gives the one-shot message; a malformed call is content; the name is not vLLM's."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("vllm")

import vllm_example_tool_parser  # noqa: E402

TEXT = 'Checking. <call>{"name": "get_weather", "arguments": {"city": "Paris", "q": "}"}}</call> <call>{bad</call> ok'


def test_stream_equals_one_shot() -> None:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.parser.parser_manager import ParserManager

    vllm_example_tool_parser.register()
    vllm_example_tool_parser.register()  # a second call is a no-op
    assert vllm_example_tool_parser.status()["effect"]
    cls = ParserManager.get_parser(tool_parser_name="example_tools", enable_auto_tools=True)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    req = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], tools=tools)
    _, content, calls = cls(None, req.tools).parse(TEXT, req, enable_auto_tools=True)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris", "q": "}"})]
    assert content == "Checking.  <call>{bad</call> ok"
    p = cls(None, req.tools)
    got_content, got_calls = "", []
    for i, ch in enumerate(TEXT):
        # prompt_token_ids, as vLLM passes them: without a reasoning parser they start the tool phase.
        d = p.parse_delta(ch, [i], req, prompt_token_ids=[1, 2] if i == 0 else None, finished=i == len(TEXT) - 1)
        if d:
            got_content += d.content or ""
            got_calls += [(t.function.name, json.loads(t.function.arguments)) for t in d.tool_calls]
    assert (got_content, got_calls) == (content, [(c.name, json.loads(c.arguments)) for c in calls])
