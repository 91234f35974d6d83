"""Without a usable vLLM the plugin logs one clear warning and does nothing.

Each case runs in a fresh interpreter, since the gate is decided once at import.
"""

import subprocess
import sys
import textwrap


def run(body: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent("""
        import logging, sys, types
        logging.basicConfig(level=logging.INFO, format="LOG %(levelname)s %(message)s")
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_without_vllm_one_warning_and_nothing_registered():
    proc = run("""
        sys.modules["vllm"] = None  # import vllm -> ImportError
        import vllm_ref_prometheus
        import vllm_ref_prometheus.logger as lg
        import vllm_ref_prometheus.logger  # a second import warns no more
        log = lg.RefPrometheusStatLogger(object(), [0])
        log.record(object(), object())
        log.log_engine_initialized()
        from prometheus_client import REGISTRY
        names = [n for c in REGISTRY._collector_to_names for n in REGISTRY._collector_to_names[c]]
        loggers = vllm_ref_prometheus.STATE["loggers"]
        print("ACTIVE", lg.ACTIVE, "BUILT", loggers, "REF", [n for n in names if "vllm_ref" in n])
    """)
    assert proc.returncode == 0, proc.stderr
    assert "ACTIVE False BUILT 0 REF []" in proc.stdout
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOG WARNING")]
    assert warnings == ["LOG WARNING ref_prometheus: vLLM is not importable here; the plugin does nothing."]


def test_unsupported_vllm_stays_a_loadable_inert_stat_logger():
    # vLLM refuses a stat-logger entry point that is not a StatLoggerBase, even from a plugin
    # that wants to stay out of the way: the inert class must still subclass it.
    proc = run("""
        class StatLoggerBase: pass
        fake = types.ModuleType("vllm"); fake.__version__ = "0.20.0"
        mods = {"vllm": fake}
        for name in ("vllm.v1", "vllm.v1.metrics", "vllm.v1.metrics.loggers"):
            mods[name] = types.ModuleType(name)
        mods["vllm.v1.metrics.loggers"].StatLoggerBase = StatLoggerBase
        sys.modules.update(mods)
        import vllm_ref_prometheus
        import vllm_ref_prometheus.logger as lg
        log = lg.RefPrometheusStatLogger(object(), [0])
        log.record(object(), object())
        print("ACTIVE", lg.ACTIVE, "SUBCLASS", issubclass(lg.RefPrometheusStatLogger, StatLoggerBase),
              "ENGINES", log.engines)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "ACTIVE False SUBCLASS True ENGINES {}" in proc.stdout
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOG WARNING")]
    assert len(warnings) == 1
    assert "vLLM 0.20.0 is outside the supported range >=0.28,<0.34" in warnings[0]
    assert "REF_PROMETHEUS_ANY_VERSION=1" in warnings[0]
