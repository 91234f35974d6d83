"""Unit tests, no engine: request validation, window cutting, aggregation, the processor's
hooks on a real tokenizer (the tiny pooling model's) and the version gate."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
import torch
import vllm_ref_common.gate
import vllm_ref_io
from vllm_ref_io import windows as W

IDS = list(range(100, 110))  # ten document tokens, one character each
OFFS = [(i, i + 1) for i in range(10)]


def req(**kw):
    return W.parse_request({"text": "0123456789", **kw}, max_model_len=512, specials=0, max_chars=1000)


@pytest.mark.parametrize(("window", "overlap", "starts"), [
    (4, 0, [0, 4, 8]), (4, 1, [0, 3, 6]), (4, 2, [0, 2, 4, 6]), (10, 3, [0]), (11, 0, [0]), (5, 0, [0, 5]),
    (9, 8, [0, 1]), (1, 0, list(range(10))),
])
def test_windows_cover_the_document_on_token_boundaries(window, overlap, starts):
    plan = W.plan(req(window=window, overlap=overlap), IDS, OFFS, 512)
    assert [w.start for w in plan] == starts
    assert all(len(w.token_ids) <= window for w in plan)
    assert plan[-1].end == 10  # the last window reaches the end, and no window is empty
    assert [w.token_ids for w in plan] == [IDS[s:s + window] for s in starts]
    assert [w.tokens for w in plan] == [len(w.token_ids) for w in plan]


def test_default_window_is_the_served_context_and_specials_are_counted_inside_it():
    r = W.parse_request({"text": "x"}, max_model_len=6, specials=2, max_chars=10)
    plan = W.plan(r, IDS, OFFS, 6, wrap=lambda c: [1, *c, 2], specials=2)
    assert [w.token_ids for w in plan] == [[1, *IDS[0:4], 2], [1, *IDS[4:8], 2], [1, *IDS[8:10], 2]]
    assert [w.tokens for w in plan] == [4, 4, 2]  # document tokens only: the weights of "mean"
    with pytest.raises(W.BadRequest, match="'window'.*from 3 to 6"):
        W.parse_request({"text": "x", "window": 2}, max_model_len=6, specials=2, max_chars=10)


@pytest.mark.parametrize(("data", "field", "accepted"), [
    (None, "data", "an object"), ([], "data", "an object"), ({}, "text", "non-empty string"),
    ({"text": ""}, "text", "non-empty"), ({"text": " \n"}, "text", "non-empty"), ({"text": b"x"}, "text", "string"),
    ({"text": "x" * 1001}, "text", "at most 1000 characters (REF_IO_MAX_CHARS)"),
    ({"text": "x", "window": 513}, "window", "from 1 to 512"), ({"text": "x", "window": True}, "window", "integer"),
    ({"text": "x", "window": 2.0}, "window", "integer"),
    ({"text": "x", "window": 8, "overlap": 8}, "overlap", "0 to 7"),
    ({"text": "x", "overlap": "1"}, "overlap", "integer"), ({"text": "x", "aggregate": "sum"}, "aggregate", "'none'"),
    ({"text": "x", "aggregate": 1}, "aggregate", "'mean'"),
    ({"text": "x", "return_windows": 1}, "return_windows", "true or false"),
    ({"text": "x", "windows": 2}, "windows", "window"),
])
def test_bad_requests_name_the_plugin_the_field_and_what_is_accepted(data, field, accepted):
    with pytest.raises(W.BadRequest) as e:
        W.parse_request(data, max_model_len=512, specials=0, max_chars=1000)
    assert e.value.field == field
    assert str(e.value).startswith(f"ref_io: field '{field}'") and accepted in str(e.value)


def test_defaults_and_null_as_default():
    assert req() == W.Request("0123456789", None, 0, "mean", False)
    nulls = {"window": None, "overlap": None, "aggregate": None, "return_windows": None}
    assert req(**nulls) == req()


def test_aggregations():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mean = W.aggregate("mean", [a, b], [3, 1])
    torch.testing.assert_close(mean, torch.nn.functional.normalize(torch.tensor([0.75, 0.25]), dim=0))
    torch.testing.assert_close(W.aggregate("max", [a, -b], [1, 1]), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(W.aggregate("first", [b, a], [1, 9]), b)
    assert W.aggregate("none", [a], [1]) is None
    assert abs(float(W.aggregate("mean", [a, a * 0.5 + b], [1, 1]).norm()) - 1) < 1e-6


@pytest.fixture(scope="module")
def processor(embed_model):
    from vllm.tokenizers import get_tokenizer
    from vllm_ref_io.processor import RefIOProcessor

    config = SimpleNamespace(model_config=SimpleNamespace(max_model_len=64))
    renderer = SimpleNamespace(get_tokenizer=lambda: get_tokenizer(str(embed_model)))
    return RefIOProcessor(config, renderer)


def test_processor_cuts_the_tokenizers_ids_and_spans_are_characters(processor):
    from vllm_ref_io.testing import EXTRA

    text = (EXTRA + " ") * 8
    enc = processor.tokenizer(text, add_special_tokens=False)
    prompts = processor.pre_process(processor.parse_data({"text": text, "window": 20, "overlap": 5}), "r1")
    ids = [p["prompt_token_ids"] for p in prompts]
    assert ids[0] == enc["input_ids"][:20] and ids[1] == enc["input_ids"][15:35]
    _, plan, n = processor._plans["r1"]
    assert n == len(enc["input_ids"]) and plan[-1].end == len(text)  # the trailing space is a token too
    assert text[plan[0].start:plan[0].end] == processor.tokenizer.decode(ids[0])  # characters, not bytes
    with pytest.raises(ValueError, match="request id 'r1' is already in flight"):  # a second plan would be lost
        processor.pre_process(processor.parse_data({"text": text}), "r1")
    outs = [SimpleNamespace(outputs=SimpleNamespace(data=torch.ones(4) * (i + 1))) for i in range(len(ids))]
    got = processor.post_process(outs, "r1")
    assert "r1" not in processor._plans and got["tokens"] == n and "windows" not in got
    torch.testing.assert_close(torch.tensor(got["embedding"]), torch.full((4,), 0.5))
    with pytest.raises(RuntimeError, match="no windows recorded"):
        processor.post_process(outs, "r1")


def test_processor_asks_for_embed_pooling(processor):
    from vllm.pooling_params import PoolingParams

    assert processor.merge_pooling_params().task == "embed"
    assert processor.merge_pooling_params(PoolingParams(task="plugin")).task == "embed"


def test_invalid_requests_are_vllm_validation_errors_and_value_errors(processor):
    from vllm.exceptions import VLLMValidationError

    with pytest.raises(VLLMValidationError) as e:
        processor.parse_data({"text": "x", "window": 65})
    assert isinstance(e.value, ValueError) and e.value.parameter == "window"


def test_max_chars_setting(monkeypatch):
    from vllm_ref_io.processor import DEFAULT_MAX_CHARS, max_chars_setting

    assert vllm_ref_io.MAX_CHARS_ENV == "REF_IO_MAX_CHARS"
    assert max_chars_setting({}) == DEFAULT_MAX_CHARS and max_chars_setting({"REF_IO_MAX_CHARS": "7"}) == 7
    for bad in ("0", "-3", "lots", "1e6"):
        with pytest.raises(ValueError, match="ref_io: REF_IO_MAX_CHARS=.*an integer from 1 to 100000000"):
            max_chars_setting({"REF_IO_MAX_CHARS": bad})


def test_gate_keeps_the_plugin_out_outside_its_range(monkeypatch):
    monkeypatch.setattr(vllm_ref_common.gate, "_warned", set())
    monkeypatch.delenv(vllm_ref_io.ANY_VERSION_ENV, raising=False)
    monkeypatch.setattr(vllm_ref_common.gate, "vllm_version", lambda: "0.20.0")
    assert vllm_ref_io.register() is None
    assert vllm_ref_io.status()["gate"]["active"] is False
    monkeypatch.setenv(vllm_ref_io.ANY_VERSION_ENV, "1")
    assert vllm_ref_io.register() == vllm_ref_io.PROCESSOR
    monkeypatch.setattr(vllm_ref_common.gate, "vllm_version", lambda: "0.32.0")
    assert vllm_ref_io.register() == "vllm_ref_io.processor.RefIOProcessor"
    module, _, cls = vllm_ref_io.PROCESSOR.rpartition(".")
    assert hasattr(importlib.import_module(module), cls)


def test_status_is_cheap_and_says_what_happened_here(processor):
    s = vllm_ref_io.status()
    assert s["effect"] is True and s["processors"] >= 1 and set(s) >= {"requests", "windows", "gate"}


def test_plans_of_requests_that_never_finish_are_bounded(processor, monkeypatch, caplog):
    import vllm_ref_io.processor as P

    monkeypatch.setattr(P, "MAX_PENDING", 2)
    processor._plans.clear()
    for rid in ("a", "b", "c"):
        processor.pre_process(processor.parse_data({"text": "Hello there"}), rid)
    assert list(processor._plans) == ["b", "c"] and "forgot the windows of the oldest, 'a'" in caplog.text
    with pytest.raises(RuntimeError, match="no windows recorded for request 'a'"):
        processor.post_process([], "a")
    processor._plans.clear()
