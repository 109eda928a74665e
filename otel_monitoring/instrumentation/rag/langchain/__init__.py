"""langchain-core instrumentor: chains, tools, retrievers, vector-store searches, embeddings and chat models.

Spans and metrics follow the OpenTelemetry GenAI conventions: ``gen_ai.operation.name`` is
``retrieval``, ``embeddings`` or ``chat``; chat spans carry ``gen_ai.request.model``,
``gen_ai.provider.name`` (from langchain's own ``_get_ls_params``), ``gen_ai.response.model`` and
``gen_ai.usage.input_tokens``/``output_tokens`` (from ``AIMessage.usage_metadata``); retrieval
spans carry ``gen_ai.data_source.id``, ``gen_ai.request.top_k``, the result count and the best
score. Prompts, completions, query texts and documents go on spans only with content capture on
(``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).

Chains: one span per top-level invocation of an LCEL pipeline (``RunnableSequence``,
``RunnableParallel``), named ``chain {name}`` (the ``run_name`` of the call's config, else the
runnable's name), with its steps (retrieval, chat, tools) as children. Nested pipelines inside it
get no span of their own: only the outermost one does. Tools: ``execute_tool {gen_ai.tool.name}``
spans with ``gen_ai.operation.name`` = ``execute_tool``, ``gen_ai.tool.name``,
``gen_ai.tool.call.id`` (when invoked with a tool call) and ``gen_ai.tool.description``; the
arguments and result only with content capture on. langchain-core has no agent runtime of its
own (agents live in langgraph and langchain), so no ``invoke_agent`` span is made here.

Where wrapped: ``BaseChatModel`` and ``BaseRetriever`` define the public ``invoke``/``stream``
methods themselves; embeddings and vector stores implement theirs in each subclass, so every
subclass that defines one is wrapped, those that exist now and (through an ``__init_subclass__``
hook on the base class) those defined later.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from typing import Any, Callable, Collection

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import SpanKind

from .... import names
from ...core import Operation, Patcher, Telemetry, settings_from
from ..genai import RETRIEVAL_NESTING, GenAIMetrics, as_json, genai_metric_key, truncate, usage_attributes
from ..vector_counts import register_on_init, vector_counts_for
from .package import _instruments

__all__ = ["LangchainInstrumentor"]

_logger = logging.getLogger("otel_monitoring.instrumentation")

SCOPE = "otel_monitoring.instrumentation.langchain"

CHAT_METHODS = ("invoke", "ainvoke", "stream", "astream")
RETRIEVER_METHODS = ("invoke", "ainvoke")
EMBEDDINGS_METHODS = ("embed_documents", "embed_query", "aembed_documents", "aembed_query")
CHAIN_METHODS = ("invoke", "ainvoke", "stream", "astream", "batch", "abatch")
TOOL_METHODS = ("invoke", "ainvoke")
VECTORSTORE_METHODS = (
    "similarity_search", "similarity_search_with_score", "similarity_search_with_relevance_scores",
    "max_marginal_relevance_search", "asimilarity_search", "asimilarity_search_with_score",
    "asimilarity_search_with_relevance_scores", "amax_marginal_relevance_search",
)


def _first(args: tuple, kwargs: dict, name: str) -> Any:
    return args[0] if args else kwargs.get(name)


_MODEL_ATTRIBUTES = ("model", "model_name", "model_id", "deployment_name")
# Class -> the model attributes it defines itself (properties, class attributes). Pydantic fields
# live in the instance's __dict__ instead; a getattr that misses on a pydantic model raises and
# catches an AttributeError inside pydantic, which made the lookup the dearest part of a call.
_class_model_attributes: dict[type, tuple[str, ...]] = {}


def _model_name(instance: Any) -> str | None:
    fields = getattr(instance, "__dict__", None)
    if fields:
        for attribute in _MODEL_ATTRIBUTES:
            value = fields.get(attribute)
            if isinstance(value, str) and value:
                return value
    klass = type(instance)
    defined = _class_model_attributes.get(klass)
    if defined is None:
        defined = _class_model_attributes[klass] = tuple(a for a in _MODEL_ATTRIBUTES if hasattr(klass, a))
    for attribute in defined:
        value = getattr(instance, attribute, None)
        if isinstance(value, str) and value:
            return value
    return None


class _CallMemo(threading.local):
    """What one call's readers share: the core asks for the span name, the span attributes and the
    metric attributes of a call one after the other, and each needs the same (dear) lookup. Keyed
    by the identity of the call's objects; the metric-attribute reader, asked last, clears it."""

    key: tuple = ()
    value: Any = None

    def get(self, instance: Any, args: tuple, kwargs: dict, compute: Callable[[], Any]) -> Any:
        key = self.key
        if key and key[0] is instance and key[1] is args and key[2] is kwargs:
            return self.value
        value = compute()
        self.key, self.value = (instance, args, kwargs), value
        return value

    def clear(self) -> None:
        self.key, self.value = (), None


def _provider_guess(instance: Any, suffix: str) -> str:
    """``OpenAIEmbeddings`` -> ``openai``: the class name without its role (as langchain derives ls_provider)."""
    return _provider_of_class(type(instance), suffix)


@functools.lru_cache(maxsize=256)
def _provider_of_class(klass: type, suffix: str) -> str:
    name = klass.__name__
    return (name[: -len(suffix)] if name.endswith(suffix) else name).lower() or "langchain"


def _store_name(store: Any, number: int) -> str:
    """An in-memory store's collection name: its own if it has one, else ``InMemoryVectorStore``, ``-2``, ..."""
    name = getattr(store, "collection_name", None)
    if isinstance(name, str) and name:
        return name
    return type(store).__name__ if number == 1 else f"{type(store).__name__}-{number}"


def _store_id(store: Any) -> str:
    """``gen_ai.data_source.id`` of a vector store: its collection's name (Chroma, PGVector...), else its class."""
    name = getattr(store, "_collection_name", None) or getattr(store, "collection_name", None)
    return name if isinstance(name, str) and name else type(store).__name__


def _chain_name(instance: Any, args: tuple, kwargs: dict) -> str:
    """The call's ``run_name`` (``chain.with_config(run_name=...)`` or the config argument), else the runnable's name."""
    config = args[1] if len(args) > 1 else kwargs.get("config")
    if isinstance(config, dict) and config.get("run_name"):
        return str(config["run_name"])
    return str(getattr(instance, "name", None) or type(instance).__name__)


def _chat_params(instance: Any, kwargs: dict) -> dict[str, Any]:
    try:
        return dict(instance._get_ls_params(**{k: v for k, v in kwargs.items() if k == "stop"}))
    except Exception:  # noqa: BLE001 - a model without ls params still gets a span
        return {"ls_provider": _provider_guess(instance, "Chat"), "ls_model_name": _model_name(instance)}


_ROLES = {"human": "user", "ai": "assistant"}  # langchain message types -> GenAI roles


def _messages_text(prompt: Any) -> list[dict[str, str]]:
    """Chat input (a string, messages or a PromptValue) as [{"role", "content"}] for content capture."""
    if hasattr(prompt, "to_messages"):
        prompt = prompt.to_messages()
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    result = []
    for message in prompt if isinstance(prompt, (list, tuple)) else [prompt]:
        if isinstance(message, tuple) and len(message) == 2:
            result.append({"role": _ROLES.get(str(message[0]), str(message[0])), "content": str(message[1])})
        else:
            role = getattr(message, "type", "user")
            result.append({"role": _ROLES.get(role, role), "content": str(getattr(message, "content", message))})
    return result


def _chat_usage(result: Any) -> tuple[int | None, int | None]:
    usage = getattr(result, "usage_metadata", None)
    if not usage:
        return None, None
    return usage.get("input_tokens"), usage.get("output_tokens")


class _StreamTotals:
    """What a chat stream's chunks add up to, as far as its span and metrics read them (the
    ``usage_metadata``, ``response_metadata`` and, with content capture, ``content`` of the merged
    message). Adding the chunks themselves (langchain's message merge) cost more than the span."""

    __slots__ = ("usage_metadata", "response_metadata", "_parts")

    def __init__(self, keep_content: bool):
        self.usage_metadata: dict[str, int] | None = None
        self.response_metadata: dict[str, Any] = {}
        self._parts: list[str] | None = [] if keep_content else None

    def add(self, chunk: Any) -> "_StreamTotals":
        usage = getattr(chunk, "usage_metadata", None)
        if usage:
            if self.usage_metadata is None:
                self.usage_metadata = {"input_tokens": 0, "output_tokens": 0}
            for key in ("input_tokens", "output_tokens"):
                self.usage_metadata[key] += usage.get(key) or 0
        metadata = getattr(chunk, "response_metadata", None)
        if metadata:
            for key in ("model_name", "model"):  # the first chunk naming the model
                if metadata.get(key) and key not in self.response_metadata:
                    self.response_metadata[key] = metadata[key]
            if metadata.get("finish_reason"):  # the last chunk's reason
                self.response_metadata["finish_reason"] = metadata["finish_reason"]
        if self._parts is not None:
            content = getattr(chunk, "content", None)
            if isinstance(content, str):
                self._parts.append(content)
        return self

    @property
    def content(self) -> str:
        return "".join(self._parts or ())


def _stream_reducer(capture: bool) -> Callable[[Any, Any], Any]:
    def add(totals: Any, chunk: Any) -> _StreamTotals:
        return (totals if totals is not None else _StreamTotals(capture)).add(chunk)

    return add


def _scores(result: Any) -> tuple[int, float | None]:
    """(count, score of the best-ranked result) of a search result list."""
    if not isinstance(result, list):
        return 0, None
    if result and isinstance(result[0], tuple) and len(result[0]) == 2:
        try:
            return len(result), float(result[0][1])
        except (TypeError, ValueError):
            return len(result), None
    return len(result), None


def _documents_text(result: Any) -> str:
    texts = []
    for item in result if isinstance(result, list) else []:
        document = item[0] if isinstance(item, tuple) else item
        texts.append(getattr(document, "page_content", str(document)))
    return as_json(texts)


class LangchainInstrumentor(BaseInstrumentor):
    """Spans and GenAI metrics for langchain-core chat models, embeddings, retrievers and vector stores."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        from langchain_core.embeddings import Embeddings
        from langchain_core.language_models.chat_models import BaseChatModel
        from langchain_core.retrievers import BaseRetriever
        from langchain_core.runnables.base import RunnableParallel, RunnableSequence
        from langchain_core.tools import BaseTool
        from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

        self._capture = bool(settings_from(kwargs).capture_content)
        self._telemetry = Telemetry(SCOPE, kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        self._genai = GenAIMetrics(self._telemetry)
        self._patcher = Patcher()
        self._lock = threading.Lock()
        self._hooks: list[tuple[type, Any]] = []
        for method in CHAT_METHODS:
            self._wrap(BaseChatModel, method, self._chat_operation(method))
        for method in RETRIEVER_METHODS:
            self._wrap(BaseRetriever, method, self._retriever_operation(method))
        self._wrap_family(Embeddings, EMBEDDINGS_METHODS, self._embeddings_operation)
        self._wrap_family(VectorStore, VECTORSTORE_METHODS, self._vectorstore_operation)
        for chain in (RunnableSequence, RunnableParallel):
            for method in CHAIN_METHODS:
                if method in vars(chain):
                    self._wrap(chain, method, self._chain_operation(method))
        self._wrap_family(BaseTool, TOOL_METHODS, self._tool_operation)
        # Vectors per in-memory store, counted at collection time; stores are named in creation order.
        self._counts = vector_counts_for(self._telemetry.meter_provider, self._telemetry.meter,
                                         "langchain_in_memory", lambda store: len(store.store))
        created = itertools.count(1)
        wrapt.wrap_function_wrapper(InMemoryVectorStore, "__init__", register_on_init(
            self._counts, lambda store: _store_name(store, next(created))))

    def _uninstrument(self, **kwargs: Any) -> None:
        from langchain_core.vectorstores import InMemoryVectorStore

        self._counts.enabled = False
        unwrap(InMemoryVectorStore, "__init__")
        with self._lock:
            for base, original in reversed(self._hooks):
                if original is None:
                    del base.__init_subclass__
                else:
                    base.__init_subclass__ = original
            self._hooks.clear()
            self._patcher.restore()

    # -- patching --

    def _wrap(self, owner: type, method: str, operation: Operation) -> None:
        self._patcher.wrap(owner, method, operation, self._telemetry)

    def _wrap_family(self, base: type, methods: tuple[str, ...], operation_for: Callable[[str], Operation]) -> None:
        """Wrap ``methods`` on ``base`` and every subclass defining them, now and later."""

        def wrap_class(klass: type) -> None:
            with self._lock:
                for method in methods:
                    if method in vars(klass):
                        self._wrap(klass, method, operation_for(method))

        pending = [base]
        while pending:
            klass = pending.pop()
            wrap_class(klass)
            pending.extend(klass.__subclasses__())
        original = vars(base).get("__init_subclass__")

        def __init_subclass__(cls: type, **kw: Any) -> None:  # noqa: N807 - the hook's own name
            if original is not None:
                original.__get__(None, cls)(**kw)
            else:
                super(base, cls).__init_subclass__(**kw)
            try:
                wrap_class(cls)
            except Exception:  # defining a class must never fail because of us
                _logger.debug("otel-monitoring: wrapping %s failed", cls, exc_info=True)

        base.__init_subclass__ = classmethod(__init_subclass__)  # type: ignore[assignment]
        self._hooks.append((base, original))

    # -- operations --

    def _chat_operation(self, method: str) -> Operation:
        capture = self._capture
        memo = _CallMemo()

        def params_of(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            return memo.get(instance, args, kwargs, lambda: _chat_params(instance, kwargs))

        def metric_key(instance: Any, args: tuple, kwargs: dict) -> tuple:
            params = params_of(instance, args, kwargs)
            memo.clear()
            return genai_metric_key("chat", params.get("ls_provider"), params.get("ls_model_name"))

        def span_name(instance: Any, args: tuple, kwargs: dict) -> str:
            model = params_of(instance, args, kwargs).get("ls_model_name")
            return f"chat {model}" if model else "chat"

        def call_attributes(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            params = params_of(instance, args, kwargs)
            attributes: dict[str, Any] = {}
            for key, attribute in (("ls_provider", names.GEN_AI_PROVIDER_NAME),
                                   ("ls_model_name", names.GEN_AI_REQUEST_MODEL),
                                   ("ls_temperature", names.GEN_AI_REQUEST_TEMPERATURE),
                                   ("ls_max_tokens", names.GEN_AI_REQUEST_MAX_TOKENS)):
                if params.get(key) is not None:
                    attributes[attribute] = params[key]
            if capture:
                attributes[names.GEN_AI_INPUT_MESSAGES] = as_json(_messages_text(_first(args, kwargs, "input")))
            return attributes

        def result_attributes(result: Any, instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            attributes: dict[str, Any] = dict(usage_attributes(*_chat_usage(result)))
            metadata = getattr(result, "response_metadata", None) or {}
            model = metadata.get("model_name") or metadata.get("model")
            if model:
                attributes[names.GEN_AI_RESPONSE_MODEL] = str(model)
            reason = metadata.get("finish_reason")
            if reason:
                attributes[names.GEN_AI_RESPONSE_FINISH_REASONS] = [str(reason)]
            if capture and hasattr(result, "content"):
                attributes[names.GEN_AI_OUTPUT_MESSAGES] = as_json([{"role": "assistant", "content": str(result.content)}])
            return attributes

        return Operation(
            domain="rag", component="langchain", operation="chat", kind=SpanKind.CLIENT,
            span_attributes={names.GEN_AI_OPERATION_NAME: "chat"},
            span_name_from_call=span_name, call_attributes=call_attributes, call_metric_attributes=metric_key,
            result_attributes=result_attributes, on_finish=self._genai.hook(_chat_usage),
            nesting_key="langchain.chat", stream_reducer=_stream_reducer(capture) if "stream" in method else None,
        )

    def _chain_operation(self, method: str) -> Operation:
        def span_name(instance: Any, args: tuple, kwargs: dict) -> str:
            return f"chain {_chain_name(instance, args, kwargs)}"

        return Operation(
            domain="rag", component="langchain", operation="chain",
            span_name_from_call=span_name,
            call_attributes=lambda instance, args, kwargs: {names.CHAIN_NAME: _chain_name(instance, args, kwargs)},
            # Any pipeline run inside this one (a branch of a parallel step, a sub-chain) is a step,
            # not a chain of its own: only the outermost gets a span.
            nesting_key="langchain.chain",
        )

    def _tool_operation(self, method: str) -> Operation:
        capture = self._capture

        def tool_name(instance: Any) -> str:
            return str(getattr(instance, "name", None) or type(instance).__name__)

        def call_attributes(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            attributes: dict[str, Any] = {names.GEN_AI_TOOL_NAME: tool_name(instance)}
            description = getattr(instance, "description", None)
            if isinstance(description, str) and description:
                attributes[names.GEN_AI_TOOL_DESCRIPTION] = truncate(description, 256)
            tool_input = _first(args, kwargs, "input")
            if isinstance(tool_input, dict) and tool_input.get("type") == "tool_call":
                if tool_input.get("id"):
                    attributes[names.GEN_AI_TOOL_CALL_ID] = str(tool_input["id"])
                tool_input = tool_input.get("args")
            if capture and tool_input is not None:
                attributes[names.GEN_AI_TOOL_CALL_ARGUMENTS] = as_json(tool_input)
            return attributes

        def result_attributes(result: Any, instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            if not capture:
                return {}
            return {names.GEN_AI_TOOL_CALL_RESULT: truncate(str(getattr(result, "content", result)))}

        return Operation(
            domain="rag", component="langchain", operation="execute_tool",
            span_attributes={names.GEN_AI_OPERATION_NAME: "execute_tool", names.GEN_AI_TOOL_TYPE: "function"},
            span_name_from_call=lambda instance, args, kwargs: f"execute_tool {tool_name(instance)}",
            call_attributes=call_attributes,
            call_metric_attributes=lambda instance, args, kwargs: (
                (names.GEN_AI_OPERATION_NAME, "execute_tool"), (names.GEN_AI_TOOL_NAME, tool_name(instance))),
            result_attributes=result_attributes if capture else None,
            nesting_key="langchain.tool",
        )

    def _retrieval_operation(self, operation: str, data_source: Callable[[Any], str],
                             top_k: Callable[[Any, dict], Any], query_argument: str, nesting_key: str) -> Operation:
        capture = self._capture
        metric_key = genai_metric_key("retrieval", "langchain", None)

        def call_attributes(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            attributes: dict[str, Any] = {names.GEN_AI_DATA_SOURCE_ID: data_source(instance)}
            k = top_k(instance, kwargs)
            if isinstance(k, int):
                attributes[names.GEN_AI_REQUEST_TOP_K] = k
            if capture:
                query = _first(args, kwargs, query_argument)
                if isinstance(query, str):
                    attributes[names.RETRIEVAL_QUERY_TEXT] = truncate(query)
            return attributes

        def result_attributes(result: Any, instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            count, top = _scores(result)
            attributes: dict[str, Any] = {names.RETRIEVAL_DOCUMENTS_COUNT: count}
            if top is not None:
                attributes[names.RETRIEVAL_TOP_SCORE] = top
            if capture:
                attributes[names.GEN_AI_OUTPUT_MESSAGES] = _documents_text(result)
            return attributes

        return Operation(
            domain="rag", component="langchain", operation=operation,
            span_attributes={names.GEN_AI_OPERATION_NAME: "retrieval"},
            span_name_from_call=lambda instance, args, kwargs: f"retrieval {data_source(instance)}",
            call_attributes=call_attributes,
            call_metric_attributes=lambda instance, args, kwargs: metric_key,
            result_attributes=result_attributes, on_finish=self._genai.hook(), nesting_key=nesting_key,
        )

    def _retriever_operation(self, method: str) -> Operation:
        def data_source(instance: Any) -> str:
            store = getattr(instance, "vectorstore", None)
            return _store_id(store) if store is not None else type(instance).__name__

        def top_k(instance: Any, kwargs: dict) -> Any:
            return (getattr(instance, "search_kwargs", None) or {}).get("k", 4 if hasattr(instance, "vectorstore") else None)

        # The same nesting key as the vector store searches: a retriever over a vector store is one
        # logical retrieval, one span and one count (its inner search is not traced again).
        return self._retrieval_operation("retriever", data_source, top_k, "input", RETRIEVAL_NESTING)

    def _vectorstore_operation(self, method: str) -> Operation:
        operation = method[1:] if method.startswith("a") else method  # async twins share a name
        return self._retrieval_operation(operation, _store_id, lambda instance, kwargs: kwargs.get("k", 4),
                                         "query", RETRIEVAL_NESTING)

    def _embeddings_operation(self, method: str) -> Operation:
        capture = self._capture

        memo = _CallMemo()

        def identity(instance: Any) -> tuple[str, str | None]:
            return _provider_guess(instance, "Embeddings"), _model_name(instance)

        def call_attributes(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            provider, model = memo.get(instance, args, kwargs, lambda: identity(instance))
            attributes: dict[str, Any] = {names.GEN_AI_PROVIDER_NAME: provider}
            if model:
                attributes[names.GEN_AI_REQUEST_MODEL] = model
            texts = _first(args, kwargs, "texts" if "documents" in method else "text")
            if isinstance(texts, list):
                attributes[names.EMBEDDINGS_INPUT_COUNT] = len(texts)
            if capture and texts is not None:
                attributes[names.GEN_AI_INPUT_MESSAGES] = as_json(texts)
            return attributes

        def result_attributes(result: Any, instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
            vector = result[0] if "documents" in method and isinstance(result, list) and result else result
            return {names.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: len(vector)} if hasattr(vector, "__len__") else {}

        def span_name(instance: Any, args: tuple, kwargs: dict) -> str:
            model = memo.get(instance, args, kwargs, lambda: identity(instance))[1]
            return f"embeddings {model}" if model else "embeddings"

        def metric_key(instance: Any, args: tuple, kwargs: dict) -> tuple:
            provider, model = memo.get(instance, args, kwargs, lambda: identity(instance))
            memo.clear()
            return genai_metric_key("embeddings", provider, model)

        return Operation(
            domain="rag", component="langchain", operation="embeddings", kind=SpanKind.CLIENT,
            span_attributes={names.GEN_AI_OPERATION_NAME: "embeddings"},
            span_name_from_call=span_name, call_attributes=call_attributes,
            call_metric_attributes=metric_key,
            result_attributes=result_attributes, on_finish=self._genai.hook(), nesting_key="langchain.embeddings",
        )
