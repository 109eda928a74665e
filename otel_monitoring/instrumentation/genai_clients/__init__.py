"""Direct LLM clients: the official GenAI instrumentations of opentelemetry-python-contrib.

An application that calls the OpenAI client itself (no langchain) gets a ``chat {model}`` or
``embeddings {model}`` CLIENT span with ``gen_ai.usage.*`` tokens, priced by the cost processor
like every GenAI span, and the ``gen_ai.client.*`` metrics. Content capture follows
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (off by default).

When langchain drives the same client, the langchain span is the parent of the client span;
the cost processor prices only the innermost span, and the langchain span leaves the
``gen_ai.client.*`` metrics to the client instrumentation (``NestedGenAIMarker``), so the call
is counted once.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ... import names
from ..contrib import ContribBundle, Member
from ..rag.genai import mark_delegated
from .package import _instruments_any

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
    """Marks the parents of GenAI client spans of other instrumentations, with the child's operation.

    A langchain chat model over the OpenAI client is one call seen twice: the client span is the
    one with the provider's own usage and metrics, so the langchain span leaves the
    ``gen_ai.client.*`` metrics to it (``genai.take_delegated``). Runs at span start, before the
    outer span ends; a dictionary look-up for spans that are not GenAI spans.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        parent = span.parent
        if parent is None or parent.is_remote:
            return
        attributes = span.attributes
        operation = attributes.get(names.GEN_AI_OPERATION_NAME) if attributes else None
        if operation is None:
            return
        scope = span.instrumentation_scope
        if scope is not None and scope.name.startswith(OUR_SCOPES):
            return
        mark_delegated(parent.span_id, str(operation))

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
