"""The output format, parsed: plain Python, no vLLM, one incremental state machine per part.

    <|think|>reasoning<|/think|>content<|call|>{"name": "f", "arguments": {...}}<|/call|>content...

- The reasoning section comes first and ends at the first `<|/think|>`; a leading `<|think|>`
  is dropped (the model or the chat template may write it). An output without `<|/think|>`
  is all reasoning (generation stopped inside it), as the engine core sees it too: its
  grammar starts only after that token.
- After it: content, with zero or more calls between `<|call|>` and `<|/call|>`, each a JSON
  object `{"name": non-empty string, "arguments": object}` (`arguments` may be left out: `{}`).
  A call that is not that (bad JSON, a missing name, NaN or a number beyond float range, never
  closed) is content, markers included, exactly as written.
- Content is the text outside calls, concatenated. Where at least one call was made, content
  that is only whitespace is no content (vLLM's serving layer drops it in one-shot parsing, so
  streaming holds whitespace back until it knows).

Streaming and one-shot parsing are the same code: one-shot is `feed(whole text)` then
`finish()`. Each `feed` looks only at the new text plus a held-back suffix shorter than the
longest marker, so streaming a whole output costs time linear in its length, whatever the
deltas. A marker split across deltas is held until it is whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

THINK_START = "<|think|>"
THINK_END = "<|/think|>"
CALL_START = "<|call|>"
CALL_END = "<|/call|>"
MARKERS = (THINK_START, THINK_END, CALL_START, CALL_END)


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `marker` (0 if none)."""
    for k in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:k]):
            return k
    return 0


@dataclass
class Call:
    name: str
    arguments: str  # JSON text of an object, as json.dumps(..., ensure_ascii=False) writes it


def _reject_constant(value: str) -> None:
    raise ValueError(f"{value} is not JSON")


def _finite(text: str) -> float:
    # 1e999 parses as inf, which json.dumps would write back as Infinity: not JSON either.
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def parse_call(body: str) -> Call | None:
    """The call in the text between the call markers, or None where it is not one."""
    try:
        obj = json.loads(body, parse_constant=_reject_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or set(obj) - {"name", "arguments"}:
        return None
    name, args = obj.get("name"), obj.get("arguments", {})
    if not isinstance(name, str) or not name or not isinstance(args, dict):
        return None
    return Call(name, json.dumps(args, ensure_ascii=False))


@dataclass
class ReasoningSplitter:
    """Splits an output into its reasoning section and the rest, delta by delta."""

    ended: bool = False
    _started: bool = False  # the output's first characters were checked for THINK_START
    _hold: str = ""

    def feed(self, text: str) -> tuple[str, str]:
        """(reasoning, rest) of this delta; either may be empty."""
        if self.ended:
            return "", text
        buf = self._hold + text
        self._hold = ""
        if not self._started:
            if THINK_START.startswith(buf) and len(buf) < len(THINK_START):
                self._hold = buf  # may still become THINK_START
                return "", ""
            self._started = True
            if buf.startswith(THINK_START):
                buf = buf[len(THINK_START):]
        i = buf.find(THINK_END)
        if i >= 0:
            self.ended = True
            return buf[:i], buf[i + len(THINK_END):]
        k = _partial_suffix(buf, THINK_END)
        if k:
            self._hold = buf[-k:]
            buf = buf[:-k]
        return buf, ""

    def finish(self) -> str:
        """Reasoning held back so far (a marker prefix not completed yet), released now: at the
        end of the output, or where the caller knows no marker is being split."""
        held, self._hold = self._hold, ""
        self._started = True
        return held


@dataclass
class ToolSplitter:
    """Splits the text after the reasoning into content and calls, delta by delta."""

    calls: int = 0  # calls emitted so far
    _in_call: bool = False
    _hold: str = ""  # a possible partial marker
    _body: list[str] = field(default_factory=list)  # the open call's text, in pieces
    _ws: list[str] = field(default_factory=list)  # whitespace-only content not yet emitted
    _content_sent: bool = False  # non-whitespace content was emitted

    def _content(self, text: str, out: list[str]) -> None:
        if not text:
            return
        if not self._content_sent and not text.strip():
            self._ws.append(text)  # may turn out to be all the content of a call-making output
            return
        if self._ws:
            out.append("".join(self._ws))
            self._ws.clear()
        self._content_sent = True
        out.append(text)

    def feed(self, text: str) -> tuple[str, list[Call]]:
        """(content, completed calls) of this delta."""
        out: list[str] = []
        calls: list[Call] = []
        buf = self._hold + text
        self._hold = ""
        pos = 0
        while True:
            if self._in_call:
                i = buf.find(CALL_END, pos)
                if i < 0:
                    k = _partial_suffix(buf[pos:], CALL_END)
                    end = len(buf) - k
                    self._body.append(buf[pos:end])
                    self._hold = buf[end:]
                    break
                self._body.append(buf[pos:i])
                body = "".join(self._body)
                self._body.clear()
                self._in_call = False
                pos = i + len(CALL_END)
                call = parse_call(body)
                if call is None:
                    self._content(CALL_START + body + CALL_END, out)
                else:
                    calls.append(call)
                    self.calls += 1
            else:
                i = buf.find(CALL_START, pos)
                if i < 0:
                    k = _partial_suffix(buf[pos:], CALL_START)
                    end = len(buf) - k
                    self._content(buf[pos:end], out)
                    self._hold = buf[end:]
                    break
                self._content(buf[pos:i], out)
                self._in_call = True
                pos = i + len(CALL_START)
        return "".join(out), calls

    def finish(self) -> str:
        """Content still held at the end of the output: an unclosed call, as written; a
        partial marker; whitespace, unless a call was made (then it is no content)."""
        out: list[str] = []
        if self._in_call:
            self._content(CALL_START + "".join(self._body) + self._hold, out)
        else:
            self._content(self._hold, out)
        self._in_call, self._hold = False, ""
        self._body.clear()
        if self._ws and not self.calls:
            out.append("".join(self._ws))
        self._ws.clear()
        return "".join(out)


@dataclass
class Parsed:
    reasoning: str | None
    content: str | None
    calls: list[Call]


def parse(text: str) -> Parsed:
    """One-shot parsing of a whole output (the same machines as streaming)."""
    rs = ReasoningSplitter()
    reasoning, rest = rs.feed(text)
    reasoning += rs.finish()
    ts = ToolSplitter()
    content, calls = ts.feed(rest)
    content += ts.finish()
    return Parsed(reasoning or None, content or None, calls)


def render(reasoning: str, parts: list[str | tuple[str, object]], *, think_start: bool = True) -> str:
    """An output in the format: the reasoning, then content strings and (name, arguments) calls
    in order (arguments: anything JSON, or a str written as is between the call markers)."""
    out = [THINK_START if think_start else "", reasoning, THINK_END]
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        else:
            name, args = p
            body = args if isinstance(args, str) else json.dumps({"name": name, "arguments": args},
                                                               ensure_ascii=False)
            out += [CALL_START, body, CALL_END]
    return "".join(out)
