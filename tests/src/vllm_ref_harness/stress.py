"""Stress run of the probe: `python -m vllm_ref_harness.stress` (`make stress-probe`).

Repeats, with every core kept busy by competing processes, the starts in which a report once
went missing, and counts the reports that are missing or late:
- a front-end start-up: real vLLM imported, `EngineArgs` built (which loads the general plugins),
  then a way out, each repetition the next of: normal exit, `os._exit`, SIGTERM, SIGKILL;
- at the same time, one offline boot (`run_engine`, TP=1): front end, engine core and worker;
- with `--pytest NODEID ...`: those tests as well, once per repetition (the harness's engine
  tests, the model's TP=2 test, the Prometheus serve test...).
A report is missing when a front end, engine core or worker has no value for a check it was
asked for; late when its first value came more than `--late` seconds after the first
vLLM entry point was loaded in it (the first moment a plugin's effect can exist). Exit status 0
only when nothing was missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import procs, runner
from .report import ALL_ROLES, ProbeReport, effect
from .runner import run_engine, vllm_env
from .tinymodel import tiny_llama

PLUGIN = "ref_stress"
CHECKS = {"stress": "vllm_ref_stress_plugin:status"}
WAYS_OUT = {"exit": "pass", "os._exit": "os._exit(0)",
            "SIGTERM": "os.kill(os.getpid(), signal.SIGTERM); time.sleep(60)",
            "SIGKILL": "os.kill(os.getpid(), signal.SIGKILL)"}


def plugin_site(root: Path) -> Path:
    """A general plugin with a real entry point (a dist-info folder on PYTHONPATH)."""
    site = root / "stress-site"
    info = site / "vllm_ref_stress_plugin-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (site / "vllm_ref_stress_plugin.py").write_text(textwrap.dedent("""
        REGISTERED = []

        def register():
            REGISTERED.append(1)

        def status():
            return {"effect": bool(REGISTERED)}
    """))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-ref-stress-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[vllm.general_plugins]\n{PLUGIN} = vllm_ref_stress_plugin:register\n")
    return site


def front_end(run_dir: Path, site: Path, model: Path, way_out: str) -> ProbeReport:
    """One front-end start-up up to plugin registration, then `way_out`."""
    env = vllm_env(run_dir, procs.new_run_tag(), plugins=[PLUGIN], checks=CHECKS, env={"PYTHONPATH": str(site)})
    code = ("import os, signal, time\nfrom vllm.engine.arg_utils import EngineArgs\n"
            f"EngineArgs(model={str(model)!r})\n{WAYS_OUT[way_out]}\n")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=run_dir, capture_output=True, timeout=300)
    return ProbeReport.read(run_dir / "probe")


def boot(run_dir: Path, site: Path, model: Path) -> ProbeReport:
    """One offline boot, TP=1: front end, engine core, worker."""
    return run_engine(model, requests=[{"prompt": "Hello, my name is"}], sampling={"max_tokens": 4},
                      plugins=[PLUGIN], checks=CHECKS, env={"PYTHONPATH": str(site)}, run_dir=run_dir).report


def score(report: ProbeReport, late: float) -> tuple[list[str], list[str], float]:
    """(missing, late, the longest delay) over the front ends, engine cores and workers, for the
    checks each process was given (CHECKS for a probe that does not say). Where the stress
    plugin registered, a last value without its effect is missing too: a probe that stopped
    after its first round leaves such a stale value."""
    missing, slow, worst = [], [], 0.0
    for rec in report:
        if rec.role not in ALL_ROLES:
            continue
        for label in rec.requested or list(CHECKS):
            if label not in rec.checks:
                missing.append(f"missing: {rec.summary()}")
            elif label in CHECKS and rec.status(PLUGIN) == "called" and not effect(rec.checks[label]):
                missing.append(f"stale: {rec.summary()}")
            else:
                delay = rec.check_delay.get(label, 0.0)
                worst = max(worst, delay)
                if delay > late:
                    slow.append(f"{rec.label} {label} after {delay:.1f}s")
    return missing, slow, worst


def _burn() -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]


def _pytest(nodeids: list[str], basetemp: Path) -> int:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}",
                        *nodeids], capture_output=True, text=True)
    print("   pytest:", r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:], flush=True)
    return r.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vllm_ref_harness.stress", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--late", type=float, default=5.0, help="seconds after which a first value counts as late")
    ap.add_argument("--no-load", action="store_true", help="do not start the competing processes")
    ap.add_argument("--no-boot", action="store_true", help="front-end start-ups only, no offline boot")
    ap.add_argument("--pytest", nargs="*", default=[], metavar="NODEID", help="tests to repeat as well")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--period", type=float, help="the poller's period (REF_PROBE_PERIOD; default 0.25 s): a "
                    "short one makes a race with the main thread's imports far likelier")
    ap.add_argument("--probe-site", help="another probe's sitecustomize folder (to measure an older probe)")
    args = ap.parse_args(argv)
    if args.period is not None:
        os.environ["REF_PROBE_PERIOD"] = str(args.period)
    if args.probe_site:
        runner.PROBE_SITE = args.probe_site

    root = Path(tempfile.mkdtemp(prefix="vllm-ref-stress-"))
    site, model = plugin_site(root), tiny_llama()
    burners = [] if args.no_load else _burn()
    totals = {"reps": 0, "processes": 0, "missing": 0, "late": 0, "worst_delay_s": 0.0, "pytest_failed": 0}
    started = time.monotonic()
    try:
        for rep in range(args.reps):
            rep_dir = root / f"rep-{rep}"
            way = list(WAYS_OUT)[rep % len(WAYS_OUT)]
            with ThreadPoolExecutor(2) as pool:  # the start-up and the boot compete with each other too
                jobs = [pool.submit(front_end, rep_dir / "front-end", site, model, way)]
                if not args.no_boot:
                    jobs.append(pool.submit(boot, rep_dir / "boot", site, model))
                reports = [j.result() for j in jobs]
            if args.pytest:
                code = _pytest(args.pytest, rep_dir / "pytest")
                totals["pytest_failed"] += code != 0
                reports.append(ProbeReport([r for p in (rep_dir / "pytest").rglob("probe")
                                            for r in ProbeReport.read(p).records]))
            missing, slow, worst = [], [], 0.0
            for report in reports:
                m, s, w = score(report, args.late)
                missing += m
                slow += s
                worst = max(worst, w)
                totals["processes"] += sum(r.role in ALL_ROLES for r in report)
            totals["reps"] += 1
            totals["missing"] += len(missing)
            totals["late"] += len(slow)
            totals["worst_delay_s"] = round(max(totals["worst_delay_s"], worst), 2)
            load = os.getloadavg()[0]
            print(f"rep {rep + 1}/{args.reps}: missing {len(missing)}, late {len(slow)}, worst first value "
                  f"{worst:.2f}s, load {load:.1f}, {time.monotonic() - started:.0f}s", flush=True)
            for line in missing + slow:
                print("   ", line, flush=True)
    finally:
        for b in burners:
            b.kill()
    totals["seconds"] = round(time.monotonic() - started)
    print(json.dumps(totals))
    if args.json:
        args.json.write_text(json.dumps(totals, indent=1) + "\n")
    return 0 if totals["missing"] == 0 and totals["pytest_failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
