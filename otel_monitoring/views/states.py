"""States (ok / warning / critical) for values, by the shared thresholds (otel_monitoring.thresholds,
the levels of the packaged alert rules), and the colours both the dashboard and the report show them in."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import thresholds as levels


class State(enum.IntEnum):
    UNKNOWN = 0
    OK = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return {0: "n/a", 1: "OK", 2: "WARN", 3: "CRIT"}[int(self)]


# rich style names and CSS classes per state.
RICH_COLOUR = {State.UNKNOWN: "bright_black", State.OK: "green", State.WARNING: "yellow", State.CRITICAL: "red"}
CSS_CLASS = {State.UNKNOWN: "unknown", State.OK: "ok", State.WARNING: "warn", State.CRITICAL: "crit"}


@dataclass(frozen=True)
class Threshold:
    warning: float
    critical: float
    higher_is_worse: bool = True

    def state(self, value: float | None) -> State:
        if value is None:
            return State.UNKNOWN
        if self.higher_is_worse:
            if value >= self.critical:
                return State.CRITICAL
            return State.WARNING if value >= self.warning else State.OK
        if value <= self.critical:
            return State.CRITICAL
        return State.WARNING if value <= self.warning else State.OK


# Percentages (0-100) unless noted: the host-health defaults and the packaged alert rules' levels.
THRESHOLDS = {
    **{resource: Threshold(*pair) for resource, pair in levels.HOST_RESOURCE_THRESHOLDS.items()},
    "error_rate": Threshold(*levels.ERROR_RATE_PERCENT),
    "latency_p95_s": Threshold(*levels.LATENCY_P95_SECONDS),
    "budget": Threshold(*levels.BUDGET_PERCENT),
    # The host score turns WARNING below GOOD and CRITICAL below WARNING.
    "health_score": Threshold(levels.HEALTH_SCORE_GOOD, levels.HEALTH_SCORE_WARNING, higher_is_worse=False),
    "signal_accuracy": Threshold(*levels.SIGNAL_ACCURACY_PERCENT, higher_is_worse=False),
    "order_success": Threshold(*levels.ORDER_SUCCESS_PERCENT, higher_is_worse=False),
    "hit_rate": Threshold(*levels.RETRIEVAL_HIT_RATE_PERCENT, higher_is_worse=False),
    "empty_rate": Threshold(*levels.RETRIEVAL_EMPTY_RATE_PERCENT),
}

SEVERITY_STATE = {"info": State.OK, "warning": State.WARNING, "critical": State.CRITICAL,
                  "emergency": State.CRITICAL}
SEVERITY_ORDER = {"emergency": 0, "critical": 1, "warning": 2, "info": 3}


def worst(*states: State) -> State:
    return max(states, default=State.UNKNOWN)
