"""The store's background writer (store.Writer), no engine: order, flush, a full backlog, errors."""

from __future__ import annotations

import threading

from vllm_ref_kv import store as S

LAYOUT = [["model.layers.0.attn", [1, 32, 16], "torch.float32"]]
PART = "tp0of1-pp0of1"


def payload(i: int, n: int = 4096) -> bytes:
    return bytes((i * 7 + j) % 251 for j in range(n))


class Recording(S.Store):
    """A store that records the order of its saves and can be held until released."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.order: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def save(self, key, part, layout, data):
        self.started.set()
        self.release.wait(30)
        self.order.append(key)
        return super().save(key, part, layout, data)


def keys(n: int) -> list[str]:
    return S.chain_keys("{}", list(range(32 * n)), 32)


def test_blocks_are_written_in_order_and_flush_waits_for_them(tmp_path, fresh_state):
    store = Recording(tmp_path / "kv", max_bytes=1 << 30)
    w = S.Writer(store, block_size=32)
    k = keys(20)
    store.release.clear()  # hold the thread so that everything below is queued, not yet written
    for i, key in enumerate(k):
        assert w.submit(key, PART, LAYOUT, payload(i), spent_s=0.001)
    assert w.queued(k[-1], PART) and not w.submit(k[-1], PART, LAYOUT, payload(19))  # queued once
    store.release.set()
    w.flush()
    assert store.order == k and not w.queued(k[-1], PART)
    assert [bytes(store.load(key, PART, LAYOUT)) for key in k] == [payload(i) for i in range(20)]
    assert fresh_state["saved_blocks"] == 20 and fresh_state["tokens_saved"] == 640
    assert fresh_state["save_s"] >= 0.02  # the caller's copy time, plus the writes
    w.close()
    w.close()  # twice is harmless


def test_a_full_backlog_drops_blocks_with_one_warning_never_waits(tmp_path, fresh_state, warnings_):
    store = Recording(tmp_path / "kv", max_bytes=1 << 30)
    w = S.Writer(store, block_size=32, backlog=3 * 4096)
    k = keys(8)
    store.release.clear()
    assert w.submit(k[0], PART, LAYOUT, payload(0))
    store.started.wait(10)  # the thread holds block 0; the backlog counts it until written
    ok = [w.submit(key, PART, LAYOUT, payload(i + 1)) for i, key in enumerate(k[1:])]
    assert ok == [True, True, False, False, False, False, False]
    assert fresh_state["save_dropped"] == 5
    store.release.set()
    w.close()  # flushes what was queued
    assert store.order == k[:3] and store.count_present(k, [PART]) == 3
    assert len(warnings_()) == 1 and "dropped" in warnings_()[0] and "serving goes on" in warnings_()[0]
    assert not w.submit(k[5], PART, LAYOUT, payload(5))  # closed: dropped, not queued


def test_an_error_in_the_thread_is_one_warning_and_the_writer_goes_on(tmp_path, fresh_state, warnings_):
    store = S.Store(tmp_path / "kv", max_bytes=1 << 30)
    w = S.Writer(store, block_size=32)
    k = keys(4)
    w.submit(k[0], PART, LAYOUT, payload(0))
    w.submit(k[1], PART, {"not": object()}, payload(1))  # the header cannot be encoded: TypeError
    w.submit(k[2], PART, {"not": object()}, payload(2))
    w.submit(k[3], PART, LAYOUT, payload(3))
    w.flush()
    assert store.count_present(k, [PART]) == 1 and store.has(k[3], [PART])
    assert fresh_state["saved_blocks"] == 2
    assert len(warnings_()) == 1 and "TypeError" in warnings_()[0], warnings_()
    w.close()

