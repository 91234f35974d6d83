"""Settings: what each variable accepts, and errors naming plugin, variable and accepted values."""

import pytest
from vllm_ref_prometheus import Config, ConfigError, load_config


def test_defaults_serve_nothing_extra():
    assert load_config({}) == Config(listen=None, pushgateway=None, push_interval=15.0, job="vllm")


@pytest.mark.parametrize("value, expected", [
    ("9400", ("127.0.0.1", 9400)),  # a bare port stays on loopback
    ("0.0.0.0:9400", ("0.0.0.0", 9400)),
    ("localhost:1", ("localhost", 1)),
    ("[::1]:65535", ("::1", 65535)),
    ("  ", None),
])
def test_listen_accepts(value, expected):
    assert load_config({"REF_PROMETHEUS_LISTEN": value}).listen == expected


@pytest.mark.parametrize("var, value", [
    ("REF_PROMETHEUS_LISTEN", "0"),
    ("REF_PROMETHEUS_LISTEN", "70000"),
    ("REF_PROMETHEUS_LISTEN", "host:port"),
    ("REF_PROMETHEUS_LISTEN", ":9400"),
    ("REF_PROMETHEUS_PUSHGATEWAY", "127.0.0.1:9091"),
    ("REF_PROMETHEUS_PUSHGATEWAY", "ftp://gw:9091"),
    ("REF_PROMETHEUS_PUSH_INTERVAL", "soon"),
    ("REF_PROMETHEUS_PUSH_INTERVAL", "0"),
    ("REF_PROMETHEUS_PUSH_INTERVAL", "nan"),
    ("REF_PROMETHEUS_JOB", "my job/1"),
])
def test_bad_values_name_plugin_variable_and_accepted_values(var, value):
    with pytest.raises(ConfigError) as err:
        load_config({var: value})
    text = str(err.value)
    assert text.startswith("ref_prometheus: ")
    assert f"{var}={value.strip()!r}" in text
    assert "accepted values:" in text


def test_pushgateway_and_interval():
    cfg = load_config({"REF_PROMETHEUS_PUSHGATEWAY": "http://gw:9091/",
                       "REF_PROMETHEUS_PUSH_INTERVAL": "2.5", "REF_PROMETHEUS_JOB": "llm-a"})
    assert (cfg.pushgateway, cfg.push_interval, cfg.job) == ("http://gw:9091", 2.5, "llm-a")
