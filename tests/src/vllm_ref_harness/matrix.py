"""The compatibility matrix: one result per (plugin, vLLM release) cell, a table, a range check.

A cell is one plugin project's test suite run against one installed vLLM. With
`--matrix-results DIR` (or `REF_MATRIX_RESULTS=DIR`) the harness's pytest plugin writes the
cell's result to `DIR/<project>@<vllm version>.json` at the end of the session. Then:

    python -m vllm_ref_harness.matrix test [PROJECT_DIR ...] [-- PYTEST_ARGS]  # one cell per project
    python -m vllm_ref_harness.matrix render --results DIR   # merge into compatibility.json, write the table
    python -m vllm_ref_harness.matrix check                  # SUPPORTED_VLLM agrees with the table
    python -m vllm_ref_harness.matrix plan                   # the cells as a GitHub Actions matrix (JSON)

`render` keeps every cell the results folder does not hold (another release, another plugin,
an earlier run), so rerunning one cell changes only that cell. An interrupted session writes
nothing: the previous result of that cell stays. A failing cell is a result, not an error of
these commands; `check` decides whether it contradicts the declared range.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vllm_ref_common.gate import version_in_range

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: read what is needed with a regex below
    tomllib = None  # type: ignore[assignment]

RESULTS_ENV = "REF_MATRIX_RESULTS"
RUN_ENV = "REF_MATRIX_RUN"  # groups the cells of one `make matrix` / workflow run in the runs table
DEFAULT_JSON = "docs/compatibility.json"
DEFAULT_MD = "docs/compatibility.md"
# pytest exit codes that mean the session ran to its end: all passed, some failed, none collected.
FINISHED = {0: "pass", 1: "fail", 5: "no tests"}


# ---------------------------------------------------------------- projects

def _toml(path: Path) -> dict:
    if tomllib is None:
        raise SystemExit(f"vllm_ref_harness.matrix: reading {path} needs Python 3.11+ (tomllib)")
    return tomllib.loads(path.read_text())


def project_name(project: Path) -> str:
    """[project].name of the project's pyproject.toml, else the folder's name."""
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        if tomllib is not None:
            name = _toml(pyproject).get("project", {}).get("name")
        else:
            m = re.search(r'^name\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
            name = m.group(1) if m else None
        if name:
            return str(name)
    return project.resolve().name


def project_of(path: Path) -> Path:
    """The nearest folder at or above `path` with a pyproject.toml (a test file's project)."""
    path = path.resolve()
    for d in [path, *path.parents] if path.is_dir() else path.parents:
        if (d / "pyproject.toml").is_file():
            return d
    return path if path.is_dir() else path.parent


def vllm_entry_points(project: Path) -> list[str]:
    """The project's entry points in vLLM's groups: a project with any is a plugin."""
    groups = _toml(project / "pyproject.toml").get("project", {}).get("entry-points", {})
    return [f"{g}:{n}" for g, eps in groups.items() if g.startswith("vllm.") for n in eps]


def declared_range(project: Path) -> str | None:
    """SUPPORTED_VLLM of the project's top-level module(s), read without importing them."""
    for init in sorted(project.glob("src/*/__init__.py")) + sorted(project.glob("*/__init__.py")):
        tree = ast.parse(init.read_text(), filename=str(init))
        for node in tree.body:
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            else:
                continue
            for t in targets:
                if isinstance(t, ast.Name) and t.id == "SUPPORTED_VLLM" and isinstance(node.value, ast.Constant):
                    return str(node.value.value)
    return None


def find_projects(patterns: list[str]) -> list[Path]:
    """Project folders (with a pyproject.toml) named by paths or globs, relative to the cwd."""
    found: list[Path] = []
    for pat in patterns:
        matches = sorted(Path().glob(pat)) if any(c in pat for c in "*?[") else [Path(pat)]
        found += [m for m in matches if (m / "pyproject.toml").is_file() and m not in found]
    return found


def hatch_matrix_versions(project: Path, env: str = "matrix", variable: str = "vllm") -> list[str]:
    """The values of the `vllm` variable of the project's hatch environment matrix.

    Read from hatch.toml ([envs.<env>]) or pyproject.toml ([tool.hatch.envs.<env>]).
    """
    tables = []
    if (project / "hatch.toml").is_file():
        tables.append(_toml(project / "hatch.toml").get("envs", {}))
    if (project / "pyproject.toml").is_file():
        tables.append(_toml(project / "pyproject.toml").get("tool", {}).get("hatch", {}).get("envs", {}))
    for envs in tables:
        for m in envs.get(env, {}).get("matrix", []):
            if variable in m:
                return [str(v) for v in m[variable]]
    raise SystemExit(f"vllm_ref_harness.matrix: no hatch environment matrix '{env}' with a '{variable}' "
                     f"variable in {project}/hatch.toml or pyproject.toml")


def _vkey(v: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.+-]", v)[:3])


def _commit(where: Path) -> str:
    r = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=where, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"


def machine() -> str:
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores"


# ---------------------------------------------------------------- the pytest side: one cell's result

class CellRecorder:
    """Collects a session's outcomes and writes them as one cell (registered by pytest_plugin)."""

    def __init__(self, config: Any, out_dir: Path):
        self.config = config
        self.out_dir = out_dir
        self.passed: set[str] = set()
        self.failed: list[str] = []
        self.skipped: set[str] = set()
        self.started = time.time()
        self.interrupted = False

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        # Ctrl-C, or SIGTERM through the harness's handler; not pytest's own stop after
        # collection errors, which it raises as a KeyboardInterrupt subclass.
        import pytest

        self.interrupted = not isinstance(excinfo.value, pytest.Session.Interrupted)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid or '(collection)'} (collection error)")

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            if report.nodeid not in self.failed:
                self.failed.append(report.nodeid)
            self.passed.discard(report.nodeid)
        elif report.skipped:
            self.skipped.add(report.nodeid)
        elif report.when == "call" and report.nodeid not in self.failed:
            self.passed.add(report.nodeid)

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        status = FINISHED.get(int(exitstatus))
        if int(exitstatus) == 2 and not self.interrupted and self.failed:
            status = "fail"  # pytest stops at collection errors with the same code as at Ctrl-C
        if status is None:  # interrupted or broken: keep whatever result the cell had before
            return
        from vllm_ref_common.gate import vllm_version

        args = [a for a in self.config.args if not a.startswith("-")]
        base = Path(self.config.invocation_params.dir)
        project = project_of(base / args[0]) if args else Path(str(self.config.rootpath))
        version = vllm_version() or "none"
        markexpr = self.config.getoption("markexpr", "") or ""
        cell = {
            "plugin": project_name(project), "vllm": version, "status": status,
            "passed": len(self.passed), "failed": self.failed, "skipped": len(self.skipped - self.passed),
            "exit_code": int(exitstatus), "mode": "unit" if "not vllm" in markexpr else "full",
            "duration_s": round(time.time() - self.started, 1),
            "started": dt.datetime.fromtimestamp(self.started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "run": os.environ.get(RUN_ENV, ""), "commit": _commit(project), "machine": machine(),
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{cell['plugin']}@{version}.json"
        path.write_text(json.dumps(cell, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- test: run cells

def cmd_test(args: argparse.Namespace) -> int:
    """One pytest session per project, each writing its cell into the results folder."""
    projects = find_projects(args.projects or ["."])
    if not projects:
        raise SystemExit(f"vllm_ref_harness.matrix test: no project (folder with a pyproject.toml) in "
                         f"{args.projects or ['.']}")
    results = Path(args.results).resolve()
    env = dict(os.environ)
    env.setdefault(RUN_ENV, dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"))
    env.pop("VLLM_PLUGINS", None)  # each test chooses the plugins it boots
    broken = 0
    for project in projects:
        # A module that fails to import is one failure of the cell; the other modules still run.
        cmd = [sys.executable, "-m", "pytest", str(project), "-p", "no:cacheprovider",
               "--continue-on-collection-errors", f"--matrix-results={results}", *args.pytest_args]
        print(f"[matrix {time.strftime('%H:%M:%S')}] {project_name(project)}: {' '.join(cmd[1:])}", flush=True)
        started = time.time()
        rc = subprocess.call(cmd, env=env)
        written = [p for p in results.glob(f"{project_name(project)}@*.json") if p.stat().st_mtime >= started]
        print(f"[matrix {time.strftime('%H:%M:%S')}] {project_name(project)}: pytest exit code {rc}, "
              f"{'result: ' + written[0].name if written else 'no result written'}", flush=True)
        if not written:
            broken += 1
            if rc == 2 or rc < 0:  # interrupted: stop here; the finished cells are written already
                return 130
    return 1 if broken else 0


# ---------------------------------------------------------------- render: merge and write the table

def load(json_path: Path) -> dict:
    if json_path.is_file():
        return json.loads(json_path.read_text())
    return {"versions": [], "plugins": {}, "runs": []}


def merge(data: dict, cells: list[dict], note: str = "") -> int:
    """Cells into the store, a newer cell replacing an older one; returns how many changed."""
    changed = 0
    # A run (REF_MATRIX_RUN, else the cell's start) is one row of the runs table, grown by every
    # cell of it merged, in this call or a later one.
    runs = {r["id"]: r for r in data.setdefault("runs", []) if r.get("id")}
    for cell in sorted(cells, key=lambda c: c["started"]):
        row = data["plugins"].setdefault(cell["plugin"], {"results": {}})
        old = row["results"].get(cell["vllm"])
        if old and old.get("started", "") >= cell["started"]:
            continue  # this file was merged before (or is older than what is stored)
        row["results"][cell["vllm"]] = {k: v for k, v in cell.items() if k not in ("plugin", "vllm", "machine")}
        if cell["vllm"] not in data["versions"]:
            data["versions"].append(cell["vllm"])
        data["machine"] = cell.get("machine", data.get("machine"))
        changed += 1
        run_id = cell.get("run") or cell["started"]
        if run_id not in runs:
            runs[run_id] = {"id": run_id, "started": cell["started"], "commit": cell["commit"], "versions": [],
                            "plugins": [], "mode": cell["mode"], "duration_s": 0.0, "note": note}
            data["runs"].append(runs[run_id])
        r = runs[run_id]
        r["versions"] = sorted(set(r["versions"]) | {cell["vllm"]}, key=_vkey)
        r["plugins"] = sorted(set(r["plugins"]) | {cell["plugin"]})
        r["duration_s"] = round(r["duration_s"] + cell["duration_s"], 1)
    data["versions"].sort(key=_vkey)
    return changed


def _cell_text(c: dict | None) -> str:
    if c is None:
        return "not run"
    unit = " (unit only)" if c.get("mode") == "unit" else ""
    when = f" <sub>{c.get('started', '')[5:] or c.get('commit', '?')}</sub>"  # MM-DD HH:MM, UTC
    if c["status"] == "pass":
        return f"pass: {c['passed']} passed, {c['skipped']} skipped{unit}{when}"
    if c["status"] == "no tests":
        return f"no tests{when}"
    first = (c["failed"][0] if c["failed"] else "?").replace("|", "/").replace("`", "'")
    more = f" (+{len(c['failed']) - 1} more)" if len(c["failed"]) > 1 else ""
    return f"**fail**: `{first}`{more}{unit}{when}"


def markdown(data: dict, title: str = "Compatibility matrix", intro: str = "") -> str:
    versions = data["versions"]
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    lines += [
        "Each cell is one plugin's whole test suite (real engine boots included, unless the cell says",
        "*unit only*) run against that vLLM release in its own environment, with the time it started",
        "(UTC; the runs below give its commit). `python -m vllm_ref_harness.matrix check` checks that every",
        "plugin's declared `SUPPORTED_VLLM` range agrees: versions that pass lie inside, failing ones outside.",
        "",
        "| plugin | declared range | " + " | ".join(f"vLLM {v}" for v in versions) + " |",
        "|---|---|" + "---|" * len(versions),
    ]
    for name in sorted(data["plugins"]):
        p = data["plugins"][name]
        cells = [_cell_text(p["results"].get(v)) for v in versions]
        lines.append(f"| {name} | `{p.get('supported') or 'none declared'}` | " + " | ".join(cells) + " |")
    # Every run that still owns a cell of the table, so each cell's date points at a commit.
    shown = {(c.get("started", ""), c.get("commit", "")) for p in data["plugins"].values()
             for c in p["results"].values()}
    runs = [r for r in data.get("runs", []) if any(s[1] == r.get("commit") for s in shown)]
    lines += ["", "## Runs", "", "| started (UTC) | commit | versions | plugins | mode | test time | note |",
              "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['started']} | `{r.get('commit', '?')}` | {', '.join(r['versions'])} | "
                     f"{len(r['plugins'])} | {r['mode']} | {r['duration_s'] / 60:.1f} min | {r.get('note', '')} |")
    results = [c for p in data["plugins"].values() for c in p["results"].values()]
    full = sum(c.get("duration_s", 0) for c in results if c.get("mode") != "unit")
    lines += ["", f"The cells above took {full / 60:.1f} min of test time with engines.",
              "", f"Machine: {data.get('machine', '?')}.", ""]
    failing = [(n, v, c) for n, p in sorted(data["plugins"].items())
               for v, c in sorted(p["results"].items(), key=lambda kv: _vkey(kv[0])) if c["status"] == "fail"]
    if failing:
        lines += ["## Failing tests", ""]
        for n, v, c in failing:
            lines.append(f"- {n} on vLLM {v}:")
            lines += [f"    - `{t.replace('`', chr(39))}`" for t in c["failed"][:10]]
            if len(c["failed"]) > 10:
                lines.append(f"    - and {len(c['failed']) - 10} more (the cell's result file lists them all)")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- grid: the table a person reads

# Cell colours (background, text) and the frame that marks a release inside the declared range.
_PASS, _FAIL, _NONE = ("#e3f4e1", "#1b5e20"), ("#fde2e1", "#b71c1c"), ("#eeeeee", "#555555")
_IN_RANGE = "inset 0 0 0 3px #1565c0"
_REASON_CHARS = 34


def short_reason(failed: list[str]) -> str:
    """What failed first, in a few words: the test's own name (no file, no parameters), or
    "<file> does not import" for a collection error."""
    if not failed:
        return "?"
    first = failed[0]
    if first.endswith("(collection error)"):
        return f"{first.split('::')[0].rsplit('/', 1)[-1].split(' ')[0]} does not import"
    name = first.rsplit("::", 1)[-1].split("[", 1)[0]
    return name if len(name) <= _REASON_CHARS else name[:_REASON_CHARS - 1] + "\u2026"


def _grid_cell(c: dict | None, inside: bool | None) -> str:
    import html

    frame = f"box-shadow:{_IN_RANGE};" if inside else ""
    if c is None:
        bg, fg = _NONE
        body, title = "not run", "not run"
    elif c["status"] == "pass":
        bg, fg = _PASS
        body = f"<b>\u2713 pass {c['passed']}</b>"
        title = f"{c['passed']} passed, {c['skipped']} skipped"
    elif c["status"] == "fail":
        bg, fg = _FAIL
        total = c["passed"] + len(c["failed"])
        body = (f"<b>\u2717 fail {len(c['failed'])}/{total}</b><br>"
                f"<small>{html.escape(short_reason(c['failed'])).replace('_', '_<wbr>')}</small>")
        title = html.escape(c["failed"][0] if c["failed"] else "?", quote=True)
    else:
        bg, fg = _NONE
        body, title = html.escape(c["status"]), html.escape(c["status"])
    if c is not None and c.get("mode") == "unit":
        body += "<br><small>unit only</small>"
    when = f" ({c.get('started', '')} UTC, {c.get('commit', '?')})" if c else ""
    return (f'<td title="{title}{html.escape(when, quote=True)}" style="background:{bg};color:{fg};{frame}'
            f'padding:4px 6px;overflow-wrap:anywhere;vertical-align:top">{body}</td>')


def grid(data: dict, title: str = "Compatibility matrix", intro: str = "") -> str:
    """The matrix as a grid a person reads at a glance: one row per plugin, one column per
    release, each cell a coloured pass/fail mark with its count and, for a failure, the first
    failing test's short name; releases inside the plugin's declared range are framed. Below
    it, the full failing ids per plugin (collapsed) and the runs. HTML, so the cells keep their
    colour on the docs site; a fixed table layout at full width, so it fits any content column."""
    import html

    versions = data["versions"]
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    swatch = "display:inline-block;padding:0 6px;margin-right:4px;"
    lines += [
        "Each cell is one plugin's whole test suite (real engine boots included, unless it says *unit only*)",
        "run against that vLLM release in its own environment; hover a cell for the first failing test, when",
        "it ran and at which commit. `python -m vllm_ref_harness.matrix check` checks that every declared",
        "`SUPPORTED_VLLM` range agrees with the grid: releases that pass lie inside it, failing ones outside.",
        "",
        f'<p><span style="{swatch}background:{_PASS[0]};color:{_PASS[1]}">\u2713 pass N</span> every test passed '
        f'(N tests) &nbsp; <span style="{swatch}background:{_FAIL[0]};color:{_FAIL[1]}">\u2717 fail k/N</span> '
        f'k of N failed, then the first failure &nbsp; <span style="{swatch}box-shadow:{_IN_RANGE}">&nbsp;'
        "framed&nbsp;</span> inside the plugin's declared range</p>",
        "",
        '<table class="ref-matrix" style="table-layout:fixed;width:100%;border-collapse:separate;'
        'border-spacing:3px;font-size:0.7rem;line-height:1.3">',
        # The plugin column a fixed share, the releases the rest in equal parts.
        '<colgroup><col style="width:20%">' + "<col>" * len(versions) + "</colgroup>",
        '<thead><tr><th style="text-align:left">plugin<br><small>declared range</small></th>'
        + "".join(f'<th style="text-align:left">{html.escape(v)}</th>' for v in versions) + "</tr></thead>",
        "<tbody>",
    ]
    for name in sorted(data["plugins"]):
        p = data["plugins"][name]
        supported = p.get("supported")
        cells = [_grid_cell(p["results"].get(v), version_in_range(v, supported) if supported else None)
                 for v in versions]
        head = (f'<th style="text-align:left;font-weight:normal;overflow-wrap:anywhere"><b>{html.escape(name)}</b>'
                f"<br><code>{html.escape(supported or 'no range (library)')}</code></th>")
        lines.append(f"<tr>{head}{''.join(cells)}</tr>")
    lines += ["</tbody>", "</table>", ""]
    failing = [(n, [(v, c) for v, c in sorted(p["results"].items(), key=lambda kv: _vkey(kv[0]))
                    if c["status"] == "fail"]) for n, p in sorted(data["plugins"].items())]
    failing = [(n, cs) for n, cs in failing if cs]
    if failing:
        lines += ["## Failing tests", "", "Every failing test id of every failed cell, per plugin.", ""]
        for n, cs in failing:
            lines.append(f"<details><summary><b>{html.escape(n)}</b>: fails on "
                         f"{', '.join(html.escape(v) for v, _ in cs)}</summary>")
            for v, c in cs:
                ids = "".join(f"<li><code>{html.escape(t)}</code></li>" for t in c["failed"])
                lines.append(f"<p>vLLM {html.escape(v)}, {len(c['failed'])} failed:</p><ul>{ids}</ul>")
            lines.append("</details>")
        lines.append("")
    shown = {c.get("commit", "") for p in data["plugins"].values() for c in p["results"].values()}
    runs = [r for r in data.get("runs", []) if r.get("commit") in shown]
    lines += ["## Runs", "", "| started (UTC) | commit | versions | plugins | mode | test time | note |",
              "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['started']} | `{r.get('commit', '?')}` | {', '.join(r['versions'])} | "
                     f"{len(r['plugins'])} | {r['mode']} | {r['duration_s'] / 60:.1f} min | {r.get('note', '')} |")
    results: list[dict[str, Any]] = [cell for p in data["plugins"].values() for cell in p["results"].values()]
    full = sum(cell.get("duration_s", 0) for cell in results if cell.get("mode") != "unit")
    lines += ["", f"The cells above took {full / 60:.1f} min of test time with engines.",
              "", f"Machine: {data.get('machine', '?')}.", ""]
    return "\n".join(lines)


BEGIN, END = "<!-- matrix:begin -->", "<!-- matrix:end -->"


def splice(text: str, table: str) -> str:
    """`text` with the table between its BEGIN and END marker lines where it has both (so
    hand-written prose around it stays), else the table alone."""
    lines = text.splitlines(keepends=True)
    marks = [i for i, ln in enumerate(lines) if ln.strip() in (BEGIN, END)]  # on lines of their own
    if len(marks) == 2 and lines[marks[0]].strip() == BEGIN:
        head, tail = "".join(lines[:marks[0]]), "".join(lines[marks[1] + 1:])
        # Inside a page the table's headings sit one level down.
        table = "\n".join("#" + ln if ln.startswith("#") else ln for ln in table.splitlines())
        return f"{head}{BEGIN}\n{table.rstrip()}\n{END}\n{tail}"
    return table


def write_markdown(path: Path, table: str) -> None:
    """The table into `path` (see splice)."""
    path.write_text(splice(path.read_text() if path.is_file() else "", table))


def cmd_render(args: argparse.Namespace) -> int:
    json_path = Path(args.json)
    data = load(json_path)
    cells = [json.loads(p.read_text()) for p in sorted(Path(args.results).glob("*@*.json"))] if args.results else []
    changed = merge(data, cells, args.note)
    for project in find_projects(args.projects):  # the declared ranges as the source has them now
        name = project_name(project)
        if name in data["plugins"]:
            data["plugins"][name]["supported"] = declared_range(project)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    render = grid if args.grid else markdown
    write_markdown(Path(args.md), render(data, intro=args.intro or
                                         f"Generated from `{json_path.name}` by `python -m vllm_ref_harness.matrix "
                                         "render`; do not edit by hand."))
    print(f"vllm_ref_harness.matrix: {changed} new cell(s) from {args.results or 'nowhere'}; "
          f"wrote {args.json} and {args.md}")
    return 0


# ---------------------------------------------------------------- check: declared ranges vs the table

def disagreements(supported: str, results: dict[str, dict]) -> list[str]:
    """Cells of one plugin's row that contradict its declared range."""
    bad = []
    for version, cell in sorted(results.items(), key=lambda kv: _vkey(kv[0])):
        inside = version_in_range(version, supported)
        if cell["status"] == "pass" and not inside:
            bad.append(f"vLLM {version} passed but lies outside {supported}")
        elif cell["status"] == "fail" and inside:
            first = (cell.get("failed") or ["?"])[0]
            bad.append(f"vLLM {version} lies inside {supported} but failed ({first})")
    return bad


def problems(project: Path, data: dict, versions: list[str] | None = None) -> list[str]:
    """Why a project's declared range and its matrix row disagree (empty: they agree).

    versions: releases the row must cover (e.g. the hatch matrix); a missing cell is a problem.
    """
    name = project_name(project)
    eps = vllm_entry_points(project)
    if not eps:
        return []  # not a plugin: nothing to declare
    supported = declared_range(project)
    if not supported:
        return [f"{name}: declares {eps} but no SUPPORTED_VLLM constant in its top-level __init__.py "
                f"(e.g. SUPPORTED_VLLM = \">=0.28,<0.34\")"]
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        SpecifierSet(supported)
    except InvalidSpecifier:
        return [f"{name}: SUPPORTED_VLLM = {supported!r} is not a PEP 440 specifier set"]
    row = data["plugins"].get(name, {}).get("results", {})
    out = [f"{name}: no result for vLLM {v}; run that cell" for v in versions or [] if v not in row]
    return out + [f"{name}: {d}" for d in disagreements(supported, row)]


def cmd_check(args: argparse.Namespace) -> int:
    data = load(Path(args.json))
    projects = find_projects(args.projects)
    versions = hatch_matrix_versions(Path(args.hatch_project)) if args.require_all else None
    found = [p for project in projects for p in problems(project, data, versions)]
    for line in found:
        print(line)
    plugins = [p for p in projects if vllm_entry_points(p)]
    print(f"vllm_ref_harness.matrix check: {len(plugins)} plugin(s), {len(found)} problem(s)")
    return 1 if found else 0


# ---------------------------------------------------------------- plan: the cells for a CI matrix

def cmd_plan(args: argparse.Namespace) -> int:
    versions = hatch_matrix_versions(Path(args.hatch_project), args.env)
    projects = [str(p) for p in find_projects(args.projects)]
    print(json.dumps({"include": [{"vllm": v, "project": p} for v in versions for p in projects]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vllm_ref_harness.matrix", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    default_results = os.environ.get(RESULTS_ENV, "matrix-results")

    t = sub.add_parser("test", help="run each project's tests against the installed vLLM, one cell each")
    t.add_argument("projects", nargs="*", help="project folders or globs (default: .)")
    t.add_argument("--results", default=default_results, help=f"cell files go here (default: ${RESULTS_ENV} "
                   "or matrix-results)")
    t.epilog = "Arguments after -- go to pytest."

    r = sub.add_parser("render", help="merge cell files into the JSON store and write the Markdown table")
    r.add_argument("--results", default=default_results, help="folder of cell files to merge")
    r.add_argument("--json", default=DEFAULT_JSON)
    r.add_argument("--md", default=DEFAULT_MD)
    r.add_argument("--note", default="", help="a remark stored with the new runs")
    r.add_argument("--intro", default="", help="a paragraph under the title")
    r.add_argument("--projects", nargs="*", default=["."], help="where the declared ranges are read")
    r.add_argument("--grid", action="store_true", help="a coloured HTML grid (for a docs site) instead of the "
                   "plain Markdown table (for a job summary)")

    c = sub.add_parser("check", help="fail where a declared SUPPORTED_VLLM contradicts the table")
    c.add_argument("--json", default=DEFAULT_JSON)
    c.add_argument("--projects", nargs="*", default=["."])
    c.add_argument("--require-all", action="store_true", help="every release of the hatch matrix needs a cell")
    c.add_argument("--hatch-project", default=".", help="where the hatch matrix is declared")

    p = sub.add_parser("plan", help="print the cells as a GitHub Actions matrix (JSON)")
    p.add_argument("--projects", nargs="*", default=["."])
    p.add_argument("--hatch-project", default=".")
    p.add_argument("--env", default="matrix")

    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:len(argv) - len(extra) - (1 if "--" in argv else 0)])
    args.pytest_args = extra
    return {"test": cmd_test, "render": cmd_render, "check": cmd_check, "plan": cmd_plan}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
