"""The vectorized arithmetic on its own."""

import math

import torch
from vllm_ref_temperature import kernel


def t64(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_schedule_is_linear_then_holds():
    n = 6
    start, end, steps = t64(*[2.0] * n), t64(*[0.5] * n), t64(*[4.0] * n)
    gen = torch.tensor([0, 1, 2, 4, 9, -3])
    got = kernel.schedule_temperature(start, end, steps, gen)
    assert got.tolist() == [2.0, 1.625, 1.25, 0.5, 0.5, 2.0]


def test_schedule_with_zero_steps_is_the_end_value_and_zero_is_floored():
    got = kernel.schedule_temperature(t64(3.0, 3.0), t64(0.8, 0.0), t64(0.0, 0.0), torch.tensor([0, 5]))
    assert got.tolist() == [0.8, kernel.FLOOR]


def test_normalized_entropy_bounds():
    v = 50
    rows = torch.stack([torch.zeros(v), torch.full((v,), -math.inf), torch.zeros(v)])
    rows[1, 7] = 0.0  # one-hot
    rows[2, :25] = -math.inf  # uniform over half the vocabulary
    h = kernel.normalized_entropy(rows)
    assert h.dtype == torch.float64
    assert abs(h[0].item() - 1.0) < 1e-6
    assert h[1].item() == 0.0
    assert abs(h[2].item() - math.log(25) / math.log(50)) < 1e-6
    # A row with no finite logit has no distribution: treated as certain, not NaN.
    assert kernel.normalized_entropy(torch.full((1, v), -math.inf)).tolist() == [0.0]


def test_entropy_temperature_spans_the_bounds():
    h = t64(0.0, 0.25, 1.0)
    got = kernel.entropy_temperature(h, t64(0.5, 0.5, 0.5), t64(2.5, 2.5, 2.5), t64(2.0, 2.0, 2.0))
    assert got.tolist() == [0.5, 0.5 + 2.0 * 0.0625, 2.5]


def test_divide_rows_keeps_bits_of_rows_at_temperature_one():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1000, generator=g) * 30
    logits[0, :10] = -math.inf
    logits[1, 3] = -0.0
    before = logits.clone()
    temps = torch.tensor([1.0, 1.0, 0.5, 1.0])
    kernel.divide_rows_(logits, temps)
    for i in (0, 1, 3):
        assert torch.equal(logits[i].view(torch.int32), before[i].view(torch.int32))
    assert torch.equal(logits[2], before[2] / 0.5)


def test_floor_keeps_finite_logits_finite_and_argmax():
    logits = torch.tensor([[3.0, 2.9999, -50.0, -math.inf]])
    kernel.divide_rows_(logits, torch.tensor([kernel.FLOOR]))
    assert torch.isfinite(logits[0, :3]).all()
    assert torch.softmax(logits, -1)[0, 0].item() == 1.0
