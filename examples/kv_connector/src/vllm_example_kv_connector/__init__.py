"""A minimal KV connector shipped as a vLLM general plugin.

vLLM builds a KV connector in the engine core (its scheduler half) and in every worker (its
worker half), by the name given in `--kv-transfer-config '{"kv_connector": NAME, ...}'`. The
name must be known to vLLM's `KVConnectorFactory` in each of those processes, which is what a
general plugin is for: vLLM runs it in every process before it builds anything.

The connector here is vLLM's own `ExampleConnector` (safetensors files per layer and request)
under another name, the smallest thing that works; replace its methods with your store (see
vllm-ref-kv, docs/plugins/kv.md, for a verified block store and what to change for a remote
one). Select it with

    --kv-transfer-config '{"kv_connector": "ExampleKVConnector", "kv_role": "kv_both",
                           "kv_connector_extra_config": {"shared_storage_path": "/tmp/kv"}}'

Nothing here imports vLLM at module level: the module stays importable where vLLM is missing.
"""

from __future__ import annotations

import logging
import os

from packaging.specifiers import SpecifierSet

PLUGIN = "example_kv_connector"
CONNECTOR = "ExampleKVConnector"  # the kv_connector name users select
SUPPORTED_VLLM = ">=0.32,<0.33"  # the connector interface changes between releases: test each
ANY_VERSION_ENV = "EXAMPLE_KV_CONNECTOR_ANY_VERSION"  # =1: register on any release

logger = logging.getLogger(f"vllm.{PLUGIN}")


def vllm_supported() -> bool:
    try:
        from vllm import __version__ as version
    except ImportError:
        return False
    if SpecifierSet(SUPPORTED_VLLM).contains(version, prereleases=True) or os.environ.get(ANY_VERSION_ENV) == "1":
        return True
    logger.warning("%s: vLLM %s is outside the tested range %s; not registering. Set %s=1 to register anyway.",
                   PLUGIN, version, SUPPORTED_VLLM, ANY_VERSION_ENV)
    return False


def registered() -> bool:
    """Whether vLLM's connector registry of this process knows CONNECTOR as ours."""
    try:
        from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

        return KVConnectorFactory.get_connector_class_by_name(CONNECTOR).__module__ == f"{__name__}.connector"
    except Exception:
        return False


def status() -> dict:
    """{"effect": the connector's name is registered here}."""
    return {"effect": registered()}


def register() -> None:
    """The entry point. Safe to call twice; a name taken by another connector is one error
    (vLLM's own registry raises on a taken name, so check before registering)."""
    if not vllm_supported() or registered():
        return
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

    try:
        KVConnectorFactory.register_connector(CONNECTOR, f"{__name__}.connector", CONNECTOR)
    except ValueError:
        raise RuntimeError(f"{PLUGIN}: the KV connector name {CONNECTOR!r} is taken by another plugin") from None
