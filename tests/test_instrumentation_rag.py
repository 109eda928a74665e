"""RAG: real langchain-core (in-memory vector store, deterministic embeddings), real chromadb in process,
and a chat model talking HTTP to the OpenAI-compatible stub on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import chromadb
import httpx
import pytest
from langchain_core.vectorstores import InMemoryVectorStore
from opentelemetry.trace import StatusCode

from otel_monitoring.config import load_settings
from otel_monitoring.instrumentation.rag.chromadb import ChromadbInstrumentor
from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor
from otel_monitoring.examples.llm_stub import OpenAIStub
from otel_monitoring.examples.rag_models import HashEmbeddingFunction, HashEmbeddings, OpenAICompatibleChat

DOCS = ["bitcoin order book depth is thin", "ethereum gas fees rose", "the fed held rates steady"]


@pytest.fixture
def llm():
    with OpenAIStub() as stub:
        yield stub


def instrument(telemetry, capture=False):
    settings = load_settings({"capture_content": capture})
    kwargs = dict(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, settings=settings)
    LangchainInstrumentor().instrument(**kwargs)
    ChromadbInstrumentor().instrument(**kwargs)


@pytest.fixture
def instrumented(telemetry):
    instrument(telemetry)
    yield
    LangchainInstrumentor().uninstrument()
    ChromadbInstrumentor().uninstrument()


@pytest.fixture
def capturing(telemetry):
    instrument(telemetry, capture=True)
    yield
    LangchainInstrumentor().uninstrument()
    ChromadbInstrumentor().uninstrument()


def by_name(telemetry):
    found = {}
    for span in telemetry.spans():
        found.setdefault(span.name, []).append(span)
    return found


def test_retriever_vector_store_and_embeddings_spans(telemetry, instrumented):
    store = InMemoryVectorStore(HashEmbeddings())
    store.add_texts(DOCS)
    telemetry.span_exporter.clear()
    documents = store.as_retriever(search_kwargs={"k": 2}).invoke("order book depth")
    assert documents[0].page_content == DOCS[0]
    spans = by_name(telemetry)
    # One logical retrieval, one span: the retriever's; its inner vector-store search is not traced
    # again. retriever -> query embedding: one trace, two levels.
    (retriever,) = spans["retrieval InMemoryVectorStore"]
    assert retriever.attributes["otel_monitoring.operation"] == "retriever"
    (embedding,) = spans["embeddings hash-embedding-64"]
    assert embedding.parent.span_id == retriever.context.span_id
    retrievals = [p for p in telemetry.metrics()["gen_ai.client.operation.duration"]
                  if p.attributes["gen_ai.operation.name"] == "retrieval"]
    assert sum(p.count for p in retrievals) == 1
    red = [p for p in telemetry.metrics()["otel_monitoring.operation.duration"]
           if p.attributes.get("operation") in ("retriever", "similarity_search")]
    assert sum(p.count for p in red) == 1
    assert retriever.attributes["gen_ai.operation.name"] == "retrieval"
    assert retriever.attributes["gen_ai.request.top_k"] == 2
    assert retriever.attributes["gen_ai.data_source.id"] == "InMemoryVectorStore"
    assert retriever.attributes["otel_monitoring.retrieval.documents.count"] == 2
    assert "otel_monitoring.retrieval.query.text" not in retriever.attributes  # content capture is off
    assert embedding.attributes["gen_ai.embeddings.dimension.count"] == 64

    store.similarity_search_with_score("gas fees", k=1)
    scored = [s for s in telemetry.spans() if s.attributes.get("otel_monitoring.operation") == "similarity_search_with_score"]
    assert scored[0].attributes["otel_monitoring.retrieval.top_score"] > 0.5
    durations = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert {p.attributes["gen_ai.operation.name"] for p in durations} == {"retrieval", "embeddings"}
    assert list(durations[0].explicit_bounds)[:3] == [0.01, 0.02, 0.04]


def test_chat_over_http_has_model_provider_and_token_usage(telemetry, instrumented, llm):
    chat = OpenAICompatibleChat(base_url=llm.url, model="gpt-4o-mini")
    reply = chat.invoke("What is the order book depth of BTC/USDT?")
    assert reply.content.startswith("Based on the documents")
    (span,) = by_name(telemetry)["chat gpt-4o-mini"]
    attributes = span.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.usage.input_tokens"] == 8
    assert attributes["gen_ai.usage.output_tokens"] == reply.usage_metadata["output_tokens"]
    assert "gen_ai.input.messages" not in attributes
    tokens = {p.attributes["gen_ai.token.type"]: p for p in telemetry.metrics()["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == 8 and tokens["input"].attributes["gen_ai.request.model"] == "gpt-4o-mini"

    llm.fail_next(1)

    async def fail():
        with pytest.raises(httpx.HTTPStatusError):
            await chat.ainvoke("again")

    asyncio.run(fail())
    failed = by_name(telemetry)["chat gpt-4o-mini"][-1]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "HTTPStatusError"
    errors = [p for p in telemetry.metrics()["gen_ai.client.operation.duration"] if "error.type" in p.attributes]
    assert errors[0].attributes["error.type"] == "HTTPStatusError"


def test_content_is_captured_only_when_switched_on(telemetry, capturing, llm):
    OpenAICompatibleChat(base_url=llm.url).invoke("secret question")
    store = InMemoryVectorStore(HashEmbeddings())
    store.add_texts(DOCS)
    store.similarity_search("fed rates", k=1)
    spans = by_name(telemetry)
    (chat,) = [s for name, group in spans.items() if name.startswith("chat") for s in group]
    assert json.loads(chat.attributes["gen_ai.input.messages"]) == [{"role": "user", "content": "secret question"}]
    assert "Based on the documents" in chat.attributes["gen_ai.output.messages"]
    search = spans["retrieval InMemoryVectorStore"][0]
    assert search.attributes["otel_monitoring.retrieval.query.text"] == "fed rates"
    assert "fed held rates" in search.attributes["gen_ai.output.messages"]


def test_a_streamed_chat_captures_the_whole_answer_when_switched_on(telemetry, capturing, llm):
    chunks = list(OpenAICompatibleChat(base_url=llm.url, model="gpt-4o-mini").stream("stream please"))
    (chat,) = [s for s in telemetry.spans() if s.name.startswith("chat")]
    answer = "".join(str(c.content) for c in chunks)
    assert answer.startswith("Based on the documents")
    assert json.loads(chat.attributes["gen_ai.output.messages"]) == [{"role": "assistant", "content": answer}]
    assert chat.attributes["gen_ai.usage.output_tokens"] == sum(
        c.usage_metadata["output_tokens"] for c in chunks if c.usage_metadata)


def test_embedding_model_names_from_fields_properties_or_none(telemetry, instrumented):
    """The model name is read from a pydantic field, from a property, or is absent (span "embeddings")."""
    from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
    from pydantic import BaseModel

    class FieldModelEmbeddings(BaseModel, Embeddings):  # as the provider packages define theirs
        model: str = "text-embedding-3-small"

        def embed_documents(self, texts):
            return [[1.0, 0.0] for _ in texts]

        def embed_query(self, text):
            return [1.0, 0.0]

    class PropertyModelEmbeddings(Embeddings):
        @property
        def deployment_name(self) -> str:
            return "embed-deployment"

        def embed_documents(self, texts):
            return [[1.0, 0.0] for _ in texts]

        def embed_query(self, text):
            return [1.0, 0.0]

    FieldModelEmbeddings().embed_query("a")
    PropertyModelEmbeddings().embed_query("b")
    for _ in range(2):  # the second call reads what the first one learned about the class
        DeterministicFakeEmbedding(size=4).embed_query("c")
    spans = [s for s in telemetry.spans() if s.name.startswith("embeddings")]
    assert [(s.name, s.attributes.get("gen_ai.request.model"), s.attributes["gen_ai.provider.name"]) for s in spans] == [
        ("embeddings text-embedding-3-small", "text-embedding-3-small", "fieldmodel"),
        ("embeddings embed-deployment", "embed-deployment", "propertymodel"),
        ("embeddings", None, "deterministicfakeembedding"),
        ("embeddings", None, "deterministicfakeembedding"),
    ]
    counts = {str(p.attributes.get("gen_ai.request.model")): p.count
              for p in telemetry.metrics()["gen_ai.client.operation.duration"]}
    assert counts == {"None": 2, "embed-deployment": 1, "text-embedding-3-small": 1}


def test_chromadb_collection_operations(telemetry, instrumented):
    client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("notes-test", embedding_function=HashEmbeddingFunction())
    collection.add(ids=["a", "b", "c"], documents=DOCS)
    result = collection.query(query_texts=["ethereum gas"], n_results=2)
    collection.delete(ids=["c"])
    assert result["ids"][0][0] == "b"
    spans = by_name(telemetry)
    (add,) = spans["add notes-test"]
    assert add.attributes["db.system.name"] == "chromadb"
    assert add.attributes["db.operation.batch.size"] == 3
    (query,) = spans["query notes-test"]
    assert query.attributes["gen_ai.operation.name"] == "retrieval"
    assert query.attributes["gen_ai.data_source.id"] == "notes-test"
    assert query.attributes["gen_ai.request.top_k"] == 2
    assert query.attributes["otel_monitoring.retrieval.documents.count"] == 2
    assert query.attributes["otel_monitoring.retrieval.top_distance"] == pytest.approx(result["distances"][0][0])
    assert "delete notes-test" in spans
    red = {p.attributes["operation"]: p.count for p in telemetry.metrics()["otel_monitoring.operation.duration"]
           if p.attributes["component"] == "chromadb"}
    assert red == {"add": 1, "query": 1, "delete": 1}


def test_uninstrument_restores_langchain_and_chromadb(telemetry):
    from chromadb.api.models.Collection import Collection
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models.chat_models import BaseChatModel

    before = (vars(BaseChatModel)["invoke"], vars(Collection)["query"], vars(HashEmbeddings)["embed_query"],
              "__init_subclass__" in vars(Embeddings))
    instrument(telemetry)
    assert vars(BaseChatModel)["invoke"] is not before[0]

    class LaterEmbeddings(Embeddings):  # defined after instrument(): wrapped by the subclass hook
        def embed_documents(self, texts):
            return [[1.0] for _ in texts]

        def embed_query(self, text):
            return [1.0]

    LaterEmbeddings().embed_query("x")
    assert [s.name for s in telemetry.spans()] == ["embeddings"]
    LangchainInstrumentor().uninstrument()
    ChromadbInstrumentor().uninstrument()
    after = (vars(BaseChatModel)["invoke"], vars(Collection)["query"], vars(HashEmbeddings)["embed_query"],
             "__init_subclass__" in vars(Embeddings))
    assert all(a is b for a, b in zip(before[:3], after[:3])) and before[3] == after[3]


def test_a_streamed_chat_is_one_span(telemetry, instrumented, llm):
    chat = OpenAICompatibleChat(base_url=llm.url, model="gpt-4o-mini")
    chunks = list(chat.stream("stream please"))  # server-sent events from the stub, one chunk a word
    assert len(chunks) > 5
    assert "".join(str(c.content) for c in chunks).startswith("Based on the documents")
    (span,) = [s for s in telemetry.spans() if s.name.startswith("chat")]
    assert span.name == "chat gpt-4o-mini"
    assert span.attributes["gen_ai.usage.input_tokens"] == 2  # the chunks' usage, added up
    assert span.attributes["gen_ai.usage.output_tokens"] == sum(
        c.usage_metadata["output_tokens"] for c in chunks if c.usage_metadata)
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in telemetry.metrics()["gen_ai.client.token.usage"]}
    assert tokens["input"] == 2


def test_genai_duration_exemplar_points_at_the_calls_own_span(telemetry, instrumented, llm):
    # The duration is recorded in the call's context: its exemplar links to the chat span, not to
    # the caller's span around it (which is what a trace-based exemplar after detaching would name).
    chat = OpenAICompatibleChat(base_url=llm.url, model="gpt-4o-mini")
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("handle request") as parent:
        chat.invoke("What is the order book depth of BTC/USDT?")
    (span,) = by_name(telemetry)["chat gpt-4o-mini"]
    assert span.parent.span_id == parent.get_span_context().span_id
    collected = telemetry.metrics()  # once: a collection hands the exemplars out and resets them
    points = collected["gen_ai.client.operation.duration"]
    assert [p.count for p in points] == [1]
    exemplars = points[0].exemplars
    assert [(e.trace_id, e.span_id) for e in exemplars] == [
        (span.context.trace_id, span.context.span_id)]
    tokens = collected["gen_ai.client.token.usage"]
    assert {e.span_id for p in tokens for e in p.exemplars} == {span.context.span_id}


class ChromaStore:
    """A langchain-core vector store over a real chromadb collection, shaped like langchain-chroma's
    ``Chroma``: the query is embedded by langchain embeddings, then searched with ``query_embeddings``."""

    @staticmethod
    def make(collection, embeddings):
        from langchain_core.documents import Document
        from langchain_core.vectorstores import VectorStore

        class Store(VectorStore):
            def __init__(self):
                self._collection = collection
                self._collection_name = collection.name
                self._embeddings = embeddings

            @property
            def embeddings(self):
                return self._embeddings

            def add_texts(self, texts, metadatas=None, **kwargs):
                raise NotImplementedError

            @classmethod
            def from_texts(cls, texts, embedding, metadatas=None, **kwargs):
                raise NotImplementedError

            def similarity_search(self, query, k=4, **kwargs):
                vector = self._embeddings.embed_query(query)
                found = self._collection.query(query_embeddings=[vector], n_results=k)
                return [Document(page_content=text, id=id_)
                        for id_, text in zip(found["ids"][0], found["documents"][0])]

        return Store()


def test_a_vector_store_over_chromadb_is_one_trace_retrieval_over_its_embedding_call(telemetry, instrumented):
    client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("notes-tree", embedding_function=HashEmbeddingFunction())
    collection.add(ids=["a", "b", "c"], documents=DOCS)
    store = ChromaStore.make(collection, HashEmbeddings())
    telemetry.span_exporter.clear()
    def genai_calls():
        counts = {}
        for point in telemetry.metrics().get("gen_ai.client.operation.duration", []):
            key = (point.attributes["gen_ai.operation.name"], point.attributes.get("gen_ai.provider.name"))
            counts[key] = counts.get(key, 0) + point.count
        return counts

    before = genai_calls()

    documents = store.as_retriever(search_kwargs={"k": 2}).invoke("ethereum gas")

    assert documents[0].id == "b" and len(documents) == 2
    spans = telemetry.spans()
    tree = {span.name: span for span in spans}
    assert len(spans) == 2, [s.name for s in spans]
    retrieval = tree["retrieval notes-tree"]
    embedding = tree["embeddings hash-embedding-64"]
    # The retrieval is the root, the query's embedding call its child; the collection query it
    # makes is that retrieval (no span of its own, no second count).
    assert retrieval.parent is None
    assert embedding.parent.span_id == retrieval.context.span_id
    assert {s.context.trace_id for s in spans} == {retrieval.context.trace_id}
    assert retrieval.attributes["gen_ai.operation.name"] == "retrieval"
    assert retrieval.attributes["gen_ai.data_source.id"] == "notes-tree"
    assert retrieval.attributes["gen_ai.request.top_k"] == 2
    assert retrieval.attributes["otel_monitoring.retrieval.documents.count"] == 2
    assert embedding.attributes["gen_ai.operation.name"] == "embeddings"
    assert embedding.attributes["gen_ai.request.model"] == "hash-embedding-64"
    assert embedding.attributes["gen_ai.embeddings.dimension.count"] == 64
    # One logical retrieval, counted once in the GenAI view (the retriever's), and one embedding.
    after = genai_calls()
    assert {key: count - before.get(key, 0) for key, count in after.items() if count != before.get(key, 0)} == {
        ("retrieval", "langchain"): 1, ("embeddings", "hash"): 1}
