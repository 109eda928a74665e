"""A RAG query pipeline: chromadb and a langchain-core vector store for retrieval, a chat model for
the answer, behind an OpenAI-compatible API on 127.0.0.1.

Embeddings are deterministic (hashed words, no model download); the chat model speaks the OpenAI
wire format to ``llm_stub.OpenAIStub``. The chromadb, langchain and httpx calls are traced by the
instrumentors ``configure()`` enables; the pipeline step itself uses ``otel_monitoring.traced``.
Run it alone with ``python -m otel_monitoring.examples.rag_pipeline``.
"""

from __future__ import annotations

import logging
import random
import threading
import time

import chromadb
import httpx
from langchain_core.vectorstores import InMemoryVectorStore

import otel_monitoring

from .llm_stub import OpenAIStub
from .rag_models import HashEmbeddingFunction, HashEmbeddings, OpenAICompatibleChat

log = logging.getLogger("examples.rag_pipeline")

DOCUMENTS = [
    "The BTC/USDT order book was thin overnight; depth within 1% of mid fell below 200 BTC.",
    "Ethereum gas fees rose after the network upgrade, raising the cost of on-chain settlement.",
    "The exchange's rate limit is 1200 request weight per minute; bursts get HTTP 429.",
    "Market orders pay the taker fee of 0.1%; limit orders that rest pay the maker fee.",
    "Funding rates on perpetual futures turned negative as shorts crowded in.",
    "A stale ticker older than ten minutes should stop the strategy from trading.",
    "Slippage on large market orders grows with order size relative to book depth.",
    "Risk limits cap position size at 2% of equity per symbol.",
]
QUESTIONS = [
    "What is the order book depth of BTC/USDT?", "How much are the taker fees?",
    "What happens when the rate limit is exceeded?", "When is a ticker considered stale?",
    "Why did gas fees rise?", "How large can a position be?",
]


# chromadb's in-process clients share one system per process, and creating it from two threads at
# once races (the API example builds a pipeline while this one does).
_CHROMA_SETUP = threading.Lock()


class RagPipeline:
    def __init__(self, llm_url: str):
        with _CHROMA_SETUP:
            client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
            self.collection = client.get_or_create_collection(
                "market-notes", embedding_function=HashEmbeddingFunction())  # type: ignore[arg-type]
            self.collection.upsert(ids=[f"doc-{i}" for i in range(len(DOCUMENTS))], documents=DOCUMENTS)
        self.store = InMemoryVectorStore(HashEmbeddings())
        self.store.add_texts(DOCUMENTS)
        self.retriever = self.store.as_retriever(search_kwargs={"k": 3})
        self.chat = OpenAICompatibleChat(base_url=llm_url, model="gpt-4o-mini")

    def answer(self, question: str, stream: bool = False) -> str:
        with otel_monitoring.traced("rag", "answer", domain="rag"):
            notes = self.collection.query(query_texts=[question], n_results=2)["documents"][0]
            documents = [d.page_content for d in self.retriever.invoke(question)]
            context = "\n".join(dict.fromkeys(notes + documents))
            prompt = [("system", "Answer from the context only."),
                      ("human", f"Context:\n{context}\n\nQuestion: {question}")]
            if stream:  # server-sent events, as a chat UI would show them
                reply = "".join(str(chunk.content) for chunk in self.chat.stream(prompt))
            else:
                reply = str(self.chat.invoke(prompt).content)
            log.info("answered a question of %d characters", len(question))
            return reply


def demo(duration: float) -> None:
    rng = random.Random(11)
    stub = OpenAIStub(latency=0.01).start()
    try:
        pipeline = RagPipeline(stub.url)
        deadline = time.monotonic() + duration
        asked = 0
        while time.monotonic() < deadline:
            asked += 1
            if asked % 20 == 0:
                stub.fail_next(1)  # the provider's rate limit, now and then
            try:
                pipeline.answer(rng.choice(QUESTIONS), stream=asked % 3 == 0)
            except httpx.HTTPStatusError as error:
                log.warning("the model refused the request: %s", error.response.status_code)
            pipeline.store.similarity_search_with_score(rng.choice(QUESTIONS), k=2)
    finally:
        stub.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    otel_monitoring.configure(service_name="rag-pipeline")
    demo(5.0)
