"""A small client of Jaeger's HTTP query API (the one its UI uses, served by Jaeger v2's query
extension): services, recent traces of a service, one trace by id. Standard library only."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .terminal import safe_text, safe_tree

DEFAULT_QUERY_URL = "http://127.0.0.1:16686"
# How many traces one search asks Jaeger for, at least: Jaeger's limit is a search depth, so the
# newest N are picked from a larger answer (see JaegerClient.traces).
SEARCH_DEPTH = 200
# Times the search window is narrowed before the newest traces seen so far are taken as the answer.
MAX_NARROWING = 8
_LOOKBACK = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d|w)\s*$")
_LOOKBACK_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000,
                "d": 86_400_000_000, "w": 604_800_000_000}


def lookback_us(text: str) -> int:
    """'15m', '1h', '2d' as microseconds; ValueError naming the accepted form otherwise."""
    match = _LOOKBACK.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"invalid lookback {text!r}: give a positive number and a unit, e.g. 30s, 15m, 1h, 2d, 1w")
    return int(float(match.group(1)) * _LOOKBACK_US[match.group(2)])


def trace_start_us(trace: dict[str, Any]) -> int:
    return min((int(span.get("startTime") or 0) for span in trace.get("spans") or []), default=0)


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
        """The newest ``limit`` traces of ``service`` started in the last ``lookback``, newest first, in
        Jaeger's JSON (traceID, spans, processes).

        Jaeger's ``limit`` is a search depth, not "the newest N": its memory store walks traces in arrival
        order (one export batch in random order), Badger in index order; and its search ignores
        ``lookback`` (the UI sends ``start``/``end``, microseconds). So the window is sent as ``start``,
        and while an answer is full the window is narrowed to start at the N-th newest trace seen:
        the true newest N all started at or after it, so they are all in the narrower window."""
        start = int(time.time() * 1e6) - lookback_us(lookback)
        depth = max(SEARCH_DEPTH, 2 * limit)
        found: list[dict[str, Any]] = []
        for _ in range(MAX_NARROWING):
            params = {"service": service, "limit": depth, "start": start, "operation": operation,
                      "tags": json.dumps(tags) if tags else None}
            found = sorted(self._get("/api/traces", params) or [],
                           key=lambda t: (trace_start_us(t), str(t.get("traceID"))), reverse=True)
            if len(found) < depth:
                break               # the whole window's traces: nothing newer was left out
            narrower = trace_start_us(found[limit - 1])
            if narrower <= start:
                break               # cannot narrow further: the newest of what Jaeger gave
            start = narrower
        return found[:limit]

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        data = self._get(f"/api/traces/{urllib.parse.quote(trace_id.lower(), safe='')}")
        return data[0] if data else None
