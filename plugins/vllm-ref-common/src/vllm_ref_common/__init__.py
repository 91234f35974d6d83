"""What every vllm-ref plugin shares: the version gate, the settings rule, process roles.

- The version gate (`gate.py`): `check_vllm(plugin, supported)` decides whether the running vLLM
  is one the plugin supports, logs one warning when it is not, and remembers its verdict for
  `gate_verdict()` (which each plugin's `status()` reports).
- Settings (`gate.py`): a plugin's environment variables are named `<ENTRY POINT NAME>_<SETTING>`
  in upper case (`REF_SCHEDULER_WEIGHTS`), never `VLLM_*`: vLLM treats every `VLLM_*` variable
  as its own and refuses unknown ones with `--fail-on-environ-validation`. `setting()` builds
  the names, `env_flag()` reads on/off values with one set of accepted spellings.
- Process roles (`roles.py`): which vLLM process this is.
- Logging: every plugin logs under `vllm_ref.<name>`; inside vLLM those lines go where vLLM's
  own log goes.
"""

from .gate import (
    FALSE_VALUES,
    TRUE_VALUES,
    any_version_env,
    check_vllm,
    env_flag,
    gate_verdict,
    parse_version,
    setting,
    version_in_range,
    vllm_version,
    warn_once,
)
from .roles import ProcessRole, process_role, process_roles

__all__ = [
    "FALSE_VALUES", "TRUE_VALUES", "ProcessRole", "any_version_env", "check_vllm", "env_flag", "gate_verdict",
    "parse_version", "process_role", "process_roles", "setting", "version_in_range", "vllm_version", "warn_once",
]
