"""Exporter wrappers that scrub secrets (``otel_monitoring/redaction.py``) from what they export.

Every exporter ``configure()`` builds is wrapped, so files, OTLP, console and the snapshot
directory all receive scrubbed data, except the OTLP span exporters: their encoder
(``otlp_proto.SpanEncoder``) applies ``scrub_span``'s rules as it writes each attribute, caching the
result per repeated attribute, and the tests hold it to the bytes of ``scrub_span`` + the SDK's
encoder. The scrubbing runs on the exporters' background threads, not in the application's calls,
and copies a span, point or record only when something in it had to change.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Sequence

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import Link, Status

from ..redaction import Redactor

__all__ = ["ScrubbingLogExporter", "ScrubbingMetricExporter", "ScrubbingSpanExporter", "scrub_span",
           "scrub_metrics_data", "scrub_log_record"]

_logger = logging.getLogger("otel_monitoring.export")


def _bounded(original: Any, new: dict[str, Any]) -> BoundedAttributes:
    attributes = BoundedAttributes(maxlen=None, attributes=new, immutable=True)
    attributes.dropped = getattr(original, "dropped", 0)
    return attributes


def _scrubbed_list(own: Any, public: Sequence[Any], redactor: Redactor, rebuild: Any) -> Any:
    """The list with the items whose attributes held a secret rebuilt (``rebuild(item, attributes)``),
    keeping its dropped count; None when no item changed."""
    items = None
    for index, item in enumerate(public if own is None else own):
        scrubbed = redactor.scrub_attributes(item.attributes)
        if scrubbed is not None:
            if items is None:
                items = list(public)
            items[index] = rebuild(item, _bounded(item.attributes, scrubbed))
    if items is None:
        return None
    bounded = BoundedList.from_seq(None, items)
    bounded.dropped = getattr(own, "dropped", 0)
    return bounded


def scrub_span(span: ReadableSpan, redactor: Redactor) -> ReadableSpan:
    """The span itself when it holds no secret, else a copy with them replaced (span, event and link
    attributes, the status message), its dropped counts kept."""
    # an SDK span's own containers: its properties copy them on every read
    own_attributes = getattr(span, "_attributes", None)
    source = span.attributes if own_attributes is None else own_attributes
    attributes = redactor.scrub_attributes(source)
    events = _scrubbed_list(getattr(span, "_events", None), span.events, redactor,
                            lambda event, scrubbed: Event(event.name, scrubbed, event.timestamp))
    links = _scrubbed_list(getattr(span, "_links", None), span.links, redactor,
                           lambda link, scrubbed: Link(link.context, scrubbed))
    status = span.status
    if status.description:
        description = redactor.scrub_text(status.description)
        if description != status.description:
            status = Status(status.status_code, description)
    if attributes is None and events is None and links is None and status is span.status:
        return span
    if events is None:
        events = getattr(span, "_events", None)
    if links is None:
        links = getattr(span, "_links", None)
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=source if attributes is None else _bounded(source, attributes),
        events=span.events if events is None else events,
        links=span.links if links is None else links, kind=span.kind,
        status=status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def scrub_metrics_data(data: MetricsData, redactor: Redactor) -> MetricsData:
    """The same object when no data point attribute holds a secret, else a copy."""
    changed_resources = False
    resource_metrics = []
    for rm in data.resource_metrics:
        changed_scopes = False
        scope_metrics = []
        for sm in rm.scope_metrics:
            changed_metrics = False
            metrics = []
            for metric in sm.metrics:
                points = getattr(metric.data, "data_points", None) or ()
                new_points = None
                for index, point in enumerate(points):
                    scrubbed = redactor.scrub_attributes(point.attributes)
                    if scrubbed is not None:
                        if new_points is None:
                            new_points = list(points)
                        new_points[index] = dataclasses.replace(point, attributes=scrubbed)
                if new_points is not None:
                    metric = dataclasses.replace(metric, data=dataclasses.replace(metric.data, data_points=new_points))
                    changed_metrics = True
                metrics.append(metric)
            if changed_metrics:
                sm = dataclasses.replace(sm, metrics=metrics)
                changed_scopes = True
            scope_metrics.append(sm)
        if changed_scopes:
            rm = dataclasses.replace(rm, scope_metrics=scope_metrics)
            changed_resources = True
        resource_metrics.append(rm)
    return dataclasses.replace(data, resource_metrics=resource_metrics) if changed_resources else data


def scrub_log_record(record: Any, redactor: Redactor) -> None:
    """Scrub one SDK log record in place (its LogRecord is shared by every exporter; scrubbing twice
    changes nothing)."""
    log_record = record.log_record
    scrubbed = redactor.scrub_attributes(log_record.attributes)
    if scrubbed is not None:
        log_record.attributes = _bounded(log_record.attributes, scrubbed)
    body = log_record.body
    if body is not None and not isinstance(body, (bool, int, float, bytes)):
        if isinstance(body, str):
            new_body = redactor.scrub_text(body)
        elif isinstance(body, dict):
            new_body = redactor.scrub_attributes(body) or body
        else:
            new_body = redactor.scrub_value(body)
        if new_body is not body and new_body != body:
            log_record.body = new_body


class _Delegating:
    """Everything the wrapper does not define is the wrapped exporter's (its directory, its paths)."""

    def __init__(self, exporter: Any, redactor: Redactor):
        self._exporter = exporter
        self._redactor = redactor

    @property
    def wrapped(self) -> Any:
        return self._exporter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._exporter, name)

    def shutdown(self) -> None:
        return self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class ScrubbingSpanExporter(_Delegating, SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            spans = [scrub_span(span, self._redactor) for span in spans]
        except Exception:  # never export unscrubbed data
            _logger.warning("otel-monitoring: scrubbing a span batch failed; the batch is dropped", exc_info=True)
            return SpanExportResult.FAILURE
        return self._exporter.export(spans)


class ScrubbingMetricExporter(MetricExporter):
    def __init__(self, exporter: MetricExporter, redactor: Redactor):
        super().__init__(preferred_temporality=getattr(exporter, "_preferred_temporality", None),
                         preferred_aggregation=getattr(exporter, "_preferred_aggregation", None))
        self._exporter = exporter
        self._redactor = redactor

    @property
    def wrapped(self) -> Any:
        return self._exporter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._exporter, name)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        try:
            metrics_data = scrub_metrics_data(metrics_data, self._redactor)
        except Exception:  # never export unscrubbed data
            _logger.warning("otel-monitoring: scrubbing metrics failed; the collection is dropped", exc_info=True)
            return MetricExportResult.FAILURE
        return self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._exporter.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return self._exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


class ScrubbingLogExporter(_Delegating):
    def export(self, batch: Sequence[Any]) -> Any:
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        try:
            for record in batch:
                scrub_log_record(record, self._redactor)
        except Exception:  # never export unscrubbed data
            _logger.warning("otel-monitoring: scrubbing log records failed; the batch is dropped", exc_info=True)
            return LogRecordExportResult.FAILURE
        return self._exporter.export(batch)
