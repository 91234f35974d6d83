"""`RefKVConnector`: vLLM's KV-connector interface (KVConnectorBase_V1) over the block store.

vLLM builds this class twice: once with role SCHEDULER in the engine core, once with role
WORKER in every worker (each tensor-parallel rank). The two halves share nothing but the
metadata vLLM hands from the first to the second each step (`RefKVMeta`), and the folder.

- Scheduler half (`_Scheduler`): for a new request, which leading full blocks of its prompt are
  in the store (a stat per block and rank, no reads), beyond what vLLM's own prefix cache holds;
  then, each step, which blocks to load into which block ids and which finished prompt blocks
  to save.
- Worker half (`_Worker`): before the forward pass, reads each block's file for its rank,
  verifies it and copies every layer's slice into the paged KV cache (all layers at once); after
  it, copies every newly finished prompt block out of the KV cache (the block may be reused
  once wait_for_save returns, so the copy is made before) and hands the bytes to the store's
  background writer (store.Writer), which checksums, writes and renames them. A block that
  fails to load is reported to vLLM (`get_block_ids_with_load_errors`) and recomputed: the
  connector sets `kv_load_failure_policy` to "recompute" (vLLM's default, "fail", would fail
  the request), because a cache is best effort.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from vllm.distributed.kv_transfer.kv_connector.v1.base import (
    KVConnectorBase_V1,
    KVConnectorMetadata,
    KVConnectorRole,
)

from . import PLUGIN, ROLES, STATE, ConfigError, parse_extra_config
from .store import Store, Writer, chain_keys, logger

try:  # where vLLM labels where an external hit came from (its metrics); absent in older releases
    from vllm.v1.metrics.cache_hit_source import CacheHitSource
    _DISK: Any = CacheHitSource.DISK
except (ImportError, AttributeError):  # pragma: no cover - older vLLM
    _DISK = None

if TYPE_CHECKING:
    from vllm.config import VllmConfig
    from vllm.forward_context import ForwardContext
    from vllm.v1.core.kv_cache_manager import KVCacheBlocks
    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.v1.kv_cache_interface import KVCacheConfig
    from vllm.v1.request import Request


def namespace(vllm_config: VllmConfig) -> str:
    """Everything that makes two engines' KV incompatible, as one string hashed into every key:
    model (name, revision, architecture config), dtype and KV-cache dtype, block size, layer
    count, KV heads and head size, tensor- and pipeline-parallel sizes. The rank is the file's
    `part`, and the worker also checks each file's per-layer shapes and dtype."""
    mc, cc, pc = vllm_config.model_config, vllm_config.cache_config, vllm_config.parallel_config
    try:
        arch = mc.hf_config.to_json_string(use_diff=False)
    except Exception:
        arch = repr(mc.hf_config)
    ident = {
        "model": str(mc.model), "revision": str(mc.revision), "arch": hashlib.sha256(arch.encode()).hexdigest(),
        "dtype": str(mc.dtype), "cache_dtype": str(cc.cache_dtype), "block_size": cc.block_size,
        "layers": mc.get_num_layers(pc), "kv_heads": mc.get_total_num_kv_heads(), "head_size": mc.get_head_size(),
        "tp": pc.tensor_parallel_size, "pp": pc.pipeline_parallel_size,
    }
    return json.dumps(ident, sort_keys=True)


def parts(vllm_config: VllmConfig) -> list[str]:
    """The file parts of one block: one per (pipeline stage, tensor-parallel rank)."""
    pc = vllm_config.parallel_config
    return [part_name(t, pc.tensor_parallel_size, p, pc.pipeline_parallel_size)
            for p in range(pc.pipeline_parallel_size) for t in range(pc.tensor_parallel_size)]


def part_name(tp_rank: int, tp: int, pp_rank: int, pp: int) -> str:
    return f"tp{tp_rank}of{tp}-pp{pp_rank}of{pp}"


@dataclass
class RefKVMeta(KVConnectorMetadata):
    """One step's work for the workers: (block key, block id) pairs to load, per request (so a
    failure is reported by block), and to save."""

    loads: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    saves: list[tuple[str, int]] = field(default_factory=list)
    block_size: int = 0


class RefKVConnector(KVConnectorBase_V1):
    """The plugin's connector; `kv_connector: "RefKVConnector"` selects it."""

    _cache_hit_source = _DISK

    def __init__(self, vllm_config: VllmConfig, role: KVConnectorRole, kv_cache_config: KVCacheConfig) -> None:
        super().__init__(vllm_config=vllm_config, role=role, kv_cache_config=kv_cache_config)
        ktc = self._kv_transfer_config
        if ktc.kv_role not in ROLES:
            raise ConfigError(f"{PLUGIN}: kv_role {ktc.kv_role!r} is not accepted; accepted: {', '.join(ROLES)}")
        folder, max_bytes, fsync = parse_extra_config(ktc.kv_connector_extra_config)
        self.store = Store(folder, max_bytes, fsync=fsync)
        self.loads_enabled = ktc.kv_role != "kv_producer"
        self.saves_enabled = ktc.kv_role != "kv_consumer"
        self.block_size = vllm_config.cache_config.block_size
        self.namespace = namespace(vllm_config)
        self._sched: _Scheduler | None = None
        self._worker: _Worker | None = None
        from .metrics import Interval

        self._interval = Interval()  # the counters' increments for vLLM's stats (metrics.py)
        if role == KVConnectorRole.SCHEDULER:
            # Read by vLLM's scheduler right after it builds this object: a block that fails to
            # load is recomputed instead of failing the request.
            ktc.kv_load_failure_policy = "recompute"
            self._sched = _Scheduler(self, parts(vllm_config))
            STATE["scheduler"] += 1
        else:
            self._worker = _Worker(self, kv_cache_config.num_blocks)
            STATE["worker"] += 1

    @property
    def requires_kv_delivery(self) -> bool:
        return False  # a dropped save is a later miss, never a wrong answer

    # -- scheduler half (engine core) ----------------------------------------------------------
    def get_num_new_matched_tokens(self, request: Request, num_computed_tokens: int) -> tuple[int | None, bool]:
        assert self._sched is not None
        return self._sched.matched(request, num_computed_tokens), False

    def update_state_after_alloc(self, request: Request, blocks: KVCacheBlocks, num_external_tokens: int) -> None:
        assert self._sched is not None
        self._sched.allocated(request, blocks, num_external_tokens)

    def build_connector_meta(self, scheduler_output: SchedulerOutput) -> KVConnectorMetadata:
        assert self._sched is not None
        return self._sched.meta(scheduler_output)

    def request_finished(self, request: Request, block_ids: list[int]) -> tuple[bool, dict[str, Any] | None]:
        if self._sched is not None:
            self._sched.finished(request.request_id)
        return False, None

    # -- worker half (each worker) -------------------------------------------------------------
    def register_kv_caches(self, kv_caches: dict[str, torch.Tensor]) -> None:
        assert self._worker is not None
        self._worker.layers.update(kv_caches)

    def start_load_kv(self, forward_context: ForwardContext, **kwargs: Any) -> None:
        assert self._worker is not None
        meta = self._get_connector_metadata()
        assert isinstance(meta, RefKVMeta)
        if meta.loads:
            self._worker.load(meta, forward_context)

    def wait_for_layer_load(self, layer_name: str) -> None:
        return  # every layer was loaded in start_load_kv

    def save_kv_layer(self, layer_name: str, kv_layer: torch.Tensor, attn_metadata: Any, **kwargs: Any) -> None:
        if self._worker is not None:
            self._worker.layers.setdefault(layer_name, kv_layer)

    def wait_for_save(self) -> None:
        assert self._worker is not None
        meta = self._get_connector_metadata()
        assert isinstance(meta, RefKVMeta)
        if meta.saves:
            self._worker.save(meta)

    # -- vLLM's KV-connector stats, hence its Prometheus /metrics (metrics.py) -----------------
    def get_kv_connector_stats(self) -> Any:
        return self._interval.take()

    @classmethod
    def build_kv_connector_stats(cls, data: dict[str, Any] | None = None) -> Any:
        from .metrics import RefKVStats

        return RefKVStats(data=dict(data or {}))

    @classmethod
    def build_prom_metrics(cls, vllm_config: VllmConfig, metric_types: dict[type, type], labelnames: list[str],
                           per_engine_labelvalues: dict[int, list[object]]) -> Any:
        from .metrics import RefKVPromMetrics

        return RefKVPromMetrics(vllm_config, metric_types, labelnames, per_engine_labelvalues)

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.writer.close()  # what is queued is written before the worker ends

    def get_block_ids_with_load_errors(self) -> set[int]:
        if self._worker is None:
            return set()
        failed, self._worker.failed = self._worker.failed, set()
        return failed


@dataclass
class _Req:
    keys: list[str]  # key of every full prompt block
    block_ids: list[int] = field(default_factory=list)
    saved: int = 0  # blocks [0, saved) are stored or handed to the workers
    present: int = 0  # blocks [0, present) were in the store at lookup
    load: list[tuple[str, int]] = field(default_factory=list)


# How long a block handed to the workers for saving counts as stored before its file is seen.
# The workers write in the background: a lookup in that window would otherwise miss a block
# this engine has just computed. A worker asked to load a block still queued waits for its
# write; one never written (dropped, failed) is a load miss: recomputed, never wrong.
HANDED_S = 30.0


class _Scheduler:
    def __init__(self, c: RefKVConnector, parts: list[str]) -> None:
        self.c, self.parts = c, parts
        self.reqs: dict[str, _Req] = {}
        self.handed: dict[str, float] = {}  # key -> when its save was handed out (oldest first)

    def _prune(self) -> None:
        now = time.monotonic()
        while self.handed:
            key, when = next(iter(self.handed.items()))
            if now - when < HANDED_S:
                break
            del self.handed[key]

    def _present(self, keys: list[str]) -> int:
        """How many leading keys are stored, or handed out for saving within HANDED_S and not
        yet seen on disk (once seen, the disk alone answers: an evicted block is a miss)."""
        self._prune()
        n = 0
        for key in keys:
            if self.c.store.has(key, self.parts):
                self.handed.pop(key, None)
            elif key not in self.handed:
                break
            n += 1
        return n

    def _keys(self, request: Request) -> list[str] | None:
        """None where token ids alone do not determine the KV (images, LoRA, prompt embeddings)."""
        ids = request.prompt_token_ids
        if ids is None or request.mm_features or request.lora_request is not None \
                or getattr(request, "prompt_embeds", None) is not None:
            return None
        # Never the last prompt token: vLLM must compute at least one token itself.
        usable = (len(ids) - 1) // self.c.block_size * self.c.block_size
        return chain_keys(self.c.namespace, ids[:usable], self.c.block_size, request.cache_salt or "")

    def matched(self, request: Request, num_computed_tokens: int) -> int:
        req = self.reqs.get(request.request_id)
        if req is None:
            keys = self._keys(request)
            if keys is None:
                return 0
            req = self.reqs[request.request_id] = _Req(keys)
        bs = self.c.block_size
        if not self.c.loads_enabled:
            req.present = 0
            return 0
        STATE["lookups"] += 1
        req.present = self._present(req.keys)
        STATE["hit_blocks"] += req.present
        STATE["miss_blocks"] += len(req.keys) - req.present
        return max(0, req.present * bs - num_computed_tokens)

    def allocated(self, request: Request, blocks: KVCacheBlocks, num_external_tokens: int) -> None:
        req = self.reqs.get(request.request_id)
        if req is None or num_external_tokens <= 0:
            return
        bs = self.c.block_size
        ids = blocks.get_block_ids()[0]
        first = (request.num_computed_tokens) // bs
        last = min(first + num_external_tokens // bs, len(ids), len(req.keys))
        req.load = [(req.keys[i], ids[i]) for i in range(first, last)]
        STATE["hit_tokens"] += len(req.load) * bs

    def meta(self, out: SchedulerOutput) -> RefKVMeta:
        meta = RefKVMeta(block_size=self.c.block_size)
        for new in out.scheduled_new_reqs:
            req = self.reqs.get(new.req_id)
            if req is None:
                continue
            req.block_ids = list(new.block_ids[0])
            if req.load:
                meta.loads[new.req_id], req.load = req.load, []
            self._saves(meta, req, new.num_computed_tokens + out.num_scheduled_tokens.get(new.req_id, 0))
        cached = out.scheduled_cached_reqs
        for i, req_id in enumerate(cached.req_ids):
            req = self.reqs.get(req_id)
            if req is None:
                continue
            new_ids = cached.new_block_ids[i]
            if new_ids is not None:
                if req_id in cached.resumed_req_ids:
                    req.block_ids = list(new_ids[0])
                else:
                    req.block_ids.extend(new_ids[0])
            if req.load:  # resumed after preemption with a fresh external hit
                meta.loads[req_id], req.load = req.load, []
            self._saves(meta, req, cached.num_computed_tokens[i] + out.num_scheduled_tokens.get(req_id, 0))
        return meta

    def _saves(self, meta: RefKVMeta, req: _Req, computed_after_step: int) -> None:
        """Prompt blocks complete once this step's forward has run, not yet saved."""
        if not self.c.saves_enabled:
            return
        done = min(computed_after_step // self.c.block_size, len(req.keys), len(req.block_ids))
        self._prune()
        now = time.monotonic()
        for i in range(max(req.saved, req.present), done):
            meta.saves.append((req.keys[i], req.block_ids[i]))
            self.handed.pop(req.keys[i], None)
            self.handed[req.keys[i]] = now
        req.saved = max(req.saved, done)

    def finished(self, req_id: str) -> None:
        self.reqs.pop(req_id, None)


class _Worker:
    def __init__(self, c: RefKVConnector, num_blocks: int) -> None:
        from vllm.distributed.parallel_state import (
            get_pp_group,
            get_tensor_model_parallel_rank,
            get_tensor_model_parallel_world_size,
        )

        self.c, self.num_blocks = c, num_blocks
        pp = get_pp_group()
        self.part = part_name(get_tensor_model_parallel_rank(), get_tensor_model_parallel_world_size(),
                              pp.rank_in_group, pp.world_size)
        self.layers: dict[str, torch.Tensor] = {}
        self.failed: set[int] = set()
        self._layout: list[Any] | None = None
        self.writer = Writer(c.store, c.block_size)

    def _slices(self, block_id: int) -> list[torch.Tensor]:
        """Every layer's view of one (scheduler) block, in a fixed layer order. The block
        dimension is the one holding num_blocks (or a multiple: kernel blocks smaller than the
        scheduler's), whichever layout the attention backend uses."""
        out = []
        for name in sorted(self.layers):
            t = self.layers[name]
            dim = next(d for d in range(t.dim()) if t.shape[d] >= self.num_blocks
                       and t.shape[d] % self.num_blocks == 0)
            per = t.shape[dim] // self.num_blocks
            out.append(t.narrow(dim, block_id * per, per))
        return out

    def layout(self) -> list[Any]:
        if self._layout is None:
            self._layout = [[name, list(s.shape), str(s.dtype)] for name, s in
                            zip(sorted(self.layers), self._slices(0), strict=True)]
        return self._layout

    def _ensure_layers(self, forward_context: ForwardContext | None) -> None:
        if self.layers or forward_context is None:
            return
        for name, layer in forward_context.no_compile_layers.items():
            kv = getattr(layer, "kv_cache", None)
            if isinstance(kv, torch.Tensor) and kv.numel():
                self.layers[name] = kv

    def load(self, meta: RefKVMeta, forward_context: ForwardContext) -> None:
        self._ensure_layers(forward_context)
        store, layout = self.c.store, self.layout()
        for _req_id, pairs in meta.loads.items():
            for n, (key, block_id) in enumerate(pairs):
                if self.writer.queued(key, self.part):
                    self.writer.flush()  # this engine computed it moments ago: wait for its file
                payload = store.load(key, self.part, layout)
                if payload is None:
                    # This block and every later one of the request: vLLM recomputes from here.
                    self.failed.update(b for _, b in pairs[n:])
                    break
                t0 = time.perf_counter()
                offset = 0
                for dst in self._slices(block_id):
                    size = dst.numel() * dst.element_size()
                    src = torch.frombuffer(payload, dtype=torch.uint8, count=size, offset=offset)
                    dst.copy_(src.view(dst.dtype).view(dst.shape))
                    offset += size
                STATE["load_s"] += time.perf_counter() - t0
                STATE["loaded_blocks"] += 1
                STATE["tokens_loaded"] += meta.block_size

    def save(self, meta: RefKVMeta) -> None:
        if not self.layers or not self.c.store.saving:
            return
        layout = self.layout()
        for key, block_id in meta.saves:
            if self.writer.queued(key, self.part) or self.c.store.has(key, (self.part,)):
                continue
            t0 = time.perf_counter()
            # The snapshot, before the block can be reused: each layer's slice viewed as bytes
            # (no copy where it is contiguous on the host), joined into the file's payload (the
            # one copy). The checksum, write and rename happen on the writer's thread.
            payload = b"".join(memoryview(s.cpu().contiguous().view(torch.uint8).reshape(-1).numpy())  # type: ignore[arg-type]
                               for s in self._slices(block_id))
            self.writer.submit(key, self.part, layout, payload, time.perf_counter() - t0)

    def log_state(self) -> None:  # pragma: no cover - debugging aid
        logger.info("%s: %s", PLUGIN, STATE)
