"""The in-process alert engine: rule evaluation over each collection, and the alert state machine.

Each rule yields one value per group (its ``group_by`` attributes); each group is one alert,
with id ``<rule id>`` or ``<rule id>:<group values>``. States: ``pending`` when the condition
first holds, ``firing`` once it held for the rule's ``for``, ``resolved`` when it stops holding.
A firing alert left unacknowledged for ``escalate.after`` moves to the higher severity once.
Silences suppress notifications (the alert is still tracked and shown); ``cooldown`` is the
least time between two firing notifications of one alert, so a flapping condition does not spam.
A firing held back by either is notified once they are over, if the condition still holds.

The engine only decides; it hands ``AlertEvent``s to its listeners (history, notifier), and
takes the time from the caller or its clock, so tests drive it without sleeping.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .control import read_acknowledgers, read_control, request_acknowledge, request_silence
from .rules import INHIBIT_LABEL, SEVERITIES, Rule, Selector
from .snapshot import Point, bucket_quantile, iso_time

__all__ = ["Alert", "AlertEngine", "AlertEvent"]

_logger = logging.getLogger("otel_monitoring.local")

ACTIVE_STATES = ("pending", "firing")


@dataclass
class Alert:
    id: str
    rule: Rule
    group: dict[str, str]
    state: str
    severity: str
    since: float
    value: float | None = None
    firing_since: float | None = None
    resolved_at: float | None = None
    acknowledged: bool = False
    acknowledged_by: str | None = None
    escalated: bool = False
    notified: bool = False  # a firing notification went out for this episode
    expires_at: float | None = None  # alerts fired by trigger() for a rule the engine does not evaluate

    def as_dict(self, silenced_until: float | None = None) -> dict[str, Any]:
        """The alert as alerts.json lists it (docs/snapshots.md)."""
        labels = {**self.rule.labels, **self.group}
        return {
            "id": self.id, "rule_id": self.rule.id, "name": self.rule.name, "severity": self.severity,
            "state": self.state, "value": _json_number(self.value), "threshold": self.rule.threshold,
            "unit": self.rule.unit, "indicates": self.rule.indicates,
            "since": iso_time(self.since), "acknowledged": self.acknowledged,
            "acknowledged_by": self.acknowledged_by,
            "silenced_until": iso_time(silenced_until) if silenced_until else None,
            "labels": labels, "annotations": render_annotations(self.rule.annotations, self.value, labels),
        }


@dataclass
class AlertEvent:
    """A state change. ``notify`` says whether the channels should send it (firing, escalated and
    resolved events of alerts neither silenced nor in cooldown)."""

    kind: str  # pending, firing, resolved, acknowledged, silenced, escalated
    time: float
    alert: dict[str, Any]
    notify: bool = False

    @property
    def severity(self) -> str:
        return self.alert["severity"]


def _json_number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


_VALUE = re.compile(r"\{\{\s*\$value\s*\}\}")
_LABEL = re.compile(r"\{\{\s*\$labels\.([A-Za-z0-9_]+)\s*\}\}")


def render_annotations(annotations: dict[str, str], value: float | None, labels: dict[str, str]) -> dict[str, str]:
    """Fill the Prometheus template forms ``{{ $value }}`` and ``{{ $labels.name }}`` (dots in
    attribute names written as underscores, as Prometheus exposes them)."""
    by_prometheus_name = {k.replace(".", "_"): v for k, v in labels.items()}
    shown = "n/a" if value is None else f"{value:.4g}"
    return {key: _LABEL.sub(lambda m: str(by_prometheus_name.get(m.group(1), "")), _VALUE.sub(shown, text))
            for key, text in annotations.items()}


def _aggregate(how: str, values: Sequence[float]) -> float:
    if how == "sum":
        return float(sum(values))
    if how == "min":
        return float(min(values))
    if how == "avg":
        return float(sum(values)) / len(values)
    return float(max(values))


@dataclass
class _Window:
    """Samples of one rule group over the rule's window; the oldest one at or before the window's
    start is kept, so deltas span the whole window."""

    samples: deque = field(default_factory=deque)

    def add(self, now: float, payload: Any, window_s: float) -> None:
        if not self.samples or now - self.samples[-1][0] >= window_s / 120:  # ~120 samples per window
            self.samples.append((now, payload))
        while len(self.samples) > 1 and self.samples[1][0] <= now - window_s:
            self.samples.popleft()

    def baseline(self) -> tuple[float, Any]:
        return self.samples[0]

    def restart(self, now: float, payload: Any) -> None:
        self.samples = deque([(now, payload)])


class AlertEngine:
    """Evaluates rules on each collection and keeps the alerts' states.

    ``control_dir``: the snapshot directory, whose alert_control.json carries acknowledgements
    and silences from the CLI; the API methods write it too, so both stay in step.
    """

    def __init__(self, rules: Iterable[Rule], clock: Callable[[], float] = time.time,
                 control_dir: str | None = None, resolved_visible_s: float = 5.0):
        self.rules = list(rules)
        self.clock = clock
        self.control_dir = control_dir
        self.resolved_visible_s = resolved_visible_s
        self.listeners: list[Callable[[AlertEvent], None]] = []
        self._alerts: dict[str, Alert] = {}
        self._windows: dict[tuple[str, tuple[str, ...]], _Window] = {}
        self._silences: dict[str, float] = {}
        self._last_notified: dict[str, float] = {}
        self._control_mtime: float | None = None
        self._started = clock()
        self._lock = threading.RLock()
        self._failed_rules: set[str] = set()

    # --- evaluation ---

    def evaluate(self, points: list[Point], now: float | None = None) -> list[AlertEvent]:
        """Evaluate every rule on one collection; returns (and hands to the listeners) the events."""
        events: list[AlertEvent] = []
        with self._lock:
            now = self.clock() if now is None else now
            self._apply_control(now, events)
            by_name: dict[str, list[Point]] = {}
            for point in points:
                by_name.setdefault(point.name, []).append(point)
            # Higher severities first: a critical that fires in this collection inhibits its warning.
            for rule in sorted(self.rules, key=lambda r: -SEVERITIES.index(r.severity)):
                try:
                    values = self._rule_values(rule, by_name, now)
                except Exception:  # one broken rule must not stop the others
                    if rule.id not in self._failed_rules:
                        self._failed_rules.add(rule.id)
                        _logger.warning("otel-monitoring: alert rule %r failed to evaluate", rule.id, exc_info=True)
                    continue
                for alert_id, (group, value) in values.items():
                    self._step(rule, alert_id, group, value, now, events)
                for alert in [a for a in self._alerts.values() if a.rule is rule and a.id not in values]:
                    self._step(rule, alert.id, alert.group, None, now, events)
            for alert in [a for a in self._alerts.values() if a.expires_at is not None and a.expires_at <= now
                          and a.rule not in self.rules]:
                self._step(alert.rule, alert.id, alert.group, None, now, events)
            for alert_id in [a.id for a in self._alerts.values()
                             if a.state == "resolved" and now - (a.resolved_at or now) > self.resolved_visible_s]:
                del self._alerts[alert_id]
        self._emit(events)
        return events

    def _step(self, rule: Rule, alert_id: str, group: dict[str, str], value: float | None, now: float,
              events: list[AlertEvent]) -> None:
        alert = self._alerts.get(alert_id)
        if value is not None and rule.breached(value):
            if alert is None or alert.state == "resolved":
                alert = Alert(alert_id, rule, group, "pending", rule.severity, since=now, value=value)
                self._alerts[alert_id] = alert
                self._event("pending", alert, now, events)
            alert.value = value
            if alert.state == "pending" and now - alert.since >= rule.for_s:
                self._fire(alert, now, events)
            elif alert.state == "firing" and not alert.notified and self._may_notify(alert, now):
                # Its firing was held back by a silence or the cooldown, and the condition still holds.
                self._fire(alert, now, events)
            elif (alert.state == "firing" and rule.escalate_after_s is not None and not alert.acknowledged
                  and not alert.escalated and now - (alert.firing_since or now) >= rule.escalate_after_s):
                alert.severity, alert.escalated = rule.escalate_to or alert.severity, True
                self._event("escalated", alert, now, events, notify=not self._silenced(alert, now))
            return
        if alert is None or alert.state == "resolved":
            return
        alert.state, alert.resolved_at = "resolved", now
        if value is not None:
            alert.value = value
        self._event("resolved", alert, now, events, notify=alert.notified and not self._silenced(alert, now))

    def _may_notify(self, alert: Alert, now: float) -> bool:
        last = self._last_notified.get(alert.id)
        return (not self._silenced(alert, now) and not self._inhibited(alert)
                and (last is None or now - last >= alert.rule.cooldown_s))

    def _inhibited(self, alert: Alert) -> bool:
        """A firing alert of a higher severity on the same ``condition`` label and the same group
        silences this one, as the stack's Alertmanager inhibition does."""
        condition = alert.rule.labels.get(INHIBIT_LABEL)
        if not condition:
            return False
        rank = SEVERITIES.index(alert.severity)
        return any(other.state == "firing" and other.rule.labels.get(INHIBIT_LABEL) == condition
                   and SEVERITIES.index(other.severity) > rank and other.group == alert.group
                   for other in self._alerts.values() if other is not alert)

    def _fire(self, alert: Alert, now: float, events: list[AlertEvent]) -> None:
        if alert.state != "firing":
            alert.state, alert.firing_since = "firing", now
        notify = self._may_notify(alert, now)
        if notify:
            alert.notified = True
            self._last_notified[alert.id] = now
        self._event("firing", alert, now, events, notify)

    def trigger(self, rule: Rule, group: dict[str, str], value: float, now: float | None = None,
                expires_at: float | None = None) -> str:
        """Fire an alert at once from an outside event (a budget threshold crossed), without waiting
        for the rule's ``for`` or the next collection. If ``rule`` is one of the engine's rules, its
        next evaluation takes the alert over; otherwise the alert resolves at ``expires_at``.
        A later trigger of a higher severity on a firing alert escalates it. Returns the alert id."""
        events: list[AlertEvent] = []
        with self._lock:
            now = self.clock() if now is None else now
            group = {g: str(group.get(g, "")) for g in rule.group_by}
            alert_id = rule.id if not rule.group_by else f"{rule.id}:{','.join(group.values())}"
            alert = self._alerts.get(alert_id)
            if alert is None or alert.state == "resolved":
                alert = Alert(alert_id, rule, group, "pending", rule.severity, since=now, value=value)
                self._alerts[alert_id] = alert
                self._fire(alert, now, events)
            else:
                alert.value = value
                if alert.state == "pending":
                    self._fire(alert, now, events)
                elif SEVERITIES.index(rule.severity) > SEVERITIES.index(alert.severity):
                    alert.rule, alert.severity, alert.escalated = rule, rule.severity, True
                    self._event("escalated", alert, now, events, notify=not self._silenced(alert, now))
            alert.expires_at = expires_at
        self._emit(events)
        return alert_id

    def _event(self, kind: str, alert: Alert, now: float, events: list[AlertEvent], notify: bool = False) -> None:
        events.append(AlertEvent(kind, now, alert.as_dict(self._silenced(alert, now)), notify))

    def _emit(self, events: list[AlertEvent]) -> None:
        for event in events:
            for listener in list(self.listeners):
                try:
                    listener(event)
                except Exception:  # a listener must not break the engine
                    _logger.warning("otel-monitoring: alert listener %r failed", listener, exc_info=True)

    # --- rule values: {alert id: (group labels, value or None)} ---

    def _rule_values(self, rule: Rule, by_name: dict[str, list[Point]], now: float) -> dict[str, tuple[dict, float | None]]:
        groups = self._groups(rule, rule.selector, by_name)
        if rule.kind == "ratio":
            assert rule.denominator is not None
            denominators = self._groups(rule, rule.denominator, by_name)
            keys = set(denominators)
        else:
            denominators = {}
            keys = set(groups)
        values: dict[str, tuple[dict, float | None]] = {}
        for key in keys:
            group = dict(zip(rule.group_by, key))
            alert_id = rule.id if not rule.group_by else f"{rule.id}:{','.join(key)}"
            if rule.kind == "ratio":
                payload: Any = (sum(p.value for p in groups.get(key, [])), sum(p.value for p in denominators[key]))
            else:
                payload = self._payload(rule, groups[key])
            values[alert_id] = (group, self._value(rule, key, payload, groups.get(key, []), now))
        return values

    @staticmethod
    def _groups(rule: Rule, selector: Selector, by_name: dict[str, list[Point]]) -> dict[tuple[str, ...], list[Point]]:
        groups: dict[tuple[str, ...], list[Point]] = {}
        for point in by_name.get(selector.metric, []):
            if selector.matches(point.attributes):
                key = tuple("" if point.attributes.get(g) is None else str(point.attributes[g]) for g in rule.group_by)
                groups.setdefault(key, []).append(point)
        return groups

    @staticmethod
    def _payload(rule: Rule, points: list[Point]) -> Any:
        if rule.kind == "quantile":
            bounds = tuple(points[0].bounds)
            same = [p for p in points if tuple(p.bounds) == bounds]
            return bounds, tuple(sum(c) for c in zip(*(p.counts for p in same)))
        if rule.kind in ("rate", "increase"):
            return sum(p.value for p in points)
        return _aggregate(rule.aggregate, [p.value for p in points])

    def _value(self, rule: Rule, key: tuple[str, ...], payload: Any, points: list[Point], now: float) -> float | None:
        if rule.kind == "value":
            return payload
        window = self._windows.get((rule.id, key))
        if window is None:
            window = self._windows[(rule.id, key)] = _Window()
            if rule.kind != "average" and now - self._started <= rule.window_s:
                # Counters and histograms start at zero: a series seen in the engine's first window
                # is measured from the engine's start rather than from its first collection.
                window.samples.append((self._started, _zero(payload)))
        window.add(now, payload, rule.window_s)
        if rule.kind == "average":
            # An average over a window needs that window of history: a day's uptime is not known
            # from the first minute (one failed start-up check would read as 0 % uptime).
            if window.samples[0][0] > now - rule.window_s * (1 - 1 / 120):
                return None
            inside = [v for t, v in window.samples if t >= now - rule.window_s] or [payload]
            return sum(inside) / len(inside)
        since, base = window.baseline()
        if rule.kind == "quantile":
            bounds, counts = payload
            base_bounds, base_counts = base
            if base_bounds != bounds and base_bounds:
                window.restart(now, payload)
                return None
            base_counts = base_counts or (0,) * len(counts)
            deltas = [c - b for c, b in zip(counts, base_counts)]
            if any(d < 0 for d in deltas):  # the histogram restarted
                window.restart(now, payload)
                return None
            minimum = min((p.min for p in points if p.min is not None), default=None)
            maximum = max((p.max for p in points if p.max is not None), default=None)
            return bucket_quantile(rule.quantile or 0.5, bounds, deltas, minimum, maximum)
        if rule.kind == "ratio":
            numerator, denominator = payload[0] - base[0], payload[1] - base[1]
            if numerator < 0 or denominator < 0:
                window.restart(now, payload)
                return None
            return numerator / denominator if denominator > 0 else None
        delta = payload - base
        if delta < 0:
            window.restart(now, payload)
            return None
        if rule.kind == "increase":
            return delta
        return delta / (now - since) if now > since else None

    # --- acknowledge and silence ---

    def acknowledge(self, alert_id: str, now: float | None = None, by: str | None = None) -> bool:
        """Acknowledge an active alert (stops its escalation); ``by`` names who. False if no such active alert."""
        events: list[AlertEvent] = []
        with self._lock:
            now = self.clock() if now is None else now
            alert = self._alerts.get(alert_id)
            if alert is None or alert.state not in ACTIVE_STATES:
                return False
            self._acknowledge(alert, now, events, by)
            if self.control_dir:
                _quietly(request_acknowledge, self.control_dir, alert_id, now, by)
        self._emit(events)
        return True

    def _acknowledge(self, alert: Alert, now: float, events: list[AlertEvent], by: str | None = None) -> None:
        if not alert.acknowledged:
            alert.acknowledged, alert.acknowledged_by = True, by
            self._event("acknowledged", alert, now, events)

    def silence(self, alert_or_rule_id: str, duration_s: float, now: float | None = None) -> float:
        """Suppress the notifications of an alert, or of every alert of a rule, for ``duration_s``
        (0 lifts the silence). Returns the end of the silence."""
        events: list[AlertEvent] = []
        with self._lock:
            now = self.clock() if now is None else now
            until = now + duration_s
            self._set_silence(alert_or_rule_id, until, now, events)
            if self.control_dir:
                _quietly(request_silence, self.control_dir, alert_or_rule_id, until, now)
        self._emit(events)
        return until

    def _set_silence(self, key: str, until: float, now: float, events: list[AlertEvent]) -> None:
        if until > now:
            self._silences[key] = until
            for alert in self._alerts.values():
                if alert.state in ACTIVE_STATES and key in (alert.id, alert.rule.id):
                    self._event("silenced", alert, now, events)
        else:
            self._silences.pop(key, None)

    def _silenced(self, alert: Alert, now: float) -> float | None:
        until = max(self._silences.get(alert.id, 0.0), self._silences.get(alert.rule.id, 0.0))
        return until if until > now else None

    def _apply_control(self, now: float, events: list[AlertEvent]) -> None:
        """Apply acknowledgements and silences written to alert_control.json since the last look."""
        if not self.control_dir:
            return
        path = os.path.join(self.control_dir, "alert_control.json")
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return
        if mtime == self._control_mtime:
            return
        self._control_mtime = mtime
        control = read_control(self.control_dir)
        acknowledgers = read_acknowledgers(self.control_dir)
        for alert_id, when in control["acknowledged"].items():
            alert = self._alerts.get(alert_id)
            if alert is not None and alert.state in ACTIVE_STATES and when >= alert.since:
                self._acknowledge(alert, now, events, acknowledgers.get(alert_id))
        wanted = control["silenced"]
        for key in set(self._silences) - set(wanted):
            self._silences.pop(key)
        for key, until in wanted.items():
            if self._silences.get(key) != until:
                self._set_silence(key, until, now, events)

    # --- reading ---

    def alerts(self, now: float | None = None) -> list[dict[str, Any]]:
        """Active alerts and those resolved within the last interval, as alerts.json lists them."""
        with self._lock:
            now = self.clock() if now is None else now
            order = {"pending": 1, "firing": 0, "resolved": 2}
            alerts = sorted(self._alerts.values(), key=lambda a: (order[a.state], a.since, a.id))
            return [a.as_dict(self._silenced(a, now)) for a in alerts]

    def alerts_document(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        return {"schema": 1, "timestamp": iso_time(now), "alerts": self.alerts(now)}


def _zero(payload: Any) -> Any:
    if isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[1], tuple):
        return payload[0], (0,) * len(payload[1])
    if isinstance(payload, tuple):
        return tuple(0.0 for _ in payload)
    return 0.0


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except OSError as error:
        _logger.warning("otel-monitoring: cannot record the alert request in the snapshot directory (%s)", error)
