"""chromadb instrumentor: collection add, get, query, upsert, update and delete, sync and async.

Spans follow the database conventions (``db.system.name`` = ``chromadb``, ``db.collection.name``,
``db.operation.name``, ``db.operation.batch.size``); ``query`` is also a GenAI retrieval
(``gen_ai.operation.name`` = ``retrieval``, ``gen_ai.data_source.id``, ``gen_ai.request.top_k``,
result count and best distance) and records ``gen_ai.client.operation.duration``. Query texts and
returned documents go on spans only with content capture on.

Every sync collection the application creates or opens is counted at metric collection time
(``otel_monitoring.vector_store.vectors``, by ``db.collection.name``; async collections are not:
their ``count`` is a coroutine).

A query made inside a retrieval another layer traces (a langchain retriever or vector store over
the collection) is that retrieval: it passes through untraced, so the call is one span and one count.
"""

from __future__ import annotations

from typing import Any, Collection

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import SpanKind

from .... import names
from ...core import Operation, Patcher, Telemetry, settings_from
from ..genai import RETRIEVAL_NESTING, GenAIMetrics, as_json, genai_metric_key
from ..vector_counts import register_on_init, vector_counts_for
from .package import _instruments

__all__ = ["ChromadbInstrumentor", "METHODS"]

SCOPE = "otel_monitoring.instrumentation.chromadb"

# The table of wrapped collection methods: name -> the argument holding the batch (ids) or None.
METHODS: dict[str, str | None] = {
    "add": "ids", "upsert": "ids", "update": "ids", "delete": "ids", "get": "ids", "query": None,
}
TOP_DISTANCE = names.RETRIEVAL_TOP_DISTANCE
BATCH_SIZE = names.DB_OPERATION_BATCH_SIZE


def _collection_name(instance: Any) -> str:
    try:
        return str(instance.name)
    except Exception:  # noqa: BLE001 - a collection whose model is gone still gets a span
        return "unknown"


def _batch_size(value: Any) -> int | None:
    if isinstance(value, str):
        return 1
    if isinstance(value, (list, tuple)):
        return len(value)
    return None


class ChromadbInstrumentor(BaseInstrumentor):
    """Spans (and retrieval metrics for queries) for chromadb collection operations."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        from chromadb.api.models.AsyncCollection import AsyncCollection
        from chromadb.api.models.Collection import Collection as SyncCollection

        self._capture = bool(settings_from(kwargs).capture_content)
        self._telemetry = Telemetry(SCOPE, kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        self._genai = GenAIMetrics(self._telemetry)
        self._patcher = Patcher()
        for owner in (SyncCollection, AsyncCollection):
            for method, batch_argument in METHODS.items():
                self._patcher.wrap(owner, method, self._operation(method, batch_argument), self._telemetry)
        self._counts = vector_counts_for(self._telemetry.meter_provider, self._telemetry.meter, "chromadb",
                                         lambda collection: collection.count())
        wrapt.wrap_function_wrapper(SyncCollection, "__init__", register_on_init(self._counts, _collection_name))

    def _uninstrument(self, **kwargs: Any) -> None:
        from chromadb.api.models.Collection import Collection as SyncCollection

        self._patcher.restore()
        self._counts.enabled = False
        unwrap(SyncCollection, "__init__")

    def _operation(self, method: str, batch_argument: str | None) -> Operation:
        capture = self._capture
        is_query = method == "query"
        query_key = genai_metric_key("retrieval", "chromadb", None)

        def call_attributes(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            name = _collection_name(instance)
            attributes: dict[str, Any] = {names.DB_COLLECTION_NAME: name}
            if batch_argument is not None:
                size = _batch_size(args[0] if args else kwargs.get(batch_argument))
                if size is not None:
                    attributes[BATCH_SIZE] = size
            if is_query:
                attributes[names.GEN_AI_DATA_SOURCE_ID] = name
                attributes[names.GEN_AI_REQUEST_TOP_K] = int(kwargs.get("n_results", 10))
                texts = kwargs.get("query_texts")
                if capture and texts is not None:
                    attributes[names.RETRIEVAL_QUERY_TEXT] = as_json(texts)
            return attributes

        def result_attributes(result: Any, instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            if not isinstance(result, dict) or not result.get("ids"):
                return {}
            ids = result["ids"]
            if not is_query:
                return {names.DB_RESULT_COUNT: len(ids)}
            attributes: dict[str, Any] = {names.RETRIEVAL_DOCUMENTS_COUNT: sum(len(row) for row in ids)}
            distances = result.get("distances")
            if distances and distances[0]:
                attributes[TOP_DISTANCE] = float(distances[0][0])
            if capture and result.get("documents"):
                attributes[names.GEN_AI_OUTPUT_MESSAGES] = as_json(result["documents"])
            return attributes

        span_attributes: dict[str, Any] = {names.DB_SYSTEM_NAME: "chromadb", names.DB_OPERATION_NAME: method}
        if is_query:
            span_attributes[names.GEN_AI_OPERATION_NAME] = "retrieval"
        return Operation(
            domain="rag", component="chromadb", operation=method, kind=SpanKind.CLIENT,
            span_attributes=span_attributes,
            span_name_from_call=lambda instance, args, kwargs: f"{method} {_collection_name(instance)}",
            call_attributes=call_attributes,
            call_metric_attributes=(lambda instance, args, kwargs: query_key) if is_query else None,
            result_attributes=result_attributes,
            on_finish=self._genai.hook() if is_query else None,
            # a query made by a retriever the langchain instrumentor already traces is that retrieval
            nesting_key=RETRIEVAL_NESTING if is_query else None,
        )
