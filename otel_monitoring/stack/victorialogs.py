"""VictoriaLogs, the stack's log store: its process, LogsQL queries built from the ``logs`` command's
filters, and the log analyzer's saved queries.

The agent collector sends it every log record over OTLP (``/insert/opentelemetry``), with the
``VL-Stream-Fields`` header naming the resource attributes that make a stream (service and
environment, not the process id). A record comes back with its body as ``_msg``, its resource and
log attributes as fields (``service.name``, ``trace_id``, ``span_id``, ``exception.type``...), its
severity as ``severity_text`` and ``severity_number`` and its logger as ``scope.name``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from typing import Any, Iterator

from .. import names
from .process import ProcessSpec

DEFAULT_URL = "http://127.0.0.1:9428"
DEFAULT_RETENTION = "30d"
STREAM_FIELDS = "service.name,deployment.environment.name"

# The log analyzer's categories: one regular expression per category (RE2 and Python `re` read
# them alike, case-insensitive), used by `otel-monitoring logs --category` and by the agent
# collector's count connector (collector-config/agent.yaml), which turns them into metrics
# (a test keeps both in step).
CATEGORIES: dict[str, dict[str, str]] = {
    "connection-errors": {
        "pattern": r"(?i)(connection ?(error|refused|reset|aborted|lost|closed)|disconnected|ECONNREFUSED|ECONNRESET)",
        "metric": names.LOG_CONNECTION_ERRORS,
        "description": "Log records about failed, refused or lost connections.",
    },
    "timeouts": {
        "pattern": r"(?i)(timed? ?out|timeout|deadline exceeded)",
        "metric": names.LOG_TIMEOUTS,
        "description": "Log records about operations that timed out.",
    },
    "slow-operations": {
        "pattern": r"(?i)(\bslow\b|latency (high|above|over))",
        "metric": names.LOG_SLOW_OPERATIONS,
        "description": "Log records about slow operations.",
    },
}

# OpenTelemetry severity ranges: each level's lowest severity_number; `--level WARN` means WARN and above.
LEVELS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
_LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "ERR": "ERROR"}


class LogsError(RuntimeError):
    """The log store cannot be queried; the message says why and what to do."""


def victorialogs_spec(binary: str, listen: str, data_dir: str, retention: str = DEFAULT_RETENTION) -> ProcessSpec:
    return ProcessSpec(
        name="victorialogs",
        argv=[binary, f"-storageDataPath={data_dir}", f"-httpListenAddr={listen}",
              f"-retentionPeriod={retention}"],
        health_url=f"http://{listen}/health",
    )


def level_number(level: str) -> int:
    """The lowest OpenTelemetry severity number of ``level`` (``warning`` -> 13)."""
    name = level.strip().upper()
    name = _LEVEL_ALIASES.get(name, name)
    if name not in LEVELS:
        raise ValueError(f"--level {level!r} is not a level; use one of {', '.join(LEVELS)}")
    return LEVELS[name]


def _quote(value: str) -> str:
    return json.dumps(value)


def logsql(query: str = "", service: str | None = None, level: str | None = None, trace_id: str | None = None,
           since: str = "1h", category: str | None = None, logger: str | None = None,
           newest: int | None = None) -> str:
    """A LogsQL query: the time range, then each filter; ``query`` is LogsQL itself (words match
    the message; ``field:value`` a field). Records oldest first; with ``newest``, only the newest
    that many, newest first (as `tail` would keep them: the caller puts them back in time order)."""
    if not re.fullmatch(r"\d+(ms|s|m|h|d|w|y)", since):
        raise ValueError(f"--since {since!r} is not a duration like 15m, 1h, 7d")
    parts = [f"_time:{since}"]
    if service:
        parts.append(f"service.name:={_quote(service)}")
    if level:
        # By number: the text is whatever the logging library called the level.
        parts.append(f"severity_number:>={level_number(level)}")
    if logger:
        parts.append(f"scope.name:={_quote(logger)}")
    if trace_id:
        if not re.fullmatch(r"[0-9a-fA-F]{32}", trace_id):
            raise ValueError(f"--trace {trace_id!r} is not a trace id (32 hex digits)")
        parts.append(f"trace_id:={_quote(trace_id.lower())}")
    if category:
        if category not in CATEGORIES:
            raise ValueError(f"--category {category!r} is not one of {', '.join(CATEGORIES)}")
        parts.append(f"_msg:~{_quote(CATEGORIES[category]['pattern'])}")
    if query.strip():
        parts.append(f"({query.strip()})")
    if newest is not None:
        return " ".join(parts) + f" | sort by (_time desc) limit {int(newest)}"
    return " ".join(parts) + " | sort by (_time)"


def query(url: str, expression: str, limit: int = 1000, timeout: float = 10.0) -> Iterator[dict[str, Any]]:
    """Records matching the LogsQL ``expression`` (VictoriaLogs answers one JSON object per line)."""
    body = urllib.parse.urlencode({"query": expression, "limit": str(limit)}).encode()
    request = urllib.request.Request(f"{url.rstrip('/')}/select/logsql/query", data=body, method="POST")  # noqa: S310 - the user's log store
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user's log store
            text = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace").strip()
        raise LogsError(f"VictoriaLogs at {url} rejected the query {expression!r}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise LogsError(f"cannot reach VictoriaLogs at {url} ({reason}); is the stack running "
                        "(`otel-monitoring stack up`)? Or pass --url (or --state-dir DIR for a stack started with one)") from None
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)
