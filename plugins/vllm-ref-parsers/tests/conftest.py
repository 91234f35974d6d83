"""What the parser tests share (fixture `parsers`): vLLM's own composed parser (the serving
layer's DelegatingParser over this plugin's two classes, as `ParserManager` builds it), a
tokenizer with the markers, and a driver that streams an output through it the way vLLM's chat
serving does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import vllm_ref_parsers
from vllm_ref_parsers.format import MARKERS
from vllm_ref_parsers.testing import tiny_parsers_llama

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
         for n in ("get_weather", "search", "f")]


@dataclass
class Message:
    reasoning: str | None
    content: str | None
    calls: list[tuple[str, Any]]  # (name, arguments as an object)


class Parsers:
    def __init__(self) -> None:
        from transformers import AutoTokenizer
        from vllm.parser.parser_manager import ParserManager

        vllm_ref_parsers.register()
        self.tokenizer = AutoTokenizer.from_pretrained(tiny_parsers_llama())
        self.cls = ParserManager.get_parser(tool_parser_name=vllm_ref_parsers.TOOL_PARSER,
                                            reasoning_parser_name=vllm_ref_parsers.REASONING_PARSER,
                                            enable_auto_tools=True)  # 0.31 has no tokenizer argument
        self.ids = {m: self.tokenizer.convert_tokens_to_ids(m) for m in MARKERS}

    def request(self, **kw: Any) -> Any:
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        return ChatCompletionRequest(**{"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                        "tools": TOOLS, "tool_choice": "auto", **kw})

    def new(self, req: Any = None) -> Any:
        return self.cls(self.tokenizer, (req or self.request()).tools)

    def units(self, text: str) -> list[tuple[str, int]]:
        """The output as the detokenizer hands it over: each marker whole with its special
        token's id, every other character alone (finer than any real token) with an id that is
        no marker's."""
        out: list[tuple[str, int]] = []
        i = 0
        while i < len(text):
            m = next((m for m in MARKERS if text.startswith(m, i)), None)
            if m:
                out.append((m, self.ids[m]))
                i += len(m)
            else:
                out.append((text[i], 10_000_000 + ord(text[i])))
                i += 1
        return out

    def one_shot(self, text: str, req: Any = None) -> Message:
        req = req or self.request()
        reasoning, content, calls = self.new(req).parse(text, req, enable_auto_tools=True)
        return Message(reasoning, content, [(c.name, json.loads(c.arguments)) for c in calls or []])

    def stream(self, chunks: list[list[tuple[str, int]]], req: Any = None,
               prompt_ids: list[int] | None = None, parser: Any = None) -> Message:
        """Feed the chunks (lists of units) to one parser as vLLM's chat serving does (the last
        one with finished=True) and assemble the message from the deltas."""
        req = req or self.request()
        p = parser or self.new(req)
        reasoning, content, calls = [], [], {}
        for n, chunk in enumerate(chunks):
            d = p.parse_delta("".join(t for t, _ in chunk), [i for _, i in chunk], req,
                              prompt_token_ids=prompt_ids if n == 0 else None, finished=n == len(chunks) - 1)
            if d is None:
                continue
            reasoning.append(d.reasoning or "")
            content.append(d.content or "")
            for tc in d.tool_calls:
                name, args = calls.get(tc.index, ("", ""))
                calls[tc.index] = (name + (tc.function.name or ""), args + (tc.function.arguments or ""))
        return Message("".join(reasoning) or None, "".join(content) or None,
                       [(n, json.loads(a)) for _, (n, a) in sorted(calls.items())])

    def singles(self, text: str) -> list[list[tuple[str, int]]]:
        return [[u] for u in self.units(text)]


@pytest.fixture(scope="session")
def parsers() -> Parsers:
    return Parsers()
