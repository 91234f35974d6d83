"""The `vllm.logits_processors` entry point: one class for both of vLLM's model runners.

vLLM loads it in the workers (to build processors) and in the front end (to call
`validate_params` on every request). The two runners want different interfaces:

- V1 runner: `vllm.v1.sample.logits_processor.LogitsProcessor`, built as
  `cls(vllm_config, device, is_pin_memory)`; `update_state(BatchUpdate)`, `apply(logits)`.
- V2 runner: `vllm.v1.worker.gpu.sample.logits_processor.LogitsProcessor`, built as
  `cls(vllm_config, req_states)`; `add_request`, `apply_staged_writes`, `apply(logits, ctx)`.
  Its loader refuses any entry point that is not a subclass of this base.

So the class subclasses every base this vLLM has and picks its bookkeeping from the constructor
arguments. Both bases are imported defensively: a vLLM without the V2 runner (0.28) still gets a
working V1 processor, and a process without vLLM still gets a class (that does nothing).
"""

from __future__ import annotations

from typing import Any

from vllm_ref_common import check_vllm, vllm_version

from . import ANY_VERSION_ENV, PLUGIN, STATE, SUPPORTED_VLLM
from .params import PREFIX, parse

_BASES: list[type] = []
try:
    from vllm.v1.sample.logits_processor.interface import LogitsProcessor as _V1Base

    _BASES.append(_V1Base)
except Exception:  # no vLLM, or one without the V1 interface
    pass
try:
    from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as _V2Base

    _BASES.append(_V2Base)
except Exception:  # no vLLM, or one older than the V2 runner's processor interface
    pass

# The version gate, decided once when vLLM first loads the class.
ENABLED = check_vllm(PLUGIN, SUPPORTED_VLLM)
DISABLED_REASON = "" if ENABLED else (
    "vLLM is not importable" if vllm_version() is None
    else f"vLLM {vllm_version()} is outside the supported range {SUPPORTED_VLLM} (set {ANY_VERSION_ENV}=1 to override)")


class TemperatureLogitsProcessor(*_BASES):  # type: ignore[misc]
    """Per-request temperature schedules and entropy-adaptive temperature (keys `ref_temp_*`).

    Scaling a row by a positive number never changes its argmax, so the processor declares
    itself argmax-invariant: vLLM skips it for all-greedy batches and, on V1, applies it after
    the request's own temperature, only to rows that sample.
    """

    def __init__(self, vllm_config: Any, *args: Any, **kwargs: Any) -> None:
        target: Any = args[0] if args else kwargs.get("req_states", kwargs.get("device"))
        self._v1 = self._v2 = None
        if not ENABLED:
            return
        from . import kernel, params, state

        params.env_defaults()  # a bad REF_TEMPERATURE_* variable stops start-up here, with its name
        kernel.use_compiled_entropy(params.compile_entropy())
        if hasattr(target, "max_num_reqs"):  # V2: a LogitsProcRequestState
            self._v2 = state.V2State(target)
            STATE["v2"] += 1
        else:  # V1: (device, is_pin_memory)
            import torch

            max_num_reqs = vllm_config.scheduler_config.max_num_seqs
            self._v1 = state.V1State(max_num_reqs, torch.device(target))
            STATE["v1"] += 1

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Raise ValueError (HTTP 400 through the server) for bad `ref_temp_*` keys."""
        spec = parse(getattr(sampling_params, "extra_args", None))
        if spec is not None and not ENABLED:
            raise ValueError(f"{PLUGIN}: {PREFIX}* keys cannot be honoured: {DISABLED_REASON}.")

    def is_argmax_invariant(self) -> bool:
        return True

    # V1 interface
    def update_state(self, batch_update: Any) -> None:
        if self._v1 is not None:
            self._v1.update(batch_update)

    # V2 interface
    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        return self._v2.add_request(req_idx, sampling_params) if self._v2 is not None else False

    def apply_staged_writes(self) -> None:
        if self._v2 is not None:
            self._v2.apply_staged_writes()

    # Both: V1 calls apply(logits), V2 apply(logits, ctx).
    def apply(self, logits: Any, ctx: Any = None) -> Any:
        if self._v1 is not None:
            return self._v1.apply(logits)
        if self._v2 is not None and ctx is not None:
            return self._v2.apply(logits, ctx)
        return logits
