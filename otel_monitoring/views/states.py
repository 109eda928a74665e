"""States (ok / warning / critical) for values, with the thresholds the reference documents use,
and the colours both the dashboard and the report show them in."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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


# Percentages (0-100) unless noted. CPU, memory and disk as the meters' host-health defaults;
# error rate, latency, cost and accuracy as the reference documents' alert tables.
THRESHOLDS = {
    "cpu": Threshold(70, 90),
    "memory": Threshold(80, 95),
    "disk": Threshold(85, 95),
    "error_rate": Threshold(3, 5),
    "latency_p95_s": Threshold(0.100, 0.150),
    "budget": Threshold(80, 100),
    "health_score": Threshold(75, 50, higher_is_worse=False),
    "signal_accuracy": Threshold(75, 70, higher_is_worse=False),
    "order_success": Threshold(90, 80, higher_is_worse=False),
    "hit_rate": Threshold(80, 60, higher_is_worse=False),
    "empty_rate": Threshold(10, 25),
}

# Market-data staleness classes (seconds), as the trading KPIs classify them.
STALENESS_LIVE_S = 600
STALENESS_DELAYED_S = 3600

SEVERITY_STATE = {"info": State.OK, "warning": State.WARNING, "critical": State.CRITICAL,
                  "emergency": State.CRITICAL}
SEVERITY_ORDER = {"emergency": 0, "critical": 1, "warning": 2, "info": 3}


def worst(*states: State) -> State:
    return max(states, default=State.UNKNOWN)
