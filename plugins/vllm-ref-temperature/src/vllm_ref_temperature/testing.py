"""Test tooling for vllm-ref-temperature, imported by name by this package's tests; nothing at
runtime imports it.

A plain per-request reference: what one request's row should become, computed on its own.

Shares only the row-entropy primitive with the package; the temperature formulas are written
again here in Python floats, in the same order of operations, so the batched code must match
them bit for bit.
"""

from __future__ import annotations

import torch

from vllm_ref_temperature.kernel import FLOOR, normalized_entropy
from vllm_ref_temperature.params import SCHEDULE, TempSpec


def reference_row(row: torch.Tensor, spec: TempSpec | None, generated: int) -> torch.Tensor:
    if spec is None:
        return row.clone()
    if spec.mode == SCHEDULE:
        start, end, steps = spec.a, spec.b, spec.c
        g = max(generated, 0)
        frac = min(g, steps) / steps if steps > 0 else 1.0
        t = max(start * (1 - frac) + end * frac, FLOOR)
    else:
        h = float(normalized_entropy(row.unsqueeze(0))[0])
        t = max(spec.a + (spec.b - spec.a) * h**spec.c, FLOOR)
    return row / torch.tensor(t, dtype=torch.float32)


def effective_spec(params) -> TempSpec | None:
    """What the processor should do with a request: greedy requests and non-opted ones: nothing."""
    from vllm_ref_temperature.params import parse

    if params.temperature < 1e-5:
        return None
    return parse(params.extra_args)
