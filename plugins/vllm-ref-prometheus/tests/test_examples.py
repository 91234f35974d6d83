"""examples/prometheus and examples/stat_logger: valid, and naming metrics that exist."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import tomllib
import yaml
from vllm_ref_prometheus import METRICS, exported_names

# The dashboards and rules this plugin documents (the repository's examples/prometheus).
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "prometheus"

STAT_LOGGER = EXAMPLES.parent / "stat_logger"
NAME_RE = re.compile(r"\b(vllm_ref_\w+|vllm:\w+)")


def vllm_metric_names() -> set[str]:
    """Base names vLLM's own PrometheusStatLogger registers, read from the installed source."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vLLM is not installed")
    source = (Path(spec.submodule_search_locations[0]) / "v1" / "metrics" / "loggers.py").read_text()
    return set(re.findall(r'name="(vllm:\w+)"', source))


def check_names(exprs: list[str]) -> None:
    ours, vllms = exported_names(), vllm_metric_names()
    for expr in exprs:
        names = NAME_RE.findall(expr)
        assert names, f"no metric in {expr!r}"
        for name in names:
            if name.startswith("vllm:"):
                base = re.sub(r"_(total|sum|count|bucket)$", "", name)
                assert base in vllms, f"{name} is not a vLLM metric (query {expr!r})"
            else:
                assert name in ours, f"{name} is not exported by the plugin (query {expr!r})"


def dashboard_exprs() -> list[str]:
    dash = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    assert dash["panels"] and all(p["targets"] for p in dash["panels"])
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"]]
    return exprs


def test_dashboard_queries_name_existing_metrics():
    check_names(dashboard_exprs())


def test_dashboard_shows_every_plugin_metric():
    text = "\n".join(dashboard_exprs())
    missing = [m.name for m in METRICS if m.name not in text]
    assert not missing


def test_alert_rules_name_existing_metrics():
    rules = yaml.safe_load((EXAMPLES / "alerts.yml").read_text())
    check_names([r["expr"] for g in rules["groups"] for r in g["rules"]])


def test_prometheus_config_is_valid():
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install prometheus (scripts/install.sh does it)"
    out = subprocess.run([promtool, "check", "config", str(EXAMPLES / "prometheus.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 rules found" in out.stdout + out.stderr


def test_minimal_stat_logger_project():
    meta = tomllib.loads((STAT_LOGGER / "pyproject.toml").read_text())
    assert "vllm" not in " ".join(meta["project"]["dependencies"])
    eps = meta["project"]["entry-points"]["vllm.stat_logger_plugins"]
    module, _, cls_name = eps["example_stat_logger"].partition(":")
    pytest.importorskip("vllm")
    from vllm.v1.metrics.loggers import PrometheusStatLogger, StatLoggerBase
    from vllm.v1.metrics.stats import IterationStats

    # Loaded from the example's file, as a module of its own: the example is never installed here.
    init = STAT_LOGGER / "src" / module / "__init__.py"
    spec = importlib.util.spec_from_file_location(module, init, submodule_search_locations=[str(init.parent)])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = getattr(mod, cls_name)
    assert issubclass(cls, StatLoggerBase) and not issubclass(cls, PrometheusStatLogger)
    config = SimpleNamespace(model_config=SimpleNamespace(served_model_name="example"))
    logger = cls(config, engine_indexes=[0, 1])
    it = IterationStats()
    it.num_generation_tokens = 5
    logger.record(None, it, engine_idx=1)
    from prometheus_client import REGISTRY
    assert REGISTRY.get_sample_value("my_tokens_total", {"model_name": "example", "engine": "1"}) == 5
