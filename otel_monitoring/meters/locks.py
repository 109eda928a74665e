"""Locks that a forked child gets back unlocked.

A lock held by another thread when the process forks stays held forever in the child, where
that thread does not exist: the child's next metric collection (at its exit flush, say) would
wait on it for good. The meters' background threads (health runner, metric reader, health
server) take locks all the time, so every lock in this package is one of these: after a fork,
the child replaces each one's inner lock with a fresh one.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

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


def _reset_all_in_child() -> None:
    for lock in list(_all):
        lock._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_in_child)
