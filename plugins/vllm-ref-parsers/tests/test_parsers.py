"""The parsers through vLLM's own composed parser: one test per upstream pitfall (each says which
naive behaviour it catches), registration, and the format's one-shot results."""

from __future__ import annotations

import json
from typing import Any

import pytest
import vllm_ref_parsers
from vllm_ref_parsers import format as F
from vllm_ref_parsers.format import CALL_END, CALL_START, THINK_END, THINK_START, render

WEATHER = render("The user wants the weather; {\"braces\"} in thought.",
                 ["Let me look. ", ("get_weather", {"city": "Paris", "q": "}{\"<|", "n": [1, {}]}), " and ",
                  ("search", {}), " Done."])


def test_one_shot_message(parsers: Any) -> None:
    m = parsers.one_shot(WEATHER)
    assert m.reasoning == "The user wants the weather; {\"braces\"} in thought."
    assert m.content == "Let me look.  and  Done."
    assert m.calls == [("get_weather", {"city": "Paris", "q": "}{\"<|", "n": [1, {}]}), ("search", {})]


def test_tool_markers_split_across_deltas(parsers: Any) -> None:
    # Naive: looks for <|call|> / <|/call|> inside each delta only, so a marker cut in two
    # (a text marker, or any detokenizer hold-back) is never seen and the call leaks as content.
    rest = WEATHER.split(THINK_END, 1)[1]
    whole = F.parse(THINK_END + rest)
    for cut in range(1, len(rest)):
        s = F.ToolSplitter()
        a, calls_a = s.feed(rest[:cut])
        b, calls_b = s.feed(rest[cut:])
        assert (a + b + s.finish() or None, calls_a + calls_b) == (whole.content, whole.calls), cut


def test_one_delta_spanning_reasoning_content_and_calls(parsers: Any) -> None:
    # Naive: decides "reasoning or not" per delta, so a multi-token delta that holds the end of
    # the reasoning, content and a whole call is all reasoning (or loses what follows the marker).
    units = parsers.units(WEATHER)
    end = next(i for i, (t, _) in enumerate(units) if t == THINK_END)
    for chunks in ([units[:end - 3], units[end - 3:]], [units[:5], units[5:end + 40], units[end + 40:]]):
        assert parsers.stream(chunks) == parsers.one_shot(WEATHER)


def test_partial_json_is_never_sent(parsers: Any) -> None:
    # Naive: streams the arguments as they arrive (partial-JSON diffs), so braces and quotes
    # inside strings close the object early and a call that turns out malformed was already
    # sent as a call. Here nothing of a call goes out before its closing marker.
    req = parsers.request()
    p = parsers.new(req)
    units = parsers.units(WEATHER)
    close = [i for i, (t, _) in enumerate(units) if t == CALL_END][0]
    for i, u in enumerate(units[:close]):
        d = p.parse_delta(u[0], [u[1]], req, finished=False)
        assert d is None or not d.tool_calls, (i, d)
    d = p.parse_delta(CALL_END, [units[close][1]], req, finished=False)
    assert [json.loads(tc.function.arguments) for tc in d.tool_calls] == [
        {"city": "Paris", "q": "}{\"<|", "n": [1, {}]}]


def test_end_of_stream_flush_adds_nothing(parsers: Any) -> None:
    # Naive: fills prev_tool_call_arr but not streamed_args_for_tool (or stores other text in
    # each), so vLLM's end-of-stream flush (get_remaining_unstreamed_args) sends the arguments
    # again on the last delta, or drops their tail.
    text = render("r", [("f", {"x": "y"})])
    for chunks in ([parsers.units(text)], parsers.singles(text)):
        req = parsers.request()
        p = parsers.new(req)
        m = parsers.stream(chunks, req, parser=p)
        assert m.calls == [("f", {"x": "y"})]
        assert p.tool_parser.get_remaining_unstreamed_args() == ""


def test_reasoning_end_ignores_the_prompt_history(parsers: Any) -> None:
    # Naive: is_reasoning_end(ids) = "the end token is in ids". The prompt's chat history holds
    # <|/think|> of earlier turns, so vLLM would take the reasoning as ended before the output
    # starts: the structured-output grammar applied inside the thinking, and the streamed
    # reasoning returned as content.
    end, start = parsers.ids[THINK_END], parsers.ids[THINK_START]
    prompt = [5, start, 6, end, 7, 8]
    p = parsers.new()
    rp = p.reasoning_parser
    assert rp.is_reasoning_end(prompt) is False
    assert rp.is_reasoning_end_streaming(prompt + [9], [9]) is False
    assert rp.is_reasoning_end_streaming(prompt + [9, end], [end]) is True
    m = parsers.stream(parsers.singles(WEATHER), prompt_ids=prompt)
    assert m == parsers.one_shot(WEATHER)


def test_engine_core_and_extraction_switch_on_the_same_token(parsers: Any) -> None:
    # Naive: the engine-side check and the text split disagree (a token test against a text
    # test, or one that scans the whole sequence), so the grammar starts a token early or late.
    ids = parsers.tokenizer.encode(WEATHER, add_special_tokens=False)
    rp = parsers.new().reasoning_parser  # a fresh one, as the engine core builds it
    first = next(n for n in range(1, len(ids) + 1) if rp.is_reasoning_end_streaming(ids[:n], ids[n - 1:n]))
    assert parsers.tokenizer.decode(ids[:first - 1]) == THINK_START + parsers.one_shot(WEATHER).reasoning
    assert rp.count_reasoning_tokens(ids) == first - 2  # without <|think|> and <|/think|>


def test_markers_survive_detokenization(parsers: Any) -> None:
    # Naive: leaves skip_special_tokens at vLLM's default True: the detokenizer drops the
    # special-token markers before either parser sees the text.
    req = parsers.request()
    assert req.skip_special_tokens is True
    out = parsers.new(req).adjust_request(req)
    assert out.skip_special_tokens is False
    req2 = parsers.request(tools=None, tool_choice=None)
    assert parsers.new(req2).adjust_request(req2).skip_special_tokens is False  # the reasoning parser's


@pytest.mark.parametrize("var,taken", [("REF_PARSERS_TOOL_PARSER", "hermes"),
                                       ("REF_PARSERS_REASONING_PARSER", "deepseek_r1")])
def test_a_taken_name_is_refused_not_overwritten(parsers: Any, monkeypatch: Any, var: str, taken: str) -> None:
    # Naive: ToolParserManager.register_lazy_module / register_module(force=True), which
    # silently replace vLLM's own parser of that name for every user of the server.
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    before = (dict(ToolParserManager.lazy_parsers), dict(ReasoningParserManager.lazy_parsers))
    monkeypatch.setenv(var, taken)
    with pytest.raises(ValueError) as e:
        vllm_ref_parsers.register()
    assert "ref_parsers" in str(e.value) and var in str(e.value) and repr(taken) in str(e.value)
    assert (dict(ToolParserManager.lazy_parsers), dict(ReasoningParserManager.lazy_parsers)) == before


def test_register_twice_and_bad_names(parsers: Any, monkeypatch: Any) -> None:
    vllm_ref_parsers.register()
    vllm_ref_parsers.register()
    st = vllm_ref_parsers.status()
    assert st["effect"] and (st["tool_parser"], st["reasoning_parser"]) == ("ref_tools", "ref_reasoning")
    monkeypatch.setenv("REF_PARSERS_TOOL_PARSER", "no spaces")
    with pytest.raises(ValueError, match="ref_parsers: REF_PARSERS_TOOL_PARSER is 'no spaces'; accepted"):
        vllm_ref_parsers.register()


def test_a_tokenizer_without_the_markers_stops_start_up(parsers: Any) -> None:
    # Naive: looks the ids up lazily and never finds the end: reasoning that never ends.
    from transformers import AutoTokenizer
    from vllm_ref_harness import tiny_llama

    plain = AutoTokenizer.from_pretrained(tiny_llama())
    with pytest.raises(ValueError, match=r"ref_parsers: the reasoning parser needs the special tokens"):
        parsers.cls(plain, None)


def test_malformed_and_unclosed_calls_are_content(parsers: Any) -> None:
    # Naive: json.loads raises into the serving layer (a 500), or the call is dropped.
    for bad in ('{"name": "f", "arguments": [1]}', '{"name": "f"', "", '{"name": "f", "arguments": {"x": NaN}}',
                '{"name": "f", "arguments": {"x": 1e999}}'):
        text = f"{THINK_START}r{THINK_END}a{CALL_START}{bad}{CALL_END}b"
        m = parsers.one_shot(text)
        assert (m.calls, m.content) == ([], f"a{CALL_START}{bad}{CALL_END}b")
        assert parsers.stream(parsers.singles(text)) == m
    cut = f"{THINK_START}r{THINK_END}a{CALL_START}" + '{"name": "f", "argu'
    assert parsers.one_shot(cut).content == f"a{CALL_START}" + '{"name": "f", "argu'
    assert parsers.stream(parsers.singles(cut)) == parsers.one_shot(cut)


def test_whitespace_around_calls_is_no_content(parsers: Any) -> None:
    # Naive: streams the "\n" before a call as content, while vLLM's one-shot path drops
    # whitespace-only content of a message with calls: the two messages differ.
    for text, content in ((render("r", ["\n", ("f", {}), "\n"]), None),
                          (render("r", ["\n", ("f", {}), "\nok"]), "\n\nok"),
                          (render("r", [" \n"]), " \n")):
        m = parsers.one_shot(text)
        assert m.content == content
        assert parsers.stream(parsers.singles(text)) == m


def test_reasoning_without_its_end_is_all_reasoning(parsers: Any) -> None:
    text = THINK_START + "still thinking <"
    m = parsers.one_shot(text)
    assert (m.reasoning, m.content, m.calls) == ("still thinking <", None, [])
    assert parsers.stream(parsers.singles(text)) == m


def test_streaming_reads_only_the_delta(parsers: Any) -> None:
    # Naive: re-parses current_text on every delta (quadratic). The parsers never read it.
    req = parsers.request()
    rs = F.ReasoningSplitter()
    assert rs.feed(WEATHER)[0] == parsers.one_shot(WEATHER).reasoning
    ts = parsers.new(req).tool_parser
    rest = WEATHER.split(THINK_END, 1)[1]
    # Wrong previous/current texts on purpose: a parser that read them would go wrong.
    got = [ts.extract_tool_calls_streaming("x" * 5, "garbage", c, [], [], [], req) for c in rest]
    assert [tc.function.name for d in got if d for tc in d.tool_calls] == ["get_weather", "search"]
