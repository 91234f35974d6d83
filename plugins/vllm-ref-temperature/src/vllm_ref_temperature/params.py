"""Per-request settings: the `ref_temp_*` keys of `SamplingParams.extra_args` (OpenAI: `vllm_xargs`).

Pure Python on purpose: the front end validates every request with it, and it must import
where neither torch nor vLLM is present.

A request opts in by naming a mode; the other keys of that mode are optional and fall back to
process-wide defaults read from environment variables. A request without any `ref_temp_*` key
is not touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vllm_ref_common import setting

from . import PLUGIN

PREFIX = "ref_temp_"
MODE_KEY = PREFIX + "mode"

# Numeric codes stored per batch row; 0 means "leave this row alone".
OFF, SCHEDULE, ENTROPY = 0, 1, 2
MODES = {"schedule": SCHEDULE, "entropy": ENTROPY}

# key -> (environment variable with the process-wide default, built-in default, kind)
# kind: "temp", "steps" or "exponent"; the accepted range of each is in BOUNDS.
SCHEDULE_KEYS: dict[str, tuple[str, float, str]] = {
    PREFIX + "start": (setting(PLUGIN, "start"), 1.5, "temp"),
    PREFIX + "end": (setting(PLUGIN, "end"), 0.7, "temp"),
    PREFIX + "steps": (setting(PLUGIN, "steps"), 32, "steps"),
}
ENTROPY_KEYS: dict[str, tuple[str, float, str]] = {
    PREFIX + "min": (setting(PLUGIN, "min"), 0.5, "temp"),
    PREFIX + "max": (setting(PLUGIN, "max"), 1.5, "temp"),
    PREFIX + "exponent": (setting(PLUGIN, "exponent"), 1.0, "exponent"),
}
KEYS_BY_MODE = {SCHEDULE: SCHEDULE_KEYS, ENTROPY: ENTROPY_KEYS}
ALL_KEYS = (MODE_KEY, *SCHEDULE_KEYS, *ENTROPY_KEYS)

# The accepted range of each kind, inclusive, and why (one home: requests and settings alike):
# - temp: logits divided by 100 are already close to uniform for any model, and larger values
#   (1e308) would overflow to inf in float32 and turn masked logits into NaN; 0 means as cold
#   as float32 allows (applied as 1e-6).
# - steps: a whole number of generated tokens; 10^7 is beyond any model's context length, and
#   the bound keeps the position arithmetic exact in float64.
# - exponent: h ** e with h in [0, 1]; outside [0.01, 100] the curve is a step at 0 or 1
#   already, and 1e-300 or 1e300 only reach the same step through underflow.
BOUNDS: dict[str, tuple[float, float]] = {"temp": (0.0, 100.0), "steps": (0, 10_000_000), "exponent": (0.01, 100.0)}
_ACCEPTED = {
    "temp": "a number from 0 to 100 (0 means as cold as float32 allows)",
    "steps": "an integer from 0 to 10000000",
    "exponent": "a number from 0.01 to 100",
}


@dataclass(frozen=True)
class TempSpec:
    """One request's temperature rule.

    schedule: temperature goes linearly from `a` (first generated token) to `b` over `c` tokens,
    then stays at `b`. entropy: temperature = a + (b - a) * h ** c, h = the row's entropy divided
    by log(vocabulary size), so it lies in [a, b].
    """

    mode: int
    a: float
    b: float
    c: float


def _error(what: str) -> ValueError:
    return ValueError(f"{PLUGIN}: {what}")


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # ValueError: an int too long for repr
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else f"{text[:68]}...({len(text)} chars)"


def _key(name: str) -> str:
    return name if len(name) <= 64 and name.isprintable() else _shown(name)


def _check_value(name: str, value: Any, kind: str, source: str) -> float:
    """The one check of a number, from a request or a setting: bool is not a number, a huge
    int is compared as an int (float() of it would overflow), NaN fails every comparison."""
    lo, hi = BOUNDS[kind]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and kind == "steps":
        ok = isinstance(value, int)
    ok = ok and lo <= value <= hi
    if not ok:
        raise _error(f"{source} {name} = {_shown(value)} is invalid; accepted: {_ACCEPTED[kind]}.")
    return float(value)


def _env_default(env: str, builtin: float, kind: str) -> float:
    text = os.environ.get(env)
    if text is None or text.strip() == "":
        return float(builtin)
    try:
        value: Any = int(text) if kind == "steps" else float(text)
    except ValueError:  # also an integer of more than 4300 digits
        raise _error(f"environment variable {env}={_shown(text)} is invalid; "
                     f"accepted: {_ACCEPTED[kind]}.") from None
    return _check_value(env, value, kind, "environment variable")


COMPILE_ENV = setting(PLUGIN, "compile")  # 0 turns the compiled CPU entropy off (kernel.py)


def compile_entropy() -> bool:
    """REF_TEMPERATURE_COMPILE: on unless set to an off value; raises ValueError on any other."""
    from vllm_ref_common import FALSE_VALUES, TRUE_VALUES, env_flag

    if COMPILE_ENV not in os.environ:
        return True
    flag = env_flag(COMPILE_ENV)
    if flag is None:
        raise _error(f"environment variable {COMPILE_ENV}={os.environ[COMPILE_ENV]!r} is invalid; accepted: "
                     f"{'/'.join(TRUE_VALUES)} (compile the CPU entropy, the default) or "
                     f"{'/'.join(FALSE_VALUES[1:])} (eager)")
    return flag


def env_defaults() -> dict[str, float]:
    """The process-wide defaults, one per numeric key; raises ValueError on a bad variable."""
    out = {}
    for keys in KEYS_BY_MODE.values():
        for key, (env, builtin, kind) in keys.items():
            out[key] = _env_default(env, builtin, kind)
    return out


def parse(extra_args: Mapping[str, Any] | None) -> TempSpec | None:
    """The request's rule, or None when it does not opt in. Raises ValueError on bad input.

    Only keys starting with `ref_temp_` are looked at: extra_args is shared with every other
    plugin, so their keys must pass through.
    """
    if not extra_args:
        return None
    ours = {k: v for k, v in extra_args.items() if isinstance(k, str) and k.startswith(PREFIX)}
    if not ours:
        return None
    unknown = sorted(set(ours) - set(ALL_KEYS))
    if unknown:
        raise _error(f"unknown extra_args key(s) {', '.join(map(_key, unknown[:8]))}; "
                     f"accepted keys: {', '.join(ALL_KEYS)}.")
    if MODE_KEY not in ours:
        raise _error(f"{MODE_KEY} is required when other {PREFIX}* keys are given; "
                     f"accepted values: {', '.join(MODES)}.")
    mode_name = ours.pop(MODE_KEY)
    if not isinstance(mode_name, str) or mode_name not in MODES:
        raise _error(f"{MODE_KEY} = {_shown(mode_name)} is invalid; accepted values: {', '.join(MODES)}.")
    mode = MODES[mode_name]
    keys = KEYS_BY_MODE[mode]
    foreign = sorted(set(ours) - set(keys))
    if foreign:
        raise _error(f"key(s) {', '.join(map(_key, foreign))} do not apply to {MODE_KEY}={mode_name}; "
                     f"accepted with it: {', '.join(keys)}.")
    values = []
    for key, (env, builtin, kind) in keys.items():
        if key in ours:
            values.append(_check_value(key, ours[key], kind, "extra_args"))
        else:
            values.append(_env_default(env, builtin, kind))
    a, b, c = values
    if mode == ENTROPY and a > b:
        raise _error(f"{PREFIX}min ({a}) must not exceed {PREFIX}max ({b}).")
    return TempSpec(mode, a, b, c)
