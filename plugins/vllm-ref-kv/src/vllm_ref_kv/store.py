"""The block store: one file per full KV block (per tensor-parallel/pipeline rank), on a local
folder, shared by every engine pointed at it. No vLLM, no torch: keys and bytes only.

- Keys (`chain_keys`): block i's key hashes the namespace (everything that makes KV
  incompatible, see connector.namespace) and the token ids of blocks 0..i, as a chain, so a key
  names the whole prefix up to the end of its block and any request sharing that prefix finds it.
- A file (`encode`/`decode`): MAGIC, a length-prefixed JSON header (key, part, layout, payload
  length, CRC-32 of the payload) and the payload. Everything is checked on load; anything that
  does not match (truncated, bit-flipped, another model's block renamed, a foreign file) is a
  miss with one warning, and the file is removed so the block is saved again.
- Writes are atomic: a temporary file in the same folder, renamed once complete. A reader sees
  the old file, the new one or none, never half of one. Two writers of one block both rename a
  complete file; the last one stays, and both are the same bytes. With `fsync` the bytes are
  flushed to the disk before the rename; without (the default), a power loss can leave a
  renamed file whose bytes never reached the disk, which the checks on load reject like any
  corrupt file: a miss, never wrong KV. Flushing each block costs milliseconds on the save path
  (docs/benchmarks.md), for durability a cache does not need.
- A size cap (`max_bytes`): past it, the least recently used files (mtime, touched on every
  load) go first, never one this process is reading (`reading`).
- A full disk (ENOSPC, EDQUOT, EFBIG) or a read-only folder stops saving with one warning;
  loading goes on. A folder removed while serving is made again at the next save; until then
  every lookup is a miss.
- `Writer`: one background thread that does the writes (CRC-32, write, rename), so that the
  forward pass waits only for a copy of the block's bytes. Its backlog is bounded in bytes: a
  block that does not fit is dropped (counted in `save_dropped`, one warning): a later miss,
  never a stalled step. `flush()` waits for everything queued; the worker calls it before
  loading a block still queued, and at shutdown.
"""

from __future__ import annotations

import atexit
import errno
import hashlib
import json
import logging
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import PLUGIN, STATE

logger = logging.getLogger(f"vllm_ref.{PLUGIN}")

MAGIC = b"REFKV\x00\x01\x00"  # format version 1
SUFFIX = ".kvb"
_LEN = struct.Struct("<I")
MAX_HEADER = 1 << 20
# Bytes per write() call. Measured on the benchmark's machine (ext4 in a VM): 512 KiB files
# written in 64 KiB calls went at 2.7 GB/s, in 128 KiB or larger calls at 0.08-0.10 GB/s
# (docs/benchmarks.md); smaller calls cost nothing where large ones are fast.
WRITE_CHUNK = 64 << 10
# Errors that mean "no room or no right to write here": saving stops, serving goes on.
FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


class BadBlock(ValueError):
    """A block file that is not what its name promises."""


def chain_keys(namespace: str, token_ids: Sequence[int], block_size: int, salt: str = "") -> list[str]:
    """The key of every full block of `token_ids`: key i covers tokens [0, (i+1)*block_size)."""
    prev = hashlib.sha256(f"{PLUGIN}\x00{namespace}\x00{salt}".encode()).digest()
    keys = []
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        block = token_ids[start:start + block_size]
        prev = hashlib.sha256(prev + struct.pack(f"<{block_size}q", *block)).digest()
        keys.append(prev.hex())
    return keys


def encode(key: str, part: str, layout: Any, payload: bytes | memoryview) -> bytes:
    header = json.dumps({"key": key, "part": part, "layout": layout, "length": len(payload),
                         "crc32": zlib.crc32(payload)}, sort_keys=True).encode()
    return b"".join((MAGIC, _LEN.pack(len(header)), header, payload))


def decode(data: bytes, key: str, part: str, layout: Any) -> memoryview:
    """The payload of a block file's bytes, or BadBlock saying what does not match."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + _LEN.size or bytes(view[:len(MAGIC)]) != MAGIC:
        raise BadBlock("not a ref_kv block file (bad magic)")
    (n,) = _LEN.unpack_from(view, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if n > MAX_HEADER or start + n > len(view):
        raise BadBlock("truncated header")
    try:
        header = json.loads(bytes(view[start:start + n]))
    except ValueError:
        raise BadBlock("unreadable header") from None
    if not isinstance(header, dict):
        raise BadBlock("unreadable header")
    if header.get("key") != key or header.get("part") != part:
        raise BadBlock("the file holds another block (key or rank differs)")
    if header.get("layout") != layout:
        raise BadBlock("the file holds KV of another layout (shape or dtype differs)")
    payload = view[start + n:]
    if header.get("length") != len(payload):
        raise BadBlock(f"truncated: {len(payload)} of {header.get('length')} bytes")
    if header.get("crc32") != zlib.crc32(payload):
        raise BadBlock("checksum mismatch (corrupt)")
    return payload


class Store:
    """One folder of block files. Thread-safe; several processes may share the folder."""

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int, fsync: bool = False) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.saving = True
        self._lock = threading.Lock()
        self._reading: dict[Path, int] = {}
        self._warned: set[str] = set()
        self._size: int | None = None  # bytes in the folder, scanned lazily
        self.folder.mkdir(parents=True, exist_ok=True)

    # -- names ---------------------------------------------------------------------------------
    def path(self, key: str, part: str) -> Path:
        return self.folder / key[:2] / f"{key}.{part}{SUFFIX}"

    def has(self, key: str, parts: Iterable[str]) -> bool:
        return all(self.path(key, p).is_file() for p in parts)

    def count_present(self, keys: Sequence[str], parts: Sequence[str]) -> int:
        """How many leading keys have a file for every part (a prefix: the first gap ends it)."""
        n = 0
        for key in keys:
            if not self.has(key, parts):
                break
            n += 1
        return n

    # -- warnings ------------------------------------------------------------------------------
    def _warn(self, kind: str, message: str) -> None:
        """One warning per kind of trouble per store, however often it happens."""
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        logger.warning("%s: %s", PLUGIN, message)

    # -- load ----------------------------------------------------------------------------------
    @contextmanager
    def reading(self, path: Path) -> Iterator[None]:
        """Marks `path` as being read: eviction in this process skips it. (Another process's
        eviction may unlink it: an open file stays readable, so the read completes.)"""
        with self._lock:
            self._reading[path] = self._reading.get(path, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._reading[path] -= 1
                if not self._reading[path]:
                    del self._reading[path]

    def load(self, key: str, part: str, layout: Any) -> memoryview | None:
        """The verified payload of a block, or None (a miss: absent, or bad and then removed)."""
        path = self.path(key, part)
        t0 = time.perf_counter()
        with self.reading(path):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                STATE["load_missing"] += 1
                return None
            except OSError as exc:
                self._warn("read", f"cannot read {path} ({exc}); treating it as a miss and recomputing")
                STATE["load_failed"] += 1
                return None
            try:
                payload = decode(data, key, part, layout)
            except BadBlock as exc:
                self._warn("bad", f"block file {path} rejected: {exc}; it is a miss, the tokens are "
                                  f"recomputed and the file removed")
                STATE["load_failed"] += 1
                self._discard(path)
                return None
            try:
                os.utime(path)  # recently used: last to be evicted
            except OSError:
                pass
        STATE["bytes_loaded"] += len(payload)
        STATE["load_s"] += time.perf_counter() - t0
        return payload

    def _discard(self, path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    # -- save ----------------------------------------------------------------------------------
    def save(self, key: str, part: str, layout: Any, payload: bytes | memoryview) -> bool:
        """Write one block atomically unless it is there already. False where nothing was
        written (present, saving stopped, or a write error)."""
        if not self.saving:
            return False
        path = self.path(key, part)
        if path.is_file():
            return False
        t0 = time.perf_counter()
        data = encode(key, part, layout, payload)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # also after the folder was removed
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view[:WRITE_CHUNK]):]
                if self.fsync:
                    os.fdatasync(fd)  # the bytes are on disk before the name points at them
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            self._discard(tmp)
            if exc.errno in FULL:
                self.saving = False
                STATE["saving_stopped"] = True
                self._warn("full", f"cannot write to {self.folder} ({exc}); saving stops, loading and "
                                   f"serving go on")
            else:
                self._warn("write", f"cannot write {path} ({exc}); this block is not saved")
            return False
        STATE["bytes_saved"] += len(payload)
        STATE["save_s"] += time.perf_counter() - t0
        self._grew(len(data))
        return True

    # -- size cap ------------------------------------------------------------------------------
    def files(self) -> list[os.DirEntry[str]]:
        out: list[os.DirEntry[str]] = []
        try:
            for sub in os.scandir(self.folder):
                if sub.is_dir():
                    try:
                        out.extend(e for e in os.scandir(sub.path) if e.name.endswith(SUFFIX))
                    except OSError:
                        continue
        except OSError:
            pass
        return out

    def _grew(self, n: int) -> None:
        with self._lock:
            if self._size is None:
                self._size = sum(_size(e) for e in self.files())
            else:
                self._size += n
            over = self._size > self.max_bytes
        if over:
            self.evict()

    def evict(self) -> int:
        """Remove least recently used files until the folder holds at most 90% of the cap.
        Rescans the folder (other processes write there too). Returns the files removed."""
        entries = [(_mtime(e), e.path, _size(e)) for e in self.files()]
        total = sum(s for _, _, s in entries)
        target, removed = int(self.max_bytes * 0.9), 0
        for _, path, size in sorted(entries):
            if total <= target:
                break
            with self._lock:
                if Path(path) in self._reading:
                    continue
            try:
                os.unlink(path)
            except OSError:
                continue
            total -= size
            removed += 1
        with self._lock:
            self._size = total
        STATE["evicted"] += removed
        return removed


def _size(e: os.DirEntry[str]) -> int:
    try:
        return e.stat().st_size
    except OSError:
        return 0


def _mtime(e: os.DirEntry[str]) -> float:
    try:
        return e.stat().st_mtime
    except OSError:
        return 0.0


WRITE_BACKLOG = 256 << 20  # bytes of block payloads the writer may hold before it drops saves


class Writer:
    """Saves blocks to a Store on one background thread, in the order they were submitted.

    submit() never blocks: it queues the bytes (a copy the caller no longer touches) or, where
    the backlog is full, drops the block. Any error in the thread is one warning, and the
    thread goes on with the next block. Thread-safe."""

    def __init__(self, store: Store, block_size: int, backlog: int = WRITE_BACKLOG) -> None:
        self.store, self.block_size, self.backlog = store, block_size, backlog
        self._q: queue.Queue[tuple[str, str, Any, bytes | memoryview, float] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued: set[tuple[str, str]] = set()
        self._bytes = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"{PLUGIN}-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a worker that ends without vLLM's shutdown still writes its backlog

    def queued(self, key: str, part: str) -> bool:
        with self._lock:
            return (key, part) in self._queued

    def submit(self, key: str, part: str, layout: Any, payload: bytes | memoryview, spent_s: float = 0.0) -> bool:
        """Queue one block's write; False where it is queued already, or dropped (backlog full,
        or closed). `spent_s`: the caller's time on this block so far, for the save_s counter."""
        with self._lock:
            if (key, part) in self._queued:
                return False
            if self._closed or self._bytes + len(payload) > self.backlog:
                STATE["save_dropped"] += 1
                drop = True
            else:
                self._queued.add((key, part))
                self._bytes += len(payload)
                drop = False
        if drop:
            self.store._warn("dropped", f"the writes to {self.store.folder} fall behind (more than "
                                        f"{self.backlog >> 20} MiB queued); blocks are dropped (later misses), "
                                        f"serving goes on")
            return False
        self._q.put((key, part, layout, payload, spent_s))
        return True

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                self._q.task_done()
                return
            key, part, layout, payload, spent_s = item
            try:
                if self.store.save(key, part, layout, payload):
                    STATE["saved_blocks"] += 1
                    STATE["tokens_saved"] += self.block_size
            except Exception as exc:  # never let one block end the thread
                self.store._warn("writer", f"saving a block failed ({type(exc).__name__}: {exc}); it is not "
                                           f"saved (a later miss), serving goes on")
            finally:
                STATE["save_s"] += spent_s  # the copy out; store.save counts the write (one thread)
                with self._lock:
                    self._queued.discard((key, part))
                    self._bytes -= len(payload)
                self._q.task_done()

    def flush(self) -> None:
        """Return once every block queued so far is written (or failed)."""
        self._q.join()

    def close(self) -> None:
        """Flush, then end the thread. Later submits are dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._q.put(None)
        self._thread.join()
