"""Every REF_PROMETHEUS_* setting under hostile values (hypothesis): a Config inside the
documented bounds, or a ConfigError naming the plugin and the variable, never another exception."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vllm_ref_harness.hostile import FUZZ, hostile_text, number_texts
from vllm_ref_prometheus import ConfigError, load_config
from vllm_ref_prometheus.config import JOB_ENV, LISTEN_ENV, MAX_URL_CHARS, PUSH_INTERVAL_ENV, PUSHGATEWAY_ENV

URLISH = st.one_of(
    st.builds(lambda s, h, p: f"{s}://{h}:{p}", st.sampled_from(["http", "https", "ftp", "", "HTTP"]),
              st.one_of(st.sampled_from(["gw", "127.0.0.1", "[::1]", "[zz", ""]), hostile_text(20)),
              st.one_of(number_texts(), st.integers(-5, 70000).map(str))),
    st.builds(lambda n: "http://gw/" + "a" * n, st.integers(MAX_URL_CHARS - 20, MAX_URL_CHARS + 20)))
VALUES = {
    LISTEN_ENV: st.one_of(number_texts(), hostile_text(40),
                          st.builds(lambda h, p: f"{h}:{p}", hostile_text(10), number_texts())),
    PUSHGATEWAY_ENV: st.one_of(URLISH, hostile_text(40)),
    PUSH_INTERVAL_ENV: st.one_of(number_texts(), hostile_text(20)),
    JOB_ENV: hostile_text(200),
}


@FUZZ
@given(st.sampled_from(list(VALUES)).flatmap(lambda var: st.tuples(st.just(var), VALUES[var])))
def test_any_setting_gives_a_bounded_config_or_a_start_up_error(item):
    var, value = item
    try:
        cfg = load_config({var: value})
    except ConfigError as exc:
        text = str(exc)
        assert text.startswith(f"ref_prometheus: {var}=") and "accepted values:" in text, text[:500]
        assert len(text) < 1000
        return
    if cfg.listen is not None:
        assert 1 <= cfg.listen[1] <= 65535 and cfg.listen[0]
    if cfg.pushgateway is not None:
        parts = urlsplit(cfg.pushgateway)
        assert parts.scheme in ("http", "https") and parts.hostname and len(cfg.pushgateway) <= MAX_URL_CHARS
        assert parts.port is None or 1 <= parts.port <= 65535
    assert 0.1 <= cfg.push_interval <= 3600
    assert 1 <= len(cfg.job) <= 128


@pytest.mark.parametrize(("var", "value"), [
    (LISTEN_ENV, "\u00b2"), (LISTEN_ENV, "9" * 5000), (LISTEN_ENV, "h:\u0663\u0663"), (PUSHGATEWAY_ENV, "http://[zz"),
    (PUSHGATEWAY_ENV, "http://gw:99999"), (PUSHGATEWAY_ENV, "http://gw:0"), (PUSHGATEWAY_ENV, "http://gw:abc"),
    (PUSHGATEWAY_ENV, "http://gw/" + "a" * MAX_URL_CHARS), (PUSH_INTERVAL_ENV, "1e999"), (PUSH_INTERVAL_ENV, "inf"),
    (PUSH_INTERVAL_ENV, "0.09"), (PUSH_INTERVAL_ENV, "3600.5"),
])
def test_extremes_are_refused_naming_the_variable(var, value):
    with pytest.raises(ConfigError, match=f"^ref_prometheus: {var}="):
        load_config({var: value})
