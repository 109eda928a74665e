"""The process' instance of a meter: the one the component installs at start, else one made on first use.

The public functions (``record_cost``, ``record_signal`` ...) work before ``configure()`` too:
then they record on the global meter provider, which the SDK swaps in when it is set.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .locks import ForkSafeLock

T = TypeVar("T")


class Current(Generic[T]):
    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self.value: T | None = None
        self._lock = ForkSafeLock()

    def install(self, value: T | None) -> None:
        with self._lock:
            self.value = value

    def get(self) -> T:
        with self._lock:
            if self.value is None:
                self.value = self._factory()
            return self.value
