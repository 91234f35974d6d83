"""Streaming equals one-shot parsing, for generated outputs and every split (hypothesis).

Outputs in the format with nested braces and quotes inside JSON strings, escapes, non-ASCII,
empty arguments, several calls, malformed calls, unclosed calls, whitespace-only content, an
unclosed reasoning section; each streamed through vLLM's own composed parser one unit at a time,
in random chunks and whole: the assembled message is the one-shot message, and the well-formed
calls come back with their names and argument objects. Hostile text (the harness's) never
raises: it comes back as reasoning or content."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from vllm_ref_harness.hostile import FUZZ, hostile_text
from vllm_ref_parsers.format import CALL_END, CALL_START, THINK_END, THINK_START

# Free text never spells a marker ("|" is left out) but does hold "<", ">", "/", braces,
# quotes, backslashes, newlines and non-ASCII.
TEXT = st.text(st.characters(blacklist_characters="|", blacklist_categories=("Cs",)), max_size=12)
SPICY = st.sampled_from(['{', '}', '"', '\\', '\\"', '{"a": "}"}', 'ü', '日本', '🙂', '\n', '<', '</', '<|x'])
STRING = st.lists(st.one_of(TEXT, SPICY), max_size=4).map("".join)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20)
                    | st.floats(allow_nan=False, allow_infinity=False) | STRING,
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(STRING, c, max_size=3), max_leaves=8)
ARGS = st.dictionaries(STRING, JSON, max_size=4)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
MALFORMED = st.sampled_from(['', '{', '{"name": "f"', '{"name": "", "arguments": {}}', '{"name": 3}',
                             '{"name": "f", "arguments": [1]}', '{"name": "f", "arguments": {"x": NaN}}',
                             '{"name": "f", "arguments": {}, "extra": 1}', '[]', 'not json'])
WS = st.sampled_from(["", " ", "\n", "\n\n", " \t"])
PART = st.one_of(
    st.tuples(st.just("call"), NAME, ARGS),
    st.tuples(st.just("bad"), MALFORMED),
    st.tuples(st.just("text"), st.one_of(WS, STRING)),
)


@st.composite
def outputs(draw: Any) -> tuple[str, list[tuple[str, Any]]]:
    """(output text, the well-formed calls in it)."""
    out = [draw(st.sampled_from([THINK_START, ""])), draw(STRING)]
    if draw(st.integers(0, 9)) == 0:
        return "".join(out), []  # never closed: all reasoning
    out.append(THINK_END)
    calls = []
    for part in draw(st.lists(PART, max_size=5)):
        if part[0] == "call":
            calls.append((part[1], part[2]))
            out += [draw(WS), CALL_START, json.dumps({"name": part[1], "arguments": part[2]},
                                                    ensure_ascii=draw(st.booleans())), CALL_END]
        elif part[0] == "bad":
            out += [CALL_START, part[1], CALL_END]
        else:
            out.append(part[1])
    if draw(st.integers(0, 5)) == 0:
        out += [CALL_START, draw(STRING)]  # cut inside a call
    return "".join(out), calls


def chunked(units: list, sizes: list[int]) -> list[list]:
    out, i, k = [], 0, 0
    while i < len(units):
        n = sizes[k % len(sizes)] if sizes else 1
        out.append(units[i:i + n])
        i, k = i + n, k + 1
    return out or [[]]


@FUZZ
@given(outputs(), st.lists(st.integers(1, 9), min_size=1, max_size=6))
def test_every_split_streams_the_one_shot_message(parsers: Any, case: Any, sizes: list[int]) -> None:
    text, calls = case
    whole = parsers.one_shot(text)
    assert whole.calls == [(n, json.loads(json.dumps(a))) for n, a in calls], text
    units = parsers.units(text)
    for chunks in ([[u] for u in units], chunked(units, sizes), [units]):
        assert parsers.stream(chunks) == whole, (text, [len(c) for c in chunks])


@FUZZ
@given(hostile_text(200), st.lists(st.integers(1, 9), min_size=1, max_size=4))
def test_hostile_text_is_reasoning_or_content_never_an_error(parsers: Any, text: str, sizes: list[int]) -> None:
    # Cut to 2000 characters: vLLM's own legacy streaming path concatenates the text so far on
    # every delta, quadratic in the deltas; the 200,000-character strings would cost minutes.
    text = text[:2000]
    for output in (text, THINK_END + text, THINK_END + CALL_START + text + CALL_END, THINK_END + CALL_START + text):
        whole = parsers.one_shot(output)
        assert parsers.stream(chunked(parsers.units(output), sizes)) == whole
