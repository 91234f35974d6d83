from __future__ import annotations

import logging

import pytest
from vllm_ref_kv import STATE


@pytest.fixture(autouse=True)
def fresh_state():
    """Each test starts from zeroed counters (STATE is per process, tests share the process)."""
    saved = dict(STATE)
    for k, v in STATE.items():
        STATE[k] = type(v)()
    yield STATE
    STATE.update(saved)


@pytest.fixture
def warnings_(caplog):
    """The plugin's warning messages so far (they propagate to the root logger caplog watches)."""
    caplog.set_level(logging.WARNING, logger="vllm_ref")
    return lambda: [r.getMessage() for r in caplog.records
                    if r.levelno >= logging.WARNING and r.name.startswith("vllm_ref.ref_kv")]
