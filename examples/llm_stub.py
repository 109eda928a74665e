"""A local OpenAI-compatible API on 127.0.0.1: ``/v1/chat/completions`` and ``/v1/embeddings``.

It answers in OpenAI's wire format (choices, finish_reason, usage with prompt/completion tokens),
deterministically: the answer quotes the start of the context it was given, and tokens are
counted as whitespace-separated words. ``fail_next(n)`` answers the next n requests with
OpenAI's 429 rate-limit error. Any OpenAI-compatible client works against ``stub.url``
(``http://127.0.0.1:PORT/v1``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIStub"]


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        stub = self.server.stub
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        stub.requests.append((self.path, request))
        if stub.latency:
            time.sleep(stub.latency)
        if stub.take_failure():
            self._send(429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                                       "param": None, "code": "rate_limit_exceeded"}})
            return
        if self.path.endswith("/chat/completions"):
            self._send(200, _chat(request))
        elif self.path.endswith("/embeddings"):
            self._send(200, _embeddings(request))
        else:
            self._send(404, {"error": {"message": f"Unknown request URL: POST {self.path}", "type": "invalid_request_error",
                                       "param": None, "code": "unknown_url"}})


def _chat(request: dict[str, Any]) -> dict[str, Any]:
    messages = request.get("messages") or []
    prompt = " ".join(str(m.get("content", "")) for m in messages)
    last = str(messages[-1].get("content", "")) if messages else ""
    answer = "Based on the documents: " + " ".join(last.split()[:24])
    return {
        "id": f"chatcmpl-{abs(hash(prompt)) % 10**12}", "object": "chat.completion", "created": int(time.time()),
        "model": request.get("model", "stub-model"), "system_fingerprint": "fp_stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "logprobs": None,
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": _tokens(prompt), "completion_tokens": _tokens(answer),
                  "total_tokens": _tokens(prompt) + _tokens(answer)},
    }


def _embeddings(request: dict[str, Any]) -> dict[str, Any]:
    from .rag_models import hash_embedding

    texts = request.get("input") or []
    texts = [texts] if isinstance(texts, str) else texts
    return {"object": "list", "model": request.get("model", "stub-embedding"),
            "data": [{"object": "embedding", "index": i, "embedding": hash_embedding(t)} for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": sum(map(_tokens, texts)), "total_tokens": sum(map(_tokens, texts))}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: "OpenAIStub"


class OpenAIStub:
    """The API, served from a daemon thread on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, port: int = 0, latency: float = 0.0):
        self.port = port
        self.latency = latency
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._failures = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stub first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "OpenAIStub":
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.stub = self
        threading.Thread(target=self._server.serve_forever, name="openai-stub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def fail_next(self, count: int = 1) -> None:
        with self._lock:
            self._failures += count

    def take_failure(self) -> bool:
        with self._lock:
            if self._failures > 0:
                self._failures -= 1
                return True
        return False
