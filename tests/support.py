"""Helpers shared by the tests: fresh OpenTelemetry globals, in-memory telemetry, subprocesses, ports,
and reading OTLP/JSON files back into opentelemetry-proto messages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from opentelemetry import _logs, metrics, trace
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def reset_otel_globals() -> None:
    """Forget the global providers (the API only lets them be set once per process)."""
    import opentelemetry._logs._internal as logs_internal
    import opentelemetry.metrics._internal as metrics_internal

    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    logs_internal._LOGGER_PROVIDER_SET_ONCE = Once()
    logs_internal._LOGGER_PROVIDER = None
    from otel_monitoring import sdk

    sdk._monitoring = None
    from otel_monitoring.instrumentation.core import refresh_globals

    refresh_globals()


@dataclass
class Telemetry:
    """In-memory providers, set globally: read back what the code under test emitted."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter

    def spans(self) -> list[Any]:
        return list(self.span_exporter.get_finished_spans())

    def metrics(self) -> dict[str, list[Any]]:
        """{metric name: [data points]} from one collection."""
        data = self.metric_reader.get_metrics_data()
        result: dict[str, list[Any]] = {}
        if data is None:
            return result
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    result.setdefault(metric.name, []).extend(metric.data.data_points)
        return result

    def logs(self) -> list[Any]:
        return list(self.log_exporter.get_finished_logs())


def make_telemetry(set_global: bool = True, **tracer_kwargs: Any) -> Telemetry:
    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False, **tracer_kwargs)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    metric_reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metric_reader], shutdown_on_exit=False)
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    if set_global:
        reset_otel_globals()
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        _logs.set_logger_provider(logger_provider)
    return Telemetry(tracer_provider, meter_provider, logger_provider, span_exporter, metric_reader, log_exporter)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**overrides: str) -> dict[str, str]:
    """The current environment without OTEL_* variables, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(overrides)
    return env


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 60,
               args: list[str] | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) in a fresh interpreter of this virtualenv."""
    return subprocess.run(
        [*(args or [sys.executable]), "-c", textwrap.dedent(code)],
        env=env if env is not None else clean_env(),
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
    )


# --- OTLP/JSON files back into opentelemetry-proto messages ---

_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON parser expects bytes as base64."""
    import base64

    if isinstance(node, dict):
        return {
            key: (base64.b64encode(bytes.fromhex(value)).decode() if key in _ID_FIELDS and isinstance(value, str) else _hex_ids_to_base64(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def parse_otlp_line(line: str, signal: str) -> Any:
    message = {"traces": ExportTraceServiceRequest, "metrics": ExportMetricsServiceRequest,
               "logs": ExportLogsServiceRequest}[signal]()
    json_format.ParseDict(_hex_ids_to_base64(json.loads(line)), message)
    return message


def read_otlp_file(path: str, signal: str) -> list[Any]:
    with open(path, encoding="utf-8") as handle:
        return [parse_otlp_line(line, signal) for line in handle if line.strip()]


def spans_from_requests(requests: list[Any]) -> list[tuple[Any, Any, Any]]:
    """[(resource, scope, span)] from ExportTraceServiceRequest messages."""
    found = []
    for request in requests:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append((resource_spans.resource, scope_spans.scope, span))
    return found


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP KeyValue list -> plain dict."""
    result = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        result[kv.key] = getattr(kv.value, kind) if kind else None
    return result
