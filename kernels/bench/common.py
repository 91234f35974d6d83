"""What the device run's steps share: the device, timing, the row sink, calls as data, vLLM's kernel.

Importing this first sets TRITON_INTERPRET=1 when there is no GPU (before triton is imported), so
the same steps run on the CPU through Triton's interpreter (`--tiny`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# The device machine runs the benches from a copy of the checkout where nothing is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import triton  # noqa: E402
from vllm_ref_kernels import triton_ops  # noqa: E402
from vllm_ref_kernels.testing import meta_batch  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
# Dry runs (compilation counts) assume an H200 and this many decode programs per SM (the compile
# report's figure); on a GPU the decode split count comes from the compiled kernel itself.
DRY_SMS, DRY_PER_SM = 132, 4


@dataclass(frozen=True)
class Call:
    """One paged_attention call a step makes: the data a dry run counts compilations from."""

    case: str
    q_lens: tuple[int, ...]
    seq_lens: tuple[int, ...]
    hq: int = 32
    hkv: int = 8
    d: int = 128
    block: int = 16
    dtype: torch.dtype = torch.bfloat16
    window: int | None = None
    softcap: float = 0.0
    variant: str = "default"
    prefill: dict | None = field(default=None, hash=False)
    decode: dict | None = field(default=None, hash=False)

    @property
    def num_decodes(self) -> int:  # what vLLM's metadata holds on the host
        return sum(1 for x in self.q_lens if x == 1)

    def launches(self) -> list[triton_ops.Launch]:
        b = meta_batch(list(self.q_lens), list(self.seq_lens), self.hq, self.hkv, self.d, self.block, self.dtype)
        return triton_ops.plan(*b.args(), b.q, scale=self.d ** -0.5, sliding_window=self.window,
                               softcap=self.softcap, num_decodes=self.num_decodes, prefill=self.prefill,
                               decode=self.decode, num_sms=DRY_SMS, per_sm=DRY_PER_SM)


def compile_keys(calls: list[Call]) -> set[tuple]:
    """Distinct kernel binaries the calls need (see triton_ops.compile_key)."""
    return {triton_ops.compile_key(launch) for c in calls for launch in c.launches()}


class Sink:
    """Rows of a run, printed and appended to results.jsonl as they come: a run cut short by its
    time limit keeps every row it finished."""

    def __init__(self, out: Path | None, step: str) -> None:
        self.path = out / "results.jsonl" if out else None
        self.step = step
        self.rows: list[dict] = []

    def add(self, **row) -> dict:
        row = dict(step=self.step, **row)
        self.rows.append(row)
        print(fmt(row), flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(row, default=str) + "\n")
        return row


def read_rows(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Deadline:
    """A step's own time budget: cases not started before it are recorded as skipped."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def spent(self) -> bool:
        return time.monotonic() > self.end


def fmt(row: dict) -> str:
    return " | ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def bench(fn) -> float:
    """Median milliseconds (device events on a GPU; one host-timed call on the interpreter, whose
    times mean nothing but keep the code path the same)."""
    if DEV == "cpu":
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


def load_vllm_kernel():
    """vLLM's unified attention (from the shim on PYTHONPATH, or an installed GPU vLLM), else None."""
    try:
        from vllm.v1.attention.ops import triton_unified_attention as mod
        # A CPU build of vLLM imports fine but hands its kernels a placeholder triton module.
        if not hasattr(mod.triton, "next_power_of_2"):
            raise ImportError("this vLLM build has no working triton (a CPU build?)")
    except Exception as e:  # noqa: BLE001 - the caller refuses to start and says why
        print(f"vLLM kernel unavailable: {type(e).__name__}: {e}", file=sys.stderr)
        return None
    return mod.unified_attention
