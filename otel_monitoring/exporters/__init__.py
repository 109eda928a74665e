"""Exporters by name, per signal: otlp (gRPC or http/protobuf), otlp_file, console, none, or any
exporter another package registers under the SDK's ``opentelemetry_<signal>_exporter`` entry points.

OTLP exporters to one destination share a ``DeliveryReport`` so a lost collector is reported once.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from ..config import ConfigError, Settings, has_scheme
from .delivery import release_failed_batches

__all__ = ["Exporters", "build_exporters", "otlp_endpoint", "DEFAULT_GRPC_ENDPOINT", "DEFAULT_HTTP_ENDPOINT"]

SIGNALS = ("traces", "metrics", "logs")
BUILTIN = ("otlp", "otlp_file", "console", "none")
DEFAULT_GRPC_ENDPOINT = "http://127.0.0.1:4317"
DEFAULT_HTTP_ENDPOINT = "http://127.0.0.1:4318"


@dataclass
class Exporters:
    spans: list[Any] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)


def exporter_names(settings: Settings, signal: str) -> tuple[str, ...]:
    """Per-signal argument > ``exporter`` argument > OTEL_<SIGNAL>_EXPORTER > default."""
    per_signal = f"{signal}_exporter"
    if settings.source(per_signal) == "argument":
        return getattr(settings, per_signal)
    if settings.exporter is not None:
        return settings.exporter
    if getattr(settings, per_signal) is not None:
        return getattr(settings, per_signal)
    endpoint_set = settings.endpoint is not None or getattr(settings, f"{signal}_endpoint") is not None
    return ("otlp",) if endpoint_set else ("otlp_file",)


def otlp_endpoint(settings: Settings, signal: str) -> tuple[str, str]:
    """(protocol, endpoint URL) for one signal, as the OTLP exporter spec resolves them."""
    protocol = getattr(settings, f"{signal}_protocol") or settings.protocol
    specific = getattr(settings, f"{signal}_endpoint")
    if specific:
        return protocol, specific
    if protocol == "grpc":
        return protocol, settings.endpoint or DEFAULT_GRPC_ENDPOINT
    base = settings.endpoint or DEFAULT_HTTP_ENDPOINT
    return protocol, urllib.parse.urljoin(base.rstrip("/") + "/", f"v1/{signal}")


def otlp_insecure(settings: Settings, signal: str, endpoint: str) -> bool:
    """gRPC without TLS, as the SDK's exporter decides: the signal's OTEL_EXPORTER_OTLP_<SIGNAL>_INSECURE,
    else OTEL_EXPORTER_OTLP_INSECURE, else an http:// endpoint; https:// always has TLS (the SDK
    forces it), and host:port without a scheme has it unless one of the settings says otherwise."""
    for value in (getattr(settings, f"{signal}_insecure"), settings.insecure):
        if value is not None:
            return value and not endpoint.startswith("https://")
    return endpoint.startswith("http://")


def _otlp_exporter(settings: Settings, signal: str, redactor: Any = None) -> tuple[Any, str, bool]:
    """(exporter, endpoint, whether it scrubs with ``redactor`` itself): our span exporters encode
    and scrub in one pass; the SDK's metric and log exporters get the scrubbing wrapper."""
    protocol, endpoint = otlp_endpoint(settings, signal)
    headers = getattr(settings, f"{signal}_headers")
    headers = settings.headers if headers is None else headers
    timeout = getattr(settings, f"{signal}_timeout") or settings.timeout
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        from .otlp_proto import grpc_span_exporter_class

        insecure = otlp_insecure(settings, signal, endpoint)
        arguments = {"endpoint": endpoint, "insecure": insecure, "headers": dict(headers), "timeout": timeout}
        if signal == "traces":
            exporter = grpc_span_exporter_class()(redactor=redactor, **arguments)
            return release_failed_batches(exporter), endpoint, True
        exporter = {"metrics": OTLPMetricExporter, "logs": OTLPLogExporter}[signal](**arguments)
        return release_failed_batches(exporter), endpoint, False
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from .otlp_proto import http_span_exporter_class

    arguments = {"endpoint": endpoint, "headers": dict(headers), "timeout": timeout}
    if signal == "traces":
        fast = http_span_exporter_class()
        if fast is not None:
            return release_failed_batches(fast(redactor=redactor, **arguments)), endpoint, True
        return release_failed_batches(OTLPSpanExporter(**arguments)), endpoint, False
    exporter = {"metrics": OTLPMetricExporter, "logs": OTLPLogExporter}[signal](**arguments)
    return release_failed_batches(exporter), endpoint, False


def _console_exporter(signal: str) -> Any:
    if signal == "traces":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if signal == "metrics":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    return ConsoleLogRecordExporter()


def _file_exporter(settings: Settings, signal: str) -> Any:
    from .file import OtlpFileLogExporter, OtlpFileMetricExporter, OtlpFileSpanExporter, prepare_directory

    where = "configure(file_dir=...)" if settings.source("file_dir") == "argument" else "OTEL_MONITORING_FILE_DIR"
    directory = prepare_directory(settings.file_dir, source=where)
    cls = {"traces": OtlpFileSpanExporter, "metrics": OtlpFileMetricExporter, "logs": OtlpFileLogExporter}[signal]
    return cls(directory, settings.file_max_bytes, settings.file_max_backups)


def _entry_point_exporter(settings: Settings, signal: str, name: str) -> Any:
    group = f"opentelemetry_{signal}_exporter"
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    if not found:
        names = sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=group)})
        variable = f"OTEL_{signal.upper()}_EXPORTER"
        raise ConfigError(
            f"{variable} (or configure(exporter=...)): unknown exporter {name!r}. Valid names: "
            f"{', '.join(names)}. Example: {variable}=otlp"
        )
    return found[0].load()()


def build_redactor(settings: Settings) -> Any:
    """The redactor every exporter applies, or None when ``redaction`` is off."""
    if not settings.redaction:
        return None
    from ..redaction import Redactor

    return Redactor(add=settings.redact_names, keep=settings.redact_keep)


def scrubbing(exporter: Any, signal: str, redactor: Any) -> Any:
    """``exporter`` wrapped so that what it exports is scrubbed (itself when ``redactor`` is None)."""
    if redactor is None:
        return exporter
    from .scrub import ScrubbingLogExporter, ScrubbingMetricExporter, ScrubbingSpanExporter

    cls = {"traces": ScrubbingSpanExporter, "metrics": ScrubbingMetricExporter, "logs": ScrubbingLogExporter}[signal]
    return cls(exporter, redactor)


def _names_from_code(settings: Settings, signal: str) -> bool:
    return settings.source(f"{signal}_exporter") == "argument" or settings.exporter is not None


def build_exporters(settings: Settings) -> Exporters:
    """The exporters per signal. A bad name or directory given in code raises ``ConfigError``; one from
    the environment is reported (``policy``) and that exporter is left out."""
    from .. import policy
    from .delivery import DeliveryReport

    result = Exporters()
    reports: dict[str, DeliveryReport] = {}
    redactor = build_redactor(settings)
    for signal in SIGNALS:
        names = exporter_names(settings, signal)
        from_code = _names_from_code(settings, signal)
        if "none" in names and len(names) > 1:
            problem = ConfigError(
                f"OTEL_{signal.upper()}_EXPORTER: 'none' cannot be combined with other exporters "
                f"({', '.join(names)}). Example: OTEL_{signal.upper()}_EXPORTER=none"
            )
            if from_code:
                raise problem
            policy.report(str(problem), strict=settings.strict, consequence="'none' is ignored.")
            names = tuple(name for name in names if name != "none")
        for name in names:
            if name == "none":
                continue
            try:
                exporter, scrubbed = _build_one(settings, signal, name, reports, redactor)
            except ConfigError as problem:
                from_code_here = from_code if name != "otlp_file" else settings.source("file_dir") == "argument"
                if from_code_here:
                    raise
                policy.report(str(problem), strict=settings.strict,
                              consequence=f"The {signal} go on without the {name} exporter.")
                continue
            {"traces": result.spans, "metrics": result.metrics, "logs": result.logs}[signal].append(
                exporter if scrubbed else scrubbing(exporter, signal, redactor))
    return result


def _reported(reports: dict[str, Any], signal: str, exporter: Any, destination: str, **advice: str) -> Any:
    """Wrap ``exporter`` in the one DeliveryReport of its destination (shared by the three signals)."""
    from .delivery import DeliveryReport

    report = reports.get(destination)
    if report is None:
        report = reports[destination] = DeliveryReport(destination, **advice)
    wrap = {"traces": report.wrap_span_exporter, "metrics": report.wrap_metric_exporter,
            "logs": report.wrap_log_exporter}[signal]
    return wrap(exporter)


def _build_one(settings: Settings, signal: str, name: str, reports: dict[str, Any],
               redactor: Any = None) -> tuple[Any, bool]:
    """(exporter, whether it already scrubs with ``redactor``)."""
    scrubbed = False
    if name == "otlp":
        exporter, endpoint, scrubbed = _otlp_exporter(settings, signal, redactor)
        host = urllib.parse.urlsplit(endpoint if has_scheme(endpoint) else f"//{endpoint}").netloc
        meaning = "https://" if endpoint.startswith("https://") else "host:port without a scheme, for gRPC,"
        fix = f"use http://{host}" + ("" if endpoint.startswith("https://") else " or set OTEL_EXPORTER_OTLP_INSECURE=true")
        exporter = _reported(reports, signal, exporter, f"the OTLP endpoint {host}",
                             hint="Is the collector running? Check with `otel-monitoring doctor`, start one with "
                             "`otel-monitoring stack up`, or export to files with OTEL_TRACES_EXPORTER=otlp_file.",
                             tls_hint=f"The collector there answers without TLS while the exporter connects with TLS "
                             f"({meaning} means TLS): for a collector without TLS, {fix}. "
                             "Check with `otel-monitoring doctor`.")
    elif name == "otlp_file":
        exporter = _file_exporter(settings, signal)
        directory = os.path.dirname(exporter.file.path)
        exporter = _reported(reports, signal, exporter, f"the telemetry directory {directory}",
                             hint="Free space on its file system (or choose another with OTEL_MONITORING_FILE_DIR); "
                             "writing resumes by itself.",
                             policy="A batch that cannot be written whole is dropped and counted (no line is "
                             "left half-written); this is reported once until writing recovers.")
    elif name == "console":
        exporter = _console_exporter(signal)
    else:
        exporter = _entry_point_exporter(settings, signal, name)
    return exporter, scrubbed
