"""A real vLLM v1 Scheduler on CPU without an engine: config from EngineArgs, a made-up KV
cache, and model outputs faked one token per scheduled request. Used by the unit tests and by
bench/bench_schedule.py."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Any

import torch
from vllm.engine.arg_utils import EngineArgs
from vllm.sampling_params import SamplingParams
from vllm.utils.hashing import sha256
from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request
from vllm.v1.structured_output import StructuredOutputManager

BLOCK = 32
_ids = itertools.count()


def make_scheduler(model: str | Path, *, max_num_seqs: int = 1, num_blocks: int = 4096,
                   max_num_batched_tokens: int = 2048, policy: str = "fcfs",
                   cls: type[Scheduler] = Scheduler) -> Scheduler:
    cfg = EngineArgs(model=str(model), max_num_seqs=max_num_seqs, max_model_len=512, enforce_eager=True,
                     block_size=BLOCK, max_num_batched_tokens=max_num_batched_tokens,
                     scheduling_policy=policy).create_engine_config()
    cfg.cache_config.num_gpu_blocks = num_blocks
    spec = FullAttentionSpec(block_size=BLOCK, num_kv_heads=1, head_size=64, dtype=torch.float32)
    kv = KVCacheConfig(num_blocks=num_blocks, kv_cache_tensors=[],
                       kv_cache_groups=[KVCacheGroupSpec(["model.layers.0.self_attn.attn"], spec)])
    return cls(vllm_config=cfg, kv_cache_config=kv,
               structured_output_manager=StructuredOutputManager(cfg),
               block_size=BLOCK, log_stats=False)


def make_request(tenant: str | None = None, *, prompt_len: int = 8, max_tokens: int = 4,
                 arrival: float | None = None, name: str | None = None, priority: int = 0,
                 hashed: bool = False) -> Request:
    """A request with prompt 1..prompt_len. `hashed`: with block hashes, as the engine makes
    them; prefix caching needs them once a request fills a block."""
    extra = {"ref_tenant": tenant} if tenant is not None else None
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, extra_args=extra)
    rid = name or f"req{next(_ids)}"
    return Request(rid, list(range(1, prompt_len + 1)), params, None,
                   arrival_time=float(next(_ids)) if arrival is None else arrival, priority=priority,
                   block_hasher=_block_hasher() if hashed else None)


@functools.cache
def _block_hasher() -> Any:
    init_none_hash(sha256)
    return get_request_block_hasher(BLOCK, sha256)


def step(scheduler: Scheduler) -> tuple[Any, list[str]]:
    """One schedule() plus a fake model output (token 7 for each request); returns the
    SchedulerOutput and the ids of the requests that finished in this step."""
    out = scheduler.schedule()
    ids = list(out.num_scheduled_tokens)
    runner = ModelRunnerOutput(req_ids=ids, req_id_to_index={r: i for i, r in enumerate(ids)},
                               sampled_token_ids=[[7] for _ in ids])
    engine_outputs = scheduler.update_from_output(out, runner)
    finished = [o.request_id for eo in engine_outputs.values() for o in eo.outputs if o.finished]
    return out, finished


def finish_order(scheduler: Scheduler, max_steps: int = 10_000) -> list[str]:
    order: list[str] = []
    for _ in range(max_steps):
        if not scheduler.has_requests():
            return order
        order += step(scheduler)[1]
    raise AssertionError("scheduler did not drain")
