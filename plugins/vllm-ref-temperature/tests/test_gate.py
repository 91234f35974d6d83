"""Where vLLM is missing or outside the supported range: one warning, and nothing else.

A `vllm.logits_processors` entry point must stay a class (vLLM raises at start-up otherwise,
and the V2 loader also demands a subclass of its base), so "does nothing" here means: the
class loads, its instances leave every logits tensor as it is, and requests that name a
`ref_temp_*` key are refused with the reason rather than silently ignored.
Each case runs in a fresh interpreter so module state cannot leak between tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

COMMON = """
import json, logging, sys
from types import SimpleNamespace
logging.basicConfig(level=logging.WARNING, format="WARN %(message)s")
res = {}
def refused(cls, extra):
    try:
        cls.validate_params(SimpleNamespace(extra_args=extra, temperature=1.0))
    except ValueError as exc:
        return str(exc)
    return None
"""


def run(code: str, env_extra: dict[str, str] | None = None) -> tuple[dict, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("REF_TEMPERATURE")}
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(COMMON) + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_without_vllm_one_warning_and_an_inert_class():
    res, err = run("""
        sys.modules["vllm"] = None  # import vllm -> ImportError
        import vllm_ref_temperature as m
        import vllm_ref_temperature  # a second import logs nothing new
        cls = m.TemperatureLogitsProcessor
        proc = cls(None, "cpu", False)
        x = object()
        res["is_class"] = isinstance(cls, type)
        res["bases"] = [b.__name__ for b in cls.__bases__]
        res["apply_same"] = proc.apply(x) is x and proc.apply(x, object()) is x
        proc.update_state(None)
        res["add_request"] = proc.add_request(0, SimpleNamespace(extra_args={"ref_temp_mode": "schedule"}))
        res["argmax_invariant"] = proc.is_argmax_invariant()
        res["refused"] = refused(cls, {"ref_temp_mode": "schedule"})
        res["others_pass"] = refused(cls, {"other": 1}) is None
        res["torch_imported"] = "torch" in sys.modules
        print(json.dumps(res))
    """)
    warnings = [line for line in err.splitlines() if line.startswith("WARN ")]
    assert warnings == ["WARN ref_temperature: vLLM is not importable here; the plugin does nothing."]
    assert res == {
        "is_class": True, "bases": ["object"], "apply_same": True, "add_request": False,
        "argmax_invariant": True, "refused": "ref_temperature: ref_temp_* keys cannot be honoured: "
                                            "vLLM is not importable.",
        "others_pass": True, "torch_imported": False,
    }


def test_out_of_range_vllm_is_inert_unless_overridden():
    pytest.importorskip("vllm")
    # One interpreter (importing vLLM is the slow part): first without, then with the override.
    res, err = run("""
        import os
        import vllm
        vllm.__version__ = "0.34.0"
        import torch
        from vllm.v1.sample.logits_processor import LogitsProcessor as V1
        from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor as V2
        config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=4))
        for case in ("plain", "override"):
            if case == "override":
                os.environ["REF_TEMPERATURE_ANY_VERSION"] = "1"
                for name in [m for m in sys.modules if m.startswith("vllm_ref_temperature")]:
                    del sys.modules[name]
            import vllm_ref_temperature as m
            cls = m.TemperatureLogitsProcessor
            proc = cls(config, torch.device("cpu"), False)
            x = torch.ones(2, 3)
            res[case] = {
                "subclasses": [issubclass(cls, V1), issubclass(cls, V2)],
                "enabled": proc._v1 is not None,
                "refused": refused(cls, {"ref_temp_mode": "schedule"}),
                "others_pass": refused(cls, {"other": 1}) is None,
            }
        print(json.dumps(res))
    """)
    warnings = [line for line in err.splitlines() if line.startswith("WARN ref_temperature")]
    assert len(warnings) == 2, warnings
    assert "vLLM 0.34.0 is outside the supported range >=0.32,<0.34; the plugin stays out" in warnings[0]
    assert "registering anyway because REF_TEMPERATURE_ANY_VERSION is set" in warnings[1]
    plain, override = res["plain"], res["override"]
    # Still a subclass of both bases: a disabled plugin must not stop vLLM from starting.
    assert plain["subclasses"] == override["subclasses"] == [True, True]
    assert plain["enabled"] is False and plain["others_pass"] is True
    assert "set REF_TEMPERATURE_ANY_VERSION=1 to override" in plain["refused"]
    assert override["enabled"] is True and override["refused"] is None


def test_bad_environment_default_stops_processor_construction(monkeypatch):
    pytest.importorskip("vllm")
    from types import SimpleNamespace

    import torch
    from vllm_ref_temperature import TemperatureLogitsProcessor

    monkeypatch.setenv("REF_TEMPERATURE_STEPS", "soon")
    config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=4))
    with pytest.raises(ValueError, match="ref_temperature: environment variable REF_TEMPERATURE_STEPS='soon'"):
        TemperatureLogitsProcessor(config, torch.device("cpu"), False)


def test_compile_setting_switches_the_compiled_entropy_and_refuses_bad_values(monkeypatch):
    pytest.importorskip("vllm")
    from types import SimpleNamespace

    import torch
    from vllm_ref_temperature import TemperatureLogitsProcessor, kernel

    config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=4))
    previous = kernel.use_compiled_entropy(True)
    try:
        monkeypatch.setenv("REF_TEMPERATURE_COMPILE", "0")
        TemperatureLogitsProcessor(config, torch.device("cpu"), False)
        assert kernel.use_compiled_entropy(True) is False  # the processor turned it off
        monkeypatch.setenv("REF_TEMPERATURE_COMPILE", "sometimes")
        with pytest.raises(ValueError, match="ref_temperature: environment variable REF_TEMPERATURE_COMPILE="):
            TemperatureLogitsProcessor(config, torch.device("cpu"), False)
        monkeypatch.delenv("REF_TEMPERATURE_COMPILE")
        kernel.use_compiled_entropy(False)
        TemperatureLogitsProcessor(config, torch.device("cpu"), False)
        assert kernel.use_compiled_entropy(True) is True  # unset: on
    finally:
        kernel.use_compiled_entropy(previous)
