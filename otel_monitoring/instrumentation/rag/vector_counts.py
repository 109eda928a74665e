"""The number of vectors in each known collection, as an observable gauge read at collection time.

Instrumentors register the collections (chromadb collections, langchain in-memory stores) the
application creates or opens; the gauge's callback counts each one when the metrics are collected,
never on the application's call path. Collections are held weakly (a dropped collection stops
being reported) and capped in number, so a process that opens collections by the thousand keeps a
bounded series count.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Callable, Iterable

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import CallbackOptions, Observation

from ... import names

__all__ = ["VectorCounts", "MAX_COLLECTIONS", "vector_counts_for", "register_on_init"]

_logger = logging.getLogger("otel_monitoring.instrumentation")

MAX_COLLECTIONS = 100  # collections reported per instrumentor; further ones are not (logged once)


_by_provider: "weakref.WeakKeyDictionary[Any, dict[str, VectorCounts]]" = weakref.WeakKeyDictionary()
_by_provider_lock = threading.Lock()


def vector_counts_for(meter_provider: Any, meter: Any, system: str, count: Callable[[Any], int]) -> "VectorCounts":
    """The one gauge of a (meter provider, system), enabled: an instrument made twice on one meter
    would keep only the first one's callback, so instrumenting again reuses it."""
    with _by_provider_lock:
        by_system = _by_provider.setdefault(meter_provider, {})
        counts = by_system.get(system)
        if counts is None:
            counts = by_system[system] = VectorCounts(meter, system, count)
    counts.enabled = True
    return counts


def register_on_init(counts: "VectorCounts", name_of: Callable[[Any], str]) -> Callable[..., Any]:
    """A wrapt wrapper for a collection class's ``__init__`` that registers each new instance."""

    def wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        wrapped(*args, **kwargs)
        if counts.enabled:
            try:
                counts.register(name_of(instance), instance)
            except Exception:  # creating a collection must never fail because of us
                _logger.debug("otel-monitoring: registering a %s collection failed", counts.system, exc_info=True)

    return wrapper


class VectorCounts:
    """``otel_monitoring.vector_store.vectors`` for one vector-store system on one meter."""

    def __init__(self, meter: Any, system: str, count: Callable[[Any], int], limit: int = MAX_COLLECTIONS):
        self.system = system
        self.limit = limit
        self._count = count
        self._collections: dict[str, weakref.ref] = {}
        self._lock = threading.Lock()
        self._warned = False
        self._failed: set[str] = set()
        self.enabled = True
        meter.create_observable_gauge(
            names.VECTOR_STORE_VECTORS, callbacks=[self._observe], unit="{vector}",
            description="Vectors (documents) in a vector-store collection, read at collection time.")

    def register(self, name: str, collection: Any) -> None:
        """Report ``collection`` under ``name`` (the latest object of a name wins). Never raises."""
        try:
            reference = weakref.ref(collection)
        except TypeError:
            return
        with self._lock:
            if name not in self._collections and len(self._collections) >= self.limit:
                if not self._warned:
                    self._warned = True
                    _logger.warning("otel-monitoring: more than %d %s collections; the vector count of further "
                                    "ones is not reported", self.limit, self.system)
                return
            self._collections[name] = reference

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self.enabled:
            return []
        with self._lock:
            items = list(self._collections.items())
        observations = []
        for name, reference in items:
            collection = reference()
            if collection is None:
                with self._lock:
                    if self._collections.get(name) is reference:
                        del self._collections[name]
                continue
            try:
                with suppress_instrumentation():  # counting is ours: no spans for it
                    value = int(self._count(collection))
            except Exception:  # a closed or broken collection is skipped, not fatal
                if name not in self._failed:
                    self._failed.add(name)
                    _logger.debug("otel-monitoring: counting %s collection %r failed", self.system, name,
                                  exc_info=True)
                continue
            observations.append(Observation(value, {names.DB_SYSTEM_NAME: self.system,
                                                    names.DB_COLLECTION_NAME: name}))
        return observations
