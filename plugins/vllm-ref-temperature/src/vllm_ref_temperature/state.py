"""Batch bookkeeping for the two model runners; the arithmetic lives in kernel.py.

V1 (the CPU build, and GPU builds with VLLM_USE_V2_MODEL_RUNNER=0) tells a processor how its
persistent batch changed (`BatchUpdate`: removed, added, moved); the processor keeps per-row
state. V2 gives every request a fixed slot (`add_request`) and, each step, a map from logits
row to slot (`LogitsContext`); the processor keeps per-slot state.

Work done per step (apply) is a fixed number of tensor operations whatever the batch size:
no Python loop over rows, no `.item()`, no device-to-host copy.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from . import PLUGIN, STATE, kernel
from .params import ENTROPY, OFF, SCHEDULE, TempSpec, parse

logger = logging.getLogger("vllm_ref.temperature")

# vLLM treats a request with temperature below this as greedy (vllm/v1/sample/sampler.py).
GREEDY_EPS = 1e-5


def request_spec(params: Any) -> TempSpec | None:
    """The rule to apply to a request, or None to leave it alone.

    Greedy requests are left alone: dividing a row by a positive number keeps its argmax.
    The front end has already validated the keys; a failure here can only come from an
    environment that differs between processes, and must not take the engine down.
    """
    if params is None or getattr(params, "temperature", 1.0) < GREEDY_EPS:
        return None
    try:
        return parse(getattr(params, "extra_args", None))
    except ValueError as exc:
        logger.warning("%s: leaving a request untouched in the worker: %s", PLUGIN, exc)
        return None


def _fields(spec: TempSpec | None) -> tuple[int, tuple[float, float, float]]:
    if spec is None:
        return OFF, (0.0, 0.0, 0.0)
    return spec.mode, (spec.a, spec.b, spec.c)


class V1State:
    """Per-row state of vLLM's V1 persistent batch."""

    def __init__(self, max_num_reqs: int, device: torch.device):
        self.device = device
        self.mode = np.zeros(max_num_reqs, dtype=np.int64)
        self.abc = np.zeros((max_num_reqs, 3), dtype=np.float64)
        # Each row's live output-token list (vLLM appends to it); its length is the position.
        self.outputs: list[list[int] | None] = [None] * max_num_reqs
        self.batch_size = 0
        self.work = kernel.Workspace()
        self._refresh()

    # -- bookkeeping, once per batch change ----------------------------------------------
    def _set(self, i: int, spec: TempSpec | None, outputs: list[int] | None) -> None:
        self.mode[i], self.abc[i] = _fields(spec)
        self.outputs[i] = outputs if spec is not None else None

    def _copy(self, src: int, dst: int) -> None:
        self.mode[dst], self.abc[dst], self.outputs[dst] = self.mode[src], self.abc[src], self.outputs[src]

    def update(self, batch_update: Any) -> None:
        if batch_update is None:
            return
        # vLLM's order: removed, then added (which may overwrite a row), then moved.
        for i in batch_update.removed:
            self._set(i, None, None)
        for i, params, _prompt, output_ids in batch_update.added:
            self._set(i, request_spec(params), output_ids)
        for a, b, direction in batch_update.moved:
            if direction.name == "SWAP":
                saved = (self.mode[a], self.abc[a].copy(), self.outputs[a])
                self._copy(b, a)
                self.mode[b], self.abc[b], self.outputs[b] = saved
            else:  # one-way: b takes a's request (replacing whatever was there), a is emptied
                self._copy(a, b)
                self._set(a, None, None)
        self.batch_size = batch_update.batch_size
        self._refresh()

    def _refresh(self) -> None:
        modes = self.mode[: self.batch_size]
        sched = np.flatnonzero(modes == SCHEDULE)
        ent = np.flatnonzero(modes == ENTROPY)
        self.active = len(sched) + len(ent)
        self.sched_rows = torch.from_numpy(sched)
        self.sched_outputs = [self.outputs[i] for i in sched]
        self.sched_abc = torch.from_numpy(self.abc[sched])
        self.ent_rows = torch.from_numpy(ent).to(self.device)
        self.ent_abc = torch.from_numpy(self.abc[ent]).to(self.device)

    # -- every step ----------------------------------------------------------------------
    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return logits
        temps = torch.ones(logits.shape[0], dtype=torch.float64)
        n = len(self.sched_outputs)
        if n:
            # map(len, ...) runs in C: the positions of all scheduled rows without a Python loop.
            gen = torch.from_numpy(np.fromiter(map(len, self.sched_outputs), dtype=np.int64, count=n))
            p = self.sched_abc
            temps[self.sched_rows] = kernel.schedule_temperature(p[:, 0], p[:, 1], p[:, 2], gen)
        temps = temps.to(device=logits.device, dtype=torch.float32, non_blocking=True)
        if len(self.ent_rows):
            p = self.ent_abc
            # All rows adaptive: no gather at all. Otherwise the rows are copied block by block
            # inside the entropy, where they stay in cache.
            rows = None if len(self.ent_rows) == logits.shape[0] else self.ent_rows
            h = kernel.normalized_entropy(logits, self.work, rows)
            t = kernel.entropy_temperature(h, p[:, 0], p[:, 1], p[:, 2])
            temps.index_copy_(0, self.ent_rows, t.to(torch.float32))
        STATE["scaled"] = True  # set, never counted: a store costs nothing
        return kernel.divide_rows_(logits, temps)


class V2State:
    """Per-slot state for vLLM's V2 model runner (GPU builds of 0.32+ use it by default)."""

    def __init__(self, req_states: Any):
        self.device = torch.device(req_states.device)
        # prompt_len.gpu is swapped for a fresh buffer on every host->device copy: read it
        # through the holder at each step, never keep the tensor.
        self.prompt_len = req_states.prompt_len
        n = req_states.max_num_reqs
        self.mode_host = torch.zeros(n, dtype=torch.int64)
        self.abc_host = torch.zeros((n, 3), dtype=torch.float64)
        self.mode_np, self.abc_np = self.mode_host.numpy(), self.abc_host.numpy()
        on_cpu = self.device.type == "cpu"
        self.mode_dev = self.mode_host if on_cpu else self.mode_host.to(self.device)
        self.abc_dev = self.abc_host if on_cpu else self.abc_host.to(self.device)
        self.dirty = False
        self.work = kernel.Workspace()

    def add_request(self, slot: int, params: Any) -> bool:
        spec = request_spec(params)
        # A slot is reused without notice when its request ends: overwrite all of it.
        self.mode_np[slot], self.abc_np[slot] = _fields(spec)
        self.dirty = True
        return spec is not None

    def apply_staged_writes(self) -> None:
        if self.dirty and self.mode_dev is not self.mode_host:
            self.mode_dev.copy_(self.mode_host, non_blocking=True)
            self.abc_dev.copy_(self.abc_host, non_blocking=True)
        self.dirty = False

    def apply(self, logits: torch.Tensor, ctx: Any) -> torch.Tensor:
        # Host-side look at this step's requests: skips the whole step without a device sync.
        req_modes = self.mode_np[ctx.idx_mapping_np]
        if not req_modes.any():
            return logits
        slots = ctx.expanded_idx_mapping.long()
        mode = self.mode_dev[slots]
        p = self.abc_dev[slots]
        temps = torch.ones(logits.shape[0], dtype=torch.float64, device=logits.device)
        if (req_modes == SCHEDULE).any():
            # ctx.pos is the position of the token fed in; the sampled token goes after it.
            gen = ctx.pos.long() + 1 - self.prompt_len.gpu[slots].long()
            t = kernel.schedule_temperature(p[:, 0], p[:, 1], p[:, 2], gen)
            temps = torch.where(mode == SCHEDULE, t, temps)
        if (req_modes == ENTROPY).any():
            if logits.shape[0] == len(req_modes):
                # One row per request: pick the entropy rows on the host, compute only those.
                rows = torch.from_numpy(np.flatnonzero(req_modes == ENTROPY)).to(logits.device)
                pe = p.index_select(0, rows)
                h = kernel.normalized_entropy(logits, self.work, rows)
                temps.index_copy_(0, rows, kernel.entropy_temperature(h, pe[:, 0], pe[:, 1], pe[:, 2]))
            else:
                # Speculative decoding gives a request several rows: compute all, keep ours.
                h = kernel.normalized_entropy(logits, self.work)
                t = kernel.entropy_temperature(h, p[:, 0], p[:, 1], p[:, 2])
                temps = torch.where(mode == ENTROPY, t, temps)
        STATE["scaled"] = True  # set, never counted: a store costs nothing
        return kernel.divide_rows_(logits, temps.to(torch.float32))
