"""The ref_temp_* keys and the REF_TEMPERATURE_* settings under hostile values (hypothesis).

Each property: a rule inside the documented bounds, whose temperatures are finite and positive in
float32 at every position, or a ValueError naming the plugin, never another exception."""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from vllm_ref_harness.hostile import FUZZ, hostile_text, hostile_values, number_texts, numbers
from vllm_ref_temperature import kernel
from vllm_ref_temperature.params import (
    ALL_KEYS,
    BOUNDS,
    ENTROPY,
    ENTROPY_KEYS,
    MODE_KEY,
    SCHEDULE_KEYS,
    env_defaults,
    parse,
)
from vllm_ref_temperature.processor import TemperatureLogitsProcessor

VALUES = st.one_of(numbers(), hostile_values(), st.integers(0, 100), st.floats(0, 100))
KEYS = st.one_of(st.sampled_from(ALL_KEYS), hostile_text(30), st.just("ref_temp_" + "x" * 10_000))


def refused(exc: ValueError) -> None:
    text = str(exc)
    assert text.startswith("ref_temperature: ") and len(text) < 1000, text[:2000]


def temperatures(spec) -> torch.Tensor:
    """What the kernels make of the rule: every position of a schedule (first, inside, at and
    far beyond the end), every entropy from certain to uniform; float32, as applied."""
    a, b, c = (torch.tensor([x] * 5, dtype=torch.float64) for x in (spec.a, spec.b, spec.c))
    if spec.mode == ENTROPY:
        t = kernel.entropy_temperature(torch.tensor([0.0, 1e-300, 0.5, 1 - 1e-16, 1.0], dtype=torch.float64), a, b, c)
    else:
        g = torch.tensor([0, 1, int(spec.c), int(spec.c) + 1, 2**40], dtype=torch.int64)
        t = kernel.schedule_temperature(a, b, c, g)
    return t.to(torch.float32)


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=4), st.sampled_from(["schedule", "entropy", None]))
def test_any_extra_args_give_a_bounded_rule_or_a_clear_refusal(args, mode):
    if mode is not None:
        args = {**args, MODE_KEY: mode}
    try:
        spec = parse(args)
    except ValueError as exc:
        refused(exc)
        return
    if spec is None:
        assert not any(isinstance(k, str) and k.startswith("ref_temp_") for k in args)
        return
    keys = ENTROPY_KEYS if spec.mode == ENTROPY else SCHEDULE_KEYS
    for value, (_env, _builtin, kind) in zip((spec.a, spec.b, spec.c), keys.values(), strict=True):
        lo, hi = BOUNDS[kind]
        assert lo <= value <= hi
    t = temperatures(spec)
    assert torch.isfinite(t).all() and (t > 0).all(), (spec, t)


@FUZZ
@given(st.sampled_from(list(SCHEDULE_KEYS) + list(ENTROPY_KEYS)), VALUES)
def test_validate_params_refuses_with_a_value_error_only(key, value):
    mode = "entropy" if key in ENTROPY_KEYS else "schedule"
    params = type("Params", (), {"extra_args": {MODE_KEY: mode, key: value}})()
    try:
        TemperatureLogitsProcessor.validate_params(params)  # what vLLM's front end calls: a 400 on ValueError
    except ValueError as exc:
        refused(exc)


def _settable(text: str) -> bool:
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@FUZZ
@given(st.sampled_from([env for env, _b, _k in (*SCHEDULE_KEYS.values(), *ENTROPY_KEYS.values())]),
       st.one_of(number_texts(), hostile_text(60)))
def test_any_setting_text_gives_a_bounded_default_or_a_start_up_error(env, text):
    assume(_settable(text))
    saved = os.environ.get(env)
    os.environ[env] = text
    try:
        defaults = env_defaults()
    except ValueError as exc:
        refused(exc)
        assert env in str(exc)
        return
    finally:
        if saved is None:
            del os.environ[env]
        else:
            os.environ[env] = saved
    assert all(math.isfinite(v) for v in defaults.values())


@pytest.mark.parametrize(("key", "value"), [
    ("ref_temp_steps", 10**400), ("ref_temp_start", 10**400), ("ref_temp_start", 1e308), ("ref_temp_end", 101),
    ("ref_temp_steps", 10_000_001), ("ref_temp_exponent", 1e-320), ("ref_temp_exponent", 1e308),
    ("ref_temp_exponent", 0.009), ("ref_temp_start", -1e-320),
])
def test_extremes_are_refused_naming_the_key_and_the_range(key, value):
    mode = "entropy" if key in ENTROPY_KEYS else "schedule"
    with pytest.raises(ValueError) as e:
        parse({MODE_KEY: mode, key: value})
    refused(e.value)
    assert key in str(e.value) and "accepted: " in str(e.value) and " to " in str(e.value)


def test_the_bounds_themselves_are_accepted():
    assert parse({MODE_KEY: "schedule", "ref_temp_start": 100, "ref_temp_end": 0, "ref_temp_steps": 10_000_000})
    assert parse({MODE_KEY: "entropy", "ref_temp_min": 0, "ref_temp_max": 100.0, "ref_temp_exponent": 0.01})
    assert parse({MODE_KEY: "entropy", "ref_temp_exponent": 100})


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=4), st.sampled_from(["schedule", "entropy"]))
def test_the_worker_never_fails_on_a_request(args, mode):
    """In the worker (after the front end's check, or where the environment differs) a bad rule
    leaves the request untouched; the engine must never fail on it."""
    from types import SimpleNamespace

    from vllm_ref_temperature.state import request_spec

    spec = request_spec(SimpleNamespace(temperature=1.0, extra_args={**args, MODE_KEY: mode}))
    assert spec is None or torch.isfinite(temperatures(spec)).all()
