"""The ground-truth workload: every number it produces is known before it runs.

Run as a program (``python workload.py OUT_DIR [OTLP_ENDPOINT PROMETHEUS_URL]``) so that configure(), the
instrumentors and the exit flush are those of a real application. It writes OTLP/JSON files and
snapshots under OUT_DIR, sends OTLP to the collector when an endpoint is given, and writes
``truth.json``: what the workload itself saw (the exchange's reported fee), never what the
telemetry says.

What it does (the constants below are the truth the tests assert):
- an HTTP API (FastAPI under uvicorn on 127.0.0.1) called with requests: /slow sleeps 120 ms,
  /fast 5 ms, /boom raises (500), /health is a probe (not traced);
- a chat model (a fake with a known usage: 100 input + 10 output tokens per call, model gpt-4o);
- retrievals through a langchain retriever over an in-memory vector store (one span each);
- a ccxt market order with a fee against the local exchange stub, and one refused order;
- a traced job step (30 ms) and its failing variant;
- a ccxt.pro WebSocket ticker feed against the local Binance stream stub: a known number of
  messages, each sent with an event time FEED_LATENCY_S before the server's clock;
- direct LLM client calls: the real ``openai`` client against the local OpenAI-compatible stub,
  inside two API endpoints (/ask: a JSON answer, /ask_stream: an SSE stream), so each request's
  cost is recorded per route; langchain's ChatOpenAI over the same client (counted once);
- an LCEL chain (run name ``rag_answer``) whose retriever queries a real chromadb collection and
  whose chat model is ChatOpenAI; a tool-calling loop (a fake model asks for ``get_price``);
- chromadb collections with known vector counts after adds and deletes;
- SQLAlchemy on a SQLite file: an INSERT and a SELECT per call (one span per statement).
The LLM stub's token counts are what the client reported (recorded in truth.json, never taken
from the telemetry).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SERVICE = "ground-truth"
SLOW_S, FAST_S, STEP_S, CHAT_S = 0.120, 0.005, 0.030, 0.020
CALLS = {"slow": 5, "fast": 10, "boom": 2, "health": 3, "chat": 20, "retrieve": 4, "step": 6, "step_fail": 1,
         "order": 2, "order_refused": 1, "ticker": 3, "signal": 4, "outcome": 4, "trade": 2, "position": 1, "fill": 2,
         "feed": 2, "ask": 2, "ask_stream": 1, "lc_chat": 2, "rag_chain": 2, "tool": 1, "db": 2}
# KPIs recorded through the public API, with known values.
RETRIEVAL_SCORES = [[0.9, 0.2], [0.3], [0.85], [0.95, 0.5]]  # best scores 0.9, 0.3, 0.85, 0.95: 3 hits of 4 (threshold 0.7)
SIGNAL_OUTCOMES = [True, True, False, True]                  # accuracy 0.75
TRADES_USD = [10.0, -4.0]                                     # realized 6, win rate 0.5, profit factor 2.5
UNREALIZED_USD, EXPOSURE_USD = 1.5, 650.0
FILL = {"expected_price": 65000.0, "fill_price": 65013.0, "amount": 0.01, "filled": 0.01}  # 2 bp adverse
STRATEGY, SYMBOL = "momentum", "BTC/USDT"
CHAT_MODEL = "gpt-4o"
INPUT_TOKENS, OUTPUT_TOKENS = 100, 10
# prices.yaml: gpt-4o is $2.50 / 1M input tokens and $10.00 / 1M output tokens.
PRICE_INPUT_PER_TOKEN, PRICE_OUTPUT_PER_TOKEN = 2.50e-6, 10.00e-6
CHAT_COST_USD = CALLS["chat"] * (INPUT_TOKENS * PRICE_INPUT_PER_TOKEN + OUTPUT_TOKENS * PRICE_OUTPUT_PER_TOKEN)
# A daily budget for model inference that the chat calls overrun: its alert must fire.
MODEL_BUDGET_USD = 0.005
ORDER_AMOUNT_BTC = 0.01
# The WebSocket feed: this many ticker messages for one symbol, each stamped this long before it is
# sent (so every measured latency is at least that, plus the delivery).
FEED_MESSAGES, FEED_LATENCY_S = 12, 0.04
# Direct LLM client calls: gpt-4o-mini at $0.15 / $0.60 per 1M tokens (prices.yaml).
LLM_MODEL = "gpt-4o-mini"
LLM_PRICE_INPUT_PER_TOKEN, LLM_PRICE_OUTPUT_PER_TOKEN = 0.15e-6, 0.60e-6
CHAIN_NAME = "rag_answer"
TOOL_CHAIN_NAME = "price_agent"
# chromadb collections after the workload's adds and deletes: their vector counts.
CHROMA_DOCS, CHROMA_SCRATCH = "gt-docs", "gt-scratch"
SCRATCH_ADDED, SCRATCH_DELETED = 5, 3
DOCS = ["order book depth of BTC/USDT", "gas fees on ethereum", "funding rates of perpetual swaps",
        "latency of the matching engine"]


def _chat_model() -> Any:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class KnownUsageChat(BaseChatModel):
        """A paid model's stand-in: known latency, known usage, as langchain reports a real one's."""

        model_name: str = CHAT_MODEL

        @property
        def _llm_type(self) -> str:
            return "known-usage"

        def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> dict[str, Any]:
            return {"ls_provider": "openai", "ls_model_name": self.model_name, "ls_model_type": "chat"}

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
            time.sleep(CHAT_S)
            message = AIMessage(content="ok", usage_metadata={
                "input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
                "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS}, response_metadata={"model_name": self.model_name})
            return ChatResult(generations=[ChatGeneration(message=message)])

    return KnownUsageChat()


def _feed(rest_url: str, truth: dict[str, Any]) -> None:
    """An application's ticker loop over ccxt.pro: subscribe, take FEED_MESSAGES updates (each one
    sent once the previous arrived, so none is merged), close. Records the connections the server
    accepted."""
    import asyncio

    import ccxt.pro

    from otel_monitoring.examples.exchange_ws_stub import BinanceStreamStub, point_ccxt_pro_at

    streams = BinanceStreamStub(latency=FEED_LATENCY_S).start()

    async def run() -> None:
        exchange = point_ccxt_pro_at(ccxt.pro.binance({"enableRateLimit": False}), rest_url, streams.url)
        updates: list[Any] = []

        async def consume() -> None:
            while True:
                updates.append(await exchange.watch_ticker(SYMBOL))

        async def until(condition: Any, what: str) -> None:
            for _ in range(3000):  # a generous bound (30 s) on what takes milliseconds
                if condition():
                    return
                await asyncio.sleep(0.01)
            raise RuntimeError(f"the feed: timed out waiting for {what}")

        task = asyncio.ensure_future(consume())
        await until(lambda: streams.subscribed("btcusdt@") == 1, "the subscription")
        for sent in range(1, FEED_MESSAGES + 1):
            assert await asyncio.to_thread(streams.publish_ticker, "BTCUSDT") == 1
            await until(lambda expected=sent: len(updates) == expected, f"ticker {sent}")
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # One collection while the stream is open: its own state (trading.market_data.stream.status)
        # is read from open streams only, and a periodic export may or may not fall inside the feed.
        from opentelemetry import metrics

        await asyncio.to_thread(metrics.get_meter_provider().force_flush)
        await exchange.close()

    try:
        asyncio.run(run())
        truth["feed_connections"] = truth.get("feed_connections", 0) + len(streams.connection_log)
    finally:
        streams.stop()


def _llm_call(truth: dict[str, Any], operation: str, input_tokens: int, output_tokens: int) -> None:
    """What the application saw the LLM report: the truth of its tokens and cost, by root operation."""
    truth.setdefault("llm_calls", []).append({"operation": operation, "model": LLM_MODEL,
                                              "input": int(input_tokens), "output": int(output_tokens)})


def _api(llm_url: str, truth: dict[str, Any]) -> Any:
    import openai
    from fastapi import FastAPI

    app = FastAPI(title="ground-truth")
    client = openai.OpenAI(base_url=llm_url, api_key="test-key", max_retries=0)

    @app.get("/ask")
    def ask(q: str) -> dict:
        reply = client.chat.completions.create(model=LLM_MODEL, messages=[{"role": "user", "content": q}])
        _llm_call(truth, "GET /ask", reply.usage.prompt_tokens, reply.usage.completion_tokens)
        return {"answer": reply.choices[0].message.content}

    @app.get("/ask_stream")
    def ask_stream(q: str) -> dict:
        stream = client.chat.completions.create(model=LLM_MODEL, messages=[{"role": "user", "content": q}],
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        usage = chunks[-1].usage  # the last event of the stream: the usage of the whole answer
        _llm_call(truth, "GET /ask_stream", usage.prompt_tokens, usage.completion_tokens)
        return {"answer": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)}

    @app.get("/slow")
    def slow() -> dict:
        time.sleep(SLOW_S)
        return {"ok": True}

    @app.get("/fast")
    def fast() -> dict:
        time.sleep(FAST_S)
        return {"ok": True}

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("boom")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


def _rag(llm_url: str, truth: dict[str, Any]) -> dict[str, Any]:
    """The RAG and storage calls of the workload, by kind: langchain's ChatOpenAI over the openai
    client, an LCEL chain over a chromadb retriever, a tool-calling loop, SQLAlchemy on SQLite. Also
    sets up the chromadb collections (known vector counts after adds and deletes)."""
    import chromadb
    import sqlalchemy
    from langchain_core.documents import Document
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    from otel_monitoring.examples.rag_models import HashEmbeddingFunction

    chroma = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    docs = chroma.get_or_create_collection(CHROMA_DOCS, embedding_function=HashEmbeddingFunction())
    docs.add(ids=[f"d{i}" for i in range(len(DOCS))], documents=DOCS)
    scratch = chroma.get_or_create_collection(CHROMA_SCRATCH, embedding_function=HashEmbeddingFunction())
    scratch.add(ids=[f"s{i}" for i in range(SCRATCH_ADDED)], documents=[f"note {i}" for i in range(SCRATCH_ADDED)])
    scratch.delete(ids=[f"s{i}" for i in range(SCRATCH_DELETED)])
    truth["vectors"] = {CHROMA_DOCS: docs.count(), CHROMA_SCRATCH: scratch.count()}

    class ChromaRetriever(BaseRetriever):
        """The top 2 documents of a chromadb collection for a query."""

        collection: Any

        def _get_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Document]:
            found = self.collection.query(query_texts=[query], n_results=2)
            return [Document(page_content=text) for text in found["documents"][0]]

    model = ChatOpenAI(model=LLM_MODEL, base_url=llm_url, api_key="test-key", max_retries=0)
    prompt = ChatPromptTemplate.from_messages([("system", "Answer from: {context}"), ("human", "{question}")])
    chain = ({"context": ChromaRetriever(collection=docs) | RunnableLambda(lambda found: " ".join(
        d.page_content for d in found)), "question": RunnablePassthrough()} | prompt | model)

    @tool
    def get_price(symbol: str) -> str:
        """Last traded price of a symbol."""
        return {"BTC/USDT": "64000"}[symbol]

    def agent(question: str) -> str:
        """A minimal agent loop: the model asks for the tool, the tool answers, the model answers."""
        fake = GenericFakeChatModel(messages=iter([
            AIMessage(content="", tool_calls=[{"name": "get_price", "args": {"symbol": SYMBOL}, "id": "call_1"}]),
            AIMessage(content="BTC trades at 64000")]))
        messages: list[Any] = [HumanMessage(question)]
        while True:
            reply = fake.invoke(messages)
            messages.append(reply)
            if not reply.tool_calls:
                return str(reply.content)
            for call in reply.tool_calls:
                messages.append(get_price.invoke({**call, "type": "tool_call"}))

    tool_chain = RunnableLambda(agent) | StrOutputParser()

    path = os.path.join(truth["out_dir"], "orders.db")
    truth["db_path"] = path
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, symbol TEXT)"))

    def lc_chat() -> None:
        message = model.invoke("What moved the order book today?")
        _llm_call(truth, f"chat {LLM_MODEL}", message.usage_metadata["input_tokens"],
                  message.usage_metadata["output_tokens"])

    def rag_chain() -> None:
        message = chain.invoke("what about the order book?", config={"run_name": CHAIN_NAME})
        _llm_call(truth, f"chain {CHAIN_NAME}", message.usage_metadata["input_tokens"],
                  message.usage_metadata["output_tokens"])

    def db() -> None:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("INSERT INTO orders (symbol) VALUES (:s)"), {"s": SYMBOL})
            connection.execute(sqlalchemy.text("SELECT count(*) FROM orders")).scalar_one()

    def tool_loop() -> None:
        assert tool_chain.invoke("price of bitcoin?", config={"run_name": TOOL_CHAIN_NAME}) == "BTC trades at 64000"

    return {"lc_chat": lc_chat, "rag_chain": rag_chain, "tool": tool_loop, "db": db,
            "keep": (chroma, docs, scratch, engine)}


def _count_spans(path: str) -> tuple[int, int]:
    """(spans, spans of instrumented operations) in an OTLP/JSON traces file."""
    spans = red = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            for resource_spans in json.loads(line).get("resourceSpans", []):
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        spans += 1
                        red += any(a["key"] == "otel_monitoring.component" for a in span.get("attributes", []))
    return spans, red


def _wait_for_first_round(monitoring: Any, out_dir: str, prometheus_url: str) -> None:
    """Flush, then wait until Prometheus shows the first round: every span in the span metrics and
    every instrumented call in the SDK's counter. Rates over a window then see the second round."""
    import urllib.parse
    import urllib.request

    monitoring.force_flush(30)
    spans, red = _count_spans(os.path.join(out_dir, "otlp", "traces.jsonl"))

    def value(expr: str) -> float:
        url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (127.0.0.1)
            result = json.loads(response.read())["data"]["result"]
        return float(result[0]["value"][1]) if result else -1.0

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if (value(f'sum(traces_span_metrics_calls_total{{service_name="{SERVICE}"}})') == spans
                and value(f'sum(otel_monitoring_operation_calls_total{{job="{SERVICE}"}})') == red):
            time.sleep(2.5)  # two more scrapes: a sample of the first round for every series
            return
        time.sleep(0.5)
    raise RuntimeError(f"Prometheus did not show the first round ({spans} spans, {red} calls) in 180 s")


def main(out_dir: str, endpoint: str | None, prometheus_url: str | None = None) -> None:
    sys.path.insert(0, REPO)
    import otel_monitoring

    exporters = "otlp_file,otlp" if endpoint else "otlp_file"
    options: dict[str, Any] = dict(
        service_name=SERVICE, traces_exporter=exporters, metrics_exporter=exporters, logs_exporter=exporters,
        file_dir=os.path.join(out_dir, "otlp"), snapshot_dir=os.path.join(out_dir, "snapshots"),
        snapshot_interval=0.5, history_interval=0.5, metric_export_interval=1,
        budgets=f"daily:type.model_inference={MODEL_BUDGET_USD}", system_metrics=True,
        health_default_checks=True, health_check_interval=0.5)
    if endpoint:
        options["endpoint"] = endpoint
    monitoring = otel_monitoring.configure(**options)

    import ccxt
    import requests
    from langchain_core.vectorstores import InMemoryVectorStore

    from otel_monitoring.examples.api_service import ApiServer
    from otel_monitoring.examples.exchange_stub import ExchangeStub, point_ccxt_at
    from otel_monitoring.examples.rag_models import HashEmbeddings

    from otel_monitoring.examples.llm_stub import OpenAIStub

    truth: dict[str, Any] = {"out_dir": out_dir}
    llm = OpenAIStub().start()
    server = ApiServer(_api(llm.url, truth)).start()
    rag = _rag(llm.url, truth)
    stub = ExchangeStub().start()
    exchange = point_ccxt_at(ccxt.binance({"apiKey": "k", "secret": "s"}), stub.url)
    chat = _chat_model()
    store = InMemoryVectorStore(HashEmbeddings())
    store.add_texts(DOCS)
    retriever = store.as_retriever(search_kwargs={"k": 2})

    @otel_monitoring.traced("jobs", "step")
    def step(fail: bool = False) -> None:
        time.sleep(STEP_S)
        if fail:
            raise ValueError("step failed")

    def order() -> None:
        placed = exchange.create_order("BTC/USDT", "market", "buy", ORDER_AMOUNT_BTC)
        truth.setdefault("order_fees", []).append({"cost": float(placed["fee"]["cost"]),
                                                   "currency": placed["fee"]["currency"]})

    def order_refused() -> None:
        try:
            exchange.create_order("BTC/USDT", "market", "buy", 1_000_000)
        except ccxt.InsufficientFunds as error:
            truth["order_refused"] = type(error).__name__

    def step_fail() -> None:
        try:
            step(fail=True)
        except ValueError:
            pass

    scores, outcomes, trades = iter(RETRIEVAL_SCORES), iter(SIGNAL_OUTCOMES), iter(TRADES_USD)

    def retrieve() -> None:
        retriever.invoke("order book depth")
        otel_monitoring.record_retrieval(next(scores), collection="docs")

    def position() -> None:
        otel_monitoring.set_unrealized_pnl(SYMBOL, UNREALIZED_USD, STRATEGY)
        otel_monitoring.set_exposure(SYMBOL, EXPOSURE_USD, STRATEGY)

    calls = {
        "slow": lambda: requests.get(f"{server.url}/slow", timeout=30),
        "fast": lambda: requests.get(f"{server.url}/fast", timeout=30),
        "boom": lambda: requests.get(f"{server.url}/boom", timeout=30),
        "health": lambda: requests.get(f"{server.url}/health", timeout=30),
        "chat": lambda: chat.invoke("What is the order book depth?"),
        "retrieve": retrieve,
        "ticker": lambda: exchange.fetch_ticker("BTC/USDT"),
        "order": order, "order_refused": order_refused,
        "step": step, "step_fail": step_fail,
        "signal": lambda: otel_monitoring.record_signal(STRATEGY, SYMBOL, "long"),
        "outcome": lambda: otel_monitoring.record_signal_outcome(STRATEGY, SYMBOL, next(outcomes)),
        "trade": lambda: otel_monitoring.record_trade(STRATEGY, SYMBOL, next(trades)),
        "position": position,
        "fill": lambda: otel_monitoring.record_fill(SYMBOL, "buy", exchange="binance", **FILL),
        "feed": lambda: _feed(stub.url, truth),
        "ask": lambda: requests.get(f"{server.url}/ask", params={"q": "what moved the order book"}, timeout=30),
        "ask_stream": lambda: requests.get(f"{server.url}/ask_stream", params={"q": "why did gas fees rise"},
                                           timeout=30),
        "lc_chat": rag["lc_chat"], "rag_chain": rag["rag_chain"], "tool": rag["tool"], "db": rag["db"],
    }
    try:
        # Two rounds: one call of each kind, then (once Prometheus has scraped the first values,
        # when there is a collector) the rest, so rates over a window see the second round.
        for call in calls.values():
            call()
        if prometheus_url:
            _wait_for_first_round(monitoring, out_dir, prometheus_url)
        truth["round2_start_ns"] = time.time_ns()  # spans starting after this are the second round
        for kind, call in calls.items():
            for _ in range(CALLS[kind] - 1):
                call()
    finally:
        server.stop()
        stub.stop()
        llm.stop()

    time.sleep(1.2)  # a snapshot after the last call (interval 0.5 s), besides the one at shutdown
    monitoring.shutdown()
    with open(os.path.join(out_dir, "truth.json"), "w", encoding="utf-8") as handle:
        json.dump(truth, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, sys.argv[3] if len(sys.argv) > 3 else None)
