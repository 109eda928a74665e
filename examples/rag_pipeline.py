"""A RAG query pipeline: embed the question, retrieve documents, generate an answer. (Minimal; the
instrumentation issue makes it chromadb + langchain-core with a local chat model stub.)"""

from __future__ import annotations

import logging
import random
import time

from opentelemetry import trace

tracer = trace.get_tracer("examples.rag_pipeline")
log = logging.getLogger("examples.rag_pipeline")


def answer(question: str, rng: random.Random) -> str:
    with tracer.start_as_current_span("rag.query"):
        with tracer.start_as_current_span("embeddings"):
            time.sleep(rng.uniform(0.001, 0.004))
        with tracer.start_as_current_span("retrieval"):
            time.sleep(rng.uniform(0.002, 0.008))
        with tracer.start_as_current_span("chat"):
            time.sleep(rng.uniform(0.01, 0.03))
        log.info("answered a question of %d characters", len(question))
        return "42"


def demo(duration: float) -> None:
    rng = random.Random(11)
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        answer("What is the order book depth of BTC/USDT?", rng)


if __name__ == "__main__":
    import otel_monitoring

    logging.basicConfig(level=logging.INFO)
    otel_monitoring.configure(service_name="rag-pipeline")
    demo(5.0)
