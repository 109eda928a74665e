"""Observable instruments whose points are built at collection time, without the SDK's per-observation work.

An SDK observable instrument turns every value its callback yields into a Measurement (attribute
cleaning and hashing, an exemplar-filter check, a lookup and an aggregation per attribute set),
about 15 µs a point; for the ~60 points of the system meters that was half of a collection.
``ObservedInstruments`` declares the same instruments (name, kind, unit, description, scope) with
the same callbacks, and hands each metric reader ready-made SDK points instead, through the collect
seam of ``preaggregation`` (the one wrap of the meter provider's collect). What a reader gets is
what the SDK's observable path gives it:

- gauges: the last value per attribute set, no start time;
- counters (monotonic sums) and up-down counters: the observed value as a cumulative point since
  the attribute set was first seen by that reader, or, for a reader asking for delta temporality
  for that instrument kind, the difference from that reader's previous point, starting there;
- points in the order their attribute sets were first seen, non-finite values left out, no
  exemplars; a reader's aggregation preference of "drop" for the kind is honoured.

Where those points could differ from the SDK's, the SDK's observable instruments are registered
instead, with the same callbacks: a provider that is not the SDK's (or an SDK without the seam),
a provider with Views (they apply to SDK instruments only), or the always-on exemplar filter (it
attaches an exemplar to every observation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import isfinite
from time import time_ns
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import preaggregation
from .meters.locks import ForkSafeLock

_logger = logging.getLogger("otel_monitoring.observed")

__all__ = ["COUNTER", "GAUGE", "UP_DOWN_COUNTER", "Instrument", "ObservedInstruments", "direct_possible"]

GAUGE = "gauge"
COUNTER = "counter"
UP_DOWN_COUNTER = "up_down_counter"

# What a callback returns: (value, attributes) pairs. Attribute dicts become the points' attributes
# as they are (first one seen per attribute set), so they must not be mutated afterwards.
Observe = Callable[[], Iterable[tuple[float, Mapping[str, Any]]]]


@dataclass(frozen=True)
class Instrument:
    name: str
    kind: str  # GAUGE | COUNTER | UP_DOWN_COUNTER
    unit: str
    description: str
    observe: Observe


def direct_possible(meter_provider: Any) -> bool:
    """True if points built here are exactly what the SDK's observable instruments would give."""
    config = getattr(meter_provider, "_sdk_config", None)
    if config is None or getattr(config, "views", None):
        return False
    return type(getattr(config, "exemplar_filter", None)).__name__ != "AlwaysOnExemplarFilter"


class ObservedInstruments:
    """The instruments of one instrumentation scope on one meter provider.

    ``hook`` (a callable returning a context manager) is entered around each whole collection of the
    provider, the SDK's own callbacks included: shared reads use it to read each source once per
    collection. Only the seam calls it; with the SDK's observable instruments it is not used.
    """

    def __init__(self, meter_provider: Any, scope: str, version: str | None, instruments: Sequence[Instrument],
                 schema_url: str | None = None, hook: Any = None):
        from opentelemetry.metrics import get_meter, get_meter_provider

        if meter_provider is None:  # the global one, as get_meter would take it
            meter_provider = get_meter_provider()
        self.instruments = tuple(instruments)
        self._meter = get_meter(scope, version, meter_provider, schema_url=schema_url)
        self._scope = getattr(self._meter, "_instrumentation_scope", None)
        self._failed: set[str] = set()
        self._lock = ForkSafeLock()  # held while the callbacks read: a forked child must not inherit it held
        # reader -> per instrument: attribute set -> [attributes, first seen, previous value, previous time]
        self._series: dict[Any, list[dict[frozenset, list[Any]]]] = {}
        seam = preaggregation.install(meter_provider) if direct_possible(meter_provider) else None
        self.direct = seam is not None and self._scope is not None
        if self.direct:
            seam.add_producer(self, hook)
        else:
            self._register_observables()

    # -- the SDK's observable instruments (fallback) --

    def _register_observables(self) -> None:
        from opentelemetry.metrics import Observation

        create = {GAUGE: self._meter.create_observable_gauge, COUNTER: self._meter.create_observable_counter,
                  UP_DOWN_COUNTER: self._meter.create_observable_up_down_counter}
        for instrument in self.instruments:
            def callback(options: Any, observe: Observe = instrument.observe) -> list[Any]:
                return [Observation(value, attributes) for value, attributes in observe()]

            create[instrument.kind](instrument.name, callbacks=[callback], unit=instrument.unit,
                                    description=instrument.description)

    # -- ready-made points (the seam calls this at each reader's collection) --

    def collect(self, reader: Any) -> tuple[Any, list[Any]] | None:
        sdk = preaggregation.sdk_types()
        enabled = getattr(self._meter, "_is_enabled", None)
        if enabled is not None and not enabled():
            return None
        kinds = {GAUGE: sdk._ObservableGauge, COUNTER: sdk._ObservableCounter,
                 UP_DOWN_COUNTER: sdk._ObservableUpDownCounter}
        aggregation = reader._instrument_class_aggregation
        observed: list[tuple[Instrument, dict[frozenset, list[Any]], dict[frozenset, Any]]] = []
        with self._lock:
            series = self._series.get(reader)
            if series is None:
                series = self._series[reader] = [{} for _ in self.instruments]
            for instrument, known in zip(self.instruments, series):
                if type(aggregation.get(kinds[instrument.kind])).__name__ == "DropAggregation":
                    continue
                try:
                    values = list(instrument.observe())
                except Exception:  # one unreadable source never hides the others
                    if instrument.name not in self._failed:
                        self._failed.add(instrument.name)
                        _logger.warning("otel-monitoring: reading %s failed; it is left out while it fails",
                                        instrument.name, exc_info=True)
                    continue
                first_seen = time_ns()
                current: dict[frozenset, Any] = {}
                summed = instrument.kind != GAUGE
                for value, attributes in values:
                    if not isfinite(value):
                        continue
                    key = frozenset(attributes.items())
                    if key not in known:
                        known[key] = [attributes, first_seen, 0, first_seen]
                    if summed and key in current:  # the SDK adds up repeated observations of a sum
                        value = current[key] + value
                    current[key] = value
                if current:
                    observed.append((instrument, known, current))
            now = time_ns()
            return (self._scope, [self._metric(sdk, reader, instrument, known, current, now, kinds)
                                  for instrument, known, current in observed]) if observed else None

    @staticmethod
    def _metric(sdk: Any, reader: Any, instrument: Instrument, known: dict[frozenset, list[Any]],
                current: dict[frozenset, Any], now: int, kinds: dict[str, type]) -> Any:
        point = sdk.number_point  # (attributes, start, time, value, exemplars)
        # Points in the order their attribute sets were first seen, as the SDK's aggregations are kept.
        if instrument.kind == GAUGE:
            data: Any = sdk.gauge([point(state[0], None, now, current[key], [])
                                   for key, state in known.items() if key in current])
        else:
            delta = reader._instrument_class_temporality.get(kinds[instrument.kind]) \
                is sdk.AggregationTemporality.DELTA
            points = []
            for key, state in known.items():
                if key not in current:
                    continue
                value = current[key]
                if delta:  # since this reader's previous point of the series
                    points.append(point(state[0], state[3], now, value - state[2], []))
                    state[2], state[3] = value, now
                else:  # since the series was first seen
                    points.append(point(state[0], state[1], now, value, []))
            data = sdk.sum(points, sdk.AggregationTemporality.DELTA if delta else sdk.AggregationTemporality.CUMULATIVE,
                           instrument.kind == COUNTER)
        return sdk.metric(instrument.name, instrument.description, instrument.unit, data)
