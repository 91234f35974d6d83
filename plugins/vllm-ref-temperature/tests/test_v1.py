"""The processor under vLLM's V1 interface (the CPU build's model runner), with CPU tensors.

The randomized test drives long sequences of BatchUpdates shaped like vLLM's persistent batch
(removals, additions into freed rows or replacing a row, one-way moves and swaps) and compares
every step's logits with a plain per-request reference, bit for bit.
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch
from vllm_ref_temperature import TemperatureLogitsProcessor
from vllm_ref_temperature.testing import effective_spec, reference_row

vllm = pytest.importorskip("vllm")
from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402
from vllm.v1.sample.logits_processor import LogitsProcessor as V1Base  # noqa: E402

SWAP, ONE_WAY = MoveDirectionality.SWAP, MoveDirectionality.UNIDIRECTIONAL
MAX_REQS = 24


pytestmark = pytest.mark.usefixtures("one_thread")


def new_processor() -> TemperatureLogitsProcessor:
    config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=MAX_REQS))
    return TemperatureLogitsProcessor(config, torch.device("cpu"), False)


def update(batch_size, removed=(), added=(), moved=()):
    return BatchUpdate(batch_size=batch_size, removed=list(removed), added=list(added), moved=list(moved))


def sched(start, end, steps, **extra):
    args = {"ref_temp_mode": "schedule", "ref_temp_start": start, "ref_temp_end": end,
            "ref_temp_steps": steps}
    return SamplingParams(temperature=1.0, extra_args={**args, **extra})


def test_is_a_v1_processor_and_argmax_invariant():
    proc = new_processor()
    assert isinstance(proc, V1Base)
    assert proc.is_argmax_invariant() is True


def test_schedule_follows_generated_position():
    proc = new_processor()
    out0, out1 = [], [5, 6]  # the second request resumes with two tokens already generated
    proc.update_state(update(3, added=[(0, sched(2.0, 0.5, 4), [1], out0),
                                       (1, sched(2.0, 0.5, 4), [1], out1),
                                       (2, SamplingParams(temperature=1.0), [1], [])]))
    logits = torch.full((3, 8), 3.0)
    got = proc.apply(logits.clone())
    # positions 0 and 2 of a 2.0 -> 0.5 ramp over 4 tokens: temperatures 2.0 and 1.25
    assert torch.equal(got[:, 0], torch.tensor([3.0 / 2.0, 3.0 / 1.25, 3.0]))
    out0 += [7, 8, 9, 10, 11]  # vLLM appends to the same list objects
    got = proc.apply(logits.clone())
    assert torch.equal(got[:, 0], torch.tensor([3.0 / 0.5, 3.0 / 1.25, 3.0]))


def test_rows_not_opted_in_keep_their_bits_and_all_off_is_a_no_op():
    proc = new_processor()
    other = SamplingParams(temperature=0.8, extra_args={"some_other_plugin": 1})
    greedy = SamplingParams(temperature=0.0, extra_args={"ref_temp_mode": "schedule"})
    hot = sched(3, 3, 0)
    proc.update_state(update(3, added=[(0, other, None, []), (1, greedy, None, []), (2, hot, None, [])]))
    logits = torch.randn(3, 100) * 7
    logits[0, 0] = -math.inf
    want = logits.clone()
    got = proc.apply(logits)
    assert torch.equal(got[:2].view(torch.int32), want[:2].view(torch.int32))
    assert torch.equal(got[2], want[2] / 3)
    # Once only untouched requests are left, apply returns the very same tensor, unread.
    proc.update_state(update(2, removed=[2]))
    same = torch.randn(2, 100)
    assert proc.apply(same) is same


def test_swap_and_one_way_moves():
    proc = new_processor()
    a, b, c = sched(2, 2, 0), sched(4, 4, 0), SamplingParams(temperature=1.0)
    proc.update_state(update(3, added=[(0, a, None, []), (1, b, None, []), (2, c, None, [])]))
    ones = torch.ones(3, 4)
    assert proc.apply(ones.clone())[:, 0].tolist() == [0.5, 0.25, 1.0]
    proc.update_state(update(3, moved=[(0, 2, SWAP)]))
    assert proc.apply(ones.clone())[:, 0].tolist() == [1.0, 0.25, 0.5]
    # One-way move onto an occupied row replaces it; the source row is emptied.
    proc.update_state(update(2, moved=[(2, 1, ONE_WAY)]))
    assert proc.apply(torch.ones(2, 4))[:, 0].tolist() == [1.0, 0.5]
    # An added request may replace a row in place.
    proc.update_state(update(2, added=[(1, c, None, [])]))
    x = torch.ones(2, 4)
    assert proc.apply(x) is x


def test_validate_params_raises_value_error():
    TemperatureLogitsProcessor.validate_params(SamplingParams(extra_args={"not_ours": -1}))
    TemperatureLogitsProcessor.validate_params(sched(1, 0, 3))
    with pytest.raises(ValueError, match="ref_temperature: extra_args ref_temp_start = -1 is invalid"):
        TemperatureLogitsProcessor.validate_params(sched(-1, 0, 3))


def test_vllm_v1_loader_accepts_the_class():
    from vllm.v1.sample.logits_processor import (
        _load_logitsprocs_by_fqcns,
        validate_logits_processors_parameters,
    )

    assert _load_logitsprocs_by_fqcns(["vllm_ref_temperature:TemperatureLogitsProcessor"]) == [
        TemperatureLogitsProcessor]
    from vllm.exceptions import VLLMValidationError

    with pytest.raises(VLLMValidationError, match="ref_temp_steps"):
        validate_logits_processors_parameters([TemperatureLogitsProcessor], sched(1, 0, -2))


# -- randomized: persistent-batch simulation vs per-request reference ------------------------

def random_params(rng: random.Random) -> SamplingParams:
    kind = rng.choice(["none", "none", "other", "greedy", "schedule", "schedule", "entropy", "entropy"])
    if kind == "none":
        return SamplingParams(temperature=rng.choice([0.7, 1.0]))
    if kind == "other":
        return SamplingParams(temperature=1.0, extra_args={"other_plugin": rng.random()})
    if kind == "greedy":
        return SamplingParams(temperature=0.0, extra_args={"ref_temp_mode": "schedule"})
    if kind == "schedule":
        return sched(rng.choice([0.0, 0.3, 1.0, 2.5]), rng.choice([0.0, 0.1, 0.9, 3.0]), rng.randint(0, 9))
    lo = rng.choice([0.0, 0.2, 0.8])
    return SamplingParams(temperature=1.0, extra_args={
        "ref_temp_mode": "entropy", "ref_temp_min": lo, "ref_temp_max": lo + rng.choice([0.0, 0.5, 2.0]),
        "ref_temp_exponent": rng.choice([0.5, 1.0, 3.0])})


@pytest.mark.parametrize("seed", range(6))
def test_random_batch_updates_match_reference(seed):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    vocab = 97
    proc = new_processor()
    rows: list[dict | None] = []  # the simulated persistent batch: row -> request
    steps_with_moves = 0
    for step in range(300):
        removed, added, moved = [], [], []
        occupied = [i for i, r in enumerate(rows) if r]
        for i in rng.sample(occupied, k=rng.randint(0, min(3, len(occupied)))):
            removed.append(i)
            rows[i] = None
        for _ in range(rng.randint(0, 3)):
            holes = [i for i, r in enumerate(rows) if r is None and i not in {a[0] for a in added}]
            if occupied and rng.random() < 0.1:
                i = rng.choice(occupied)  # replaces a live request at that row
            elif holes:
                i = holes[0]
            elif len(rows) < MAX_REQS:
                i = len(rows)
                rows.append(None)
            else:
                continue
            req = {"params": random_params(rng), "out": [0] * rng.choice([0, 0, 3])}
            rows[i] = req
            added.append((i, req["params"], [1, 2], req["out"]))
        # Condense like vLLM: move the last request into the lowest hole, one way.
        while True:
            holes = [i for i, r in enumerate(rows) if r is None]
            last = max((i for i, r in enumerate(rows) if r), default=-1)
            if not holes or holes[0] > last:
                break
            rows[holes[0]], rows[last] = rows[last], None
            moved.append((last, holes[0], ONE_WAY))
        while rows and rows[-1] is None:
            rows.pop()
        for _ in range(rng.randint(0, 2)):
            if len(rows) >= 2:
                a, b = rng.sample(range(len(rows)), 2)
                if rng.random() < 0.7:
                    rows[a], rows[b] = rows[b], rows[a]
                    moved.append((a, b, SWAP))
                elif rows[a] is not None:
                    rows[b], rows[a] = rows[a], None  # one way onto a live row: it is replaced
                    moved.append((a, b, ONE_WAY))
        while rows and rows[-1] is None:
            rows.pop()
        steps_with_moves += bool(moved)
        batch = update(len(rows), removed, added, moved) if (removed or added or moved) else None
        proc.update_state(batch)
        if not rows:
            continue
        logits = torch.randn(len(rows), vocab, generator=gen) * rng.choice([0.5, 5.0])
        logits[torch.rand(len(rows), vocab, generator=gen) < 0.1] = -math.inf
        want = torch.stack([
            reference_row(logits[i], effective_spec(r["params"]), len(r["out"])) if r else logits[i].clone()
            for i, r in enumerate(rows)])
        got = proc.apply(logits.clone())
        assert torch.equal(got, want), f"seed {seed} step {step}: rows differ"
        for r in rows:
            if r:
                r["out"].append(step)  # one generated token per step, into the shared list
    assert steps_with_moves > 50
