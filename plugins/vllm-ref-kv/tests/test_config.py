"""kv_connector_extra_config, kv_role and register(): a bad value is one clear error naming the
plugin, the setting and what is accepted; registering twice is harmless; a name taken by
another connector is one clear error."""

from __future__ import annotations

import pytest
import vllm_ref_kv
from vllm_ref_kv import ConfigError, parse_extra_config, parse_size


def test_good_values():
    assert parse_extra_config({"folder": "/tmp/x"}) == ("/tmp/x", vllm_ref_kv.DEFAULT_MAX_BYTES, False)
    assert parse_extra_config({"folder": "/tmp/x", "max_bytes": "512M", "fsync": True}) == ("/tmp/x", 512 << 20, True)
    assert parse_size("20G") == 20 << 30 and parse_size("1 KiB") == 1024 and parse_size(7) == 7


@pytest.mark.parametrize(("extra", "setting", "accepted"), [
    ({}, "'folder'", "non-empty path"),
    ({"folder": ""}, "'folder'", "non-empty path"),
    ({"folder": 3}, "'folder'", "non-empty path"),
    ({"folder": "/x", "max_bytes": 0}, "'max_bytes'", "'20G'"),
    ({"folder": "/x", "max_bytes": "-1G"}, "'max_bytes'", "'20G'"),
    ({"folder": "/x", "max_bytes": "10X"}, "'max_bytes'", "'20G'"),
    ({"folder": "/x", "max_bytes": True}, "'max_bytes'", "'20G'"),
    ({"folder": "/x", "max_bytes": 2.5}, "'max_bytes'", "'20G'"),
    ({"folder": "/x", "fsync": "yes"}, "'fsync'", "true or false"),
    ({"folder": "/x", "shared_storage_path": "/y"}, "unknown key", "folder, max_bytes, fsync"),
    ("folder=/x", "kv_connector_extra_config", "folder, max_bytes"),
])
def test_bad_values_name_plugin_setting_and_accepted(extra, setting, accepted):
    with pytest.raises(ConfigError) as e:
        parse_extra_config(extra)
    msg = str(e.value)
    assert msg.startswith("ref_kv: ") and setting in msg and accepted in msg, msg


def test_register_twice_is_harmless_and_a_taken_name_is_one_clear_error():
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory
    from vllm_ref_kv.connector import RefKVConnector

    registry = KVConnectorFactory._registry  # vLLM's own table: restored below
    saved = registry.pop(vllm_ref_kv.CONNECTOR, None)
    try:
        vllm_ref_kv.register()
        vllm_ref_kv.register()
        assert KVConnectorFactory.get_connector_class_by_name(vllm_ref_kv.CONNECTOR) is RefKVConnector
        registry.pop(vllm_ref_kv.CONNECTOR)
        KVConnectorFactory.register_connector(vllm_ref_kv.CONNECTOR, "vllm.distributed.kv_transfer.kv_connector."
                                              "v1.example_connector", "ExampleConnector")
        with pytest.raises(RuntimeError, match=r"ref_kv: the KV connector name 'RefKVConnector' is already "
                                               r"registered by .*ExampleConnector"):
            vllm_ref_kv.register()
    finally:
        registry.pop(vllm_ref_kv.CONNECTOR, None)
        if saved is not None:
            registry[vllm_ref_kv.CONNECTOR] = saved
