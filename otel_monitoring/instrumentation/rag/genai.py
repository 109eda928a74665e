"""What the RAG instrumentors share: the GenAI metrics of the spec and content-capture helpers."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Callable, Mapping

from ... import names, preaggregation
from ...preaggregation import HistogramSeries
from ...version import __version__
from ..core import Finished, Telemetry

MAX_CAPTURED_CHARS = 4096  # per captured attribute: enough to read, bounded for the exporters

GENAI_METRIC_KEYS = (names.GEN_AI_OPERATION_NAME, names.GEN_AI_PROVIDER_NAME, names.GEN_AI_REQUEST_MODEL)
GENAI_ATTRIBUTE_KEYS = (*GENAI_METRIC_KEYS, names.ERROR_TYPE)
# Past this many RED attribute sets per hook, GenAI attribute sets are built per call (never wrong,
# only slower): the core bounds its series, this bounds the cache beside them.
MAX_DERIVED_ATTRIBUTE_SETS = 1024
# One retrieval seen by several layers (a langchain retriever over a vector store, a retriever over
# a chromadb collection) is one logical call: the outermost layer traces and counts it, the layers
# inside pass through untraced.
RETRIEVAL_NESTING = "retrieval"


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
    """``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` with the spec's buckets,
    aggregated in the process like the RED duration (see ``preaggregation``): recorded on every
    call, they cost a bucket update each instead of an SDK ``record``."""

    def __init__(self, telemetry: Telemetry):
        provider, scope = telemetry.meter_provider, telemetry.scope
        self.duration = preaggregation.histogram(
            provider, scope, names.GEN_AI_OPERATION_DURATION, unit="s", version=__version__,
            description="GenAI operation duration.", boundaries=names.GEN_AI_DURATION_BUCKETS,
        )
        self.tokens = preaggregation.histogram(
            provider, scope, names.GEN_AI_TOKEN_USAGE, unit="{token}", version=__version__,
            description="Number of input and output tokens used.", boundaries=names.GEN_AI_TOKEN_BUCKETS,
        )

    def hook(self, usage: Callable[[Any], tuple[int | None, int | None]] | None = None) -> Callable[[Finished], None]:
        """An ``on_finish`` hook recording both metrics; ``usage(result)`` gives (input, output) tokens."""

        # The RED attribute set of a call (one dict per series, reused by the core) -> the GenAI
        # series derived from it: looked up once per RED series, not on every call.
        derived: dict[int, tuple[Mapping[str, Any], HistogramSeries, HistogramSeries, HistogramSeries]] = {}

        def series_for(metric_attributes: Mapping[str, Any]) -> tuple:
            found = derived.get(id(metric_attributes))
            if found is not None and found[0] is metric_attributes:
                return found[1:]
            # error.type as the RED set has it (bounded there: rare types fold into one value).
            attributes: dict[str, Any] = {k: metric_attributes[k] for k in GENAI_ATTRIBUTE_KEYS if k in metric_attributes}
            series = (self.duration.series(attributes),
                      self.tokens.series({**attributes, names.GEN_AI_TOKEN_TYPE: "input"}),
                      self.tokens.series({**attributes, names.GEN_AI_TOKEN_TYPE: "output"}))
            if len(derived) < MAX_DERIVED_ATTRIBUTE_SETS:
                derived[id(metric_attributes)] = (metric_attributes, *series)  # holds it: the id stays its own
            return series

        def record(finished: Finished) -> None:
            metric_attributes = finished.metric_attributes
            if take_delegated(finished.span, metric_attributes.get(names.GEN_AI_OPERATION_NAME)):
                return  # the client instrumentation records this call's duration and tokens
            duration, input_series, output_series = series_for(metric_attributes)
            exemplar = finished.exemplar or finished.span
            duration.record(finished.duration, exemplar)
            if usage is None or finished.error_type is not None:
                return
            input_tokens, output_tokens = usage(finished.result)
            if input_tokens is not None:
                input_series.record(input_tokens, exemplar)
            if output_tokens is not None:
                output_series.record(output_tokens, exemplar)

        return record


def usage_attributes(input_tokens: int | None, output_tokens: int | None) -> Mapping[str, int]:
    attributes = {}
    if input_tokens is not None:
        attributes[names.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    if output_tokens is not None:
        attributes[names.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    return attributes
