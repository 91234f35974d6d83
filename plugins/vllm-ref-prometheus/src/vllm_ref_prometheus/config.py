"""Settings, read from environment variables and validated once at start-up.

A bad value is an operator mistake worth failing start-up for; a busy port or an unreachable
Pushgateway at run time is not (see export.py).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from vllm_ref_common import setting

from . import PLUGIN

LISTEN_ENV = setting(PLUGIN, "listen")
PUSHGATEWAY_ENV = setting(PLUGIN, "pushgateway")
PUSH_INTERVAL_ENV = setting(PLUGIN, "push_interval")
JOB_ENV = setting(PLUGIN, "job")

DEFAULT_HOST = "127.0.0.1"  # never all interfaces unless the operator names them
DEFAULT_PUSH_INTERVAL = 15.0
DEFAULT_JOB = "vllm"
_JOB_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class ConfigError(ValueError):
    """A setting of ref_prometheus has a value outside what it accepts."""


@dataclass(frozen=True)
class Config:
    listen: tuple[str, int] | None = None  # own /metrics endpoint (embedded AsyncLLM)
    pushgateway: str | None = None  # base URL of a Pushgateway
    push_interval: float = DEFAULT_PUSH_INTERVAL
    job: str = DEFAULT_JOB


MAX_URL_CHARS = 2048  # what browsers and proxies reliably carry; a longer gateway URL is a mistake


def _bad(var: str, value: str, accepted: str) -> ConfigError:
    shown = repr(value)
    shown = shown if len(shown) <= 200 else f"{shown[:180]}...({len(value)} chars)"  # echo, never a megabyte
    return ConfigError(f"ref_prometheus: {var}={shown} is invalid; accepted values: {accepted}")


def _parse_listen(value: str) -> tuple[str, int] | None:
    accepted = ("PORT or HOST:PORT with PORT in 1-65535 (e.g. 9400 or 127.0.0.1:9400; "
                "HOST 0.0.0.0 listens on all interfaces), or empty to serve no endpoint")
    value = value.strip()
    if not value:
        return None
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, value
    host = host.strip("[]")  # [::1]:9400
    # ASCII digits, at most 5 of them: str.isdigit() is also true of "²", which int() refuses.
    digits = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
    if not host or not host.isprintable() or len(host) > 253 or not digits or not 1 <= int(port_text) <= 65535:
        raise _bad(LISTEN_ENV, value, accepted)
    return host, int(port_text)


def _parse_pushgateway(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    accepted = (f"an http:// or https:// URL of a Pushgateway of at most {MAX_URL_CHARS} printable characters, "
                f"its port (if any) in 1-65535 (e.g. http://127.0.0.1:9091), or empty to push nothing")
    try:
        if len(value) > MAX_URL_CHARS or not value.isprintable() or not value.isascii():
            raise ValueError(value)
        parts = urlsplit(value)
        port = parts.port  # ValueError when out of range or not a number
        if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
            raise ValueError(value)
    except ValueError:  # urlsplit's own too ("Invalid IPv6 URL")
        raise _bad(PUSHGATEWAY_ENV, value, accepted) from None
    return value.rstrip("/")


def _parse_interval(value: str) -> float:
    # 0.1 s: more often would make pushing the metrics the gateway's main load; 3600 s: a push
    # less than hourly is a stale series in any dashboard.
    accepted = "a number of seconds between 0.1 and 3600"
    try:
        seconds = float(value) if value.isascii() else math.nan
    except ValueError:
        raise _bad(PUSH_INTERVAL_ENV, value, accepted) from None
    if not 0.1 <= seconds <= 3600:
        raise _bad(PUSH_INTERVAL_ENV, value, accepted)
    return seconds


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """The plugin's settings from `env` (default: os.environ); ConfigError on a bad value."""
    env = os.environ if env is None else env
    job = env.get(JOB_ENV, DEFAULT_JOB).strip() or DEFAULT_JOB
    if not _JOB_RE.match(job):
        raise _bad(JOB_ENV, job, "1-128 characters from A-Z a-z 0-9 _ . -")
    interval = env.get(PUSH_INTERVAL_ENV, "").strip()
    return Config(
        listen=_parse_listen(env.get(LISTEN_ENV, "")),
        pushgateway=_parse_pushgateway(env.get(PUSHGATEWAY_ENV, "")),
        push_interval=_parse_interval(interval) if interval else DEFAULT_PUSH_INTERVAL,
        job=job,
    )
