"""Locks that a forked child gets back unlocked.

A lock held by another thread when the process forks stays held forever in the child, where
that thread does not exist: the child's next metric collection (at its exit flush, say) would
wait on it for good. The meters' background threads (health runner, metric reader, health
server) take locks all the time, so every lock in this package is one of these: after a fork,
the child replaces each one's inner lock with a fresh one.

A signal handler that flushes runs on the main thread wherever it stopped, maybe with one of
these locks held, and waits there for the flush: the lock stays held until the process ends.
Code reached from a collection therefore takes its locks with ``collecting(lock)``: while the main
thread waits on a flush it gives up after ``thresholds.COLLECTION_LOCK_WAIT_S`` and reads the state
as it is (the holder is stopped; a measurement it was adding may be half in).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from typing import Any, Iterator

from ..thresholds import COLLECTION_LOCK_WAIT_S

_all: weakref.WeakSet[ForkSafeLock] = weakref.WeakSet()


class ForkSafeLock:
    __slots__ = ("_lock", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        _all.add(self)

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()


_main_waiting = False


def main_thread_waiting(waiting: bool) -> None:
    """The main thread is (True) stopped waiting on a flush, in a signal handler: the locks it
    holds will not be released."""
    global _main_waiting
    _main_waiting = waiting


def main_waiting() -> bool:
    return _main_waiting


@contextlib.contextmanager
def collecting(lock: Any) -> Iterator[bool]:
    """Hold ``lock`` (a ForkSafeLock or a threading lock) for a collection. Yields whether it is
    held: False when the main thread waits on a flush and the lock was not free in
    ``COLLECTION_LOCK_WAIT_S`` (its holder is stopped; read the state without it)."""
    inner = lock._lock if isinstance(lock, ForkSafeLock) else lock
    if not _main_waiting:
        with inner:
            yield True
        return
    if not inner.acquire(timeout=COLLECTION_LOCK_WAIT_S):
        yield False
        return
    try:
        yield True
    finally:
        inner.release()


def _reset_all_in_child() -> None:
    main_thread_waiting(False)
    for lock in list(_all):
        lock._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_in_child)
