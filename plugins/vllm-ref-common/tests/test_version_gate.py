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
    monkeypatch.setattr(common, "_warned", set())
    return mod


def test_outside_range_warns_once_and_declines(fake_vllm, monkeypatch, caplog):
    fake_vllm.__version__ = "0.99.0"
    monkeypatch.delenv("X_ANY", raising=False)
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert common.check_vllm("ref_x", ">=0.28,<0.34", override_env="X_ANY") is False
        assert common.check_vllm("ref_x", ">=0.28,<0.34", override_env="X_ANY") is False
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1
    assert "ref_x" in msgs[0] and "0.99.0" in msgs[0] and ">=0.28,<0.34" in msgs[0] and "X_ANY" in msgs[0]


def test_override_registers_outside_range(fake_vllm, monkeypatch):
    fake_vllm.__version__ = "0.99.0"
    monkeypatch.setenv("X_ANY", "1")
    assert common.check_vllm("ref_x", ">=0.28,<0.34", override_env="X_ANY") is True


def test_inside_range_is_silent(fake_vllm, caplog):
    fake_vllm.__version__ = "0.32.0"
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert common.check_vllm("ref_x", ">=0.28,<0.34", override_env="X_ANY") is True
    assert caplog.records == []


def test_missing_vllm_warns_and_declines(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now raises ImportError
    monkeypatch.setattr(common, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="vllm_ref"):
        assert common.check_vllm("ref_x", ">=0.28", override_env="X_ANY") is False
    assert "not importable" in caplog.records[0].getMessage()
