"""What the probe saw, process by process, and assertions over it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllm_ref_common.roles import ROLES

# The roles every general plugin must reach in a multiprocess vLLM.
ALL_ROLES = ("front_end", "engine_core", "worker")
LOADED = ("loaded", "called")


@dataclass
class ProcessRecord:
    pid: int
    ppid: int = 0
    role: str = "other"  # one of vllm_ref_common.roles.ROLES
    rank: int | None = None
    ray: bool = False  # a worker started by Ray
    vllm_version: str | None = None
    argv: list[str] = field(default_factory=list)
    # group -> entry-point name -> status: filtered | loaded | called | raised | load_failed
    plugins: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    returned: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    # How the process left, as its probe recorded it ("exit", "SIGTERM", "os._exit(0)"), or None:
    # still running, or ended without a word (SIGKILL).
    ended: str | None = None
    # Seconds from the first vllm.* entry point loaded here to each check's first value.
    check_delay: dict[str, float] = field(default_factory=dict)
    loaded_t: float | None = None
    requested: list[str] = field(default_factory=list)  # the check labels this process was given

    @property
    def label(self) -> str:
        return f"{self.name} pid {self.pid}"

    @property
    def name(self) -> str:
        """role[rank], marked (ray) for a Ray worker."""
        rank = "" if self.rank is None else f"[{self.rank}]"
        return f"{self.role}{rank}" + (" (ray)" if self.ray else "")

    def status(self, name: str, group: str | None = None) -> str:
        """The best status of entry point `name` (in `group`, or in any group)."""
        seen = [g[name] for grp, g in self.plugins.items() if name in g and group in (None, grp)]
        order = ["raised", "load_failed", "called", "loaded", "filtered"]
        for s in order:
            if s in seen:
                return s
        return "absent"

    def summary(self) -> str:
        parts = [f"{n}={s}" for g in sorted(self.plugins) for n, s in sorted(self.plugins[g].items())]
        checks = [f"{k}={v!r}" for k, v in sorted(self.checks.items())]
        probe = f" probe error {self.errors['(probe)']!r}" if "(probe)" in self.errors else ""
        ended = f" ended: {self.ended}" if self.ended else " (no exit recorded)"
        return f"{self.label}: plugins {{{', '.join(parts)}}} checks {{{', '.join(checks)}}}{probe}{ended}"

    def check(self, label: str) -> Any:
        """The check's last value here, or a '<not evaluated: ...>' string that says why."""
        if label in self.checks:
            return self.checks[label]
        if self.ended:
            return f"<not evaluated: the process ended ({self.ended}) before the check's module was imported>"
        return "<not evaluated: no round yet, or the process was killed (SIGKILL) before its first>"


class ProbeError(AssertionError):
    pass


def effect(value: Any) -> bool:
    """Whether a check's value says the plugin took effect: a plugin's status() dict by its
    "effect" key, any other value by its truth (an error dict never)."""
    if isinstance(value, dict):
        return bool(value.get("effect")) and "error" not in value
    return bool(value)


class ProbeReport:
    """All processes one harness run touched, read from the probe's JSON-lines files."""

    def __init__(self, records: list[ProcessRecord]):
        self.records = sorted(records, key=lambda r: (_ROLE_ORDER.get(r.role, 9), r.rank or 0, r.pid))

    @classmethod
    def read(cls, probe_dir: Path) -> ProbeReport:
        records = []
        for path in sorted(Path(probe_dir).glob("*.jsonl")):
            rec = ProcessRecord(pid=int(path.stem))
            for line in path.read_text().splitlines():
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a killed process
                _apply(rec, ev)
            records.append(rec)
        return cls(records)

    def __iter__(self):
        return iter(self.records)

    def processes(self, role: str | None = None) -> list[ProcessRecord]:
        return [r for r in self.records if role in (None, r.role)]

    def roles(self) -> list[str]:
        return sorted({r.role for r in self.records}, key=lambda x: _ROLE_ORDER.get(x, 9))

    def describe(self) -> str:
        if not self.records:
            return "  (the probe saw no vLLM process)"
        return "\n".join("  " + r.summary() for r in self.records)

    def _fail(self, msg: str) -> None:
        raise ProbeError(f"{msg}\nprocesses seen by the probe:\n{self.describe()}")

    def _of_roles(self, roles: Iterable[str]) -> list[ProcessRecord]:
        roles = tuple(roles)
        for role in roles:
            if not self.processes(role):
                self._fail(f"no process with role {role!r} was seen")
        return [r for r in self.records if r.role in roles]

    def assert_loaded(self, name: str, roles: Iterable[str] = ALL_ROLES, group: str | None = None) -> None:
        """Entry point `name` was loaded (and, for functions, called) in every process of `roles`."""
        bad = [r for r in self._of_roles(roles) if r.status(name, group) not in LOADED]
        if bad:
            self._fail(f"plugin {name!r} not loaded in: " + ", ".join(
                f"{r.label} ({r.status(name, group)})" for r in bad))

    def assert_not_loaded(self, name: str, roles: Iterable[str] = ALL_ROLES, group: str | None = None) -> None:
        bad = [r for r in self._of_roles(roles) if r.status(name, group) in LOADED]
        if bad:
            self._fail(f"plugin {name!r} unexpectedly loaded in: " + ", ".join(r.label for r in bad))

    def assert_raised(self, name: str, match: str = "") -> ProcessRecord:
        """Entry point `name` raised (at load or when called) in at least one process."""
        for r in self.records:
            if r.status(name) in ("raised", "load_failed") and match in r.errors.get(name, ""):
                return r
        self._fail(f"plugin {name!r} did not raise an error matching {match!r}")
        raise AssertionError  # unreachable

    def check_values(self, label: str, roles: Iterable[str] = ALL_ROLES) -> dict[str, Any]:
        return {r.label: r.check(label) for r in self._of_roles(roles)}

    def assert_check(
        self,
        label: str,
        expected: Any | Callable[[Any], bool] = True,
        roles: Iterable[str] = ALL_ROLES,
    ) -> None:
        """Effect check `label` holds in every process of `roles`.

        expected is a value to compare with, or a predicate on the value. A plain True/False
        against a plugin's status() dict is compared with its "effect" key.
        """
        def same(v: Any) -> bool:
            if isinstance(expected, bool) and isinstance(v, dict):
                return effect(v) is expected
            return v == expected

        ok = expected if callable(expected) else same
        bad = [r for r in self._of_roles(roles) if label not in r.checks or not ok(r.checks[label])]
        if bad:
            self._fail(f"check {label!r} failed ({'predicate' if callable(expected) else expected!r}) in: "
                       + ", ".join(f"{r.label} = {r.check(label)!r}" for r in bad))

    def table(self, plugins: Iterable[str], checks: dict[str, str] | None = None) -> str:
        """One row per process, one column per plugin: 'loaded' and, if given, its effect check.

        checks maps a plugin name to the probe-check label that shows its effect.
        """
        plugins = list(plugins)
        checks = checks or {}
        head = ["process", "pid"] + plugins
        rows = []
        for r in self.records:
            if r.role == "other":
                continue
            row = [r.name, str(r.pid)]
            for p in plugins:
                st = r.status(p)
                cell = {"called": "loaded", "loaded": "loaded", "absent": "-"}.get(st, st)
                v = r.checks.get(checks.get(p, ""))
                if isinstance(v, dict) and "error" in v:
                    cell += f" (check error: {v['error']})"
                elif effect(v):
                    cell += " + effect"
                row.append(cell)
            rows.append(row)
        widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
        fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))  # noqa: E731
        return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


_ROLE_ORDER = {role: i for i, role in enumerate(ROLES)}


def _apply(rec: ProcessRecord, ev: dict[str, Any]) -> None:
    rec.ppid = ev.get("ppid", rec.ppid)
    if rec.loaded_t is None and ev.get("event") == "loaded" and isinstance(ev.get("t"), (int, float)):
        rec.loaded_t = ev["t"]
    if ev.get("role") and not (ev["role"] in ("front_end", "other") and rec.role not in ("front_end", "other")):
        # A process is renamed (Worker, EngineCore) after start; never demote a known role.
        rec.role = ev["role"]
    if ev.get("rank") is not None:
        rec.rank = ev["rank"]
    rec.ray = rec.ray or bool(ev.get("ray"))
    kind = ev.get("event")
    group = ev.get("group", "")
    name = ev.get("name", "")
    plugins = rec.plugins.setdefault(group, {}) if group else {}
    if kind == "meta":
        rec.vllm_version, rec.argv = ev.get("vllm_version"), ev.get("argv", [])
        rec.requested = list(ev.get("checks", []))
    elif kind == "discovered":
        for n in ev.get("names", []):
            plugins.setdefault(n, "filtered")
    elif kind == "loaded":
        if plugins.get(name) not in ("called", "raised"):
            plugins[name] = "loaded"
    elif kind == "called":
        if plugins.get(name) != "raised":
            plugins[name] = "called"
        rec.returned[name] = ev.get("returned")
    elif kind in ("raised", "load_failed"):
        plugins[name] = kind
        rec.errors[name] = ev.get("error", "")
    elif kind == "check":
        rec.checks[ev["label"]] = ev.get("value")
        if ev["label"] not in rec.check_delay and rec.loaded_t is not None:
            rec.check_delay[ev["label"]] = max(0.0, ev.get("t", rec.loaded_t) - rec.loaded_t)
    elif kind == "exit":
        rec.ended = ev.get("how", "exit")
    elif kind == "probe_error":
        rec.errors["(probe)"] = ev.get("error", "")
