"""The models of the RAG example: deterministic hash embeddings (no model download) and a
langchain-core chat model that speaks the OpenAI chat-completions wire format over httpx.

``OpenAICompatibleChat`` works against any OpenAI-compatible endpoint; the example and the tests
point it at ``llm_stub.OpenAIStub`` on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Iterator

import httpx
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

__all__ = ["hash_embedding", "HashEmbeddings", "HashEmbeddingFunction", "OpenAICompatibleChat"]

DIMENSIONS = 64


def hash_embedding(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """A bag-of-words vector: each word adds to a hashed bucket; unit length. Same text, same vector."""
    vector = [0.0] * dimensions
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        vector[int.from_bytes(digest, "big") % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class HashEmbeddings(Embeddings):
    """langchain-core embeddings over ``hash_embedding``."""

    model = "hash-embedding-64"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [hash_embedding(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return hash_embedding(text)


class HashEmbeddingFunction:
    """A chromadb embedding function over ``hash_embedding``."""

    def __call__(self, input: list[str]) -> list[list[float]]:  # chromadb's parameter name
        return [hash_embedding(text) for text in input]

    @staticmethod
    def name() -> str:
        return "hash-embedding-64"

    def is_legacy(self) -> bool:
        return False

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "HashEmbeddingFunction":
        return HashEmbeddingFunction()

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def embed_query(self, input: list[str]) -> list[list[float]]:
        return self(input)


_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


class OpenAICompatibleChat(BaseChatModel):
    """A chat model for any OpenAI-compatible ``/chat/completions`` endpoint."""

    base_url: str
    model: str = "gpt-4o-mini"
    api_key: str = "sk-local"
    temperature: float = 0.0
    max_tokens: int | None = None
    timeout: float = 30.0
    _client: httpx.Client | None = PrivateAttr(default=None)  # one connection pool per model

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "openai"  # the wire protocol spoken, as gen_ai.provider.name names it
        return params

    def _request(self, messages: list[BaseMessage], stop: list[str] | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model, "temperature": self.temperature,
            "messages": [{"role": _ROLES.get(m.type, "user"), "content": m.content} for m in messages],
        }
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        if stop:
            payload["stop"] = stop
        return payload

    def _result(self, data: dict[str, Any]) -> ChatResult:
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        message = AIMessage(
            content=choice["message"]["content"],
            usage_metadata={"input_tokens": usage.get("prompt_tokens", 0),
                            "output_tokens": usage.get("completion_tokens", 0),
                            "total_tokens": usage.get("total_tokens", 0)},
            response_metadata={"model_name": data.get("model"), "finish_reason": choice.get("finish_reason")},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        response = self._client.post(f"{self.base_url}/chat/completions", json=self._request(messages, stop),
                                     headers={"Authorization": f"Bearer {self.api_key}"})
        response.raise_for_status()
        return self._result(response.json())

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        payload = {**self._request(messages, stop), "stream": True, "stream_options": {"include_usage": True}}
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        with self._client.stream("POST", f"{self.base_url}/chat/completions", json=payload,
                                 headers={"Authorization": f"Bearer {self.api_key}"}) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[len("data: "):])
                usage = event.get("usage")
                if usage:  # the last event: token counts for the whole stream
                    yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata={
                        "input_tokens": usage.get("prompt_tokens", 0),
                        "output_tokens": usage.get("completion_tokens", 0),
                        "total_tokens": usage.get("total_tokens", 0)}))
                    continue
                for choice in event.get("choices", []):
                    metadata = {"model_name": event.get("model"), "finish_reason": choice["finish_reason"]} \
                        if choice.get("finish_reason") else {}
                    yield ChatGenerationChunk(message=AIMessageChunk(
                        content=choice.get("delta", {}).get("content") or "", response_metadata=metadata))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(f"{self.base_url}/chat/completions", json=self._request(messages, stop),
                                         headers={"Authorization": f"Bearer {self.api_key}"})
        response.raise_for_status()
        return self._result(response.json())
