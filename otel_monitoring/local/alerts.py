"""The alerting API of the running process: callbacks, acknowledge, silence, the active alerts.

    import otel_monitoring
    otel_monitoring.add_alert_callback(lambda event: page_someone(event.alert), min_severity="critical")

Callbacks receive each notification (``AlertEvent`` with ``kind`` firing, escalated or resolved)
from a background worker, like the other channels, so a slow callback never delays the
application. The other functions act on the engine the local mode runs (``OTEL_MONITORING_SNAPSHOT_DIR``);
without it they return False / [] and log why, rather than raise.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

from ..config import parse_duration
from .engine import AlertEvent
from .rules import SEVERITIES

if TYPE_CHECKING:
    from . import LocalComponent

__all__ = ["acknowledge", "active_alerts", "add_alert_callback", "remove_alert_callback", "silence"]

_logger = logging.getLogger("otel_monitoring.local")
_lock = threading.Lock()
_callbacks: list[tuple[Callable[[AlertEvent], Any], str]] = []
_component: LocalComponent | None = None


def add_alert_callback(callback: Callable[[AlertEvent], Any], min_severity: str = "info") -> None:
    """Call ``callback(event)`` for every alert notification of ``min_severity`` or higher.
    May be called before or after ``configure()``."""
    if not callable(callback):
        raise TypeError("add_alert_callback needs a callable taking one AlertEvent")
    if min_severity not in SEVERITIES:
        raise ValueError(f"min_severity {min_severity!r} is not one of {', '.join(SEVERITIES)}")
    with _lock:
        _callbacks.append((callback, min_severity))
        component = _component
    if component is not None:
        component.add_callback(callback, min_severity)


def remove_alert_callback(callback: Callable[[AlertEvent], Any]) -> None:
    with _lock:
        _callbacks[:] = [(cb, sev) for cb, sev in _callbacks if cb is not callback]
        component = _component
    if component is not None:
        component.remove_callback(callback)


def registered_callbacks() -> list[tuple[Callable[[AlertEvent], Any], str]]:
    with _lock:
        return list(_callbacks)


def attach(component: LocalComponent | None) -> None:
    """The local component of the running pipeline (None at its shutdown)."""
    global _component
    with _lock:
        _component = component


def _engine() -> Any:
    component = _component
    engine = component.engine if component is not None else None
    if engine is None:
        _logger.warning("otel-monitoring: no alert engine runs in this process (set OTEL_MONITORING_SNAPSHOT_DIR "
                        "and call configure()); use `otel-monitoring alerts` on the snapshot directory instead")
    return engine


def acknowledge(alert_id: str, by: str | None = None) -> bool:
    """Acknowledge an active alert: it stays listed but no longer escalates; ``by`` names who
    (kept with the alert and in the history). False if not active."""
    engine = _engine()
    return bool(engine and engine.acknowledge(alert_id, by=by))


def silence(alert_or_rule_id: str, duration: float | str) -> bool:
    """Suppress the notifications of an alert, or of all alerts of a rule, for ``duration``
    (seconds or ``"30m"``, ``"1h"``; 0 lifts it)."""
    engine = _engine()
    if engine is None:
        return False
    engine.silence(alert_or_rule_id, parse_duration(duration))
    return True


def active_alerts() -> list[dict[str, Any]]:
    """The alerts as alerts.json lists them (pending, firing, just resolved)."""
    component = _component
    if component is None or component.engine is None:
        return []
    return component.engine.alerts()


def demo_summary(monitoring: Any, snapshot: Any = None) -> list[str]:
    """The alerts section of ``otel-monitoring demo``'s summary: with ``snapshot`` (read after the
    last evaluation), its alerts, as `alerts list` and `top` show them."""
    component = monitoring.component("local") if monitoring is not None else None
    if component is None or component.engine is None:
        return ["Alerts: local mode off (no snapshot directory)."]
    alerts = snapshot.alerts if snapshot is not None else component.engine.alerts()
    lines = [f"Alerts ({len(component.engine.rules)} rules evaluated every {component.settings.snapshot_interval:g}s; "
             f"snapshots in {component.settings.snapshot_dir}):"]
    if not alerts:
        lines.append("  none pending or firing")
    from ..views.formatting import alert_value

    width = max((len(str(alert.get("id"))) for alert in alerts), default=0)
    for alert in alerts:
        lines.append(f"  {alert.get('state')!s:<8} {alert.get('severity')!s:<9} {alert.get('id')!s:<{width}}  "
                     f"value {alert_value(alert)} (threshold {alert_value(alert, 'threshold')})")
    return lines
