"""A local, loopback-only Ray cluster that a test starts and always stops.

Ray workers are started by the raylet, not by vLLM, so they inherit the raylet's environment:
the cluster is started with the boot's probe, tag and plugin variables (a platform plugin's
activation variable included), which is what a multi-node deployment must do on every node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import procs
from .runner import HarnessError, free_port, vllm_env

# Shared-memory segments Ray runs of vLLM on the CPU leave in /dev/shm (see the field notes).
SHM_PATTERNS = ("*cpushm_*", "psm_*")


def _shm_in_use() -> set[str]:
    """/dev/shm paths some live process still maps or holds open."""
    used: set[str] = set()
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            for line in (pid_dir / "maps").read_text().splitlines():
                if "/dev/shm/" in line:
                    used.add(line[line.index("/dev/shm/"):].removesuffix(" (deleted)"))
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/dev/shm/"):
                    used.add(target)
        except OSError:
            continue
    return used


def _shm_segments() -> set[str]:
    shm = Path("/dev/shm")
    return {str(p) for pat in SHM_PATTERNS for p in shm.glob(pat)} if shm.is_dir() else set()


class RayCluster:
    """`ray start --head` on 127.0.0.1 with `num_gpus` accelerator slots.

    vLLM's Ray executors look up Ray accelerator ids, which exist only for accelerator
    resource types, so a CPU-hosted platform declares ray_device_key="GPU" and the cluster
    advertises that many "GPU" slots.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        num_gpus: int = 2,
        plugins: Iterable[str] | None = None,
        checks: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.tag = procs.new_run_tag()
        self.num_gpus = num_gpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Ray's socket paths must stay under the Unix limit of 107 bytes: keep the folder short.
        self.temp_dir = tempfile.mkdtemp(prefix="rr-", dir="/tmp")
        self.env = vllm_env(self.run_dir, self.tag, plugins=plugins, checks=checks, env=env)
        self.env.update(RAY_USAGE_STATS_ENABLED="0", RAY_ADDRESS=self.address)
        self.leaked_shm: list[str] = []
        self._ray = str(Path(sys.executable).parent / "ray")

    def start(self) -> RayCluster:
        self._shm_before = _shm_segments()
        cmd = [self._ray, "start", "--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
               f"--num-gpus={self.num_gpus}", f"--num-cpus={max(2, self.num_gpus)}",
               "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={self.temp_dir}",
               f"--ray-client-server-port={free_port()}"]
        # A session of its own, so Ray's daemons are found by session id as well as by tag.
        starter = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
        procs.track_session(self.tag, starter.pid)
        out, _ = starter.communicate(timeout=180)
        if starter.returncode != 0:
            self.stop()
            raise HarnessError(f"ray start failed ({starter.returncode}):\n{out[-3000:]}")
        return self

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop Ray, kill anything it left, remove the shared memory the run created."""
        subprocess.run([self._ray, "stop", "--force"], env=self.env, capture_output=True, timeout=120)
        procs.wait_gone(self.tag, timeout=5)
        procs.reap(self.tag, grace=5)
        # Ray workers of vLLM's CPU path leave these behind. Ours: what appeared during this
        # run and no live process uses any more (our processes are all gone by now).
        new = _shm_segments() - getattr(self, "_shm_before", set())
        self.leaked_shm = sorted(new - _shm_in_use())
        for path in self.leaked_shm:
            try:
                os.unlink(path)
            except OSError:
                pass
        left = sorted(_shm_segments() & set(self.leaked_shm))
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        if procs.tagged(self.tag) or left:
            raise HarnessError(f"Ray cleanup incomplete: processes {procs.describe(procs.tagged(self.tag))}, "
                               f"shared memory {left}")

    def vllm_env(self) -> dict[str, str]:
        """What a vLLM boot needs to use this cluster."""
        return {"RAY_ADDRESS": self.address, "RAY_USAGE_STATS_ENABLED": "0"}
