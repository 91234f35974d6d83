"""The example processor under both interfaces, with CPU tensors (no engine boot)."""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
pytest.importorskip("vllm")
from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402
from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext  # noqa: E402
from vllm.v1.worker.gpu.sample.logits_processor.loader import _load_v2_logitsprocs_by_fqcns  # noqa: E402
from vllm_example_logits_processor import ExampleTemperature  # noqa: E402

half = SamplingParams(temperature=1.0, extra_args={"example_temperature": 0.5})
plain = SamplingParams(temperature=1.0)


def test_v1_rows_follow_batch_updates():
    proc = ExampleTemperature(SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=4)), "cpu", False)
    proc.update_state(BatchUpdate(2, [], [(0, half, None, []), (1, plain, None, [])], []))
    assert proc.apply(torch.ones(2, 3))[:, 0].tolist() == [2.0, 1.0]
    proc.update_state(BatchUpdate(2, [], [], [(0, 1, MoveDirectionality.SWAP)]))
    assert proc.apply(torch.ones(2, 3))[:, 0].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="example_temperature must be a finite number > 0"):
        ExampleTemperature.validate_params(SamplingParams(extra_args={"example_temperature": -1}))


def test_v2_loader_accepts_it_and_slots_work():
    assert _load_v2_logitsprocs_by_fqcns(["vllm_example_logits_processor:ExampleTemperature"]) == [ExampleTemperature]
    proc = ExampleTemperature(SimpleNamespace(), SimpleNamespace(max_num_reqs=4, device="cpu"))
    assert proc.add_request(3, half) is True and proc.add_request(1, plain) is False
    proc.apply_staged_writes()
    slots = np.array([1, 3], dtype=np.int32)
    ctx = LogitsContext(torch.from_numpy(slots), torch.from_numpy(slots), slots, None, None, None, None)
    assert proc.apply(torch.ones(2, 3), ctx)[:, 0].tolist() == [1.0, 2.0]
