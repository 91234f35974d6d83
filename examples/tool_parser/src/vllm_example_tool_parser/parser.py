"""The parser: calls written as `<call>{"name": ..., "arguments": {...}}</call>` between content.

Streaming looks only at each delta plus a held-back tail shorter than a marker (linear in the
output), and sends each call whole once it is closed and valid JSON; a call that is not valid
is content, as written. One-shot parsing feeds the same machine the whole text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vllm.entrypoints.generate.base.protocol import (
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    ExtractedToolCallInformation,
    FunctionCall,
    ToolCall,
)
from vllm.tool_parsers import ToolParser

START, END = "<call>", "</call>"


def _tail(text: str, marker: str) -> int:
    """Length of the longest end of `text` that could be the start of `marker`."""
    return next((k for k in range(min(len(marker) - 1, len(text)), 0, -1) if text.endswith(marker[:k])), 0)


def _call(body: str) -> tuple[str, str] | None:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not (isinstance(obj, dict) and isinstance(obj.get("name"), str) and isinstance(obj.get("arguments", {}), dict)):
        return None
    return obj["name"], json.dumps(obj.get("arguments", {}), ensure_ascii=False)


class Splitter:
    def __init__(self) -> None:
        self.in_call, self.hold, self.body = False, "", []

    def feed(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        out, calls, buf, pos = [], [], self.hold + text, 0
        while True:
            marker = END if self.in_call else START
            i = buf.find(marker, pos)
            if i < 0:
                end = len(buf) - _tail(buf[pos:], marker)
                (self.body if self.in_call else out).append(buf[pos:end])
                self.hold = buf[end:]
                return "".join(out), calls
            if self.in_call:
                body = "".join(self.body) + buf[pos:i]
                self.body = []
                call = _call(body)
                if call:
                    calls.append(call)
                else:
                    out.append(START + body + END)
            else:
                out.append(buf[pos:i])
            self.in_call, pos = not self.in_call, i + len(marker)

    def finish(self) -> str:
        rest = (START + "".join(self.body) if self.in_call else "") + self.hold
        self.in_call, self.hold, self.body = False, "", []
        return rest


class ExampleToolParser(ToolParser):
    # Only so that vLLM calls finish_streaming() at the end of a stream (held-back text).
    engine_based_streaming = True

    def __init__(self, tokenizer: Any, tools: Any = None) -> None:
        super().__init__(tokenizer, tools)
        self._splitter = Splitter()

    def extract_tool_calls(self, model_output: str, request: Any) -> ExtractedToolCallInformation:
        s = Splitter()
        content, calls = s.feed(model_output)
        content += s.finish()
        tool_calls = [ToolCall(function=FunctionCall(name=n, arguments=a)) for n, a in calls]
        return ExtractedToolCallInformation(tools_called=bool(calls), tool_calls=tool_calls,
                                            content=(content or None) if calls else model_output)

    def extract_tool_calls_streaming(self, previous_text: str, current_text: str, delta_text: str,
                                     previous_token_ids: Sequence[int], current_token_ids: Sequence[int],
                                     delta_token_ids: Sequence[int], request: Any) -> DeltaMessage | None:
        return self._delta(*self._splitter.feed(delta_text))

    def finish_streaming(self) -> DeltaMessage | None:
        return self._delta(self._splitter.finish(), [])

    def _delta(self, content: str, calls: list[tuple[str, str]]) -> DeltaMessage | None:
        if not content and not calls:
            return None
        deltas = []
        for name, args in calls:
            self.current_tool_id += 1
            # What was sent, so vLLM's end-of-stream flush has nothing left to add.
            self.prev_tool_call_arr.append({"name": name, "arguments": args})
            self.streamed_args_for_tool.append(args)
            deltas.append(DeltaToolCall(index=self.current_tool_id, type="function",
                                        id=ToolCall(function=FunctionCall(name=name, arguments=args)).id,
                                        function=DeltaFunctionCall(name=name, arguments=args)))
        return DeltaMessage(content=content or None, tool_calls=deltas)
