"""Chains and tools in langchain-core: an LCEL chain with a retriever is one trace rooted at one chain
span (nested pipelines add none); a tool-calling loop with a fake model that asks for a tool gives
``execute_tool`` spans with the call id; content is captured only when switched on."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore

from otel_monitoring.config import load_settings
from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor
from otel_monitoring.examples.llm_stub import OpenAIStub
from otel_monitoring.examples.rag_models import HashEmbeddings, OpenAICompatibleChat

DOCS = ["bitcoin order book depth is thin", "ethereum gas fees rose", "the fed held rates steady"]


@pytest.fixture
def llm():
    with OpenAIStub() as stub:
        yield stub


def instrument(telemetry, capture=False):
    LangchainInstrumentor().instrument(tracer_provider=telemetry.tracer_provider,
                                       meter_provider=telemetry.meter_provider,
                                       settings=load_settings({"capture_content": capture}))


@pytest.fixture
def instrumented(telemetry):
    instrument(telemetry)
    yield
    LangchainInstrumentor().uninstrument()


@pytest.fixture
def capturing(telemetry):
    instrument(telemetry, capture=True)
    yield
    LangchainInstrumentor().uninstrument()


def rag_chain(llm_url):
    store = InMemoryVectorStore(HashEmbeddings())
    store.add_texts(DOCS)
    retriever = store.as_retriever(search_kwargs={"k": 2})
    prompt = ChatPromptTemplate.from_messages([("system", "Answer from: {context}"), ("human", "{question}")])
    format_docs = RunnableLambda(lambda docs: " ".join(d.page_content for d in docs))
    return ({"context": retriever | format_docs, "question": RunnablePassthrough()}
            | prompt | OpenAICompatibleChat(base_url=llm_url) | StrOutputParser())


def descends_from(span, ancestor, by_id):
    while span.parent is not None:
        if span.parent.span_id == ancestor.context.span_id:
            return True
        span = by_id.get(span.parent.span_id)
        if span is None:
            return False
    return False


def test_lcel_chain_with_retriever_is_one_trace_under_one_chain_span(telemetry, instrumented, llm):
    chain = rag_chain(llm.url)
    telemetry.span_exporter.clear()
    answer = chain.invoke("what about the order book?", config={"run_name": "rag_answer"})
    assert answer.startswith("Based on the documents")

    spans = telemetry.spans()
    by_id = {s.context.span_id: s for s in spans}
    chains = [s for s in spans if s.attributes.get("otel_monitoring.operation") == "chain"]
    assert [s.name for s in chains] == ["chain rag_answer"]  # the nested retriever | format_docs adds none
    (root,) = chains
    assert root.parent is None
    assert root.attributes["otel_monitoring.chain.name"] == "rag_answer"
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    retrievals = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "retrieval"]
    (chat,) = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert retrievals and all(descends_from(s, root, by_id) for s in retrievals)
    assert chat.parent.span_id == root.context.span_id
    # The chain's RED row: one call.
    calls = [p for p in telemetry.metrics()["otel_monitoring.operation.calls"]
             if p.attributes["operation"] == "chain"]
    assert [p.value for p in calls] == [1]


def test_streamed_and_async_chains_are_one_span_each(telemetry, instrumented, llm):
    chain = rag_chain(llm.url)
    telemetry.span_exporter.clear()
    streamed = "".join(chain.stream("gas fees?"))
    answered = asyncio.run(chain.ainvoke("gas fees?"))
    assert streamed == answered
    chains = [s for s in telemetry.spans() if s.attributes.get("otel_monitoring.operation") == "chain"]
    assert [s.name for s in chains] == ["chain RunnableSequence", "chain RunnableSequence"]
    assert all(s.parent is None for s in chains)


@tool
def get_price(symbol: str) -> str:
    """Last traded price of a symbol."""
    return {"BTC/USDT": "64000"}[symbol]


def tool_loop(question):
    """A minimal agent loop: the model asks for a tool, the tool answers, the model answers."""
    model = GenericFakeChatModel(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "get_price", "args": {"symbol": "BTC/USDT"}, "id": "call_1"}]),
        AIMessage(content="BTC trades at 64000"),
    ]))
    messages = [HumanMessage(question)]
    while True:
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return reply.content, messages
        for call in reply.tool_calls:
            messages.append({"get_price": get_price}[call["name"]].invoke({**call, "type": "tool_call"}))


def test_tool_calling_loop(telemetry, instrumented):
    loop = RunnableLambda(lambda q: tool_loop(q)[0]) | StrOutputParser()
    assert loop.invoke("price of bitcoin?") == "BTC trades at 64000"

    spans = telemetry.spans()
    (tool_span,) = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool"]
    assert tool_span.name == "execute_tool get_price"
    assert tool_span.attributes["gen_ai.tool.name"] == "get_price"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_1"
    assert tool_span.attributes["gen_ai.tool.type"] == "function"
    assert tool_span.attributes["gen_ai.tool.description"] == "Last traded price of a symbol."
    assert "gen_ai.tool.call.arguments" not in tool_span.attributes  # content capture is off
    assert "gen_ai.tool.call.result" not in tool_span.attributes
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 2
    (root,) = [s for s in spans if s.attributes.get("otel_monitoring.operation") == "chain"]
    assert all(s.parent.span_id == root.context.span_id for s in [tool_span, *chats])
    assert tool_span.start_time > chats[0].end_time and tool_span.end_time < chats[1].start_time
    calls = [p for p in telemetry.metrics()["otel_monitoring.operation.calls"]
             if p.attributes["operation"] == "execute_tool"]
    assert [(p.attributes["gen_ai.tool.name"], p.value) for p in calls] == [("get_price", 1)]


def test_failing_tool_marks_its_span_and_the_error_reaches_the_caller(telemetry, instrumented):
    with pytest.raises(KeyError):
        get_price.invoke({"symbol": "DOGE/USDT"})
    (span,) = [s for s in telemetry.spans() if s.name == "execute_tool get_price"]
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "KeyError"


def test_tool_content_is_captured_only_when_switched_on(telemetry, capturing):
    message = get_price.invoke({"name": "get_price", "args": {"symbol": "BTC/USDT"}, "id": "call_9", "type": "tool_call"})
    assert isinstance(message, ToolMessage) and message.content == "64000"
    (span,) = [s for s in telemetry.spans() if s.name == "execute_tool get_price"]
    assert span.attributes["gen_ai.tool.call.arguments"] == '{"symbol": "BTC/USDT"}'
    assert span.attributes["gen_ai.tool.call.result"] == "64000"


def test_async_tool(telemetry, instrumented):
    assert asyncio.run(get_price.ainvoke({"symbol": "BTC/USDT"})) == "64000"
    assert [s.name for s in telemetry.spans()] == ["execute_tool get_price"]


def test_retriever_over_a_chromadb_collection_is_one_retrieval(telemetry):
    """A langchain retriever that queries a chromadb collection: one retrieval span and one count
    (the collection's query is that retrieval); a query made directly is still traced."""
    import chromadb
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from otel_monitoring.examples.rag_models import HashEmbeddingFunction
    from otel_monitoring.instrumentation.rag.chromadb import ChromadbInstrumentor

    class ChromaRetriever(BaseRetriever):
        collection: object

        def _get_relevant_documents(self, query, *, run_manager=None):
            found = self.collection.query(query_texts=[query], n_results=2)
            return [Document(page_content=text) for text in found["documents"][0]]

    instrument(telemetry)
    ChromadbInstrumentor().instrument(tracer_provider=telemetry.tracer_provider,
                                      meter_provider=telemetry.meter_provider, settings=load_settings({}))
    try:
        client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
        collection = client.get_or_create_collection("one-retrieval", embedding_function=HashEmbeddingFunction())
        collection.add(ids=["a", "b", "c"], documents=DOCS)
        telemetry.span_exporter.clear()
        found = ChromaRetriever(collection=collection).invoke("order book")
        collection.query(query_texts=["gas fees"], n_results=1)
    finally:
        LangchainInstrumentor().uninstrument()
        ChromadbInstrumentor().uninstrument()
    assert len(found) == 2
    retrievals = [s for s in telemetry.spans() if s.attributes.get("gen_ai.operation.name") == "retrieval"]
    assert sorted(s.name for s in retrievals) == ["query one-retrieval", "retrieval ChromaRetriever"]
    (direct,) = [s for s in retrievals if s.name == "query one-retrieval"]
    assert direct.parent is None  # the direct query, not one inside the retriever
    durations = {p.attributes["gen_ai.provider.name"]: p.count
                 for p in telemetry.metrics()["gen_ai.client.operation.duration"]
                 if p.attributes["gen_ai.operation.name"] == "retrieval"}
    assert durations == {"langchain": 1, "chromadb": 1}
