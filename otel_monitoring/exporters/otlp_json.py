"""OTLP/JSON encoding of spans, straight from the SDK's spans to one JSON line.

It writes exactly what ``opentelemetry-exporter-otlp-json-common`` writes (the same keys, the
same omitted defaults, ids in hex, 64-bit integers as strings, NaN/Infinity as strings) but
builds plain dicts and lists directly instead of one generated dataclass per field and then a
second pass turning them into dicts: that pass was most of the file exporter's cost per span.
Resource and scope encodings are cached (a process has a handful of them). The JSON text comes
from ``orjson`` when it is installed, else from the standard library's C encoder.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

try:  # optional: a faster writer of the same JSON
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

from .otlp_proto import group_spans

__all__ = ["encode_spans", "spans_line"]

_logger = logging.getLogger("opentelemetry.exporter.otlp.json.common._internal")  # where the SDK encoder logs the same failures

_KIND = {kind: kind.value + 1 for kind in SpanKind}  # OTLP's SpanKind is the SDK's + 1
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


def _value(value: Any) -> dict[str, Any]:
    # Order of checks as the reference encoder: bool before int, str before Sequence.
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")} if value else {"bytesValue": ""}
    if isinstance(value, Sequence):
        values = [_value(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        values = [_key_value(str(k), v) for k, v in value.items()]
        return {"kvlistValue": {"values": values} if values else {}}
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> dict[str, Any]:
    encoded = {"value": _value(value)}
    return {"key": key, **encoded} if key else encoded


def _attributes(attributes: Any) -> list[dict[str, Any]]:
    if not attributes:
        return []
    encoded = []
    # BoundedAttributes iterates through the Mapping ABC; its plain dict is several times faster
    for key, value in getattr(attributes, "_dict", attributes).items():
        try:
            encoded.append(_key_value(key, value))
        except Exception as error:  # as the reference encoder: skip the attribute
            _logger.exception("Failed to encode key %s: %s", key, error)
    return encoded


def _span_id(span_id: int) -> str:
    return span_id.to_bytes(8, "big").hex()


def _flags(context: Any) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if context is not None and context.is_remote else _HAS_IS_REMOTE


def _scope(scope: Any) -> dict[str, Any]:
    if scope is None:
        return {}
    encoded: dict[str, Any] = {}
    if scope.name:
        encoded["name"] = scope.name
    if scope.version:
        encoded["version"] = scope.version
    attributes = _attributes(scope.attributes)
    if attributes:
        encoded["attributes"] = attributes
    return encoded


def _resource(resource: Any) -> dict[str, Any]:
    attributes = _attributes(resource.attributes)
    return {"attributes": attributes} if attributes else {}


def _events(events: Any) -> list[dict[str, Any]]:
    encoded = []
    for event in events:
        item: dict[str, Any] = {}
        if event.timestamp:
            item["timeUnixNano"] = str(event.timestamp)
        if event.name:
            item["name"] = event.name
        attributes = _attributes(event.attributes)
        if attributes:
            item["attributes"] = attributes
        if event.dropped_attributes:
            item["droppedAttributesCount"] = event.dropped_attributes
        encoded.append(item)
    return encoded


def _links(links: Any) -> list[dict[str, Any]]:
    encoded = []
    for link in links:
        context = link.context
        item: dict[str, Any] = {"traceId": context.trace_id.to_bytes(16, "big").hex(),
                                "spanId": _span_id(context.span_id)}
        attributes = _attributes(link.attributes)
        if attributes:
            item["attributes"] = attributes
        if link.dropped_attributes:
            item["droppedAttributesCount"] = link.dropped_attributes
        item["flags"] = _flags(context)
        encoded.append(item)
    return encoded


def _span(span: Any) -> dict[str, Any]:
    context = span.get_span_context()
    encoded: dict[str, Any] = {
        "traceId": (context.trace_id if context else 0).to_bytes(16, "big").hex(),
        "spanId": _span_id(context.span_id if context else 0),
    }
    trace_state = context.trace_state if context else None
    if trace_state:
        encoded["traceState"] = ",".join(f"{key}={value}" for key, value in trace_state.items())
    parent = span.parent
    if parent:
        encoded["parentSpanId"] = _span_id(parent.span_id)
    encoded["flags"] = _flags(parent)
    if span.name:
        encoded["name"] = span.name
    encoded["kind"] = _KIND[span.kind]
    if span.start_time:
        encoded["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        encoded["endTimeUnixNano"] = str(span.end_time)
    attributes = _attributes(span.attributes)
    if attributes:
        encoded["attributes"] = attributes
    if span.dropped_attributes:
        encoded["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        encoded["events"] = _events(span.events)
    if span.dropped_events:
        encoded["droppedEventsCount"] = span.dropped_events
    if span.links:
        encoded["links"] = _links(span.links)
    if span.dropped_links:
        encoded["droppedLinksCount"] = span.dropped_links
    status = span.status
    if status is not None:
        encoded_status: dict[str, Any] = {}
        if status.description:
            encoded_status["message"] = status.description
        if status.status_code.value:
            encoded_status["code"] = status.status_code.value
        encoded["status"] = encoded_status
    return encoded


class _Cache:
    """Encoded resources and scopes, by identity (the SDK shares one object per provider/tracer)."""

    def __init__(self) -> None:
        self.resources: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.scopes: dict[int, tuple[Any, dict[str, Any]]] = {}

    def resource(self, resource: Any) -> dict[str, Any]:
        found = self.resources.get(id(resource))
        if found is None or found[0] is not resource:
            if len(self.resources) > 64:
                self.resources.clear()
            found = self.resources[id(resource)] = (resource, _resource(resource))
        return found[1]

    def scope(self, scope: Any) -> dict[str, Any]:
        found = self.scopes.get(id(scope))
        if found is None or found[0] is not scope:
            if len(self.scopes) > 1024:
                self.scopes.clear()
            found = self.scopes[id(scope)] = (scope, _scope(scope))
        return found[1]


_cache = _Cache()


def encode_spans(spans: Sequence[Any]) -> dict[str, Any] | None:
    """The ``ExportTraceServiceRequest`` of ``spans`` as an OTLP/JSON dict; None for no spans."""
    resource_spans = []
    for resource, by_scope in group_spans(spans, _span):
        scope_spans = []
        for scope, encoded_spans in by_scope:
            item: dict[str, Any] = {"scope": _cache.scope(scope), "spans": encoded_spans}
            if scope is not None and scope.schema_url:
                item["schemaUrl"] = scope.schema_url
            scope_spans.append(item)
        entry: dict[str, Any] = {"resource": _cache.resource(resource), "scopeSpans": scope_spans}
        if resource.schema_url:
            entry["schemaUrl"] = resource.schema_url
        resource_spans.append(entry)
    if not resource_spans:
        return None
    return {"resourceSpans": resource_spans}


def spans_line(spans: Sequence[Any]) -> bytes | None:
    """One OTLP/JSON line (newline included) for ``spans``; None for no spans."""
    encoded = encode_spans(spans)
    if encoded is None:
        return None
    if orjson is not None:
        return orjson.dumps(encoded, option=orjson.OPT_APPEND_NEWLINE)
    return (json.dumps(encoded, separators=(",", ":")) + "\n").encode("utf-8")
