"""The entry point: explicit activation, version gate, and the interpreter switch. No engine."""

import logging
import sys

import pytest
import vllm_ref_accelerator as acc


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv(acc.ACTIVATION_ENV, raising=False)
    monkeypatch.delenv(acc.ANY_VERSION_ENV, raising=False)
    # register() sets it; keep this process's value as it was.
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    import vllm_ref_common

    monkeypatch.setattr(vllm_ref_common.gate, "_warned", set())


def test_absent_device_means_inactive_and_says_why_at_debug(caplog):
    with caplog.at_level(logging.DEBUG, logger="vllm_ref"):
        assert acc.register() is None
    assert any(acc.ACTIVATION_ENV in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("value", ["0", "false", "off", ""])
def test_explicit_off_values_stay_inactive(monkeypatch, value):
    monkeypatch.setenv(acc.ACTIVATION_ENV, value)
    assert acc.register() is None


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_present_device_activates_and_turns_on_the_interpreter(monkeypatch, value):
    import os

    monkeypatch.setenv(acc.ACTIVATION_ENV, value)
    assert acc.register() == "vllm_ref_accelerator.platform.RefAcceleratorPlatform"
    assert os.environ["TRITON_INTERPRET"] == "1"


def test_unknown_value_warns_once_naming_the_setting_and_accepted_values(monkeypatch, caplog):
    monkeypatch.setenv(acc.ACTIVATION_ENV, "maybe")
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert acc.register() is None
        assert acc.register() is None
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(msgs) == 1
    assert "ref_accelerator" in msgs[0] and acc.ACTIVATION_ENV in msgs[0] and "1/true/yes/on" in msgs[0]


def test_without_vllm_it_warns_once_and_does_nothing(monkeypatch, caplog):
    import os

    monkeypatch.setenv(acc.ACTIVATION_ENV, "1")
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert acc.register() is None
        assert acc.register() is None
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(msgs) == 1 and "ref_accelerator" in msgs[0] and "not importable" in msgs[0]
    assert os.environ["TRITON_INTERPRET"] == "0"


def test_outside_the_supported_range_it_declines_unless_overridden(monkeypatch):
    import types

    fake = types.ModuleType("vllm")
    fake.__version__ = "0.40.0"
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setenv(acc.ACTIVATION_ENV, "1")
    assert acc.register() is None
    monkeypatch.setenv(acc.ANY_VERSION_ENV, "1")
    assert acc.register() == acc.PLATFORM_CLS


def test_declared_range_matches_the_matrix():
    # docs/compatibility.md: the backend registration fails on 0.28 and 0.30 (enum API changed).
    from vllm_ref_common import version_in_range

    assert acc.SUPPORTED_VLLM == ">=0.32,<0.34"
    assert version_in_range("0.32.0", acc.SUPPORTED_VLLM) and version_in_range("0.33.0", acc.SUPPORTED_VLLM)
    assert not version_in_range("0.30.0", acc.SUPPORTED_VLLM)
