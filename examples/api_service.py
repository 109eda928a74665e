"""An HTTP API under uvicorn on 127.0.0.1 (FastAPI), called with requests and httpx.

The official contrib instrumentations (enabled by ``configure()``) trace both sides, so each
client call and the request it serves share one trace; ``/health`` is polled too and, being a
health probe, is not traced. Run it alone with ``python -m otel_monitoring.examples.api_service``.
"""

from __future__ import annotations

import random
import socket
import threading
import time

import httpx
import requests
import uvicorn
from fastapi import FastAPI, HTTPException

import otel_monitoring

from .llm_stub import OpenAIStub
from .rag_pipeline import QUESTIONS, RagPipeline

PRICES = {"BTC-USDT": 65000.0, "ETH-USDT": 3200.0}


def create_app(rag: RagPipeline | None = None) -> FastAPI:
    """Created after configure(): the FastAPI instrumentation traces apps made after it is enabled.
    With a RAG pipeline, POST /ask answers questions: one trace from the HTTP client through the
    server span to retrieval, embeddings and chat."""
    app = FastAPI(title="quotes")

    if rag is not None:
        @app.post("/ask")
        def ask(payload: dict) -> dict:
            return {"answer": rag.answer(str(payload.get("question", "")))}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/quotes/{symbol}")
    def quote(symbol: str) -> dict:
        if symbol not in PRICES:
            raise HTTPException(status_code=404, detail=f"unknown symbol {symbol}")
        return {"symbol": symbol, "price": price_with_spread(PRICES[symbol])}

    @app.post("/orders")
    def order(payload: dict) -> dict:
        if payload.get("amount", 0) <= 0:
            raise HTTPException(status_code=422, detail="amount must be positive")
        return {"status": "accepted", **payload}

    return app


@otel_monitoring.traced("quotes", "price_with_spread", domain="api")
def price_with_spread(mid: float) -> float:
    return round(mid * 1.0005, 2)


class ApiServer:
    """uvicorn serving the app on a free port of 127.0.0.1 from a thread; stop() ends it."""

    def __init__(self, app: FastAPI):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="api-service", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ApiServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def demo(duration: float) -> None:
    rng = random.Random(5)
    llm = OpenAIStub(latency=0.01).start()
    server = ApiServer(create_app(RagPipeline(llm.url))).start()
    try:
        with requests.Session() as session, httpx.Client(base_url=server.url) as client:
            deadline = time.monotonic() + duration
            calls = 0
            while time.monotonic() < deadline:
                calls += 1
                symbol = rng.choice(["BTC-USDT", "ETH-USDT", "DOGE-USDT"])
                session.get(f"{server.url}/quotes/{symbol}", timeout=5)
                client.post("/orders", json={"symbol": symbol, "amount": rng.choice([0.1, 0.5, 0])})
                if calls % 10 == 1:
                    client.post("/ask", json={"question": rng.choice(QUESTIONS)}, timeout=30)
                client.get("/health")
                time.sleep(0.01)
    finally:
        server.stop()
        llm.stop()


if __name__ == "__main__":
    otel_monitoring.configure(service_name="api-service")
    demo(5.0)
