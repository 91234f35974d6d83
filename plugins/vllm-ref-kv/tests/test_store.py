"""The block store on real files, no engine: every fault of the issue is a miss with one warning,
never wrong bytes or an exception, and serving (loading) goes on."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import threading
from pathlib import Path

import pytest
from vllm_ref_kv import store as S

NS = '{"model": "a"}'
LAYOUT = [["model.layers.0.attn", [1, 32, 16], "torch.float32"]]
PART = "tp0of1-pp0of1"


def payload(i: int, n: int = 4096) -> bytes:
    return bytes((i * 7 + j) % 251 for j in range(n))


@pytest.fixture(params=[False, True], ids=["no-fsync", "fsync"])
def store(tmp_path, request):
    return S.Store(tmp_path / "kv", max_bytes=1 << 30, fsync=request.param)


def keys(n_tokens: int = 96, ns: str = NS, seed: int = 0) -> list[str]:
    return S.chain_keys(ns, [(seed + 13 * t) % 500 for t in range(n_tokens)], 32)


def test_keys_name_the_whole_prefix():
    a, b = keys(96), keys(130)
    assert len(a) == 3 and len(b) == 4 and b[:3] == a  # a longer prompt shares the leading keys
    other = S.chain_keys(NS, [1] + [(13 * t) % 500 for t in range(1, 96)], 32)
    assert not set(other) & set(a)  # one different token early: every later key differs
    assert not set(keys(96, ns='{"model": "b"}')) & set(a)  # another namespace: nothing shared
    assert S.chain_keys(NS, list(range(64)), 32, salt="x") != S.chain_keys(NS, list(range(64)), 32)


def test_save_then_load_in_another_store_object(store, tmp_path, fresh_state):
    k = keys()
    for i, key in enumerate(k):
        assert store.save(key, PART, LAYOUT, payload(i))
    assert not store.save(k[0], PART, LAYOUT, payload(0))  # present: not written again
    again = S.Store(tmp_path / "kv", max_bytes=1 << 30)  # a restarted server on the same folder
    assert again.count_present(k, [PART]) == 3 and again.count_present(k, [PART, "tp1of2-pp0of1"]) == 0
    assert [bytes(again.load(key, PART, LAYOUT)) for key in k] == [payload(i) for i in range(3)]
    assert fresh_state["bytes_saved"] == fresh_state["bytes_loaded"] == 3 * 4096
    assert not list((tmp_path / "kv").rglob("*.tmp"))


def test_count_present_stops_at_the_first_gap(store):
    k = keys(160)
    for i in (0, 1, 3):
        store.save(k[i], PART, LAYOUT, payload(i))
    assert store.count_present(k, [PART]) == 2


def corrupt_truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-100])


def corrupt_flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[-1000] ^= 0x01
    p.write_bytes(bytes(data))


def corrupt_empty(p: Path) -> None:
    p.write_bytes(b"")


def corrupt_foreign(p: Path) -> None:
    p.write_bytes(os.urandom(5000))


@pytest.mark.parametrize("corrupt", [corrupt_truncate, corrupt_flip, corrupt_empty, corrupt_foreign])
def test_a_corrupt_file_is_a_miss_with_one_warning_then_saved_again(store, corrupt, warnings_, fresh_state):
    k = keys()
    for i, key in enumerate(k):
        store.save(key, PART, LAYOUT, payload(i))
    corrupt(store.path(k[1], PART))
    corrupt(store.path(k[2], PART))
    assert store.load(k[0], PART, LAYOUT) is not None
    assert store.load(k[1], PART, LAYOUT) is None and store.load(k[2], PART, LAYOUT) is None
    assert len(warnings_()) == 1 and "rejected" in warnings_()[0] and "recomputed" in warnings_()[0]
    assert fresh_state["load_failed"] == 2
    assert not store.path(k[1], PART).exists()  # removed, so the recomputed block is saved again
    assert store.save(k[1], PART, LAYOUT, payload(1))
    assert bytes(store.load(k[1], PART, LAYOUT)) == payload(1)


def test_another_models_block_under_this_key_is_a_miss(store, tmp_path, warnings_):
    mine, theirs = keys(), keys(ns='{"model": "b"}')
    other = S.Store(tmp_path / "other", max_bytes=1 << 30)
    other.save(theirs[0], PART, LAYOUT, payload(9))
    store.path(mine[0], PART).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(other.path(theirs[0], PART), store.path(mine[0], PART))  # a misplaced file
    assert store.count_present(mine, [PART]) == 1  # the scheduler half only stats...
    assert store.load(mine[0], PART, LAYOUT) is None  # ...the worker half reads and refuses it
    assert "another block" in warnings_()[0]


def test_another_layout_is_a_miss(store, warnings_):
    k = keys()
    store.save(k[0], PART, LAYOUT, payload(0))
    wider = [["model.layers.0.attn", [2, 32, 16], "torch.float32"]]
    assert store.load(k[0], PART, wider) is None and "another layout" in warnings_()[0]
    assert store.load(k[0], "tp1of2-pp0of1", LAYOUT) is None  # another rank's part: absent


def test_folder_removed_while_serving(store, tmp_path, warnings_):
    k = keys()
    store.save(k[0], PART, LAYOUT, payload(0))
    shutil.rmtree(tmp_path / "kv")
    assert store.count_present(k, [PART]) == 0 and store.load(k[0], PART, LAYOUT) is None
    assert store.save(k[0], PART, LAYOUT, payload(0))  # the folder is made again
    assert bytes(store.load(k[0], PART, LAYOUT)) == payload(0)
    assert warnings_() == []  # an absent block is an ordinary miss


def _writer(folder: str, key: str, n: int, seed: int) -> None:
    s = S.Store(folder, max_bytes=1 << 30)
    for _ in range(n):
        try:
            s.path(key, PART).unlink()
        except FileNotFoundError:
            pass
        # False where the other writer's file is there already: both outcomes are fine, what
        # is tested is that the reader never sees a torn file and nothing raises.
        s.save(key, PART, LAYOUT, payload(seed, 200_000))


def test_two_writers_of_one_prefix_at_once_never_show_half_a_block(store, tmp_path, warnings_):
    """Two processes write (and rewrite) the same block while this one reads it: every read is
    the whole block or a miss, never a torn file."""
    k = keys()[0]
    ctx = mp.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(str(tmp_path / "kv"), k, 40, 3)) for _ in range(2)]
    for w in writers:
        w.start()
    seen = 0
    while any(w.is_alive() for w in writers):
        got = store.load(k, PART, LAYOUT)
        if got is not None:
            assert bytes(got) == payload(3, 200_000)
            seen += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert seen > 0  # the reads overlapped the writes
    assert bytes(store.load(k, PART, LAYOUT)) == payload(3, 200_000)
    assert warnings_() == [] and not list((tmp_path / "kv").rglob("*.tmp"))


def test_two_threads_saving_one_block(store):
    k = keys()[0]
    ok = []
    threads = [threading.Thread(target=lambda: ok.append(store.save(k, PART, LAYOUT, payload(1)))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any(ok) and bytes(store.load(k, PART, LAYOUT)) == payload(1)


def test_size_cap_evicts_least_recently_used_never_a_block_being_read(tmp_path, fresh_state):
    size = len(S.encode("k" * 64, PART, LAYOUT, payload(0)))
    store = S.Store(tmp_path / "kv", max_bytes=5 * size)
    k = keys(32 * 12)
    for i in range(4):
        store.save(k[i], PART, LAYOUT, payload(i))
        os.utime(store.path(k[i], PART), (1000 + i, 1000 + i))  # an order the clock cannot blur
    store.load(k[0], PART, LAYOUT)  # recently used: now the newest
    with store.reading(store.path(k[1], PART)):  # oldest, but being read
        for i in range(4, 12):
            store.save(k[i], PART, LAYOUT, payload(i))
        assert store.path(k[1], PART).exists()
    files = list((tmp_path / "kv").rglob("*" + S.SUFFIX))
    assert sum(p.stat().st_size for p in files) <= 5 * size + size  # within the cap (+ the one pinned)
    assert store.path(k[11], PART).exists() and not store.path(k[2], PART).exists()
    assert fresh_state["evicted"] >= 6


FULL_DISK = r"""
import resource, signal, sys
from vllm_ref_kv import STATE, store as S
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
s = S.Store(sys.argv[1], max_bytes=1 << 30)
layout = [["l", [1], "torch.uint8"]]
assert s.save("aa" * 32, "p", layout, b"x" * 1000)
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))  # the disk is "full" past 50 kB per file
assert not s.save("bb" * 32, "p", layout, b"y" * 100_000)
assert not s.save("cc" * 32, "p", layout, b"z" * 100)  # saving stopped: not even a small one
assert STATE["saving_stopped"] and not s.saving
assert bytes(s.load("aa" * 32, "p", layout)) == b"x" * 1000  # loading goes on
print("ok")
"""


def test_full_disk_stops_saving_with_one_warning_loading_goes_on(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path / "kv")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    assert out.stderr.count("saving stops") == 1, out.stderr[-2000:]
    assert "File too large" in out.stderr
    assert not list((tmp_path / "kv").rglob("*.tmp"))  # the partial temporary file was removed
