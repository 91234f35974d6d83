"""The vectorized arithmetic on its own."""

import math

import pytest
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


# -- the compiled entropy (CPU) against the eager one -----------------------------------------

# Largest difference allowed between the compiled and the eager normalized entropy (h in [0, 1]).
# Both sum 128k float32 terms, in different orders; measured differences are up to about 2e-6 at
# 128k columns. With exponent 1 a temperature moves by at most (max - min) times this.
ENTROPY_TOL = 1e-5


def entropy_cases(vocab: int, seed: int = 0) -> torch.Tensor:
    """Rows that stress the entropy: flat, peaked, masked, one-hot, uniform, huge logits."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randn(vocab, generator=g) * s for s in (0.1, 1.0, 4.0, 30.0)]
    masked = torch.randn(vocab, generator=g) * 3
    masked[torch.rand(vocab, generator=g) < 0.5] = -math.inf
    sparse = torch.full((vocab,), -math.inf)
    sparse[torch.randint(vocab, (5,), generator=g)] = torch.randn(5, generator=g)
    one_hot = torch.full((vocab,), -math.inf)
    one_hot[vocab // 3] = 2.0
    huge = torch.randn(vocab, generator=g) * 1e6
    rows += [masked, sparse, one_hot, torch.zeros(vocab), huge, torch.full((vocab,), -math.inf)]
    return torch.stack(rows)


def eager_normalized(logits: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    previous = kernel.use_compiled_entropy(False)
    try:
        return kernel.normalized_entropy(logits, rows=rows)
    finally:
        kernel.use_compiled_entropy(previous)


@pytest.mark.parametrize("vocab", [97, 4096, 131072])
def test_compiled_entropy_matches_the_eager_one(vocab):
    logits = entropy_cases(vocab)
    rows = torch.arange(logits.shape[0])
    # Straight from the compiled kernel: None here would mean it silently fell back to eager.
    nats = kernel.compiled_entropy_nats(logits, rows)
    assert nats is not None, "the compiled entropy is not available on this machine"
    assert nats.shape == (logits.shape[0],)
    eager = kernel.eager_entropy_nats(logits)
    finite = ~torch.isnan(eager)
    assert torch.equal(finite, ~torch.isnan(nats))  # only the all -inf row has no entropy
    assert (nats[finite] - eager[finite]).abs().max().item() <= ENTROPY_TOL * math.log(vocab)
    got, want = kernel.normalized_entropy(logits), eager_normalized(logits)
    assert (got - want).abs().max().item() <= ENTROPY_TOL
    # ... and both are right, against float64.
    p = torch.softmax(logits.double(), dim=-1)
    exact = (torch.special.entr(p).sum(-1) / math.log(vocab)).nan_to_num(0.0)
    assert (got - exact).abs().max().item() <= ENTROPY_TOL
    assert got[-4].item() == 0.0 and got[-1].item() == 0.0  # one-hot, no distribution
    assert abs(got[-3].item() - 1.0) <= ENTROPY_TOL  # uniform


def test_compiled_entropy_compiles_once_for_every_batch_shape():
    vocab = 1000
    g = torch.Generator().manual_seed(1)
    big = torch.randn(64, vocab, generator=g) * 3
    with torch.inference_mode():  # how vLLM's workers call it, on logits made in that mode
        kernel.normalized_entropy(big[:5].clone(), rows=torch.tensor([1, 3]))  # may compile
        compiles = len(kernel._COMPILED.compile_seconds)
        # Batches of one, one listed row, every row, rows listed out of order or twice, and a
        # batch as long as its row list: each would recompile a shape-specialized kernel.
        for batch, rows in [(1, None), (1, [0]), (2, [1]), (7, None), (64, None), (64, [63, 0, 5]),
                            (3, [2, 2, 0]), (33, list(range(0, 33, 2))), (5, [4, 3, 2, 1, 0])]:
            logits = big[:batch].clone()
            index = None if rows is None else torch.tensor(rows)
            got = kernel.normalized_entropy(logits, rows=index)
            want = eager_normalized(logits, index)
            assert (got - want).abs().max().item() <= ENTROPY_TOL, (batch, rows)
        assert len(kernel._COMPILED.compile_seconds) == compiles
    assert kernel._COMPILED.enabled


def test_a_failing_compile_falls_back_to_the_eager_entropy(monkeypatch, caplog):
    def broken(logits, rows):
        raise RuntimeError("no C++ compiler\nmore detail")

    monkeypatch.setattr(kernel._COMPILED, "fn", broken)
    monkeypatch.setattr(kernel._COMPILED, "enabled", True)
    logits = entropy_cases(300)
    with caplog.at_level("WARNING", logger="vllm_ref.temperature"):
        got = kernel.normalized_entropy(logits)
    assert torch.equal(got, eager_normalized(logits))
    assert kernel._COMPILED.enabled is False  # not retried at every step
    assert "no C++ compiler" in caplog.text and "more detail" not in caplog.text
    assert kernel.compiled_entropy_nats(logits, torch.arange(3)) is None


def test_compiles_under_the_thread_count_it_runs_with(monkeypatch):
    # Inductor writes the thread count into the kernel but leaves it out of its on-disk cache
    # key unless cpp.threads is set: without it, a kernel cached by a 1-thread process ran
    # serially in a 2-thread one. Checked here by what the compiled callable sees.
    import torch._inductor.config as inductor_config

    seen = []

    def spy(logits, rows):
        seen.append((inductor_config.cpp.threads, torch.get_num_threads()))
        n = rows.shape[0]
        return torch.ones(n), torch.zeros(n)

    monkeypatch.setattr(kernel._COMPILED, "fn", spy)
    monkeypatch.setattr(kernel._COMPILED, "enabled", True)
    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            kernel.normalized_entropy(torch.zeros(2, 8))
    finally:
        torch.set_num_threads(before)
    assert seen == [(1, 1), (2, 2)]
