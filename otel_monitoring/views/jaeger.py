"""A small client of Jaeger's HTTP query API (the one its UI uses, served by Jaeger v2's query
extension): services, recent traces of a service, one trace by id. Standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .terminal import safe_text, safe_tree

DEFAULT_QUERY_URL = "http://127.0.0.1:16686"


class JaegerError(RuntimeError):
    """Jaeger could not be reached or answered with an error; the message says which and what to do."""


class JaegerClient:
    def __init__(self, base_url: str = DEFAULT_QUERY_URL, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})}" if params else ""
        url = f"{self.base_url}{path}{query}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 (operator's URL)
                body = safe_tree(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            detail = safe_text(error.read().decode("utf-8", "replace")[:200])
            raise JaegerError(f"Jaeger at {self.base_url} answered {error.code} for {path}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise JaegerError(f"cannot reach Jaeger's query API at {self.base_url} ({reason}); start the stack "
                              f"(otel-monitoring stack up) or pass --jaeger URL (or --state-dir DIR for a stack started with one)") from None
        except ValueError as error:
            raise JaegerError(f"Jaeger at {self.base_url} did not answer JSON for {path}: {error}") from None
        if body.get("errors"):
            raise JaegerError(f"Jaeger at {self.base_url}: {body['errors']}")
        return body.get("data")

    def services(self) -> list[str]:
        return sorted(self._get("/api/services") or [])

    def operations(self, service: str) -> list[str]:
        return sorted(self._get(f"/api/services/{urllib.parse.quote(service, safe='')}/operations") or [])

    def traces(self, service: str, limit: int = 20, lookback: str = "1h", operation: str | None = None,
               tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Recent traces of ``service``, in Jaeger's JSON (traceID, spans, processes)."""
        params = {"service": service, "limit": limit, "lookback": lookback, "operation": operation,
                  "tags": json.dumps(tags) if tags else None}
        return self._get("/api/traces", params) or []

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        data = self._get(f"/api/traces/{urllib.parse.quote(trace_id.lower(), safe='')}")
        return data[0] if data else None
