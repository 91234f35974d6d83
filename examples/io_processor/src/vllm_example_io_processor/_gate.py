"""The version gate and the settings rule of every vllm-ref plugin, in one self-contained module.

Only the standard library and `packaging`: the examples vendor this file verbatim as `_gate.py`
(so that they install without this repository), and a test keeps the copies identical.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

# Every vllm-ref plugin logs under this one tree ("vllm_ref.<plugin>").
logger = logging.getLogger("vllm_ref")
_warned: set[str] = set()
_verdicts: dict[str, dict[str, Any]] = {}

# The accepted spellings of an on/off setting, in the order error messages list them.
TRUE_VALUES = ("1", "true", "yes", "on")
FALSE_VALUES = ("", "0", "false", "no", "off")


def warn_once(message: str) -> None:
    """Log `message` as a warning the first time it is seen in this process."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def setting(plugin: str, name: str = "") -> str:
    """The environment variable of a plugin's setting: setting("ref_scheduler", "weights") ->
    "REF_SCHEDULER_WEIGHTS"; without a name, the plugin's own switch ("REF_ACCELERATOR")."""
    return "_".join(filter(None, (plugin, name))).upper()


def any_version_env(plugin: str) -> str:
    """The variable that makes `plugin` register outside its supported vLLM range."""
    return setting(plugin, "any_version")


def env_flag(name: str, env: Any = None) -> bool | None:
    """True/False for an on/off variable (1/true/yes/on, 0/false/no/off/unset, any case);
    None for any other value, which the caller reports with the setting's name."""
    value = (os.environ if env is None else env).get(name, "").strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    return None


def parse_version(text: str) -> Version | None:
    """PEP 440 where possible, else the leading dotted numbers ("0.33.0-custom" -> 0.33.0)."""
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
        return Version(m.group(1)) if m else None


def version_in_range(version: str, supported: str) -> bool:
    """Whether `version` lies in `supported` (a specifier set such as ">=0.28,<0.34").

    Only the release numbers are compared: a dev, rc or post release of a supported version
    is supported, and a local tag (+cpu) is ignored. Unknown versions are outside.
    """
    v = parse_version(version)
    if v is None:
        return False
    return SpecifierSet(supported).contains(Version(v.base_version), prereleases=True)


def vllm_version() -> str | None:
    """The running vLLM's version, or None where vLLM cannot be imported."""
    try:
        import vllm
    except Exception:
        return None
    return str(getattr(vllm, "__version__", "unknown"))


class _ToVllmLog(logging.Handler):
    """Hands this tree's records to the handlers vLLM configured on its own logger (its
    destination, format and level), except those the root logger holds too (they get the
    record by propagation already)."""

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger().handlers
        for handler in logging.getLogger("vllm").handlers:
            if handler not in root and record.levelno >= handler.level:
                handler.handle(record)


def _join_vllm_log() -> None:
    # Inside vLLM the vllm_ref tree shows in vLLM's log, INFO lines included; elsewhere its
    # warnings still reach stderr through Python's last-resort handler.
    if not any(isinstance(h, _ToVllmLog) for h in logger.handlers):
        logger.addHandler(_ToVllmLog())
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.DEBUG)  # vLLM's handlers filter by VLLM_LOGGING_LEVEL


def check_vllm(plugin: str, supported: str) -> bool:
    """True when the plugin should register itself in this process.

    Outside `supported` it logs one warning naming the plugin, the running version, the
    supported range and the override variable (`any_version_env(plugin)`), and returns False,
    unless that variable is on. Without an importable vLLM it logs one warning and returns
    False. The verdict is kept for `gate_verdict(plugin)`.
    """
    version = vllm_version()
    override = any_version_env(plugin)
    if version is not None:
        _join_vllm_log()  # registering inside vLLM: from here on, this tree logs where vLLM does
    if version is None:
        ok, why = False, "vLLM is not importable here; the plugin does nothing."
    elif version_in_range(version, supported):
        ok, why = True, ""
    elif env_flag(override):
        ok, why = True, (f"vLLM {version} is outside the supported range {supported}; registering anyway "
                         f"because {override} is set.")
    else:
        ok, why = False, (f"vLLM {version} is outside the supported range {supported}; the plugin stays "
                          f"out of the way. Set {override}=1 to register it anyway.")
    _verdicts[plugin] = {"vllm": version, "supported": supported, "active": ok, "overridden": ok and bool(why)}
    if why:
        warn_once(f"{plugin}: {why}")
    return ok


def gate_verdict(plugin: str) -> dict[str, Any] | None:
    """What check_vllm decided for `plugin` in this process (None: it has not run here):
    {"vllm": version or None, "supported": range, "active": bool, "overridden": bool}."""
    verdict = _verdicts.get(plugin)
    return dict(verdict) if verdict else None
