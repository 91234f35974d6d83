"""The arithmetic, vectorized over batch rows, shared by both model runners and the reference.

Per-row temperatures are computed in float64 and rounded once to float32, so the batched path
and a plain per-request computation give the same bits.

The entropy on the CPU runs through `torch.compile` (see `normalized_entropy`); everything else
is eager.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch

logger = logging.getLogger("vllm_ref.temperature")

# A temperature of 0 is applied as this: dividing by it keeps only the top logit in play
# (a gap of 1e-4 becomes 100 nats) without producing inf or NaN from finite logits.
FLOOR = 1e-6


def schedule_temperature(start: torch.Tensor, end: torch.Tensor, steps: torch.Tensor,
                         generated: torch.Tensor) -> torch.Tensor:
    """Linear from `start` at generated position 0 to `end` at position `steps`, then `end`."""
    g = generated.to(torch.float64).clamp(min=0)
    frac = torch.where(steps > 0, torch.minimum(g, steps) / steps.clamp(min=1), 1.0)
    # This form gives `start` and `end` exactly at the two ends of the ramp.
    return (start * (1 - frac) + end * frac).clamp(min=FLOOR)


class Workspace:
    """Two scratch buffers for the entropy, kept across steps on the CPU.

    On the CPU a fresh 100 MB tensor costs more than the arithmetic done in it (the pages are
    faulted in and zeroed on every step); on accelerators the caching allocator already reuses
    memory, so nothing is kept there.
    """

    def __init__(self) -> None:
        self.bufs: tuple[torch.Tensor, torch.Tensor] | None = None

    def get(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two n x vocabulary buffers with the dtype and device of `like`."""
        v = like.shape[-1]
        if like.device.type != "cpu":
            return like.new_empty(n, v), like.new_empty(n, v)
        if self.bufs is None or self.bufs[0].shape[0] < n or self.bufs[0].shape[1] != v \
                or self.bufs[0].dtype != like.dtype:
            self.bufs = (torch.empty(n, v, dtype=like.dtype), torch.empty(n, v, dtype=like.dtype))
        return self.bufs[0][:n], self.bufs[1][:n]


def normalized_entropy(logits: torch.Tensor, work: Workspace | None = None,
                       rows: torch.Tensor | None = None) -> torch.Tensor:
    """Entropy of softmax(row) divided by log(vocabulary size), for each row of `logits` (or
    each row listed in `rows`), in float64: 0 = one-hot, 1 = uniform.

    H = log(s) - sum(d * e) / s with d = x - max(x), e = exp(d), s = sum(e): one exp per element
    and no log per element (torch's entr/xlogy are several times slower on the CPU).

    On the CPU this is compiled (`compiled_entropy_nats`): one loop per row that reads it from
    memory once and writes nothing the size of the logits. The eager form needs six passes and
    two scratch buffers, and at 256 x 128k float32 costs 2.5x as much. Elsewhere, or where
    compiling is off or failed, the eager form runs (`eager_entropy_nats`).
    """
    n = logits.shape[0] if rows is None else rows.shape[0]
    h = None
    if n and logits.device.type == "cpu" and _COMPILED.enabled:
        index = rows if rows is not None else torch.arange(n)
        h = _COMPILED(logits, index)
    if h is None:
        h = eager_entropy_nats(logits, work, rows)
    h = h.div_(math.log(logits.shape[-1]))
    # A row of all -inf has no distribution (NaN here): treat it as certain (coldest bound).
    return h.to(torch.float64).nan_to_num_(0.0).clamp_(0.0, 1.0)


def eager_entropy_nats(logits: torch.Tensor, work: Workspace | None = None,
                       rows: torch.Tensor | None = None) -> torch.Tensor:
    """Entropy in nats of softmax(row), for each row (or each row listed in `rows`), eager.

    On the CPU the rows go through in blocks of as many rows as torch has threads: the passes
    over a block (and the copy of listed rows into it) then stay in the cores' caches instead of
    streaming the whole batch through memory several times; gathering listed rows up front costs
    more than the entropy itself. Accelerators get all rows at once: there the cost is kernel
    launches, not memory traffic.
    """
    work = work or Workspace()
    n = logits.shape[0] if rows is None else rows.shape[0]
    block = max(1, torch.get_num_threads()) if logits.device.type == "cpu" else max(1, n)
    d_all, e_all = work.get(min(block, n), logits)
    h = logits.new_empty(n)
    for r0 in range(0, n, block):
        k = min(block, n - r0)
        d, e = d_all[:k], e_all[:k]
        if rows is None:
            x = logits[r0:r0 + k]
            torch.sub(x, x.amax(dim=-1, keepdim=True), out=d)
        else:
            torch.index_select(logits, 0, rows[r0:r0 + k], out=d)
            d.sub_(d.amax(dim=-1, keepdim=True))
        torch.exp(d, out=e)
        s = e.sum(dim=-1)
        # A masked (-inf) logit has e = 0 and gives 0 * -inf = NaN in d * e, where its true
        # contribution is 0: nansum drops it (cheaper than clamping d beforehand).
        h[r0:r0 + k] = s.log() - d.mul_(e).nansum(dim=-1) / s
    return h


def _entropy_sums_fused(logits: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # Written for inductor, which turns it into one loop per row: a max pass, then one pass
    # summing e and d * e while the row is still in the core's cache, with the gather folded
    # into the loads. The last step (log(s) - sum(d * e) / s) stays outside: inductor
    # vectorizes it across rows, and that stops it from fusing the two passes per row (it then
    # streams every row from memory twice: 1.4x the time at 256 x 128k, 2 threads).
    # Run eagerly this would materialize x, d, e and d * e for all rows; it never is.
    x = logits.index_select(0, rows)
    d = x - x.amax(dim=-1, keepdim=True)
    e = d.exp()
    # A masked (-inf) logit has e = 0 and d * e = NaN where its true contribution is 0.
    return e.sum(dim=-1), torch.where(e > 0, d * e, 0.0).sum(dim=-1)


class _CompiledEntropy:
    """`_entropy_sums_fused` through torch.compile: one compiled kernel for every batch shape.

    vLLM's batch changes size every step, so a kernel specialized to a shape would recompile
    step after step (and fall back to eager at dynamo's recompile limit). It is compiled with
    symbolic sizes, without duck sizing (rows and logits would share one size symbol while they
    happen to be equal) and without the 0/1 specialization (one entropy row, or a batch of one,
    would recompile). Those are settings of dynamo's shape environment; they are set around each
    call, not for the process, so vLLM's own compilation is untouched, and so that a recompile
    dynamo does decide on (a new thread count, dtype, grad or inference mode) is made under them
    too. A failure (no C++ compiler, a torch without these settings) turns the kernel off for
    the process with one warning, and the eager path takes over.
    """

    def __init__(self) -> None:
        self.enabled = True
        self.fn: Any = None
        # Wall time of each call that compiled (first call, or a recompile), in seconds.
        self.compile_seconds: list[float] = []

    def __call__(self, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor | None:
        try:
            import torch._inductor.config as inductor_config
            import torch.fx.experimental._config as shape_config
            from torch._dynamo.utils import counters

            if self.fn is None:
                import torch._dynamo as dynamo

                if dynamo.config.disable:
                    raise RuntimeError("torch.compile is disabled in this process")
                self.fn = torch.compile(_entropy_sums_fused, dynamic=True, fullgraph=True)
            graphs = counters["stats"]["unique_graphs"]
            t0 = time.perf_counter()
            # The thread count is written into the generated code, but inductor's on-disk cache
            # key leaves it out unless it is set: a kernel compiled in a 1-thread process (the
            # tests) was otherwise loaded, serial, by a 2-thread one (2x the time).
            # torch adds patch() to each config module at import (install_config_module); unlike
            # inductor's config, this one declares no stub for it.
            with (shape_config.patch(use_duck_shape=False, backed_size_oblivious=True),  # type: ignore[attr-defined]
                  inductor_config.patch({"cpp.threads": torch.get_num_threads()})):
                s, de = self.fn(logits, rows)
            if counters["stats"]["unique_graphs"] != graphs:
                self.compile_seconds.append(time.perf_counter() - t0)
                logger.info("ref_temperature: entropy kernel compiled in %.1f s (compile %d)",
                            self.compile_seconds[-1], len(self.compile_seconds))
            return s.log() - de / s
        except Exception as exc:  # the eager path is always right; a failed compile must not stop the engine
            self.enabled = False
            logger.warning("ref_temperature: the compiled entropy failed (%s: %s); entropy rows use "
                           "the eager path from now on (about 2.5x slower).",
                           type(exc).__name__, (str(exc).splitlines() or [""])[0])
            return None


_COMPILED = _CompiledEntropy()


def use_compiled_entropy(enabled: bool) -> bool:
    """Turn the compiled CPU entropy on or off for this process; returns the previous setting.

    Off, entropy rows take the eager path: no compile at the first entropy request, about 2.5x
    the time per step for those rows.
    """
    previous = _COMPILED.enabled
    _COMPILED.enabled = enabled
    return previous


def compiled_entropy_nats(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor | None:
    """Entropy in nats of softmax(logits[rows[i]]) per i, compiled; None if it cannot compile."""
    return _COMPILED(logits, rows) if _COMPILED.enabled else None


def entropy_temperature(h: torch.Tensor, t_min: torch.Tensor, t_max: torch.Tensor,
                        exponent: torch.Tensor) -> torch.Tensor:
    """t_min for a certain row, t_max for a uniform one; exponent > 1 stays cold longer."""
    return (t_min + (t_max - t_min) * h.pow(exponent)).clamp(min=FLOOR)


def divide_rows_(logits: torch.Tensor, temps: torch.Tensor) -> torch.Tensor:
    """logits[i] /= temps[i] in place; rows with temperature exactly 1.0 keep their bits."""
    return logits.div_(temps.to(dtype=logits.dtype, device=logits.device).unsqueeze(1))
