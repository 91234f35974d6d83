"""The format's parsers as vLLM's legacy `ReasoningParser` and `ToolParser` (imports vLLM).

vLLM builds one of each per request (`ParserManager` composes them into its `DelegatingParser`)
in the API server, and one `RefReasoningParser` per structured-output request in the engine
core, which asks `is_reasoning_end_streaming` after every step to know when its grammar starts.
The text work is `format.py`'s; this module maps it onto vLLM's calls:

- streaming sees only each delta (never `current_text`), so a stream costs time linear in its
  length;
- each call is sent whole, in one delta, once its closing marker arrives and its JSON is valid
  (before that it may still turn out to be content); `prev_tool_call_arr` and
  `streamed_args_for_tool` hold exactly what was sent, so the serving layer's end-of-stream
  flush (`get_remaining_unstreamed_args`) adds nothing;
- `finish_streaming` (called at the end of a stream for parsers that set
  `engine_based_streaming`) hands over what was held back: an unclosed call, whitespace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from vllm.reasoning import ReasoningParser
from vllm.tool_parsers import ToolParser

from . import PLUGIN, STATE
from .format import CALL_END, CALL_START, THINK_END, THINK_START, Call, ReasoningSplitter, ToolSplitter, parse

# Where vLLM 0.32 keeps the message types (they moved between releases, hence one place).
from vllm.entrypoints.generate.base.protocol import (  # isort: skip
    DeltaFunctionCall, DeltaMessage, DeltaToolCall, ExtractedToolCallInformation, FunctionCall, ToolCall)

logger = logging.getLogger("vllm_ref.parsers")


def _marker_ids(tokenizer: Any, markers: Iterable[str], who: str) -> dict[str, int]:
    """Each marker's token id; an error naming what is missing where the tokenizer lacks one
    (vLLM then refuses to start: the parser is built once at start-up to check)."""
    vocab = tokenizer.get_vocab()
    missing = [m for m in markers if m not in vocab]
    if missing:
        raise ValueError(f"{PLUGIN}: the {who} needs the special tokens {missing} in the tokenizer "
                         f"(the format's markers: {', '.join((THINK_START, THINK_END, CALL_START, CALL_END))})")
    return {m: vocab[m] for m in markers}


def _keep_markers(request: Any) -> Any:
    # The markers are special tokens: with vLLM's default skip_special_tokens=True the
    # detokenizer would drop them before any parser sees the text.
    if hasattr(request, "skip_special_tokens"):
        request.skip_special_tokens = False
    return request


class RefReasoningParser(ReasoningParser):
    """The reasoning section: everything before the first `<|/think|>` of the output."""

    def __init__(self, tokenizer: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(tokenizer, *args, **kwargs)
        ids = _marker_ids(tokenizer, (THINK_START, THINK_END), "reasoning parser")
        self.start_id, self.end_id = ids[THINK_START], ids[THINK_END]
        self._splitter = ReasoningSplitter()
        STATE["reasoning_parsers"] += 1

    @property
    def reasoning_start_str(self) -> str:
        return THINK_START

    @property
    def reasoning_end_str(self) -> str:
        return THINK_END

    def adjust_request(self, request: Any) -> Any:
        return _keep_markers(request)

    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        # vLLM asks this of the prompt only. The reasoning section belongs to each output, so a
        # prompt never ends it, even one whose chat history holds `<|/think|>` of earlier turns.
        return False

    def is_reasoning_end_streaming(self, input_ids: Sequence[int], delta_ids: Iterable[int]) -> bool:
        # Only the new tokens: input_ids holds the prompt (its history may hold the end token)
        # and grows with the output (scanning it would make each step cost its length). In the
        # API server the text splitter decides too, so both sides switch on the same delta.
        return self._splitter.ended or self.end_id in delta_ids

    def extract_content_ids(self, input_ids: list[int]) -> list[int]:
        if self.end_id not in input_ids:
            return []
        return input_ids[input_ids.index(self.end_id) + 1:]

    def count_reasoning_tokens(self, token_ids: Sequence[int]) -> int:
        ids = list(token_ids)
        end = ids.index(self.end_id) if self.end_id in ids else len(ids)
        return end - (1 if ids[:1] == [self.start_id] else 0)

    def extract_reasoning(self, model_output: str, request: Any) -> tuple[str | None, str | None]:
        return _split_whole(model_output)

    def extract_reasoning_streaming(self, previous_text: str, current_text: str, delta_text: str,
                                    previous_token_ids: Sequence[int], current_token_ids: Sequence[int],
                                    delta_token_ids: Sequence[int]) -> DeltaMessage | None:
        reasoning, rest = self._splitter.feed(delta_text)
        if not self._splitter.ended:
            # The markers are special tokens: vLLM's detokenizer hands each one over whole, in
            # one delta, so a held marker prefix is text. Released now, because no call tells a
            # legacy reasoning parser that the stream ended.
            reasoning += self._splitter.finish()
        STATE["deltas"] += 1
        if not reasoning and not rest:
            return None
        return DeltaMessage(reasoning=reasoning or None, content=rest or None)


def _split_whole(text: str) -> tuple[str | None, str | None]:
    splitter = ReasoningSplitter()
    reasoning, rest = splitter.feed(text)
    reasoning += splitter.finish()
    return reasoning or None, rest or None


class RefToolParser(ToolParser):
    """Calls between `<|call|>` and `<|/call|>`, each sent whole once it is complete and valid."""

    # vLLM's DelegatingParser calls finish_streaming() at the end of a stream only for parsers
    # that set this; everything else about this class is the legacy interface.
    engine_based_streaming = True

    def __init__(self, tokenizer: Any, tools: Any = None) -> None:
        super().__init__(tokenizer, tools)
        _marker_ids(tokenizer, (CALL_START, CALL_END), "tool-call parser")
        self._splitter = ToolSplitter()
        STATE["tool_parsers"] += 1

    def adjust_request(self, request: Any) -> Any:
        request = super().adjust_request(request)
        if getattr(request, "tools", None) and getattr(request, "tool_choice", None) != "none":
            _keep_markers(request)
        return request

    def extract_tool_calls(self, model_output: str, request: Any) -> ExtractedToolCallInformation:
        parsed = parse(_as_rest(model_output))
        calls = [ToolCall(type="function", function=FunctionCall(name=c.name, arguments=c.arguments))
                 for c in parsed.calls]
        STATE["calls"] += len(calls)
        return ExtractedToolCallInformation(tools_called=bool(calls), tool_calls=calls,
                                            content=parsed.content if calls else model_output)

    def extract_tool_calls_streaming(self, previous_text: str, current_text: str, delta_text: str,
                                     previous_token_ids: Sequence[int], current_token_ids: Sequence[int],
                                     delta_token_ids: Sequence[int], request: Any) -> DeltaMessage | None:
        content, calls = self._splitter.feed(delta_text)
        STATE["deltas"] += 1
        return self._delta(content, calls)

    def finish_streaming(self) -> DeltaMessage | None:
        return self._delta(self._splitter.finish(), [])

    def _delta(self, content: str, calls: list[Call]) -> DeltaMessage | None:
        if not content and not calls:
            return None
        deltas = []
        for c in calls:
            self.current_tool_id += 1
            self.prev_tool_call_arr.append({"name": c.name, "arguments": c.arguments})
            self.streamed_args_for_tool.append(c.arguments)
            call_id = ToolCall(function=FunctionCall(name=c.name, arguments=c.arguments)).id  # vLLM's id scheme
            deltas.append(DeltaToolCall(index=self.current_tool_id, id=call_id, type="function",
                                        function=DeltaFunctionCall(name=c.name, arguments=c.arguments)))
        STATE["calls"] += len(calls)
        return DeltaMessage(content=content or None, tool_calls=deltas)


def _as_rest(text: str) -> str:
    # The tool parser gets the text after the reasoning from vLLM; `parse` expects a whole
    # output, so the text is given an (empty) reasoning section first.
    return THINK_END + text
