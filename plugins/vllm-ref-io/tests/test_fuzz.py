"""The IO processor's `data` and REF_IO_MAX_CHARS under hostile values (hypothesis).

Each property: a request inside the documented bounds that cuts into windows the model can take,
or a BadRequest (a 400) naming the plugin and the field, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vllm_ref_harness.hostile import FUZZ, deep, hostile_text, hostile_values, number_texts, numbers
from vllm_ref_io import windows as W
from vllm_ref_io.processor import MAX_MAX_CHARS, max_chars_setting

MAX_MODEL_LEN, SPECIALS, MAX_CHARS = 512, 2, 5000
FIELD_VALUES = {
    "text": st.one_of(hostile_text(300), st.just("Hello, world."), hostile_values()),
    "window": st.one_of(numbers(), st.integers(0, 600), hostile_values()),
    "overlap": st.one_of(numbers(), st.integers(-2, 600), hostile_values()),
    "aggregate": st.one_of(st.sampled_from([*W.AGGREGATES, "median", "MEAN", ""]), hostile_values()),
    "return_windows": st.one_of(st.booleans(), hostile_values()),
}
DATA = st.one_of(
    st.fixed_dictionaries({"text": FIELD_VALUES["text"]},
                          optional={k: v for k, v in FIELD_VALUES.items() if k != "text"}),
    st.dictionaries(st.one_of(st.sampled_from(W.FIELDS), hostile_text(20), st.integers()), hostile_values(),
                    max_size=4),
    hostile_values(),
)


def refused(exc: W.BadRequest) -> None:
    text = str(exc)
    assert text.startswith(f"ref_io: field {exc.field!r}") and "; accepted: " in text, text[:500]
    assert len(text) < 1000


@FUZZ
@given(DATA)
def test_any_data_is_a_request_that_fits_the_model_or_a_refusal_naming_the_field(data):
    try:
        req = W.parse_request(data, MAX_MODEL_LEN, SPECIALS, MAX_CHARS)
    except W.BadRequest as exc:
        refused(exc)
        return
    req.text.encode("utf-8")  # what any tokenizer needs
    assert 0 < len(req.text) <= MAX_CHARS and req.aggregate in W.AGGREGATES
    assert req.window is None or SPECIALS < req.window <= MAX_MODEL_LEN
    # One token per character stands in for the tokenizer: every window fits the model.
    ids = list(range(len(req.text)))
    plan = W.plan(req, ids, [(i, i + 1) for i in ids], MAX_MODEL_LEN, lambda c: [0, *c, 0], SPECIALS)
    assert plan and all(len(w.token_ids) <= MAX_MODEL_LEN for w in plan)
    assert sum(w.tokens for w in plan) >= len(ids)


def test_issue_27_a_lone_surrogate_in_text_is_refused_naming_ref_io_and_text():
    for text in ("a\ud800b", "\udfff", "ok " * 10 + "\udc80"):
        with pytest.raises(W.BadRequest) as e:
            W.parse_request({"text": text}, MAX_MODEL_LEN, SPECIALS, MAX_CHARS)
        assert e.value.field == "text" and "lone surrogate" in str(e.value) and "valid Unicode" in str(e.value)
        refused(e.value)


@pytest.mark.parametrize("data", [
    {"text": "x", "window": 10**400}, {"text": "x", "overlap": -(10**400)}, {"text": "x", "window": 1e308},
    {"text": "x", "aggregate": deep(5000)}, {"text": "x", "aggregate": ["mean"]}, {"text": "x", 7: 1},
    {"text": "x" * (MAX_CHARS + 1)}, {"text": deep(100)}, {"text": "x", "window": True},
])
def test_extremes_are_refused(data):
    with pytest.raises(W.BadRequest) as e:
        W.parse_request(data, MAX_MODEL_LEN, SPECIALS, MAX_CHARS)
    refused(e.value)


@FUZZ
@given(st.one_of(number_texts(), hostile_text(40)))
def test_any_max_chars_setting_is_in_bounds_or_a_start_up_error(raw):
    try:
        value = max_chars_setting({"REF_IO_MAX_CHARS": raw})
    except ValueError as exc:
        text = str(exc)
        assert text.startswith("ref_io: REF_IO_MAX_CHARS=") and f"from 1 to {MAX_MAX_CHARS}" in text
        assert len(text) < 1000
        return
    assert 1 <= value <= MAX_MAX_CHARS


@pytest.fixture(scope="module")
def processor(embed_model):
    """The real processor with the served model's real tokenizer (no engine): what vLLM's front
    end calls, parse_data then pre_process."""
    from types import SimpleNamespace

    from vllm.tokenizers import get_tokenizer
    from vllm_ref_io.processor import RefIOProcessor

    config = SimpleNamespace(model_config=SimpleNamespace(max_model_len=64))
    return RefIOProcessor(config, SimpleNamespace(get_tokenizer=lambda: get_tokenizer(str(embed_model))))


@FUZZ
@given(DATA)
def test_a_refused_request_leaves_the_processor_as_it_was(processor, data):
    from vllm_ref_io import status

    plans, counters = dict(processor._plans), status()
    try:
        prompts = processor.pre_process(processor.parse_data(data), "fuzz")
    except ValueError as exc:  # InvalidRequest: vLLM's validation error, a ValueError too
        assert str(exc).startswith("ref_io: field ") and getattr(exc, "parameter", None) is not None, str(exc)[:300]
        assert processor._plans == plans and status() == counters  # no trace
        return
    assert prompts and all(len(p["prompt_token_ids"]) <= 64 for p in prompts)
    assert processor._plans.pop("fuzz")[1]  # the one plan this request made
    assert processor._plans == plans and status() == counters
