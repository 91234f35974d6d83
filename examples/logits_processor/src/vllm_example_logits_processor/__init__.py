"""A minimal logits processor: divide a request's logits by extra_args["example_temperature"].

One class serves both of vLLM's model runners. The V1 runner (CPU builds, and GPU builds with
VLLM_USE_V2_MODEL_RUNNER=0) builds it as cls(vllm_config, device, is_pin_memory) and reports
batch changes through update_state(); the V2 runner (the default on GPU builds of 0.32+) builds
it as cls(vllm_config, req_states), calls add_request() per request slot, and its loader refuses
a class that does not subclass the V2 base. So the class subclasses every base vLLM has.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

KEY = "example_temperature"
_seen = {"scaled": False}  # set (not counted) by a step that scaled rows: status() reads it

_BASES: list[type] = []
try:
    from vllm.v1.sample.logits_processor import LogitsProcessor as _V1

    _BASES.append(_V1)
except ImportError:
    pass
try:  # vLLM >= 0.32
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor as _V2

    _BASES.append(_V2)
except ImportError:
    pass


def factor(params: Any) -> float:
    """The request's divisor; 1.0 when it does not ask for one. ValueError on bad input."""
    value = (getattr(params, "extra_args", None) or {}).get(KEY)
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{KEY} must be a finite number > 0, got {value!r}")
    return float(value)


class ExampleTemperature(*_BASES):  # type: ignore[misc]
    def __init__(self, vllm_config: Any, *args: Any) -> None:
        import torch

        if hasattr(args[0], "max_num_reqs"):  # V2: (vllm_config, req_states)
            n, self.device = args[0].max_num_reqs, torch.device(args[0].device)
        else:  # V1: (vllm_config, device, is_pin_memory)
            n, self.device = vllm_config.scheduler_config.max_num_seqs, torch.device(args[0])
        self.factor = np.ones(n, dtype=np.float32)  # per batch row (V1) or per request slot (V2)
        self.factor_dev = torch.ones(n, device=self.device)  # V2: a device copy, indexed on device

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        factor(sampling_params)  # runs in the front end: a ValueError becomes an HTTP 400

    def is_argmax_invariant(self) -> bool:
        return True  # dividing a row by a positive number keeps its argmax: skipped for greedy batches

    # -- V1 runner ---------------------------------------------------------------------------
    def update_state(self, batch_update: Any) -> None:
        if batch_update is None:
            return
        for i in batch_update.removed:
            self.factor[i] = 1.0
        for i, params, _prompt, _output in batch_update.added:
            self.factor[i] = factor(params)
        for a, b, direction in batch_update.moved:
            fa, fb = self.factor[a], self.factor[b]
            self.factor[b] = fa
            self.factor[a] = fb if direction.name == "SWAP" else 1.0

    # -- V2 runner ---------------------------------------------------------------------------
    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        self.factor[req_idx] = factor(sampling_params)  # a reused slot: overwrite it all
        return bool(self.factor[req_idx] != 1.0)

    def apply_staged_writes(self) -> None:
        import torch

        self.factor_dev.copy_(torch.from_numpy(self.factor), non_blocking=True)

    # -- both: V1 calls apply(logits), V2 apply(logits, ctx) -----------------------------------
    def apply(self, logits: Any, ctx: Any = None) -> Any:
        import torch

        host = self.factor[: logits.shape[0]] if ctx is None else self.factor[ctx.idx_mapping_np]
        if not (host != 1.0).any():  # nothing to do: no device work at all
            return logits
        if ctx is None:
            rows = torch.from_numpy(host).to(logits.device)
        else:
            rows = self.factor_dev[ctx.expanded_idx_mapping.long()]
        _seen["scaled"] = True
        return logits.div_(rows.unsqueeze(1))  # one vectorized op for the whole batch


def status() -> dict:
    """{"effect": a step in this process scaled at least one row} (cheap, read-only, no imports:
    the repository's example test reads it in every vLLM process)."""
    return {"effect": _seen["scaled"]}
