"""Every reference plugin's settings set, in a vLLM that refuses unknown VLLM_* variables.

vLLM treats every VLLM_* environment variable as its own: it warns about unknown ones at every
start and, with --fail-on-environ-validation, refuses to start. The plugins' settings are
therefore named <ENTRY POINT>_<SETTING> (vllm_ref_common.setting); this boot proves that a
hardened vLLM starts with all of them set and every plugin still takes effect. The control
boot shows the check is live: one VLLM_REF_* name makes the same start-up fail.
"""

import pytest
from vllm_ref_harness import ALL_ROLES, free_port
from vllm_ref_model.testing import tiny_parallax

pytestmark = pytest.mark.vllm

PLUGINS = ["ref_model", "ref_scheduler", "ref_prometheus", "ref_temperature", "ref_accelerator", "ref_parsers",
           "ref_kv"]
# One value for every setting each plugin reads (the accelerator's switch off: it would take
# over the platform and interpret the kernels, which another test covers).
SETTINGS = {
    "REF_MODEL_DISABLE": "0", "REF_MODEL_ANY_VERSION": "0",
    "REF_SCHEDULER_WEIGHTS": "gold=2,free=1", "REF_SCHEDULER_ANY_VERSION": "0", "REF_PATCHES": "*",
    "REF_PROMETHEUS_JOB": "hardened", "REF_PROMETHEUS_PUSHGATEWAY": "", "REF_PROMETHEUS_PUSH_INTERVAL": "15",
    "REF_PROMETHEUS_ANY_VERSION": "0",
    "REF_TEMPERATURE_START": "1.2", "REF_TEMPERATURE_END": "0.7", "REF_TEMPERATURE_STEPS": "8",
    "REF_TEMPERATURE_MIN": "0.5", "REF_TEMPERATURE_MAX": "1.5", "REF_TEMPERATURE_EXPONENT": "1.0",
    "REF_TEMPERATURE_ANY_VERSION": "0", "REF_TEMPERATURE_COMPILE": "1",
    "REF_ACCELERATOR": "0", "REF_ACCELERATOR_ANY_VERSION": "0",
    "REF_PARSERS_TOOL_PARSER": "ref_tools", "REF_PARSERS_REASONING_PARSER": "ref_reasoning",
    "REF_PARSERS_ANY_VERSION": "0", "REF_KV_ANY_VERSION": "0",
}
CHECKS = {p: f"vllm_{p}:status" for p in PLUGINS}
REQUEST = {"prompt": "The capital of France is",
           "sampling": {"max_tokens": 4, "temperature": 1.0, "seed": 1,
                        "extra_args": {"ref_temp_mode": "schedule", "ref_tenant": "gold"}}}


def _boot(vllm, env, **kw):
    return vllm.run(tiny_parallax(), mode="async", engine_args={"dtype": "float32", "fail_on_environ_validation": True},
                    requests=[REQUEST], plugins=PLUGINS, checks=CHECKS, env=env, timeout=600, **kw)


def test_every_setting_set_under_fail_on_environ_validation(vllm) -> None:
    env = {**SETTINGS, "REF_PROMETHEUS_LISTEN": f"127.0.0.1:{free_port()}"}
    run = _boot(vllm, env)
    assert run.outputs and len(run.outputs[0]["token_ids"]) == 4
    assert "Unknown vLLM environment variable" not in run.log
    rep = run.report
    rep.assert_check("ref_model", True, roles=ALL_ROLES)
    rep.assert_check("ref_scheduler", lambda s: s["scheduler"], roles=("engine_core",))
    rep.assert_check("ref_prometheus", True, roles=("front_end",))
    rep.assert_check("ref_temperature", lambda s: s["effect"] and s["scaled"], roles=("worker",))
    rep.assert_check("ref_accelerator", lambda s: not s["effect"] and s["platform"] == "CpuPlatform",
                     roles=ALL_ROLES)
    rep.assert_check("ref_parsers", True, roles=ALL_ROLES)  # both parsers registered under the set names
    # No --kv-transfer-config here: the connector is registered, inside its range, and never built.
    rep.assert_check("ref_kv", lambda s: not s["effect"] and s["gate"]["active"], roles=ALL_ROLES)


def test_a_vllm_prefixed_plugin_setting_is_refused_by_the_same_boot(vllm) -> None:
    run = _boot(vllm, {**SETTINGS, "VLLM_REF_SCHEDULER_WEIGHTS": "gold=2"}, expect_failure=True)
    assert not run.outputs
    assert "Unknown vLLM environment variable detected: VLLM_REF_SCHEDULER_WEIGHTS" in run.extra["error"] + run.log
