"""Local monitoring, without servers: live JSON snapshots, history, alert rules and notifications.

``LocalComponent`` turns on when ``OTEL_MONITORING_SNAPSHOT_DIR`` is set. It hands the pipeline a
periodic metric reader (``snapshot.py``) whose every collection writes metrics_live.json, appends
to the history (``history.py``), evaluates the alert rules (``rules.py``, ``engine.py``), writes
alerts.json and queues notifications (``channels.py``, ``notifier.py``). docs/snapshots.md is the
file contract; docs/alerting.md the rules and channels.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING, Any, Callable

from ..components import Component
from .. import names
from ..thresholds import ALERT_ROUTES

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader

    from ..sdk import Monitoring
    from .engine import AlertEngine, AlertEvent
    from .notifier import Notifier
    from .snapshot import Point, SnapshotExporter

_logger = logging.getLogger("otel_monitoring.local")

ALERTS_FILE = "alerts.json"
BUDGET_METRIC = names.COST_BUDGET_UTILIZATION
NOTIFIER_SHUTDOWN_S = 2.0


class LocalComponent(Component):
    name = "local"

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.exporter: SnapshotExporter | None = None
        self.reader: MetricReader | None = None
        self.engine: AlertEngine | None = None
        self.notifier: Notifier | None = None
        self._callback_channels: dict[int, Any] = {}
        self._budget_listener: Callable[[Any], None] | None = None

    @property
    def directory(self) -> str | None:
        return self.settings.snapshot_dir

    def metric_readers(self) -> list[MetricReader]:
        if not self.directory:
            return []
        from .. import policy
        from ..config import ConfigError
        from ..exporters import build_redactor, scrubbing
        from ..exporters.file import prepare_directory
        from .engine import AlertEngine
        from .history import HistoryStore
        from .snapshot import SnapshotExporter, make_snapshot_reader

        try:
            directory = prepare_directory(self.directory, "OTEL_MONITORING_SNAPSHOT_DIR")
        except ConfigError as problem:
            if self.settings.source("snapshot_dir") == "argument":
                raise
            policy.report(str(problem), strict=self.settings.strict,
                          consequence="Local monitoring (snapshots, alert rules) is off.")
            return []
        settings = self.settings
        history = HistoryStore(directory, retention_s=settings.history_retention)
        # The service name as the resource will have it, known before the first collection: it
        # names this process' files in the (possibly shared) directory.
        service_name = (settings.service_name or dict(settings.resource_attributes).get(names.SERVICE_NAME)
                        or f"unknown_service:{os.path.basename(sys.executable) or 'python'}")
        # Likewise its instance id (the user's, or the one the resource was just given): the history
        # tells processes apart by it from the first row on.
        from ..lifecycle import current_instance_id

        instance_id = dict(settings.resource_attributes).get(names.SERVICE_INSTANCE_ID) or current_instance_id()
        self.exporter = SnapshotExporter(directory, settings.snapshot_interval, history,
                                         history_interval_s=max(settings.history_interval, settings.snapshot_interval),
                                         percentile_window_s=settings.percentile_window,
                                         service={"name": service_name, "instance_id": instance_id,
                                                  "host": socket.gethostname()})
        self.engine = AlertEngine(self._load_rules(), control_dir=directory,
                                  resolved_visible_s=settings.snapshot_interval)
        self.engine.listeners.append(self._on_event)
        self.exporter.on_collection.append(self._evaluate)
        # The reader drives the scrubbing wrapper, which hands the exporter (and so metrics_live.json,
        # the history and alerts.json) data points with their secrets replaced.
        self.reader = make_snapshot_reader(scrubbing(self.exporter, "metrics", build_redactor(settings)))
        return [self.reader]

    def _load_rules(self) -> list:
        from .. import policy
        from .rules import RuleError, load_rules

        source = self.settings.alert_rules
        if source.strip().lower() == "none":
            return []
        strict = self.settings.strict
        try:
            ruleset = load_rules(source, strict=False)
        except RuleError as error:
            policy.report(str(error), strict=strict, consequence="No alert rule is evaluated.")
            return []
        for message in ruleset.errors:
            policy.report(message, strict=strict, consequence="That rule is skipped; the others are evaluated.")
        return ruleset.rules

    def start(self, monitoring: Monitoring) -> None:
        if self.exporter is None or self.engine is None:
            return
        from . import alerts
        from .notifier import Notifier

        attributes = dict(getattr(monitoring.resource, "attributes", {}) or {})
        self.exporter.service = {"name": attributes.get(names.SERVICE_NAME),
                                 "instance_id": attributes.get(names.SERVICE_INSTANCE_ID),
                                 "host": attributes.get(names.HOST_NAME) or socket.gethostname()}
        self.exporter.resource = monitoring.resource
        service = attributes.get(names.SERVICE_NAME)
        settings = self.settings
        self.notifier = Notifier(self._routes(service), timeout=settings.alert_notify_timeout,
                                 retries=settings.alert_notify_retries, queue_size=settings.alert_queue_size,
                                 meter=monitoring.meter())
        for callback, min_severity in alerts.registered_callbacks():
            self.add_callback(callback, min_severity)
        notifier = self.notifier
        monitoring.add_loss_counter(lambda: {"notifications": notifier.undelivered()})
        alerts.attach(self)
        self._listen_to_budgets()

    def _routes(self, service: str | None) -> list:
        from .channels import channels_from_settings
        from .notifier import ChannelRoute

        levels = {**ALERT_ROUTES, **self.settings.alert_routes}
        return [ChannelRoute(channel, levels[channel.name]) for channel in channels_from_settings(self.settings, service)]

    def add_callback(self, callback: Callable[[AlertEvent], Any], min_severity: str) -> None:
        from .channels import CallbackChannel
        from .notifier import ChannelRoute

        if self.notifier is None or id(callback) in self._callback_channels:
            return
        channel = CallbackChannel(callback)
        self._callback_channels[id(callback)] = channel
        self.notifier.add_route(ChannelRoute(channel, min_severity))

    def remove_callback(self, callback: Callable[[AlertEvent], Any]) -> None:
        channel = self._callback_channels.pop(id(callback), None)
        if channel is not None and self.notifier is not None:
            self.notifier.remove_channel(channel)

    # --- each collection ---

    def _evaluate(self, points: list[Point], now: float) -> None:
        from .files import atomic_write_json
        from .processes import alerts_file

        assert self.engine is not None and self.exporter is not None
        self.engine.evaluate(points, now)
        atomic_write_json(alerts_file(self.exporter.directory, self.exporter.process_key),
                          self.engine.alerts_document(now))

    def _on_event(self, event: AlertEvent) -> None:
        """Record and notify an alert event only if no other process sharing the directory did so
        for the same event just now (every process evaluates the rules on its own metrics); the
        in-process callbacks always hear it."""
        from .processes import claim_notification, process_identity

        assert self.exporter is not None
        window = max(30.0, 3 * self.settings.snapshot_interval)
        owner = process_identity(self.exporter.service_info())
        first = claim_notification(self.exporter.directory, event.alert["id"], event.kind, event.time, window, owner)
        if first:
            self._record_event(event, owner)
        if self.notifier is not None:
            self.notifier.notify(event, callbacks_only=not first)

    def _record_event(self, event: AlertEvent, process: str | None = None) -> None:
        if self.exporter is None or self.exporter.history is None:
            return
        alert = event.alert
        try:
            self.exporter.history.record_alert_event(
                event.time, alert["id"], alert["rule_id"], alert["name"], alert["severity"], event.kind, alert["value"],
                alert.get("acknowledged_by") if event.kind == "acknowledged" else None, process)
        except Exception as error:  # noqa: BLE001 - history is best effort
            _logger.debug("otel-monitoring: alert event not recorded in the history: %s", error)

    # --- budget events (otel_monitoring.meters.budgets) become alerts at once ---

    def _listen_to_budgets(self) -> None:
        try:
            from ..meters.budgets import add_budget_listener
        except ImportError:
            return
        self._budget_listener = self._on_budget_event
        add_budget_listener(self._budget_listener)

    def _on_budget_event(self, event: Any) -> None:
        """A budget crossing a threshold is an early reading of the utilization gauge: fire the
        rules over that gauge it breaches now, rather than at the next collection; with no such
        rule, a 'budget' alert that lasts until the budget's period ends."""
        try:
            if self.engine is None:
                return
            attributes = {names.BUDGET_NAME: event.budget, names.BUDGET_PERIOD: event.period}
            matching = [rule for rule in self.engine.rules
                        if rule.selector.metric == BUDGET_METRIC and rule.kind == "value"
                        and rule.selector.matches(attributes) and rule.breached(event.utilization)]
            for rule in matching:
                self.engine.trigger(rule, attributes, event.utilization)
            if not matching:
                self.engine.trigger(_budget_rule(event), attributes, event.utilization,
                                    expires_at=_period_end(event.period_start, event.period))
        except Exception:  # runs in the thread that recorded the cost
            _logger.warning("otel-monitoring: budget event not turned into an alert", exc_info=True)

    def shutdown(self) -> None:
        from . import alerts

        alerts.attach(None)
        if self._budget_listener is not None:
            from ..meters.budgets import remove_budget_listener

            remove_budget_listener(self._budget_listener)
        if self.reader is not None:
            try:
                self.reader.force_flush(timeout_millis=2000)  # the last snapshot and evaluation
            except Exception:
                _logger.debug("otel-monitoring: last snapshot failed", exc_info=True)
        if self.notifier is not None:
            self.notifier.shutdown(timeout=NOTIFIER_SHUTDOWN_S)


def _budget_rule(event: Any) -> Any:
    from .rules import BUDGET_RULE_ID, Rule, Selector

    percent = f"{event.threshold:.0%}"
    return Rule(id=BUDGET_RULE_ID, name=f"Cost budget at {percent}", kind="value", selector=Selector(BUDGET_METRIC),
                op=">=", threshold=float(event.threshold), severity=event.severity, unit="1",
                group_by=(names.BUDGET_NAME,),
                annotations={"summary": f"Budget {event.budget}: {event.spent_usd:.2f} of {event.limit_usd:.2f} USD "
                                        f"spent this {'day' if event.period == 'daily' else 'month'} ({percent})"})


def _period_end(start: dt.datetime, period: str) -> float:
    if period == "daily":
        return (start + dt.timedelta(days=1)).timestamp()
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month).timestamp()


__all__ = ["LocalComponent"]
