"""The order lifecycle: from ``create_order`` to the fill, as ``watch_orders`` or ``fetch_order`` show it.

An order placed is remembered by (exchange, order id) with the time it was placed; the first
update that shows it fully filled records ``trading.order.fill_time`` and counts it filled, an
update with more filled than before but not all of it counts a partial fill. The success rate is
filled / placed per exchange since the start (``trading.order.success_rate``); the alert rule
computes the same ratio over its window from the two counters.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation

from .... import names

PENDING_LIMIT = 10_000  # open orders remembered; the oldest are forgotten first


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # not NaN


class _Pending:
    __slots__ = ("placed", "filled")

    def __init__(self, placed: float, filled: float):
        self.placed, self.filled = placed, filled


class OrderLifecycle:
    def __init__(self, meter: Any, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[tuple[str, str], _Pending] = OrderedDict()
        self._totals: dict[str, list[int]] = {}  # exchange -> [placed, filled]
        self.placed = meter.create_counter(names.TRADING_ORDERS_PLACED, unit="{order}",
                                           description="Orders the exchange accepted (create_order).")
        self.filled = meter.create_counter(names.TRADING_ORDERS_FILLED, unit="{order}",
                                           description="Placed orders seen fully filled.")
        self.partial = meter.create_counter(names.TRADING_ORDER_PARTIAL_FILLS, unit="{fill}",
                                            description="Updates that filled part of an order, not all of it.")
        self.fill_time = meter.create_histogram(
            names.TRADING_ORDER_FILL_TIME, unit="s",
            description="From create_order to the update that shows the order filled.",
            explicit_bucket_boundaries_advisory=list(names.ORDER_FILL_TIME_BUCKETS))
        meter.create_observable_gauge(names.TRADING_ORDER_SUCCESS_RATE, [self._observe_rate], unit="1",
                                      description="Filled / placed orders per exchange since the start.")

    def created(self, exchange: str, order: Any, started: float) -> None:
        """``create_order`` returned ``order``; it was called at ``started`` (unix s)."""
        if not isinstance(order, dict) or order.get("id") is None:
            return
        attributes = {names.TRADING_EXCHANGE: exchange}
        self.placed.add(1, attributes)
        with self._lock:
            totals = self._totals.setdefault(exchange, [0, 0])
            totals[0] += 1
            self._pending[(exchange, str(order["id"]))] = _Pending(started, 0.0)
            while len(self._pending) > PENDING_LIMIT:
                self._pending.popitem(last=False)
        self.updated(exchange, [order])

    def updated(self, exchange: str, orders: Iterable[Any]) -> None:
        """Order structures from ``fetch_order``, ``watch_orders``... (unknown orders are ignored)."""
        now = self.clock()
        for order in orders:
            if not isinstance(order, dict) or order.get("id") is None:
                continue
            key = (exchange, str(order["id"]))
            filled = _number(order.get("filled")) or 0.0
            amount = _number(order.get("amount"))
            complete = order.get("status") == "closed" or (amount is not None and amount > 0 and filled >= amount)
            with self._lock:
                pending = self._pending.get(key)
                if pending is not None and not complete and order.get("status") in ("canceled", "rejected", "expired"):
                    del self._pending[key]  # it stays placed, never filled
                    continue
                if pending is None or filled <= pending.filled and not complete:
                    continue
                partial = not complete and filled > pending.filled
                pending.filled = filled
                if complete:
                    del self._pending[key]
                    self._totals.setdefault(exchange, [0, 0])[1] += 1
            attributes = {names.TRADING_EXCHANGE: exchange}
            if complete:
                self.filled.add(1, attributes)
                self.fill_time.record(max(0.0, now - pending.placed), attributes)
            elif partial:
                self.partial.add(1, attributes)

    def totals(self) -> dict[str, tuple[int, int]]:
        """(placed, filled) orders per exchange since the start."""
        with self._lock:
            return {exchange: (placed, filled) for exchange, (placed, filled) in self._totals.items()}

    def success_rates(self) -> dict[str, float]:
        with self._lock:
            return {exchange: filled / placed for exchange, (placed, filled) in self._totals.items() if placed}

    def _observe_rate(self, options: CallbackOptions) -> Iterable[Observation]:
        for exchange, rate in self.success_rates().items():
            yield Observation(rate, {names.TRADING_EXCHANGE: exchange})
