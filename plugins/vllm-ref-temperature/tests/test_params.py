"""The ref_temp_* keys: accepted values, defaults from the environment, clear errors."""

import math

import pytest
from vllm_ref_temperature.params import ENTROPY, SCHEDULE, TempSpec, env_defaults, parse


def test_requests_without_our_keys_are_not_opted_in():
    assert parse(None) is None
    assert parse({}) is None
    # Other plugins' keys share the dictionary and must pass through untouched.
    assert parse({"other_plugin_key": "x", "ref_tempo": 1, "kv_transfer_params": {}}) is None


def test_schedule_with_explicit_values():
    spec = parse({"ref_temp_mode": "schedule", "ref_temp_start": 2, "ref_temp_end": 0.0, "ref_temp_steps": 8})
    assert spec == TempSpec(SCHEDULE, 2.0, 0.0, 8.0)


def test_entropy_with_explicit_values():
    spec = parse({"ref_temp_mode": "entropy", "ref_temp_min": 0.2, "ref_temp_max": 3, "ref_temp_exponent": 2})
    assert spec == TempSpec(ENTROPY, 0.2, 3.0, 2.0)


def test_missing_values_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("REF_TEMPERATURE_START", "2.5")
    monkeypatch.setenv("REF_TEMPERATURE_STEPS", "4")
    monkeypatch.setenv("REF_TEMPERATURE_MAX", "0.9")
    assert parse({"ref_temp_mode": "schedule"}) == TempSpec(SCHEDULE, 2.5, 0.7, 4.0)
    assert parse({"ref_temp_mode": "entropy"}) == TempSpec(ENTROPY, 0.5, 0.9, 1.0)
    # An explicit value wins over the environment.
    assert parse({"ref_temp_mode": "schedule", "ref_temp_start": 1}).a == 1.0


def test_builtin_defaults_without_environment(monkeypatch):
    for var in ("START", "END", "STEPS", "MIN", "MAX", "EXPONENT"):
        monkeypatch.delenv(f"REF_TEMPERATURE_{var}", raising=False)
    assert parse({"ref_temp_mode": "schedule"}) == TempSpec(SCHEDULE, 1.5, 0.7, 32.0)
    assert parse({"ref_temp_mode": "entropy"}) == TempSpec(ENTROPY, 0.5, 1.5, 1.0)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"ref_temp_mode": "schedule", "ref_temp_start": -1}, "ref_temp_start = -1 is invalid"),
        ({"ref_temp_mode": "schedule", "ref_temp_end": math.nan}, "ref_temp_end = nan is invalid"),
        ({"ref_temp_mode": "schedule", "ref_temp_end": math.inf}, "ref_temp_end = inf is invalid"),
        ({"ref_temp_mode": "schedule", "ref_temp_start": "hot"}, "ref_temp_start = 'hot' is invalid"),
        ({"ref_temp_mode": "schedule", "ref_temp_start": True}, "ref_temp_start = True is invalid"),
        ({"ref_temp_mode": "schedule", "ref_temp_start": [1.0]}, "accepted: a number from 0 to 100"),
        ({"ref_temp_mode": "schedule", "ref_temp_steps": 2.5}, "accepted: an integer from 0 to 10000000"),
        ({"ref_temp_mode": "schedule", "ref_temp_steps": -3}, "ref_temp_steps = -3 is invalid"),
        ({"ref_temp_mode": "entropy", "ref_temp_exponent": 0}, "accepted: a number from 0.01 to 100"),
        ({"ref_temp_mode": "entropy", "ref_temp_min": 2, "ref_temp_max": 1}, "must not exceed"),
        ({"ref_temp_mode": "lukewarm"}, "accepted values: schedule, entropy"),
        ({"ref_temp_mode": 1}, "ref_temp_mode = 1 is invalid"),
        ({"ref_temp_start": 1.0}, "ref_temp_mode is required"),
        ({"ref_temp_mode": "schedule", "ref_temp_strat": 1.0}, "unknown extra_args key(s) ref_temp_strat"),
        ({"ref_temp_mode": "schedule", "ref_temp_min": 1.0}, "do not apply to ref_temp_mode=schedule"),
        ({"ref_temp_mode": "entropy", "ref_temp_steps": 3}, "do not apply to ref_temp_mode=entropy"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(args, message):
    with pytest.raises(ValueError) as err:
        parse(args)
    text = str(err.value)
    assert text.startswith("ref_temperature: ")
    assert message in text


def test_bad_environment_variable_names_itself(monkeypatch):
    monkeypatch.setenv("REF_TEMPERATURE_END", "cold")
    with pytest.raises(ValueError, match=r"environment variable REF_TEMPERATURE_END='cold' is invalid"):
        env_defaults()
    monkeypatch.setenv("REF_TEMPERATURE_END", "-0.5")
    with pytest.raises(ValueError, match="REF_TEMPERATURE_END = -0.5 is invalid"):
        parse({"ref_temp_mode": "schedule"})
    # A mode that does not use the bad variable still works.
    assert parse({"ref_temp_mode": "entropy"}) is not None


def test_zero_temperature_is_accepted():
    assert parse({"ref_temp_mode": "schedule", "ref_temp_start": 0, "ref_temp_end": 0}).a == 0.0
