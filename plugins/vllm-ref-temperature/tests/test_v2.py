"""The processor under vLLM's V2 model-runner interface, driven with CPU tensors.

GPU builds of vLLM 0.32+ run the V2 runner by default, and its loader refuses entry points
that do not subclass the V2 base. No GPU here: these tests use vLLM's real V2 loader functions
and `LogitsContext`, and stand in for the runner's request state with CPU tensors.
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import vllm_ref_temperature
from vllm_ref_temperature import TemperatureLogitsProcessor
from vllm_ref_temperature.testing import effective_spec, reference_row

pytest.importorskip("vllm")
from vllm import SamplingParams  # noqa: E402
from vllm.v1.worker.gpu.sample.logits_processor import loader  # noqa: E402
from vllm.v1.worker.gpu.sample.logits_processor.interface import (  # noqa: E402
    LogitsContext,
    LogitsProcRequestState,
)
from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as V2Base  # noqa: E402

FQCN = "vllm_ref_temperature:TemperatureLogitsProcessor"
MAX_REQS = 16


pytestmark = pytest.mark.usefixtures("one_thread")


class FakeRunnerState:
    """What the V2 runner's RequestState exposes to processors, on the CPU."""

    def __init__(self, max_num_reqs: int = MAX_REQS, vocab: int = 64):
        self.device = torch.device("cpu")
        self.max_num_reqs = max_num_reqs
        self.vocab_size = vocab
        self.all_token_ids = self.prefill_len = self.total_len = None
        self.prompt_len = SimpleNamespace(np=np.zeros(max_num_reqs, dtype=np.int32))
        self.flush()

    def flush(self):
        # Like UvaBackedTensor.copy_to_uva: a new device tensor object on each copy.
        self.prompt_len.gpu = torch.from_numpy(self.prompt_len.np.copy())


def new_processor(runner: FakeRunnerState) -> TemperatureLogitsProcessor:
    return TemperatureLogitsProcessor(SimpleNamespace(), LogitsProcRequestState.from_request_state(runner))


def context(slots: list[int], pos: list[int], requests: list[int] | None = None) -> LogitsContext:
    """slots: one per logits row; requests: one slot per request (default: the same)."""
    mapping = np.array(slots if requests is None else requests, dtype=np.int32)
    return LogitsContext(
        expanded_idx_mapping=torch.tensor(slots, dtype=torch.int32),
        idx_mapping=torch.from_numpy(mapping),
        idx_mapping_np=mapping,
        expanded_local_pos=torch.zeros(len(slots), dtype=torch.int32),
        input_ids=torch.zeros(len(slots), dtype=torch.int32),
        pos=torch.tensor(pos, dtype=torch.int64),
        seq_lens_upper_bound_np=np.array(pos, dtype=np.int32) + 1,
    )


def sched(start, end, steps, temperature=1.0):
    return SamplingParams(temperature=temperature, extra_args={
        "ref_temp_mode": "schedule", "ref_temp_start": start, "ref_temp_end": end, "ref_temp_steps": steps})


def test_is_a_v2_processor():
    proc = new_processor(FakeRunnerState())
    assert isinstance(proc, V2Base)


def test_v2_loader_accepts_the_class_and_the_entry_point(monkeypatch):
    assert loader._load_v2_logitsprocs_by_fqcns([FQCN]) == [TemperatureLogitsProcessor]
    # The installed entry point, through the loader that refuses V1-only plugins. Other
    # packages' entry points are hidden so this tests ours alone.
    from importlib.metadata import entry_points

    ours = [ep for ep in entry_points(group=loader.LOGITSPROCS_GROUP) if ep.name == "ref_temperature"]
    assert [ep.value for ep in ours] == [FQCN]
    monkeypatch.setattr(loader, "entry_points", lambda group: ours)
    assert loader._load_v2_logitsprocs_plugins() == [TemperatureLogitsProcessor]
    built = loader.build_custom_logits_processors(SimpleNamespace(), FakeRunnerState(), False)
    assert len(built) == 1 and isinstance(built[0], TemperatureLogitsProcessor)
    assert built[0]._v2 is not None and built[0]._v1 is None


def test_v2_loader_rejects_a_v1_only_processor_control():
    # Control for the test above: the check it passes is real.
    from vllm.v1.sample.logits_processor import MinPLogitsProcessor

    with pytest.raises(ValueError, match="not a subclass"):
        loader._load_v2_logitsprocs_by_fqcns(["vllm.v1.sample.logits_processor:MinPLogitsProcessor"])
    assert not issubclass(MinPLogitsProcessor, V2Base)


def test_v2_params_validator_turns_value_error_into_validation_error():
    from vllm.exceptions import VLLMValidationError

    validate = loader.build_custom_logits_processors_params_validator([FQCN])
    validate(sched(1.0, 0.0, 3))
    with pytest.raises(VLLMValidationError, match="ref_temperature: extra_args ref_temp_end = nan"):
        validate(sched(1.0, math.nan, 3))


def test_add_request_reports_which_requests_it_modifies():
    proc = new_processor(FakeRunnerState())
    assert proc.add_request(0, sched(2, 1, 3)) is True
    assert proc.add_request(1, SamplingParams(temperature=1.0)) is False
    assert proc.add_request(2, sched(2, 1, 3, temperature=0.0)) is False  # greedy: argmax unaffected
    # A slot recycled for a request that does not opt in forgets its previous occupant.
    assert proc.add_request(0, SamplingParams(temperature=1.0, extra_args={"x": 1})) is False
    proc.apply_staged_writes()
    logits = torch.randn(3, 64)
    assert proc.apply(logits, context([0, 1, 2], [5, 5, 5])) is logits


def test_schedule_uses_position_minus_prompt_length():
    runner = FakeRunnerState()
    runner.prompt_len.np[[3, 7]] = [4, 10]
    runner.flush()
    proc = new_processor(runner)
    proc.add_request(3, sched(2.0, 0.5, 4))
    proc.add_request(7, sched(2.0, 0.5, 4))
    proc.apply_staged_writes()
    ones = torch.ones(2, 64)
    # Slot 7's first sampled token (pos = prompt_len - 1) and slot 3 with 2 tokens generated.
    got = proc.apply(ones.clone(), context([7, 3], [9, 5]))
    assert torch.equal(got[:, 0], torch.tensor([1 / 2.0, 1 / 1.25]))


def test_speculative_rows_several_per_request():
    runner = FakeRunnerState()
    runner.prompt_len.np[[0, 1]] = [3, 3]
    runner.flush()
    proc = new_processor(runner)
    ent = SamplingParams(temperature=1.0, extra_args={"ref_temp_mode": "entropy", "ref_temp_min": 0.5,
                                                      "ref_temp_max": 2.0})
    proc.add_request(0, ent)
    proc.add_request(1, sched(2.0, 0.0, 2))
    proc.apply_staged_writes()
    logits = torch.randn(4, 64) * 3
    slots, pos = [0, 0, 1, 1], [2, 3, 2, 3]
    got = proc.apply(logits.clone(), context(slots, pos, requests=[0, 1]))
    specs = [effective_spec(ent)] * 2 + [effective_spec(sched(2.0, 0.0, 2))] * 2
    want = torch.stack([reference_row(logits[i], specs[i], pos[i] + 1 - 3) for i in range(4)])
    assert torch.equal(got, want)


def random_params(rng: random.Random) -> SamplingParams:
    kind = rng.choice(["none", "other", "greedy", "schedule", "schedule", "entropy", "entropy"])
    if kind == "none":
        return SamplingParams(temperature=1.0)
    if kind == "other":
        return SamplingParams(temperature=0.9, extra_args={"other_plugin": 3})
    if kind == "greedy":
        return sched(2.0, 1.0, 3, temperature=0.0)
    if kind == "schedule":
        return sched(rng.choice([0.0, 0.4, 2.0]), rng.choice([0.0, 0.7, 3.0]), rng.randint(0, 8))
    lo = rng.choice([0.0, 0.3, 1.0])
    return SamplingParams(temperature=1.0, extra_args={
        "ref_temp_mode": "entropy", "ref_temp_min": lo, "ref_temp_max": lo + rng.choice([0.0, 1.0, 2.5]),
        "ref_temp_exponent": rng.choice([0.5, 1.0, 2.0])})


@pytest.mark.parametrize("seed", range(4))
def test_random_slots_and_row_orders_match_reference(seed):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    runner = FakeRunnerState()
    proc = new_processor(runner)
    free, live = list(range(MAX_REQS)), {}
    for step in range(300):
        for slot in rng.sample(sorted(live), k=rng.randint(0, min(3, len(live)))):
            del live[slot]
            free.append(slot)  # no notice to processors: the next add_request overwrites it
        for _ in range(rng.randint(0, 3)):
            if not free:
                break
            slot = free.pop(rng.randrange(len(free)))
            params = random_params(rng)
            req = {"params": params, "prompt": rng.randint(1, 12), "gen": rng.choice([0, 0, 4]),
                   "prefill_left": rng.choice([0, 0, 2])}
            runner.prompt_len.np[slot] = req["prompt"]
            assert proc.add_request(slot, params) == (effective_spec(params) is not None)
            live[slot] = req
        runner.flush()
        proc.apply_staged_writes()
        if not live:
            continue
        order = rng.sample(sorted(live), len(live))
        pos = []
        for s in order:
            r = live[s]
            # A chunked prefill still in progress has its last fed position inside the prompt.
            last = r["prompt"] - 1
            pos.append(last - r["prefill_left"] if r["prefill_left"] else last + r["gen"])
        logits = torch.randn(len(order), 64, generator=gen) * rng.choice([0.3, 4.0])
        logits[torch.rand(len(order), 64, generator=gen) < 0.1] = -math.inf
        want = torch.stack([
            reference_row(logits[i], effective_spec(live[s]["params"]), pos[i] + 1 - live[s]["prompt"])
            for i, s in enumerate(order)])
        got = proc.apply(logits.clone(), context(order, pos))
        assert torch.equal(got, want), f"seed {seed} step {step}"
        for r in live.values():
            if r["prefill_left"]:
                r["prefill_left"] = max(0, r["prefill_left"] - 1)
            else:
                r["gen"] += 1


def test_package_exports_the_supported_range():
    # 0.32 is the first release whose V2 runner interface the processor implements.
    assert vllm_ref_temperature.SUPPORTED_VLLM == ">=0.32,<0.34"
