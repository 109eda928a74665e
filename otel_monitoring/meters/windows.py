"""Sliding windows of yes/no outcomes per key, for rates such as signal accuracy and RAG hit rate."""

from __future__ import annotations

from collections import deque
from typing import Hashable

from .locks import ForkSafeLock, collecting


class OutcomeWindows:
    """The last ``size`` outcomes of each key; ``rates()`` gives the fraction that were True."""

    def __init__(self, size: int, max_keys: int = 1000):
        self.size = size
        self._max_keys = max_keys
        self._windows: dict[Hashable, deque[bool]] = {}
        self._lock = ForkSafeLock()

    def add(self, key: Hashable, outcome: bool) -> None:
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) >= self._max_keys:
                    return  # a runaway key space must not grow memory without bound
                window = self._windows[key] = deque(maxlen=self.size)
            window.append(bool(outcome))

    def rates(self) -> dict[Hashable, float]:
        with collecting(self._lock):  # reached from collections
            return {key: sum(window) / len(window) for key, window in self._windows.items() if window}
