import logging
import sys
import types

import pytest
import vllm_ref_common as common


@pytest.mark.parametrize(
    ("version", "inside"),
    [
        ("0.32.0", True), ("0.28.0", True), ("0.33.0rc1", True), ("0.33.0.dev12+gabc123", True),
        ("0.32.0.post1", True), ("0.32.0+cpu", True), ("0.33.0-custom", True), ("v0.30.1", True),
        ("0.34.0", False), ("0.34.0rc1", False), ("0.27.9", False), ("main", False), ("", False),
    ],
)
def test_version_in_range_handles_dev_rc_post_and_non_pep440(version, inside):
    assert common.version_in_range(version, ">=0.28,<0.34") is inside


@pytest.fixture
def fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setattr(common.gate, "_warned", set())
    return mod


def test_outside_range_warns_once_and_declines(fake_vllm, monkeypatch, caplog):
    fake_vllm.__version__ = "0.99.0"
    monkeypatch.delenv("REF_X_ANY_VERSION", raising=False)
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert common.check_vllm("ref_x", ">=0.28,<0.34") is False
        assert common.check_vllm("ref_x", ">=0.28,<0.34") is False
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1
    assert "ref_x" in msgs[0] and "0.99.0" in msgs[0] and ">=0.28,<0.34" in msgs[0] and "REF_X_ANY_VERSION=1" in msgs[0]
    assert common.gate_verdict("ref_x") == {"vllm": "0.99.0", "supported": ">=0.28,<0.34", "active": False,
                                            "overridden": False}


def test_override_registers_outside_range(fake_vllm, monkeypatch):
    fake_vllm.__version__ = "0.99.0"
    monkeypatch.setenv("REF_X_ANY_VERSION", "1")
    assert common.check_vllm("ref_x", ">=0.28,<0.34") is True
    assert common.gate_verdict("ref_x")["overridden"] is True


def test_inside_range_is_silent(fake_vllm, caplog):
    fake_vllm.__version__ = "0.32.0"
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert common.check_vllm("ref_x", ">=0.28,<0.34") is True
    assert caplog.records == []


def test_missing_vllm_warns_and_declines(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now raises ImportError
    monkeypatch.setattr(common.gate, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert common.check_vllm("ref_x", ">=0.28") is False
    assert "not importable" in caplog.records[0].getMessage()


def test_settings_are_named_after_the_entry_point_and_never_vllm():
    assert common.setting("ref_scheduler", "weights") == "REF_SCHEDULER_WEIGHTS"
    assert common.setting("ref_accelerator") == "REF_ACCELERATOR"
    assert common.any_version_env("ref_model") == "REF_MODEL_ANY_VERSION"
    assert common.gate_verdict("never_checked_here") is None


@pytest.mark.parametrize(("value", "flag"), [
    ("1", True), (" TRUE ", True), ("yes", True), ("On", True),
    ("", False), ("0", False), ("false", False), ("no", False), ("OFF", False), ("maybe", None), ("2", None),
])
def test_env_flag_spellings(value, flag):
    assert common.env_flag("REF_X_FLAG", {"REF_X_FLAG": value}) is flag
    assert common.env_flag("REF_X_FLAG", {}) is False  # unset is off
