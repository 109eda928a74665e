"""RAG KPIs: retrieval hit rate, empty-result rate and relevance, per collection.

A retrieval is a *hit* when feedback says its results were relevant, or, with no feedback, when
its best relevance score reaches the threshold (similarity: higher is better; convert
distances before recording). No results is *empty* (and not a hit).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Sequence

from opentelemetry.metrics import CallbackOptions, Observation, get_meter

from ..version import __version__
from .current import Current
from .locks import ForkSafeLock
from .windows import OutcomeWindows
from .. import names

_logger = logging.getLogger(__name__)

SCOPE = "otel_monitoring.meters.rag"
RELEVANCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_COLLECTION = "default"


def retrieval_outcome(scores: Sequence[float], threshold: float, relevant: bool | None = None) -> str:
    if not scores and relevant is None:
        return "empty"
    if relevant is not None:
        return "hit" if relevant else ("empty" if not scores else "miss")
    return "hit" if max(scores) >= threshold else "miss"


class RagKPIs:
    def __init__(self, meter_provider: Any = None, window: int = 100, relevance_threshold: float = 0.7):
        self.threshold = relevance_threshold
        self.hits = OutcomeWindows(window)
        self.empties = OutcomeWindows(window)
        self.counts: dict[str, int] = {"hit": 0, "miss": 0, "empty": 0}
        self._lock = ForkSafeLock()
        meter = get_meter(SCOPE, __version__, meter_provider)
        self._retrievals = meter.create_counter(names.RAG_RETRIEVALS, unit="{retrieval}",
                                                description="Retrievals by outcome (hit, miss, empty).")
        self._relevance = meter.create_histogram(
            names.RAG_RETRIEVAL_RELEVANCE, unit="1", explicit_bucket_boundaries_advisory=RELEVANCE_BUCKETS,
            description="Best relevance score of each retrieval that returned results.")
        meter.create_observable_gauge(names.RAG_RETRIEVAL_HIT_RATE, [self._observe(self.hits)], unit="1",
                                      description="Hits / retrievals over the last KPI window, per collection.")
        meter.create_observable_gauge(names.RAG_RETRIEVAL_EMPTY_RATE, [self._observe(self.empties)], unit="1",
                                      description="Empty results / retrievals over the last KPI window, per collection.")

    def record_retrieval(self, scores: Sequence[float] = (), collection: str | None = None,
                         relevant: bool | None = None) -> str:
        """Record one retrieval's relevance ``scores``; ``relevant`` (feedback) overrides the threshold."""
        collection = collection or DEFAULT_COLLECTION
        scores = [float(s) for s in scores]
        outcome = retrieval_outcome(scores, self.threshold, relevant)
        attrs = {names.RAG_COLLECTION: collection}
        self._retrievals.add(1, {**attrs, names.RAG_RETRIEVAL_OUTCOME: outcome})
        if scores:
            self._relevance.record(max(0.0, max(scores)), attrs)  # histograms take no negatives (cosine can be)
        self.hits.add(collection, outcome == "hit")
        self.empties.add(collection, outcome == "empty")
        with self._lock:
            self.counts[outcome] += 1
        return outcome

    @staticmethod
    def _observe(windows: OutcomeWindows) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for collection, rate in windows.rates().items():
                yield Observation(rate, {names.RAG_COLLECTION: collection})

        return observe


_current: Current[RagKPIs] = Current(RagKPIs)
install = _current.install
current_rag_kpis = _current.get


def record_retrieval(scores: Sequence[float] = (), collection: str | None = None, relevant: bool | None = None) -> None:
    """Record one retrieval (never raises): ``record_retrieval([0.82, 0.4], collection="docs")``."""
    try:
        current_rag_kpis().record_retrieval(scores, collection, relevant)
    except Exception:  # a KPI must never break the pipeline
        _logger.warning("otel-monitoring: record_retrieval failed", exc_info=True)
