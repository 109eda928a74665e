"""Daily and monthly cost budgets: utilization gauges and events at 80 %, 90 % and 100 %.

Spending is summed in ``Decimal`` so a threshold is crossed exactly when the hand-computed sum
crosses it (eight costs of 0.1 against a limit of 1.0 are 80 %, not 79.99...). Periods are UTC
calendar days and months. With a snapshot directory, the spend is kept in its ledger
(``spend_ledger``): it survives restarts and is shared by the processes of the directory.
Without one, the sums live in the process and start from zero when it starts.

Each event goes out once per budget, threshold and period, as a log record (logger
``otel_monitoring.budgets``, which the logging bridge turns into an OTel log record with the
event's fields as attributes) and to every listener added with ``add_budget_listener``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

from opentelemetry.metrics import CallbackOptions, Observation, get_meter

from ..version import __version__
from . import locks
from .locks import ForkSafeLock, collecting
from ..thresholds import COLLECTION_LOCK_WAIT_S
from .settings import BudgetSpec
from .. import names

_logger = logging.getLogger("otel_monitoring.budgets")

SCOPE = "otel_monitoring.meters.cost"
THRESHOLDS = (Decimal("0.8"), Decimal("0.9"), Decimal("1"))
EVENT_NAME = names.BUDGET_THRESHOLD_CROSSED


@dataclass(frozen=True)
class BudgetEvent:
    """A budget reached ``threshold`` (0.8, 0.9 or 1.0) of its limit in the period starting ``period_start``."""

    budget: str  # e.g. "daily:type.model_inference"
    period: str  # daily | monthly
    threshold: float
    spent_usd: float
    limit_usd: float
    utilization: float
    period_start: dt.datetime
    cost_type: str | None = None
    category: str | None = None

    @property
    def severity(self) -> str:
        return "critical" if self.threshold >= 1 else "warning"

    def attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            names.EVENT_NAME: EVENT_NAME,
            names.BUDGET_NAME: self.budget,
            names.BUDGET_PERIOD: self.period,
            names.BUDGET_THRESHOLD: self.threshold,
            names.BUDGET_SPENT: self.spent_usd,
            names.BUDGET_LIMIT: self.limit_usd,
            names.BUDGET_UTILIZATION: self.utilization,
            names.BUDGET_PERIOD_START: self.period_start.isoformat(),
        }
        if self.cost_type:
            attributes[names.COST_TYPE] = self.cost_type
        if self.category:
            attributes[names.COST_CATEGORY] = self.category
        return attributes


BudgetListener = Callable[[BudgetEvent], None]
_listeners: list[BudgetListener] = []
_listeners_lock = ForkSafeLock()


def add_budget_listener(listener: BudgetListener) -> None:
    """Call ``listener(event)`` for every budget event, from the thread that recorded the cost.

    A listener must return quickly; an exception in it is logged and does not reach the caller.
    """
    with _listeners_lock:
        if listener not in _listeners:
            _listeners.append(listener)


def remove_budget_listener(listener: BudgetListener) -> None:
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def period_start(period: str, now: float) -> dt.datetime:
    day = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "daily" else day.replace(day=1)


class _BudgetState:
    def __init__(self, spec: BudgetSpec):
        self.spec = spec
        self.limit = Decimal(str(spec.limit_usd))
        self.start: dt.datetime | None = None
        self.spent = Decimal(0)
        self.fired: set[Decimal] = set()

    def roll(self, now: float) -> None:
        start = period_start(self.spec.period, now)
        if start != self.start:
            self.start, self.spent, self.fired = start, Decimal(0), set()

    def event(self, threshold: Decimal) -> BudgetEvent:
        assert self.start is not None
        return BudgetEvent(self.spec.name, self.spec.period, float(threshold), float(self.spent),
                           float(self.limit), float(self.spent / self.limit), self.start,
                           self.spec.cost_type, self.spec.category)


class BudgetTracker:
    def __init__(self, specs: Sequence[BudgetSpec] = (), clock: Callable[[], float] = time.time,
                 ledger: Any = None):
        self._states = [_BudgetState(spec) for spec in specs]
        self._clock = clock
        self._lock = ForkSafeLock()
        self._ledger = ledger  # a SpendLedger: spend shared with restarts and sibling processes
        self._ledger_failed = False
        self._ledger_busy = False  # the file lock was not free while the main thread waits on a flush

    def _ledger_key(self, state: _BudgetState) -> str:
        return f"{state.spec.period}:{state.spec.name}"

    def _ledger_call(self, method: str, *args: Any) -> Any:
        """Call the ledger; on failure (unwritable directory) fall back to the process' own sums."""
        if self._ledger is None:
            return None
        try:
            return getattr(self._ledger, method)(*args)
        except (OSError, ValueError) as error:
            if not self._ledger_failed:
                self._ledger_failed = True
                _logger.warning("otel-monitoring: budget spend cannot be kept in %s (%s); budgets count this "
                                "process' spend only", getattr(self._ledger, "path", "the ledger"), error)
            return None

    def _sync(self, state: _BudgetState) -> None:
        """Take the directory's spend for the period (and what was already announced)."""
        assert state.start is not None
        # While the main thread waits on a flush it may hold the file lock: wait a little, once.
        wait = None
        if locks.main_waiting():
            if self._ledger_busy:
                return  # not free at this flush's first read: the last known spend stands
            wait = COLLECTION_LOCK_WAIT_S
        found = self._ledger_call("read", self._ledger_key(state), state.start.isoformat(), state.limit, wait)
        if found is None and wait is not None:
            self._ledger_busy = True
        if found is not None:
            spent, announced = found
            state.spent = spent
            state.fired = {t for t in THRESHOLDS if str(t) in announced}

    @property
    def specs(self) -> tuple[BudgetSpec, ...]:
        return tuple(state.spec for state in self._states)

    def add(self, amount: Decimal, cost_type: str, category: str) -> list[BudgetEvent]:
        """Count ``amount`` against the matching budgets; announce and return newly crossed thresholds."""
        if not self._states:
            return []
        events = []
        now = self._clock()
        with self._lock:
            matching = []
            for state in self._states:
                if state.spec.matches(cost_type, category):
                    state.roll(now)
                    matching.append((state, state.start))
        for state, start in matching:
            # The ledger's file update is outside the lock (its flock orders the processes and
            # threads): a collection never waits on this process' disk.
            shared = self._ledger_call("add", self._ledger_key(state), start.isoformat(), amount,
                                       state.limit, THRESHOLDS) if self._ledger is not None else None
            with self._lock:
                if state.start != start:
                    continue  # the period rolled meanwhile: the ledger has it under its own period
                if shared is not None:
                    spent, crossed = shared
                    state.spent = max(state.spent, spent)  # another thread's later total may be in already
                    for threshold in crossed:
                        state.fired.add(threshold)
                        events.append(state.event(threshold))
                    continue
                state.spent += amount
                for threshold in THRESHOLDS:
                    if threshold not in state.fired and state.spent >= threshold * state.limit:
                        state.fired.add(threshold)
                        events.append(state.event(threshold))
        for event in events:
            _announce(event)
        return events

    def status(self) -> list[dict[str, Any]]:
        """The current period of every budget: name, period, spent, limit, utilization (floats).

        Reached from metric collections: while the main thread waits on a flush (a signal handler)
        a lock or ledger it holds is not waited for; each budget then shows its last known spend."""
        now = self._clock()
        with collecting(self._lock) as held:
            rows = []
            for state in self._states:
                if held:
                    state.roll(now)
                    if self._ledger is not None:
                        self._sync(state)
                if state.start is None:
                    continue
                rows.append({"budget": state.spec.name, "period": state.spec.period, "spent_usd": float(state.spent),
                             "limit_usd": float(state.limit), "utilization": float(state.spent / state.limit)})
            return rows

    def observe(self, meter_provider: Any = None) -> None:
        if not self._states:
            return
        meter = get_meter(SCOPE, __version__, meter_provider)
        for suffix, key, unit, description in (
            ("utilization", "utilization", "1", "Spent / limit of the budget in its current period."),
            ("spent", "spent_usd", "USD", "USD spent against the budget in its current period."),
            ("limit", "limit_usd", "USD", "The budget's limit."),
        ):
            meter.create_observable_gauge(f"otel_monitoring.cost.budget.{suffix}", [self._observer(key)],
                                          unit=unit, description=description)

    def _observer(self, key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            for row in self.status():
                yield Observation(row[key], {names.BUDGET_NAME: row["budget"],
                                             names.BUDGET_PERIOD: row["period"]})

        return observe


def _announce(event: BudgetEvent) -> None:
    level = logging.ERROR if event.threshold >= 1 else logging.WARNING
    from ..views.formatting import usd

    _logger.log(level, "otel-monitoring: budget %s reached %d%% of its limit: %s of %s this period",
                event.budget, round(event.threshold * 100), usd(event.spent_usd), usd(event.limit_usd),
                extra=event.attributes())
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # a listener's bug must not reach the code that recorded the cost
            _logger.warning("otel-monitoring: budget listener %r failed", listener, exc_info=True)
