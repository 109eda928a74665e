"""Direct LLM clients: the official GenAI instrumentations of opentelemetry-python-contrib.

An application that calls the OpenAI client itself (no langchain) gets a ``chat {model}`` or
``embeddings {model}`` CLIENT span with ``gen_ai.usage.*`` tokens, priced by the cost processor
like every GenAI span, and the ``gen_ai.client.*`` metrics. Content capture follows
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (off by default).

When langchain drives the same client, the langchain span is the parent of the client span;
the cost processor prices only the innermost span, and the langchain span leaves the
``gen_ai.client.*`` metrics to the client instrumentation (``NestedGenAIMarker``), so the call
is counted once. A client call made outside langchain (directly, in an API request, in a chain's
lambda) gets the RED metrics every instrumented call has (``{provider}`` / ``{operation}``, e.g.
``openai`` / ``chat``), from its span's duration: the views list it as an operation like the rest.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from ... import names
from ..contrib import ContribBundle, Member
from ..core import GlobalTelemetry, Operation, Target, Telemetry
from ..rag.genai import genai_metric_key, mark_delegated
from .package import _instruments_any

_logger = logging.getLogger("otel_monitoring.instrumentation")

SCOPE = "otel_monitoring.instrumentation.genai_clients"
_MEMORY = 4096  # spans in progress remembered; more means spans that never end: forget them
_MAX_TARGETS = 64  # (provider, operation) pairs given RED series

__all__ = ["GenAIClientsInstrumentor", "MEMBERS", "NestedGenAIMarker"]

OUR_SCOPES = "otel_monitoring."  # the scopes of this package's own instrumentors

# Entry point name of the contrib package (as OTEL_PYTHON_DISABLED_INSTRUMENTATIONS names it) -> member.
MEMBERS = {
    "openai_v2": Member("opentelemetry.instrumentation.openai_v2:OpenAIInstrumentor", "openai >= 1.26.0"),
}


class GenAIClientsInstrumentor(ContribBundle):
    """Enables the contrib GenAI client instrumentations whose client library is installed."""

    MEMBERS = MEMBERS
    _instruments_any = _instruments_any


class NestedGenAIMarker(SpanProcessor):
    """Tells a GenAI client span (another instrumentation's) driven by one of ours from one made directly.

    A langchain chat model over the OpenAI client is one call seen twice: the client span is the
    one with the provider's own usage and metrics, so the langchain span leaves the
    ``gen_ai.client.*`` metrics to it (``genai.take_delegated``), and keeps the RED row. A client
    call with no GenAI span of ours around it gets that RED row itself, recorded when it ends with
    the span's duration. Work per span: a dictionary look-up for spans that are not GenAI spans.
    """

    def __init__(self, meter_provider: Any = None):
        self._telemetry = Telemetry(SCOPE, None, meter_provider) if meter_provider is not None \
            else GlobalTelemetry(SCOPE)
        self._ours: set[int] = set()  # span ids of our GenAI spans in progress
        self._direct: dict[int, Target] = {}  # span ids of direct client calls in progress
        self._targets: dict[tuple[str, str], Target] = {}
        self._lock = threading.Lock()
        self._failed_once = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        # Every span passes here: read an SDK span's own attribute dict, as ``attributes.get`` on its
        # read-only view goes through the Mapping ABC and raises and catches a KeyError per miss.
        try:
            attributes = span._attributes._dict  # type: ignore[attr-defined]
        except AttributeError:
            attributes = span.attributes or {}
        operation = attributes.get(names.GEN_AI_OPERATION_NAME)
        if operation is None or span.context is None:
            return
        scope = span.instrumentation_scope
        if scope is not None and scope.name.startswith(OUR_SCOPES):
            _remember(self._ours, span.context.span_id)
            return
        parent = span.parent
        if parent is not None and not parent.is_remote and parent.span_id in self._ours:
            mark_delegated(parent.span_id, str(operation))
            return
        target = self._target(str(attributes.get(names.GEN_AI_PROVIDER_NAME) or attributes.get(names.GEN_AI_SYSTEM)
                                  or "genai"), str(operation))
        if target is None:
            return
        span.set_attributes({names.SPAN_COMPONENT: target.operation.component,
                             names.SPAN_OPERATION: target.operation.operation})
        if len(self._direct) >= _MEMORY:
            self._direct.clear()
        self._direct[span.context.span_id] = target

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        span_id = context.span_id
        if span_id in self._ours:
            self._ours.discard(span_id)
            return
        target = self._direct.pop(span_id, None)
        if target is None:
            return
        try:
            self._record(target, span)
        except Exception:  # never disturb the span pipeline
            if not self._failed_once:
                self._failed_once = True
                _logger.warning("otel-monitoring: could not record the RED metrics of %r", span.name, exc_info=True)

    def _target(self, provider: str, operation: str) -> Target | None:
        key = (provider, operation)
        target = self._targets.get(key)
        if target is None:
            with self._lock:
                target = self._targets.get(key)
                if target is None:
                    if len(self._targets) >= _MAX_TARGETS:
                        return None
                    target = self._targets[key] = Target(
                        Operation(domain="rag", component=provider, operation=operation), self._telemetry)
        return target

    @staticmethod
    def _record(target: Target, span: ReadableSpan) -> None:
        state = target.state()
        if not state.enabled or span.start_time is None or span.end_time is None:
            return
        attributes = span.attributes or {}
        model = attributes.get(names.GEN_AI_REQUEST_MODEL)
        series = target.series_for_key(state, genai_metric_key(
            target.operation.operation, target.operation.component, str(model) if model else None))
        if span.status.status_code is StatusCode.ERROR:
            _, calls, duration = series.error(_error_type(attributes.get(names.ERROR_TYPE)))
        else:
            calls, duration = series.ok_calls, series.ok_duration
        next(calls)
        duration.record((span.end_time - span.start_time) / 1e9)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _remember(spans: set[int], span_id: int) -> None:
    if len(spans) >= _MEMORY:
        spans.clear()
    spans.add(span_id)


def _error_type(value: Any) -> str:
    """A class name: opentelemetry-util-genai writes the class's repr (``<class 'openai.RateLimitError'>``)."""
    text = str(value or "error")
    if text.startswith("<class '") and text.endswith("'>"):
        return text[len("<class '"):-2].rsplit(".", 1)[-1]
    return text
