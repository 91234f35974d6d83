"""The plugin inventory: vLLM's allowlist rules per group, and names without values."""

import pytest
from vllm_ref_common import inventory


@pytest.mark.parametrize(("group", "name", "names", "allowed"), [
    ("vllm.general_plugins", "a", None, True),          # unset: everything loads
    ("vllm.general_plugins", "a", ["b"], False),
    ("vllm.general_plugins", "a", [""], False),         # VLLM_PLUGINS="" matches nothing
    ("vllm.logits_processors", "a", ["b"], True),       # never filtered
    ("vllm.endpoint_plugins", "a", None, False),        # opt-in: unset loads none
    ("vllm.endpoint_plugins", "a", ["a"], True),
])
def test_allowed_follows_vllms_loader(group, name, names, allowed):
    assert inventory.allowed(group, name, names) is allowed


def test_report_lists_the_installed_reference_plugins_with_setting_names_not_values():
    env = {"VLLM_PLUGINS": "ref_scheduler, ref_typo", "REF_SCHEDULER_WEIGHTS": "secret=3", "REF_SCHEDULERX": "1"}
    inv = inventory.plugin_inventory(env)
    assert inv["vllm_plugins"] == ["ref_scheduler", "ref_typo"] and inv["unknown_names"] == ["ref_typo"]
    sched = next(e for e in inv["entry_points"] if e["name"] == "ref_scheduler")
    assert (sched["group"], sched["distribution"], sched["filtered"]) == ("vllm.general_plugins",
                                                                         "vllm-ref-scheduler", False)
    assert sched["settings_set"] == ["REF_SCHEDULER_WEIGHTS"]
    assert "secret" not in repr(inv)
    model = next(e for e in inv["entry_points"] if e["name"] == "ref_model")
    assert model["filtered"] is True
    report = inventory.process_report()
    assert report["role"] == "front_end" and report["pid"] > 0
