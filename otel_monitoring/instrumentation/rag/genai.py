"""What the RAG instrumentors share: the GenAI metrics of the spec and content-capture helpers."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Callable, Mapping

from ... import names
from ..core import Finished, Telemetry

MAX_CAPTURED_CHARS = 4096  # per captured attribute: enough to read, bounded for the exporters

GENAI_METRIC_KEYS = (names.GEN_AI_OPERATION_NAME, names.GEN_AI_PROVIDER_NAME, names.GEN_AI_REQUEST_MODEL)


# Span id -> operation of a GenAI client span (another instrumentation's) that ran as its child.
# Bounded: ids of parents that never take their mark (a chain, a server span) age out.
_DELEGATED_MEMORY = 4096
_delegated: OrderedDict[int, str] = OrderedDict()
_delegated_lock = threading.Lock()


def mark_delegated(span_id: int, operation: str) -> None:
    with _delegated_lock:
        _delegated[span_id] = operation
        if len(_delegated) > _DELEGATED_MEMORY:
            _delegated.popitem(last=False)


def take_delegated(span: Any, operation: Any) -> bool:
    """True (once) if a GenAI client span of the same operation ran under ``span`` (a chat under a
    chat, embeddings under embeddings): that call's metrics are the client's to record. A different
    operation below (embeddings under a retrieval) is another call, and both are counted."""
    if not _delegated or span is None:
        return False
    with _delegated_lock:
        marked = _delegated.pop(span.get_span_context().span_id, None)
    return marked is not None and marked == operation


def truncate(text: str, limit: int = MAX_CAPTURED_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def as_json(value: Any) -> str:
    return truncate(json.dumps(value, ensure_ascii=False, default=str))


def genai_metric_key(operation: str, provider: str | None, model: str | None) -> tuple:
    """The low-cardinality metric attributes of a GenAI call (also labels the RED metrics)."""
    key: list[tuple[str, str]] = [(names.GEN_AI_OPERATION_NAME, operation)]
    if provider:
        key.append((names.GEN_AI_PROVIDER_NAME, provider))
    if model:
        key.append((names.GEN_AI_REQUEST_MODEL, model))
    return tuple(key)


class GenAIMetrics:
    """``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` with the spec's buckets."""

    def __init__(self, telemetry: Telemetry):
        meter = telemetry.meter
        self.duration = meter.create_histogram(
            names.GEN_AI_OPERATION_DURATION, unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(names.GEN_AI_DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            names.GEN_AI_TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(names.GEN_AI_TOKEN_BUCKETS),
        )

    def hook(self, usage: Callable[[Any], tuple[int | None, int | None]] | None = None) -> Callable[[Finished], None]:
        """An ``on_finish`` hook recording both metrics; ``usage(result)`` gives (input, output) tokens."""

        def record(finished: Finished) -> None:
            if take_delegated(finished.span, finished.metric_attributes.get(names.GEN_AI_OPERATION_NAME)):
                return  # the client instrumentation records this call's duration and tokens
            attributes: dict[str, Any] = {k: finished.metric_attributes[k] for k in GENAI_METRIC_KEYS
                                          if k in finished.metric_attributes}
            if finished.error_type is not None:
                attributes[names.ERROR_TYPE] = finished.error_type
            # In the call's context, so a sampled call's span is the exemplar (not its parent's).
            self.duration.record(finished.duration, attributes, finished.context)
            if usage is None or finished.error_type is not None:
                return
            input_tokens, output_tokens = usage(finished.result)
            for token_type, count in (("input", input_tokens), ("output", output_tokens)):
                if count is not None:
                    self.tokens.record(count, {**attributes, names.GEN_AI_TOKEN_TYPE: token_type}, finished.context)

        return record


def usage_attributes(input_tokens: int | None, output_tokens: int | None) -> Mapping[str, int]:
    attributes = {}
    if input_tokens is not None:
        attributes[names.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    if output_tokens is not None:
        attributes[names.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    return attributes
