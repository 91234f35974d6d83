"""Booting a real vLLM in its own process tree: offline LLM, AsyncLLM, or the OpenAI server.

Every boot runs in a fresh process group with the probe on PYTHONPATH and a unique tag in its
environment, so plugin selection (VLLM_PLUGINS) is per boot, and teardown can prove that no
vLLM process survives.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import procs
from .report import ProbeReport
from .tinymodel import cache_root

PROBE_SITE = str(Path(__file__).parent / "_probe_site")


class HarnessError(RuntimeError):
    pass


def pip_install_target(site: str | Path, *packages: str | Path) -> Path:
    """pip-install local packages, without their dependencies, into the folder `site` (for a
    PYTHONPATH): how tests install a plugin for one boot without touching the dev venv, where an
    installed entry point would load into every later boot. What `site` already holds of these
    packages is replaced (--upgrade), so a folder can be reused across runs."""
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--no-build-isolation", "--upgrade", "--target", str(site),
                        *map(str, packages)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise HarnessError(f"pip install --target {site} of {[str(p) for p in packages]} failed:\n"
                           f"{r.stdout}\n{r.stderr}")
    return Path(site)


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples named `name` in Prometheus exposition `text` whose labels include
    `labels` (0.0 where there are none)."""
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:{{(.*?)}})? (\S+)$", text, re.M):
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def free_port() -> int:
    """A port nothing listens on now. Under pytest-xdist each worker draws from a range of its
    own, between Ray's worker ports (10002-19999, which `ray start` refuses to overlap) and the
    kernel's ephemeral range (32768 up), so two workers (or a port vLLM takes for itself) never
    race for the same one between this call and the server's bind."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
    if worker.isdigit() and int(worker) < 4:
        low = 20000 + 2500 * int(worker)
        for port in random.sample(range(low, low + 2500), 200):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_env(
    run_dir: Path,
    tag: str,
    *,
    plugins: Iterable[str] | None = None,
    checks: Mapping[str, str] | None = None,
    tensor_parallel_size: int = 1,
    fresh_cache: bool = False,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one boot: probe, tag, offline mode, CPU settings, plugin filter."""
    e = dict(os.environ)
    probe_dir = run_dir / "probe"
    probe_dir.mkdir(parents=True, exist_ok=True)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [PROBE_SITE, e.get("PYTHONPATH")]))
    e["REF_PROBE_DIR"] = str(probe_dir)
    e["REF_PROBE_CHECKS"] = ";".join(f"{k}={v}" for k, v in (checks or {}).items())
    e[procs.TAG_VAR] = tag
    e.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
    e.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    e["VLLM_CACHE_ROOT"] = str(run_dir / "vllm-cache") if fresh_cache else str(cache_root() / "vllm")
    if tensor_parallel_size > 1:
        # One OpenMP thread per rank on separate cores (without these: "Not enough allowed
        # NUMA nodes" on a small machine).
        n = os.cpu_count() or 1
        e.setdefault("VLLM_CPU_OMP_THREADS_BIND", "|".join(str(i % n) for i in range(tensor_parallel_size)))
        e.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    if plugins is not None:
        e["VLLM_PLUGINS"] = ",".join(plugins)
    else:
        e.pop("VLLM_PLUGINS", None)
    extra = dict(env or {})
    if "PYTHONPATH" in extra:
        # Test-supplied folders (e.g. one holding probe-check functions) go after the probe.
        extra["PYTHONPATH"] = os.pathsep.join([PROBE_SITE, extra["PYTHONPATH"], os.environ.get("PYTHONPATH", "")])
    e.update(extra)
    return e


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class _Boot:
    """Shared life cycle: run folder, tag, process group, teardown with a leak check."""

    def __init__(self, run_dir: Path | None):
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="vllm-ref-run-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.tag = procs.new_run_tag()
        self.log_path = self.run_dir / "vllm.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.leaked: list[str] = []

    def _spawn(self, cmd: list[str], env: dict[str, str]) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.run_dir,
        )
        procs.track_session(self.tag, self.proc.pid)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def report(self) -> ProbeReport:
        return ProbeReport.read(self.run_dir / "probe")

    def stop(self) -> None:
        """End the whole tree; raise HarnessError if any tagged process survived."""
        if self.proc is not None:
            procs.stop_group(self.proc)
            self._log.close()
        # Anything still tagged once the group is gone and a short grace has passed was left
        # behind by vLLM.
        procs.wait_gone(self.tag, timeout=8)
        self.leaked = procs.reap(self.tag, grace=5)
        if self.leaked:
            raise HarnessError(
                f"vllm-ref-harness: {len(self.leaked)} vLLM process(es) outlived their parent "
                f"and were killed: {self.leaked}")


@dataclass
class EngineRun:
    """What an offline or AsyncLLM boot returned."""

    outputs: list[dict[str, Any]]
    extra: Any
    report: ProbeReport
    log: str
    run_dir: Path


def run_engine(
    model: str | Path,
    *,
    mode: str = "llm",
    engine_args: Mapping[str, Any] | None = None,
    requests: list[dict[str, Any]] | None = None,
    sampling: Mapping[str, Any] | None = None,
    call: str | None = None,
    plugins: Iterable[str] | None = None,
    checks: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 400,
    fresh_cache: bool = False,
    run_dir: Path | None = None,
    expect_failure: bool = False,
) -> EngineRun:
    """Boot vLLM offline (`mode="llm"`) or through `AsyncLLM` (`mode="async"`) in a subprocess.

    requests: [{"prompt": str} | {"prompt_token_ids": [...]}, optional "sampling": {...}];
    sampling: SamplingParams defaults for all requests; call: "module:function" run in the
    front end with the engine (awaited in async mode), its JSON result returned as `extra`.
    With expect_failure, a failing boot returns (outputs empty, the error in `extra`).
    """
    if mode not in ("llm", "async"):
        raise ValueError(f"vllm-ref-harness: mode must be 'llm' or 'async', got {mode!r}")
    args = {"enforce_eager": True, "max_model_len": 512, "seed": 0}
    args.update(engine_args or {})
    boot = _Boot(run_dir)
    spec = {"mode": mode, "model": str(model), "engine_args": args, "requests": requests or [],
            "sampling": dict(sampling or {}), "call": call}
    spec_path, out_path = boot.run_dir / "spec.json", boot.run_dir / "result.json"
    spec_path.write_text(json.dumps(spec))
    env_ = vllm_env(boot.run_dir, boot.tag, plugins=plugins, checks=checks,
                    tensor_parallel_size=int(args.get("tensor_parallel_size", 1)),
                    fresh_cache=fresh_cache, env=env)
    boot._spawn([sys.executable, "-m", "vllm_ref_harness.driver", str(spec_path), str(out_path)], env_)
    assert boot.proc is not None
    try:
        rc = boot.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        boot.stop()
    result = json.loads(out_path.read_text()) if out_path.exists() else None
    if rc != 0 or result is None or "error" in result:
        why = "timed out" if rc is None else f"exit code {rc}"
        err = (result or {}).get("error", why)
        if expect_failure:
            return EngineRun([], {"error": err, "exit_code": rc}, boot.report(), boot.log, boot.run_dir)
        raise HarnessError(f"vLLM boot failed ({why}): {err}\n--- log tail ---\n{_tail(boot.log_path)}")
    return EngineRun(result["outputs"], result.get("extra"), boot.report(), boot.log, boot.run_dir)


def _serve_command(model: str, port: int, args: list[str], python: str | None = None) -> list[str]:
    cli = None
    if python is None:  # another interpreter's environment: always the module, which every build has
        try:
            importlib.metadata.distribution("vllm")
            cli = shutil.which("vllm", path=str(Path(sys.executable).parent))
        except importlib.metadata.PackageNotFoundError:
            pass  # vllm-cpu: its `vllm` script crashes looking up a "vllm" distribution
    head = [cli, "serve", model] if cli else [
        python or sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    return head + ["--host", "127.0.0.1", "--port", str(port)] + args


class VllmServer(_Boot):
    """`vllm serve` (or the API server module) on a free loopback port.

    Use as a context manager; `client()` is a real `openai.OpenAI` client.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        args: Iterable[str] = (),
        plugins: Iterable[str] | None = None,
        checks: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 400,
        fresh_cache: bool = False,
        enforce_eager: bool = True,
        run_dir: Path | None = None,
        python: str | Path | None = None,
    ):
        """`python`: the interpreter to serve with (default: this one), e.g. another virtual
        environment's, to test what is installed there."""
        super().__init__(run_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.model = str(model)
        args = list(args)
        if "--max-model-len" not in args:
            args += ["--max-model-len", "512"]
        if enforce_eager and "--enforce-eager" not in args:
            args.append("--enforce-eager")
        # The server's --api-key, which client() and headers() then send.
        self.api_key = args[args.index("--api-key") + 1] if "--api-key" in args else None
        tp = 1
        for flag in ("--tensor-parallel-size", "-tp"):
            if flag in args:
                tp = int(args[args.index(flag) + 1])
        self.cmd = _serve_command(self.model, self.port, args, str(python) if python else None)
        self.env = vllm_env(self.run_dir, self.tag, plugins=plugins, checks=checks,
                            tensor_parallel_size=tp, fresh_cache=fresh_cache, env=env)
        self.timeout = timeout

    def start(self) -> VllmServer:
        import requests

        self._spawn(self.cmd, self.env)
        assert self.proc is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise HarnessError(f"vLLM server exited with code {self.proc.returncode} before it was "
                                   f"ready\n--- log tail ---\n{_tail(self.log_path)}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise HarnessError(f"vLLM server not ready after {self.timeout}s\n--- log tail ---\n"
                           f"{_tail(self.log_path)}")

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, **kwargs: Any):
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.api_key or "unused", **kwargs)

    def headers(self) -> dict[str, str]:
        """HTTP headers for a plain request: the bearer token when the server has --api-key."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def metrics(self) -> str:
        import requests

        return requests.get(self.url + "/metrics", timeout=10).text

    def wait_for_check(self, label: str, roles: Iterable[str], timeout: float = 120,
                       until: Callable[[Any], bool] | None = None) -> ProbeReport:
        """The probe report once `label` has been evaluated in every process of `roles` (and,
        with `until`, once its value satisfies it there), or once every such process that lacks
        it has ended (its report is final), or at the timeout. A check is evaluated as soon as
        the plugin registers, so a wait that succeeds returns at once; the timeout only bounds
        a value that `until` waits for."""
        deadline = time.monotonic() + timeout
        while True:
            rep = self.report()
            procs_ = [r for r in rep if r.role in tuple(roles)]
            done = procs_ and all(r.ended or (label in r.checks and (until is None or until(r.checks[label])))
                                  for r in procs_)
            if done or time.monotonic() > deadline:
                return rep
            time.sleep(0.25)
