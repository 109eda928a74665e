"""OTLP protobuf encoding of spans, written straight to the wire format.

The SDK's encoder builds one protobuf message object per span, attribute, key-value and value
(Python keyword calls into the C extension for each) and then serializes them: it is most of
the export side's CPU per span. This encoder writes the bytes of an ``ExportTraceServiceRequest``
directly: fixed-layout fields (ids, times, flags) with precompiled structs, and the encoded form
of each attribute (key and value) and span name cached, since instrumented code repeats the same
few. The OTLP exporters get a real ``ExportTraceServiceRequest`` parsed from those bytes by the
protobuf runtime's C parser, so what goes on the wire is checked by protobuf itself; the tests
compare it with the SDK encoder's message field by field.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

__all__ = ["encode_spans", "encode_spans_bytes", "group_spans", "grpc_span_exporter_class", "http_span_exporter_class"]

_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")  # where the SDK encoder logs the same failures

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack

_KIND = {kind: bytes((0x30, kind.value + 1)) for kind in SpanKind}  # Span.kind (6): OTLP's are SDK's + 1
_FLAGS_LOCAL = b"\x85\x01" + _FIXED32(0x100)  # Span.flags (16, fixed32): HAS_IS_REMOTE
_FLAGS_REMOTE = b"\x85\x01" + _FIXED32(0x300)  # ... | IS_REMOTE
_LINK_FLAGS_LOCAL = b"\x35" + _FIXED32(0x100)  # Link.flags (6, fixed32)
_LINK_FLAGS_REMOTE = b"\x35" + _FIXED32(0x300)
_CACHE_LIMIT = 4096


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    """AnyValue message bytes (oneof checked in the SDK encoder's order: bool before int)."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8"))
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64: two's complement as uint64
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(b"\x0a", key.encode("utf-8")) + _field(b"\x12", _any_value(value))


_attribute_cache: dict[tuple, bytes] = {}


def _attributes(tag: bytes, attributes: Any) -> bytes:
    """Every attribute as a repeated KeyValue field ``tag``; bad values are skipped and logged."""
    if not attributes:
        return b""
    cache = _attribute_cache
    parts = []
    # BoundedAttributes iterates through the Mapping ABC; its plain dict is several times faster
    for key, value in getattr(attributes, "_dict", attributes).items():
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is float:
            cache_key = (key, kind, value)
            encoded = cache.get(cache_key)
            if encoded is None:
                encoded = _field(tag, _key_value(key, value))
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[cache_key] = encoded
        else:
            try:
                encoded = _field(tag, _key_value(key, value))
            except Exception as error:  # as the SDK encoder: the attribute is dropped, the span kept
                _logger.exception("Failed to encode key %s: %s", key, error)
                continue
        parts.append(encoded)
    return b"".join(parts)


_name_cache: dict[str, bytes] = {}


def _name(tag: bytes, name: str) -> bytes:
    encoded = _name_cache.get(name)
    if encoded is None:
        encoded = _field(tag, name.encode("utf-8"))
        if len(_name_cache) >= _CACHE_LIMIT:
            _name_cache.clear()
        _name_cache[name] = encoded
    return encoded


_UNSET_STATUS = b"\x7a\x00"  # Span.status (15), empty: present, as the SDK encoder sets it


def _status(status: Any) -> bytes:
    if status is None:
        return b""
    description = status.description
    code = status.status_code
    if not description and code is StatusCode.UNSET:
        return _UNSET_STATUS
    payload = b""
    if description:
        payload += _field(b"\x12", description.encode("utf-8"))
    if code.value:
        payload += b"\x18" + _varint(code.value)
    return _field(b"\x7a", payload)


def _trace_state(tag: bytes, trace_state: Any) -> bytes:
    if not trace_state:
        return b""
    return _field(tag, ",".join(f"{key}={value}" for key, value in trace_state.items()).encode("utf-8"))


def _events(events: Any) -> bytes:
    parts = []
    for event in events:
        payload = b""
        if event.timestamp:
            payload += b"\x09" + _FIXED64(event.timestamp)
        if event.name:
            payload += _field(b"\x12", event.name.encode("utf-8"))
        payload += _attributes(b"\x1a", event.attributes)
        if event.dropped_attributes:
            payload += b"\x20" + _varint(event.dropped_attributes)
        parts.append(_field(b"\x5a", payload))  # Span.events (11)
    return b"".join(parts)


def _links(links: Any) -> bytes:
    parts = []
    for link in links:
        context = link.context
        payload = (b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")
                   + _attributes(b"\x22", link.attributes))
        if link.dropped_attributes:
            payload += b"\x28" + _varint(link.dropped_attributes)
        payload += _LINK_FLAGS_REMOTE if context.is_remote else _LINK_FLAGS_LOCAL
        parts.append(_field(b"\x6a", payload))  # Span.links (13)
    return b"".join(parts)


def _own(span: Any, private: str, public: str) -> Any:
    found = getattr(span, private, None)
    return getattr(span, public) if found is None else found


def _span(span: Any) -> bytes:
    context = span.get_span_context()
    parts = [b"\x0a\x10", (context.trace_id if context else 0).to_bytes(16, "big"),
             b"\x12\x08", (context.span_id if context else 0).to_bytes(8, "big")]
    if context is not None and context.trace_state:
        parts.append(_trace_state(b"\x1a", context.trace_state))
    parent = span.parent
    if parent:
        parts.append(b"\x22\x08")
        parts.append(parent.span_id.to_bytes(8, "big"))
    if span.name:
        parts.append(_name(b"\x2a", span.name))
    parts.append(_KIND[span.kind])
    if span.start_time:
        parts.append(b"\x39" + _FIXED64(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _FIXED64(span.end_time))
    # An SDK span's own containers: its properties copy them per read (a read-only view of the
    # attributes iterated through the Mapping ABC, tuples of the events and links)
    parts.append(_attributes(b"\x4a", _own(span, "_attributes", "attributes")))
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    events = _own(span, "_events", "events")
    if events:
        parts.append(_events(events))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    links = _own(span, "_links", "links")
    if links:
        parts.append(_links(links))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    parts.append(_status(span.status))
    parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
    return _field(b"\x12", b"".join(parts))  # ScopeSpans.spans (2)


class _Cache:
    """Encoded resources and scopes by identity (the SDK shares one object per provider/tracer)."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[Any, bytes]] = {}

    def get(self, thing: Any, encode: Any) -> bytes:
        found = self.entries.get(id(thing))
        if found is None or found[0] is not thing:
            if len(self.entries) > 1024:
                self.entries.clear()
            found = self.entries[id(thing)] = (thing, encode(thing))
        return found[1]


def _resource(resource: Any) -> bytes:
    return _field(b"\x0a", _attributes(b"\x0a", resource.attributes))  # ResourceSpans.resource (1)


def _scope(scope: Any) -> bytes:
    payload = b""
    if scope is not None:
        if scope.name:
            payload += _field(b"\x0a", scope.name.encode("utf-8"))
        if scope.version:
            payload += _field(b"\x12", scope.version.encode("utf-8"))
        payload += _attributes(b"\x1a", scope.attributes)
    encoded = _field(b"\x0a", payload)  # ScopeSpans.scope (1)
    if scope is not None and scope.schema_url:
        encoded += _field(b"\x1a", scope.schema_url.encode("utf-8"))  # ScopeSpans.schema_url (3)
    return encoded


_resources = _Cache()
_scopes = _Cache()


def _canonical(seen: dict[int, int], objects: dict[int, Any], thing: Any) -> int:
    """The id of the first object seen equal to ``thing`` (found by identity in the common case)."""
    found = seen.get(id(thing))
    if found is not None:
        return found
    for known_id, known in objects.items():
        if known == thing:
            seen[id(thing)] = known_id
            objects.setdefault(id(thing), thing)  # keeps ``thing`` alive, so its id stays its own
            return known_id
    seen[id(thing)] = id(thing)
    objects[id(thing)] = thing
    return id(thing)


def group_spans(spans: Sequence[Any], encode: Callable[[Any], Any]) -> list[tuple[Any, list[tuple[Any, list[Any]]]]]:
    """``[(resource, [(scope, [encode(span), ...]), ...]), ...]``: spans grouped by equal resources
    and scopes in order of first appearance, as the SDK encoders group them, but found by identity
    first (hashing a Resource serializes its attributes: once per span otherwise)."""
    grouped: dict[int, dict[int, list[Any]]] = {}
    resources: dict[int, Any] = {}
    scopes: dict[int, Any] = {}
    resource_ids: dict[int, int] = {}
    scope_ids: dict[int, int] = {}
    for span in spans:
        resource_id = _canonical(resource_ids, resources, span.resource)
        scope_id = _canonical(scope_ids, scopes, span.instrumentation_scope or None)
        by_scope = grouped.get(resource_id)
        if by_scope is None:
            by_scope = grouped[resource_id] = {}
        encoded = by_scope.get(scope_id)
        if encoded is None:
            encoded = by_scope[scope_id] = []
        encoded.append(encode(span))
    return [(resources[resource_id], [(scopes[scope_id], encoded) for scope_id, encoded in by_scope.items()])
            for resource_id, by_scope in grouped.items()]


def encode_spans_bytes(spans: Sequence[Any]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of ``spans``."""
    parts = []
    for resource, by_scope in group_spans(spans, _span):
        resource_parts = [_resources.get(resource, _resource)]
        for scope, encoded in by_scope:
            # spans before the schema URL is fine: protobuf fields may come in any order
            resource_parts.append(_field(b"\x12", _scopes.get(scope, _scope) + b"".join(encoded)))
        if resource.schema_url:
            resource_parts.append(_field(b"\x1a", resource.schema_url.encode("utf-8")))
        parts.append(_field(b"\x0a", b"".join(resource_parts)))
    return b"".join(parts)


def encode_spans(spans: Sequence[Any]) -> Any:
    """``spans`` as an ``ExportTraceServiceRequest`` message (what the OTLP exporters send)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return ExportTraceServiceRequest.FromString(encode_spans_bytes(spans))


def grpc_span_exporter_class() -> type:
    """The SDK's OTLP gRPC span exporter with this encoder (everything else, retries included, its own)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    class FastOTLPSpanExporter(OTLPSpanExporter):
        def _translate_data(self, data: Sequence[Any]) -> Any:
            return encode_spans(data)

    return FastOTLPSpanExporter


class _Encoded(tuple):
    """A batch of spans with its request already encoded (what the HTTP exporter's ``encode_spans``
    look-up hands back as the message), a tuple so the exporter still counts the spans."""

    request: bytes

    def SerializePartialToString(self) -> bytes:  # noqa: N802 - protobuf's name, called by the exporter
        return self.request


def _dispatching_encoder(sdk_encode: Callable[[Sequence[Any]], Any]) -> Callable[[Sequence[Any]], Any]:
    def encode_spans(spans: Sequence[Any]) -> Any:
        if type(spans) is _Encoded:
            return spans  # our exporter's batch: its bytes are ready
        return sdk_encode(spans)

    encode_spans._otel_monitoring = True  # type: ignore[attr-defined]
    return encode_spans


def http_span_exporter_class() -> type:
    """The SDK's OTLP http/protobuf span exporter with this encoder (everything else, retries and
    size limit included, its own).

    The SDK's ``export`` encodes through its module's ``encode_spans`` and sends
    ``SerializePartialToString()`` of the result. That name is replaced once by a function passing
    anything but our pre-encoded batches to the SDK's encoder unchanged, so other exporters in the
    process behave as before, and our exporter hands over a batch whose bytes are already written
    (no message built or parsed). If the SDK's module no longer looks up that name, the exporter
    is the SDK's own."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as sdk_http

    base = sdk_http.OTLPSpanExporter
    current = getattr(sdk_http, "encode_spans", None)
    if current is None or "encode_spans" not in base.export.__code__.co_names:
        return base
    if not getattr(current, "_otel_monitoring", False):
        sdk_http.encode_spans = _dispatching_encoder(current)

    class FastHTTPSpanExporter(base):  # type: ignore[misc, valid-type]
        def export(self, spans: Sequence[Any]) -> Any:
            try:
                batch = _Encoded(spans)
                batch.request = encode_spans_bytes(batch)
            except Exception:  # noqa: BLE001 - the SDK's encoder then, with its own error handling
                return super().export(spans)
            return super().export(batch)

    return FastHTTPSpanExporter
