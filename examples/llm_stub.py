"""A local OpenAI-compatible API on 127.0.0.1: ``/v1/chat/completions`` and ``/v1/embeddings``.

It answers in OpenAI's wire format (choices, finish_reason, usage with prompt/completion tokens),
deterministically: the answer quotes the start of the context it was given, and tokens are
counted as whitespace-separated words. ``fail_next(n)`` answers the next n requests with
OpenAI's 429 rate-limit error. Any OpenAI-compatible client works against ``stub.url``
(``http://127.0.0.1:PORT/v1``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .stub_server import JsonHandler, StubServer

__all__ = ["OpenAIStub"]


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class _Handler(JsonHandler):
    server: Any

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        stub = self.server.stub
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        stub.requests.append((self.path, request))
        if stub.take_failure():
            self.send_json(429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                                           "param": None, "code": "rate_limit_exceeded"}})
            return
        if self.path.endswith("/chat/completions") and request.get("stream"):
            self.send_events(_chat_events(_chat(request), bool((request.get("stream_options") or {}).get("include_usage"))))
        elif self.path.endswith("/chat/completions"):
            self.send_json(200, _chat(request))
        elif self.path.endswith("/embeddings"):
            self.send_json(200, _embeddings(request))
        else:
            self.send_json(404, {"error": {"message": f"Unknown request URL: POST {self.path}",
                                           "type": "invalid_request_error", "param": None, "code": "unknown_url"}})


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


def _chat_events(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The completion as OpenAI's stream: one chunk per word, a finish chunk, then usage if asked."""
    base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"], "system_fingerprint": "fp_stub"}
    words = completion["choices"][0]["message"]["content"].split(" ")
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word},
                                     "finish_reason": None}]} for i, word in enumerate(words)]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        events.append({**base, "choices": [], "usage": completion["usage"]})
    return events


def _embeddings(request: dict[str, Any]) -> dict[str, Any]:
    from .rag_models import hash_embedding

    texts = request.get("input") or []
    texts = [texts] if isinstance(texts, str) else texts
    return {"object": "list", "model": request.get("model", "stub-embedding"),
            "data": [{"object": "embedding", "index": i, "embedding": hash_embedding(t)} for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": sum(map(_tokens, texts)), "total_tokens": sum(map(_tokens, texts))}}


class OpenAIStub(StubServer):
    """The API, served from a daemon thread on 127.0.0.1 (port 0: any free port); ``url`` ends in /v1.
    ``fail_next(n)``: the next n requests get OpenAI's 429 rate-limit error."""

    handler = _Handler
    name = "openai-stub"
    path_prefix = "/v1"
