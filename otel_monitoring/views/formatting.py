"""Numbers as people read them, the same in the terminal and in the report."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms" if seconds >= 0.01 else f"{seconds * 1000:.1f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    return f"{seconds / 60:.1f}m"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def usd(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    amount = abs(value)
    if amount >= 10 or amount == 0:
        return f"{sign}${amount:,.2f}"
    # Model calls cost fractions of a cent: four decimals (trailing zeros dropped down to cents),
    # so $0.0139 is not shown as $0.01 in one view and $0.0139 in another; below $0.0001, two
    # significant digits ($0.000042), never a $0.00 that hides a real spend.
    places = 4 if amount >= 1e-4 else 1 - math.floor(math.log10(amount))
    text = f"{amount:.{places}f}".rstrip("0")
    return f"{sign}${text}{'0' * max(0, 2 - len(text.split('.')[1]))}"


def count(value: float | None) -> str:
    if value is None:
        return "—"
    for limit, divisor, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= limit:
            return f"{value / divisor:.1f}{suffix}"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def rate(value: float | None) -> str:
    return "—" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:.2f}")


def in_unit(value: float | None, unit: str = "") -> str:
    """A rule's value or threshold in the unit of its metric: ratios ("1") as percent, seconds as
    durations, USD as money, others as plain numbers."""
    if value is None:
        return "—"
    if unit == "1":
        return percent(value * 100.0)
    if unit in ("%", "USD", "s"):
        return number(value, unit)
    return f"{value:.4g}" + (f" {unit}" if unit and not unit.startswith("{") else "")


def alert_value(alert: Any, key: str = "value") -> str:
    """An alert's value (or, with key="threshold", its threshold) as its rule measures it, the one way
    every view shows it: a state indicator as the state (STALE, or "not STALE"), a ratio as percent,
    seconds as a duration, USD as money; n/a when it is not a number. ``alert``: an alerts.json entry
    or a history event (anything with value/threshold, unit and indicates)."""
    value = alert.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a"
    state = alert.get("indicates")
    if state:
        return str(state) if key == "threshold" or value >= 1 else f"not {state}"
    return in_unit(value, str(alert.get("unit") or ""))


def number(value: float | None, unit: str = "") -> str:
    """A reading's value in its unit."""
    if unit == "%":
        return percent(value)
    if unit == "USD":
        return usd(value)
    if unit == "s":
        return duration(value)
    return count(value)


def clock(unix: float | None, utc: bool = True) -> str:
    if unix is None:
        return "—"
    moment = _dt.datetime.fromtimestamp(unix, _dt.timezone.utc if utc else None)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if utc else "")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(seconds, 0)
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"
