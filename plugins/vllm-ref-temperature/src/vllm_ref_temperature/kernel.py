"""The arithmetic, vectorized over batch rows, shared by both model runners and the reference.

Per-row temperatures are computed in float64 and rounded once to float32, so the batched path
and a plain per-request computation give the same bits.
"""

from __future__ import annotations

import math

import torch

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
    each row listed in `rows`): 0 = one-hot, 1 = uniform.

    H = log(s) - sum(d * e) / s with d = x - max(x), e = exp(d), s = sum(e): one exp per element
    and no log per element (torch's entr/xlogy are several times slower on the CPU).

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
    h.div_(math.log(logits.shape[-1]))
    # A row of all -inf has no distribution (NaN here): treat it as certain (coldest bound).
    return h.to(torch.float64).nan_to_num_(0.0).clamp_(0.0, 1.0)


def entropy_temperature(h: torch.Tensor, t_min: torch.Tensor, t_max: torch.Tensor,
                        exponent: torch.Tensor) -> torch.Tensor:
    """t_min for a certain row, t_max for a uniform one; exponent > 1 stays cold longer."""
    return (t_min + (t_max - t_min) * h.pow(exponent)).clamp(min=FLOOR)


def divide_rows_(logits: torch.Tensor, temps: torch.Tensor) -> torch.Tensor:
    """logits[i] /= temps[i] in place; rows with temperature exactly 1.0 keep their bits."""
    return logits.div_(temps.to(dtype=logits.dtype, device=logits.device).unsqueeze(1))
