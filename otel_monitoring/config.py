"""Settings: one table of options, resolved from arguments, then the environment, then defaults.

Every option has a keyword argument of ``configure()`` and, where it makes sense, an
environment variable: the standard ``OTEL_*`` name where OpenTelemetry defines one, an
``OTEL_MONITORING_*`` name otherwise. ``docs/configuration.md`` is generated from
``OPTIONS`` (``python -m otel_monitoring.config > docs/configuration.md``) and a test keeps the
two in step, so the table below is the single place an option is declared.

A bad argument raises ``ConfigError`` naming it, what was wrong and a valid example. A bad
environment value is reported once (the same message) and the option keeps its default, unless
``OTEL_MONITORING_STRICT=true`` makes it an error (``otel_monitoring/policy.py``).
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import thresholds

__all__ = ["ConfigError", "Option", "OPTIONS", "Settings", "load_settings"]


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the key and a valid example."""


# --- parsers: each takes the raw string (or the argument's value) and returns the typed value ---


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def parse_float(minimum: float | None = None, maximum: float | None = None) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        number = float(value)
        if not math.isfinite(number):  # NaN, inf, and 1e999 (which float() reads as inf)
            raise ValueError(f"{value!r} is not a finite number")
        if minimum is not None and number < minimum:
            raise ValueError(f"{number} is below the minimum {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"{number} is above the maximum {maximum}")
        return number

    return parse


def parse_int(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not a whole number")
        text = int(value) if isinstance(value, (int, float)) else str(value).strip()
        if isinstance(text, str) and len(text) > 20:
            raise ValueError(f"{text[:20]!r}... is too long for a number")
        number = int(text)
        if minimum is not None and number < minimum:
            raise ValueError(f"{number} is below the minimum {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"{number} is above the maximum {maximum}")
        return number

    return parse


def parse_port(allow_zero: bool = False) -> Callable[[Any], int]:
    """A TCP port, 1-65535 (0 too when it means "any free port")."""
    return parse_int(minimum=0 if allow_zero else 1, maximum=65535)


MAX_DURATION_S = 10 * 366 * 86400.0  # ten years: longer is a typo, and timers must not overflow


def parse_seconds(minimum: float) -> Callable[[Any], float]:
    """A time in seconds: finite, at least ``minimum``, at most ten years."""
    return parse_float(minimum=minimum, maximum=MAX_DURATION_S)


def parse_millis_as_seconds(value: Any) -> float:
    """OTEL_* intervals and timeouts are milliseconds; arguments are seconds (handled by the caller)."""
    return parse_float(minimum=0.001, maximum=MAX_DURATION_S * 1000)(value) / 1000.0


def parse_seconds_from_env(value: Any) -> float:
    """OTEL_EXPORTER_OTLP_*_TIMEOUT are seconds in the Python SDK's reading of the spec."""
    return parse_seconds(0.001)(value)


def parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return text

    return parse


def parse_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        items = [part.strip() for part in str(value).split(",")]
    return tuple(item for item in items if item)


def parse_key_values(value: Any) -> dict[str, str]:
    """``k=v,k2=v2`` as in OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS (values URL-decoded)."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    result: dict[str, str] = {}
    for part in str(value).split(","):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        key = urllib.parse.unquote(key.strip())
        if not sep or not key:
            raise ValueError(f"{part.strip()!r} is not key=value")
        result[key] = urllib.parse.unquote(val.strip())
    return result


def _parse_min_rates(value: Any) -> dict[str, float]:
    """``watch_ticker=0.5,BTC/USDT@watch_order_book=2``: messages per second, by channel or symbol@channel."""
    rates = {}
    for key, rate in parse_key_values(value).items():
        if not key.split("@")[-1].startswith("watch_"):
            raise ValueError(f"{key!r} is not a watch method (watch_ticker) or symbol@watch method")
        rates[key] = parse_float(minimum=0.0)(rate)
    return rates


def parse_endpoint(value: Any) -> str:
    text = str(value).strip()
    parsed = urllib.parse.urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{text!r} is not an http(s) URL with a host")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise ValueError(f"{text!r} has a bad port ({error})") from None
    return text


# host, host:port, [v6]:port: what the SDK's OTLP gRPC exporter takes as its channel target as is.
_HOST_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)(?::(\d{1,5}))?$")


def parse_otlp_endpoint(value: Any) -> str:
    """An http(s) URL, or host[:port] without a scheme. The SDK's gRPC exporter uses the latter as
    its target, with TLS unless OTEL_EXPORTER_OTLP_INSECURE (or the signal's) is true; its HTTP
    exporter cannot send to it, which load_settings() checks once the protocols are known."""
    text = str(value).strip()
    if "://" in text:
        return parse_endpoint(text)
    found = _HOST_PORT.match(text)
    if found is None:
        raise ValueError(f"{text!r} is neither an http(s) URL nor host:port")
    if found.group(1) is not None and not 0 < int(found.group(1)) < 65536:
        raise ValueError(f"{text!r} has a bad port (Port out of range 1-65535)")
    return text


def has_scheme(endpoint: str) -> bool:
    return "://" in endpoint


def parse_str(value: Any) -> str:
    return str(value)


def parse_path(value: Any) -> str:
    text = os.fspath(value) if not isinstance(value, str) else value
    if not text.strip():
        raise ValueError("an empty path")
    return os.path.expanduser(text)


def parse_exporters(value: Any) -> tuple[str, ...]:
    names = parse_list(value)
    if not names:
        raise ValueError("no exporter named")
    return tuple(name.lower() for name in names)


def parse_content_capture(value: Any) -> bool:
    """A boolean, or one of the GenAI utilities' modes (content goes on spans for SPAN_ONLY and SPAN_AND_EVENT)."""
    text = str(value).strip().upper()
    if text in ("SPAN_ONLY", "SPAN_AND_EVENT"):
        return True
    if text in ("NO_CONTENT", "EVENT_ONLY"):
        return False
    return parse_bool(value)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``90`` (seconds), ``"30s"``, ``"5m"``, ``"1h"``, ``"7d"`` -> seconds (finite, at most ten years)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value)
        match = _DURATION.match(text) if len(text) <= 40 else None
        if not match:
            raise ValueError(f"{text[:40]!r} is not a duration like 30s, 5m, 1h or 7d")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration (a finite number of seconds >= 0)")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{value!r} is longer than ten years")
    return seconds


ALERT_CHANNELS = ("log", "webhook", "slack", "discord", "email")
ALERT_SEVERITIES = ("info", "warning", "critical", "emergency")


def parse_alert_routes(value: Any) -> dict[str, str]:
    """``channel=lowest severity`` pairs, e.g. ``slack=warning,email=critical``."""
    routes = parse_key_values(value)
    for channel, severity in routes.items():
        if channel not in ALERT_CHANNELS:
            raise ValueError(f"{channel!r} is not one of the channels {', '.join(ALERT_CHANNELS)}")
        if severity not in ALERT_SEVERITIES:
            raise ValueError(f"{severity!r} ({channel}) is not one of {', '.join(ALERT_SEVERITIES)}")
    return routes


def _meters_parser(name: str) -> Callable[[Any], Any]:
    """A parser that lives in otel_monitoring.meters.settings (imported when first used)."""

    def parse(value: Any) -> Any:
        from .meters import settings as meters_settings

        return getattr(meters_settings, name)(value)

    parse.__name__ = name
    return parse


SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


@dataclass(frozen=True)
class Option:
    name: str  # keyword argument of configure()
    env: str | None  # environment variable read when the argument is not given
    parse: Callable[[Any], Any]  # turns the raw value into the typed one; raises ValueError
    default: Any
    doc: str
    example: str  # a valid value, quoted in error messages
    section: str = "core"
    parse_argument: Callable[[Any], Any] | None = None  # when arguments use other units than the env
    secret: bool = False  # credentials (headers, webhook URLs, passwords): masked wherever shown


OPTIONS: tuple[Option, ...] = (
    # --- core: resource, exporters, sampling, lifecycle ---
    Option("service_name", "OTEL_SERVICE_NAME", parse_str, None,
           "service.name of the resource. Default: unknown_service:<executable>.", "trading-bot"),
    Option("service_version", "OTEL_MONITORING_SERVICE_VERSION", parse_str, None,
           "service.version of the resource.", "1.4.2"),
    Option("environment", "OTEL_MONITORING_ENVIRONMENT", parse_str, None,
           "deployment.environment.name of the resource.", "production"),
    Option("resource_attributes", "OTEL_RESOURCE_ATTRIBUTES", parse_key_values, {},
           "Extra resource attributes; explicit options above win over keys here.",
           "team=quant,region=eu-west-1"),
    Option("disabled", "OTEL_SDK_DISABLED", parse_bool, False,
           "Turn everything off: configure() installs nothing and the API stays no-op.", "true"),
    Option("exporter", None, parse_exporters, None,
           "Exporter(s) for all three signals at once (argument only); the per-signal options win.",
           "otlp_file"),
    Option("traces_exporter", "OTEL_TRACES_EXPORTER", parse_exporters, None,
           "Span exporters, comma-separated: otlp, otlp_file, console, none, or any "
           "opentelemetry_traces_exporter entry point. Default: otlp when an OTLP endpoint is "
           "set, else otlp_file.", "otlp"),
    Option("metrics_exporter", "OTEL_METRICS_EXPORTER", parse_exporters, None,
           "Metric exporters (same names and default as traces).", "otlp,console"),
    Option("logs_exporter", "OTEL_LOGS_EXPORTER", parse_exporters, None,
           "Log exporters (same names and default as traces).", "none"),
    Option("endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", parse_otlp_endpoint, None,
           "OTLP endpoint for all signals. Default http://127.0.0.1:4317 (grpc) or :4318 "
           "(http/protobuf, with /v1/<signal> appended). For grpc, host:port without a scheme "
           "is taken too, as the SDK takes it (TLS unless OTEL_EXPORTER_OTLP_INSECURE=true).",
           "http://127.0.0.1:4317"),
    Option("traces_endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", parse_otlp_endpoint, None,
           "OTLP endpoint for traces, used as is.", "http://127.0.0.1:4318/v1/traces"),
    Option("metrics_endpoint", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", parse_otlp_endpoint, None,
           "OTLP endpoint for metrics, used as is.", "http://127.0.0.1:4318/v1/metrics"),
    Option("logs_endpoint", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", parse_otlp_endpoint, None,
           "OTLP endpoint for logs, used as is.", "http://127.0.0.1:4318/v1/logs"),
    Option("protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", parse_choice("grpc", "http/protobuf"), "grpc",
           "OTLP transport for all signals.", "http/protobuf"),
    Option("traces_protocol", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", parse_choice("grpc", "http/protobuf"),
           None, "OTLP transport for traces.", "grpc"),
    Option("metrics_protocol", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
           parse_choice("grpc", "http/protobuf"), None, "OTLP transport for metrics.", "grpc"),
    Option("logs_protocol", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", parse_choice("grpc", "http/protobuf"),
           None, "OTLP transport for logs.", "grpc"),
    Option("headers", "OTEL_EXPORTER_OTLP_HEADERS", parse_key_values, {},
           "Headers sent with every OTLP export (URL-encoded values).", "authorization=Bearer%20abc", secret=True),
    Option("traces_headers", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", parse_key_values, None,
           "Headers for trace exports; replace the generic ones.", "x-tenant=acme", secret=True),
    Option("metrics_headers", "OTEL_EXPORTER_OTLP_METRICS_HEADERS", parse_key_values, None,
           "Headers for metric exports; replace the generic ones.", "x-tenant=acme", secret=True),
    Option("logs_headers", "OTEL_EXPORTER_OTLP_LOGS_HEADERS", parse_key_values, None,
           "Headers for log exports; replace the generic ones.", "x-tenant=acme", secret=True),
    Option("timeout", "OTEL_EXPORTER_OTLP_TIMEOUT", parse_seconds_from_env, 10.0,
           "Seconds one OTLP export may take, retries included.", "10",
           parse_argument=parse_seconds(0.001)),
    Option("traces_timeout", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", parse_seconds_from_env, None,
           "Seconds for one trace export.", "5", parse_argument=parse_seconds(0.001)),
    Option("metrics_timeout", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", parse_seconds_from_env, None,
           "Seconds for one metric export.", "5", parse_argument=parse_seconds(0.001)),
    Option("logs_timeout", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", parse_seconds_from_env, None,
           "Seconds for one log export.", "5", parse_argument=parse_seconds(0.001)),
    Option("insecure", "OTEL_EXPORTER_OTLP_INSECURE", parse_bool, None,
           "gRPC without TLS. Default: true for http:// endpoints, false for https:// and for "
           "host:port without a scheme (as the SDK's exporter); an https:// endpoint always uses TLS.",
           "true"),
    Option("traces_insecure", "OTEL_EXPORTER_OTLP_TRACES_INSECURE", parse_bool, None,
           "gRPC without TLS for traces; wins over OTEL_EXPORTER_OTLP_INSECURE.", "true"),
    Option("metrics_insecure", "OTEL_EXPORTER_OTLP_METRICS_INSECURE", parse_bool, None,
           "gRPC without TLS for metrics; wins over OTEL_EXPORTER_OTLP_INSECURE.", "true"),
    Option("logs_insecure", "OTEL_EXPORTER_OTLP_LOGS_INSECURE", parse_bool, None,
           "gRPC without TLS for logs; wins over OTEL_EXPORTER_OTLP_INSECURE.", "true"),
    Option("sampler", "OTEL_TRACES_SAMPLER", parse_choice(*SAMPLERS), "parentbased_always_on",
           "Trace sampler.", "parentbased_traceidratio"),
    Option("sampler_arg", "OTEL_TRACES_SAMPLER_ARG", parse_float(minimum=0.0, maximum=1.0), None,
           "Ratio for the traceidratio samplers, from 0 to 1. Default 1.0.", "0.25"),
    # 10 s instead of the SDK's 60 s: a server-side alert then reaches Alertmanager within ~20 s
    # of the event (docs/alerting.md); an export costs milliseconds.
    Option("metric_export_interval", "OTEL_METRIC_EXPORT_INTERVAL", parse_millis_as_seconds, 10.0,
           "Seconds between metric exports (the variable is in milliseconds). 10 s keeps server-side "
           "alerts within 30 s of the event.", "60000",
           parse_argument=parse_seconds(0.001)),
    Option("metric_export_timeout", "OTEL_METRIC_EXPORT_TIMEOUT", parse_millis_as_seconds, 30.0,
           "Seconds one metric export may take (the variable is in milliseconds).", "30000",
           parse_argument=parse_seconds(0.001)),
    Option("file_dir", "OTEL_MONITORING_FILE_DIR", parse_path, "./otel-data",
           "Directory of the otlp_file exporter: traces.jsonl, metrics.jsonl, logs.jsonl.",
           "/var/lib/myapp/telemetry"),
    Option("file_max_bytes", "OTEL_MONITORING_FILE_MAX_BYTES", parse_int(minimum=1024), 100 * 1024 * 1024,
           "Size at which a .jsonl file is rotated (a line is never split).", "104857600"),
    Option("file_max_backups", "OTEL_MONITORING_FILE_MAX_BACKUPS", parse_int(minimum=0, maximum=100_000), 10,
           "Rotated files kept per signal (0 keeps all).", "10"),
    Option("logging_bridge", "OTEL_MONITORING_LOGGING_BRIDGE", parse_bool, True,
           "Send stdlib logging records to the OTel logs pipeline, with trace and span ids.", "false"),
    Option("log_level", "OTEL_MONITORING_LOG_LEVEL", parse_choice("debug", "info", "warning", "error"),
           "info", "Lowest stdlib logging level the bridge forwards.", "warning"),
    Option("shutdown_timeout", "OTEL_MONITORING_SHUTDOWN_TIMEOUT", parse_seconds(0.0), 5.0,
           "Seconds the exit flush may take before the process goes on exiting.", "5"),
    Option("strict", "OTEL_MONITORING_STRICT", parse_bool, False,
           "Make every bad environment value or file an error raised by configure() at start-up (for CI and "
           "staging). Off: such a problem is logged once and the default applies; the application starts.",
           "true"),
    Option("redaction", "OTEL_MONITORING_REDACTION", parse_bool, True,
           "Scrub secrets from every export (files, OTLP, console, snapshots): values of secret-named "
           "attributes, query and connection-string parameters, URL userinfo, bearer tokens. See "
           "docs/security.md.", "false"),
    Option("redact_names", "OTEL_MONITORING_REDACT_NAMES", parse_list, (),
           "Secret names to add to the redaction list (attribute key parts and query parameters).",
           "ssn,account_number"),
    Option("redact_keep", "OTEL_MONITORING_REDACT_KEEP", parse_list, (),
           "Names to remove from the redaction list (their values are exported as they are).", "signature"),
    Option("signal_flush", "OTEL_MONITORING_SIGNAL_FLUSH", parse_bool, True,
           "On SIGTERM, SIGHUP or SIGINT whose default action would end the process, flush telemetry "
           "(within shutdown_timeout), then end the process by the same signal. Handlers the "
           "application or its server set are kept and run instead.", "false"),
    Option("instrument", "OTEL_MONITORING_INSTRUMENT", parse_bool, True,
           "configure() enables the installed instrumentors, each when its library is imported "
           "(under opentelemetry-instrument, the otel-monitoring distro does the same).", "false"),
    # --- instrumentation ---
    Option("targets", "OTEL_MONITORING_TARGETS", parse_path, None,
           "YAML file naming your own functions to trace (package.module:Class.method); see "
           "docs/instrumentation.md.", "/etc/myapp/otel-targets.yaml", section="instrumentation"),
    Option("targets_strict", "OTEL_MONITORING_TARGETS_STRICT", parse_bool, False,
           "Raise on a bad targets entry instead of logging it and going on without it (as "
           "OTEL_MONITORING_STRICT does for every input).", "true",
           section="instrumentation"),
    Option("capture_content", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", parse_content_capture,
           False, "Put prompts, completions, query texts and documents on GenAI spans (off: they may "
           "hold personal or secret data).", "true", section="instrumentation"),
    Option("disabled_instrumentations", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", parse_list, (),
           "Instrumentations configure() must not enable, by entry point name (otel_monitoring_ccxt, "
           "otel_monitoring_langchain, otel_monitoring_chromadb, otel_monitoring_targets, fastapi, "
           "requests, httpx, httpx2, aiohttp-client, openai_v2, sqlalchemy, psycopg, asyncpg, redis).", "otel_monitoring_chromadb,httpx", section="instrumentation"),
    Option("excluded_urls", "OTEL_PYTHON_EXCLUDED_URLS", parse_str,
           r"/(healthz?|readyz?|livez?)/?(\?|$)",
           "Comma-separated regular expressions of URLs the HTTP instrumentations do not trace "
           "(default: health, ready and live probes).", "/healthz,/metrics", section="instrumentation"),
    # --- meters ---
    Option("system_metrics", "OTEL_MONITORING_SYSTEM_METRICS", parse_bool, True,
           "System and process metrics (contrib system-metrics instrumentation plus filesystem, load, "
           "uptime, process count) and the host health score.", "false", section="meters"),
    Option("system_metrics_extra", "OTEL_MONITORING_SYSTEM_METRICS_EXTRA", parse_list, (),
           "Contrib system metrics to add to the default set, by name or glob (system.network.connections "
           "costs ~9 ms per collection). See docs/meters.md.",
           "system.disk.operations,system.network.errors,system.network.connections", section="meters"),
    Option("filesystem_mountpoints", "OTEL_MONITORING_FILESYSTEM_MOUNTPOINTS", parse_list, (),
           "Mount points for system.filesystem.* and the disk part of host health. Default: the "
           "physical filesystems psutil lists, plus /.", "/,/data", section="meters"),
    Option("host_health_thresholds", "OTEL_MONITORING_HOST_HEALTH_THRESHOLDS",
           _meters_parser("parse_health_thresholds"),
           dict(thresholds.HOST_RESOURCE_THRESHOLDS),
           "Warning:critical utilization in percent per resource (cpu, memory, disk) for the host "
           "health score; resources not named keep their default.", "cpu=70:90,memory=80:95,disk=85:95",
           section="meters"),
    Option("prices_file", "OTEL_MONITORING_PRICES", parse_path, None,
           "JSON or YAML price table merged over the packaged one (docs/cost.md).", "/etc/myapp/prices.yaml",
           section="meters"),
    Option("cost_tracking", "OTEL_MONITORING_COST_TRACKING", parse_bool, True,
           "Record otel_monitoring.cost from GenAI, trading and priced HTTP client spans.", "false",
           section="meters"),
    Option("budgets", "OTEL_MONITORING_BUDGETS", _meters_parser("parse_budgets"), (),
           "USD budgets, period:scope=limit; scope is total, type.<cost.type> or category.<name>.",
           "daily:type.model_inference=100,monthly:total=3000", section="meters"),
    Option("cost_attribute", "OTEL_MONITORING_COST_ATTRIBUTE", parse_str, None,
           "Span/record attribute (a user or tenant id) copied onto otel_monitoring.cost, behind "
           "cost_attribute_limit.", "tenant.id", section="meters"),
    Option("cost_attribute_limit", "OTEL_MONITORING_COST_ATTRIBUTE_LIMIT", parse_int(minimum=1, maximum=100_000), 100,
           "Distinct cost_attribute values kept; later ones are recorded as _other.", "100", section="meters"),
    Option("kpi_window", "OTEL_MONITORING_KPI_WINDOW", parse_int(minimum=1, maximum=1_000_000), 100,
           "Outcomes in the sliding window of signal accuracy and RAG hit and empty rates.", "100",
           section="meters"),
    Option("market_data_live_seconds", "OTEL_MONITORING_MARKET_DATA_LIVE_SECONDS", parse_seconds(0.001),
           thresholds.MARKET_DATA_LIVE_SECONDS, "Market data younger than this is LIVE.", "600", section="meters"),
    Option("market_data_delayed_seconds", "OTEL_MONITORING_MARKET_DATA_DELAYED_SECONDS",
           parse_seconds(0.001), thresholds.MARKET_DATA_DELAYED_SECONDS,
           "Market data younger than this (and not LIVE) is DELAYED; older is STALE.", "3600", section="meters"),
    Option("stream_live_seconds", "OTEL_MONITORING_STREAM_LIVE_SECONDS", parse_seconds(0.001),
           thresholds.STREAM_LIVE_SECONDS,
           "A WebSocket market-data stream (ccxt.pro watch_*) silent for less than this is LIVE.", "10",
           section="meters"),
    Option("stream_stale_seconds", "OTEL_MONITORING_STREAM_STALE_SECONDS", parse_seconds(0.001),
           thresholds.STREAM_STALE_SECONDS,
           "A WebSocket market-data stream silent for this long is STALE (DELAYED in between).", "60",
           section="meters"),
    Option("stream_gap_factor", "OTEL_MONITORING_STREAM_GAP_FACTOR", parse_float(minimum=1.0, maximum=1e6), 10.0,
           "A pause between two messages of a stream longer than this many times its usual interval "
           "(and over 1 s) counts as a gap (trading.market_data.gaps).", "10", section="meters"),
    Option("stream_min_rates", "OTEL_MONITORING_STREAM_MIN_RATES", _parse_min_rates, {},
           "Minimum messages per second of streams, by channel (the watch method) or symbol@channel; "
           "a stream under it is flagged (trading.market_data.below_min_rate).",
           "watch_ticker=0.5,BTC/USDT@watch_order_book=2", section="meters"),
    Option("rag_relevance_threshold", "OTEL_MONITORING_RAG_RELEVANCE_THRESHOLD", parse_float(minimum=-1e6, maximum=1e6), 0.7,
           "A retrieval whose best relevance score reaches this is a hit (when no feedback says).", "0.7",
           section="meters"),
    Option("health_port", "OTEL_MONITORING_HEALTH_PORT", parse_port(allow_zero=True), None,
           "Serve /health and /health/detailed on this port (0: any free port). Default: no server.",
           "8081", section="meters"),
    Option("health_host", "OTEL_MONITORING_HEALTH_HOST", parse_str, "127.0.0.1",
           "Address the health server binds to.", "0.0.0.0", section="meters"),
    Option("health_check_interval", "OTEL_MONITORING_HEALTH_CHECK_INTERVAL", parse_seconds(0.1), 30.0,
           "Seconds between background runs of the health checks (for their metrics).", "30", section="meters"),
    Option("health_check_timeout", "OTEL_MONITORING_HEALTH_CHECK_TIMEOUT", parse_seconds(0.01), 5.0,
           "Default seconds one health check may take before it counts as failed.", "5", section="meters"),
    Option("health_default_checks", "OTEL_MONITORING_HEALTH_DEFAULT_CHECKS", parse_bool, True,
           "Register the disk, memory and CPU checks (failing at the critical thresholds).", "false",
           section="meters"),
    # --- local monitoring ---
    Option("snapshot_dir", "OTEL_MONITORING_SNAPSHOT_DIR", parse_path, None,
           "Directory of the local mode (docs/snapshots.md): metrics_live.json and alerts.json every "
           "snapshot_interval, history.sqlite, and the in-process alert rules. Default: off.",
           "./otel-snapshots", section="local"),
    Option("snapshot_interval", "OTEL_MONITORING_SNAPSHOT_INTERVAL", parse_seconds(0.5), 5.0,
           "Seconds between snapshots and alert rule evaluations (minimum 0.5).", "5", section="local"),
    Option("percentile_window", "OTEL_MONITORING_PERCENTILE_WINDOW", parse_duration, 300.0,
           "The p50/p95/p99 of the snapshots (and so of `top` and the report) cover this last stretch "
           "of time, from bucket differences; since-start percentiles stay in each entry's since_start.",
           "5m", section="local"),
    Option("history_retention", "OTEL_MONITORING_HISTORY_RETENTION", parse_duration, 30 * 86400.0,
           "How long history.sqlite keeps samples and alert events (a number of seconds, or 12h, 7d). "
           "Samples older than a day are rolled up to one per series and hour.",
           "7d", section="local"),
    Option("history_interval", "OTEL_MONITORING_HISTORY_INTERVAL", parse_duration, 60.0,
           "Time between two history rows of a series (at least one snapshot interval).", "60s",
           section="local"),
    Option("logs_url", "OTEL_MONITORING_LOGS_URL", parse_endpoint, None,
           "VictoriaLogs base URL `otel-monitoring logs` queries (default: the running stack's, else "
           "http://127.0.0.1:9428).", "http://127.0.0.1:9428", section="local"),
    Option("alert_rules", "OTEL_MONITORING_ALERT_RULES", parse_str, "default",
           "Alert rules file (docs/alerting.md): `default` for the packaged rules, `none` for no rules.",
           "/etc/myapp/alert_rules.yaml", section="local"),
    Option("alert_routes", "OTEL_MONITORING_ALERT_ROUTES", parse_alert_routes, {},
           "Lowest severity each notification channel receives; unnamed channels keep the defaults "
           + ", ".join(f"{channel}={severity}" for channel, severity in thresholds.ALERT_ROUTES.items()) + ".",
           "slack=critical,email=emergency", section="local"),
    Option("alert_webhook_url", "OTEL_MONITORING_ALERT_WEBHOOK_URL", parse_endpoint, None,
           "Generic JSON webhook receiving alert notifications.", "https://hooks.example.com/alerts",
           section="local", secret=True),
    Option("alert_webhook_headers", "OTEL_MONITORING_ALERT_WEBHOOK_HEADERS", parse_key_values, {},
           "Headers sent with every webhook notification (URL-encoded values).", "authorization=Bearer%20abc",
           section="local", secret=True),
    Option("alert_slack_webhook_url", "OTEL_MONITORING_ALERT_SLACK_WEBHOOK_URL", parse_endpoint, None,
           "Slack incoming webhook URL.", "https://hooks.slack.com/services/T000/B000/XXXX", section="local", secret=True),
    Option("alert_discord_webhook_url", "OTEL_MONITORING_ALERT_DISCORD_WEBHOOK_URL", parse_endpoint, None,
           "Discord webhook URL.", "https://discord.com/api/webhooks/123/abc", section="local", secret=True),
    Option("alert_email_to", "OTEL_MONITORING_ALERT_EMAIL_TO", parse_list, (),
           "Recipients of alert emails (setting it turns email on).", "ops@example.com,oncall@example.com",
           section="local"),
    Option("alert_email_from", "OTEL_MONITORING_ALERT_EMAIL_FROM", parse_str, None,
           "Sender of alert emails. Default: otel-monitoring@<host name>.", "alerts@example.com", section="local"),
    Option("alert_smtp_host", "OTEL_MONITORING_ALERT_SMTP_HOST", parse_str, "127.0.0.1",
           "SMTP server for alert emails.", "smtp.example.com", section="local"),
    Option("alert_smtp_port", "OTEL_MONITORING_ALERT_SMTP_PORT", parse_port(), None,
           "SMTP port. Default: 587 with starttls, 465 with ssl, 25 with none.", "587", section="local"),
    Option("alert_smtp_security", "OTEL_MONITORING_ALERT_SMTP_SECURITY", parse_choice("starttls", "ssl", "none"),
           "starttls", "starttls (upgrade the connection), ssl (TLS from the start) or none (a local relay).",
           "ssl", section="local"),
    Option("alert_smtp_username", "OTEL_MONITORING_ALERT_SMTP_USERNAME", parse_str, None,
           "SMTP login user (login only when set).", "alerts@example.com", section="local"),
    Option("alert_smtp_password", "OTEL_MONITORING_ALERT_SMTP_PASSWORD", parse_str, None,
           "SMTP login password.", "app-password", section="local", secret=True),
    Option("alert_notify_timeout", "OTEL_MONITORING_ALERT_NOTIFY_TIMEOUT", parse_seconds(0.1), 5.0,
           "Seconds one notification attempt may take.", "5", section="local"),
    Option("alert_notify_retries", "OTEL_MONITORING_ALERT_NOTIFY_RETRIES", parse_int(minimum=0, maximum=100), 2,
           "Retries of a failed notification, with exponential backoff from 1 s.", "2", section="local"),
    Option("alert_queue_size", "OTEL_MONITORING_ALERT_QUEUE_SIZE", parse_int(minimum=1, maximum=1_000_000), 100,
           "Notifications queued per channel; beyond it they are dropped and counted.", "100", section="local"),
)

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


class Settings:
    """Resolved options. ``settings.NAME`` is the value; ``settings.source(NAME)`` says where it came from."""

    __slots__ = ("_values", "_sources")

    def __init__(self, values: dict[str, Any], sources: dict[str, str]):
        self._values = values
        self._sources = sources

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no option named {name!r}") from None

    def source(self, name: str) -> str:
        return self._sources[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def display(self, name: str) -> str:
        """The value as it may be shown or logged: secrets masked."""
        value = self._values[name]
        if OPTIONS_BY_NAME[name].secret and value:
            return "<secret>" if not isinstance(value, dict) else repr({key: "<secret>" for key in value})
        return repr(value)

    def __repr__(self) -> str:
        return "Settings({" + ", ".join(f"{name!r}: {self.display(name)}" for name in self._values) + "})"


# The OTEL_MONITORING_* variables read outside the settings above (by the stack commands, the build
# scripts, the distro and a debugging switch): with OPTIONS, every name the package knows, so that a
# misspelled one is reported with the closest known name rather than ignored in silence.
OTHER_VARIABLES: dict[str, str] = {
    "OTEL_MONITORING_CACHE": "cache of the stack's binaries and the scripts' virtualenv (stack, scripts/)",
    "OTEL_MONITORING_VENV": "the virtualenv scripts/bootstrap.sh made (scripts/)",
    "OTEL_MONITORING_COLLECTOR_CONFIG": "another collector config directory (stack)",
    "OTEL_MONITORING_OTELCOL": "the collector binary (stack)",
    "OTEL_MONITORING_JAEGER": "the Jaeger binary (stack)",
    "OTEL_MONITORING_JAEGER_UI": "the Jaeger UI assets (stack)",
    "OTEL_MONITORING_PROMETHEUS": "the Prometheus binary (stack)",
    "OTEL_MONITORING_PROMTOOL": "the promtool binary (alerts export, tests)",
    "OTEL_MONITORING_ALERTMANAGER": "the Alertmanager binary (stack)",
    "OTEL_MONITORING_AMTOOL": "the amtool binary (stack)",
    "OTEL_MONITORING_VICTORIALOGS": "the VictoriaLogs binary (stack)",
    "OTEL_MONITORING_DISTRO_DISABLED": "set by the distro for child processes",
    "OTEL_MONITORING_DEBUG_EXIT": "prints how the process ended (debugging)",
}
VARIABLE_PREFIX = "OTEL_MONITORING_"


def known_variables() -> set[str]:
    return {option.env for option in OPTIONS if option.env and option.env.startswith(VARIABLE_PREFIX)} | set(OTHER_VARIABLES)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One message per ``OTEL_MONITORING_*`` variable that no setting reads (a typo is otherwise
    ignored in silence), naming the closest known variable."""
    import difflib

    environ = os.environ if environ is None else environ
    known = known_variables()
    messages = []
    for name in sorted(n for n in environ if n.startswith(VARIABLE_PREFIX) and n not in known):
        # Compared without the shared prefix, which would make any two names look alike.
        close = difflib.get_close_matches(name[len(VARIABLE_PREFIX):], sorted(k[len(VARIABLE_PREFIX):] for k in known),
                                          n=1, cutoff=0.6)
        fix = (f"did you mean {VARIABLE_PREFIX}{close[0]}?" if close
               else "the settings are listed in docs/configuration.md.")
        messages.append(f"environment variable {name} is not an otel-monitoring setting and is ignored. Fix: {fix}")
    return messages


def _describe(option: Option, from_env: bool) -> str:
    if from_env:
        return f"environment variable {option.env}"
    return f"configure({option.name}=...)"


def _parse(option: Option, raw: Any, from_env: bool) -> Any:
    parser = option.parse if from_env or option.parse_argument is None else option.parse_argument
    try:
        return parser(raw)
    except (ValueError, TypeError) as error:
        where = _describe(option, from_env)
        example = f"{option.env}={option.example}" if from_env else f"{option.name}={option.example!r}"
        raise ConfigError(f"{where}: {error}. {option.doc} Example: {example}") from None


def load_settings(arguments: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                  report: Callable[[str], None] | None = None) -> Settings:
    """Resolve every option: an explicit argument (not None) wins over the environment, then the default.

    A bad argument raises ``ConfigError``. A bad environment value goes to ``report`` (default:
    ``policy.report``, which raises only in strict mode) and the option keeps its default.
    """
    arguments = dict(arguments or {})
    environ = os.environ if environ is None else environ
    strict = _strict_setting(arguments, environ)
    explained: Callable[[str, str], None]
    if report is None:
        from . import policy

        def report(message: str) -> None:
            policy.report(message, strict=strict, consequence="The default applies.")

        def explained(message: str, consequence: str) -> None:
            policy.report(message, strict=strict, consequence=consequence)

        def report_unknown(message: str) -> None:
            policy.report(message, strict=strict,
                          consequence="The setting meant keeps its value from elsewhere (argument or default).")
    else:
        report_unknown = report
        given = report

        def explained(message: str, consequence: str) -> None:
            given(f"{message} {consequence}")
    unknown = sorted(set(arguments) - set(OPTIONS_BY_NAME))
    if unknown:
        raise ConfigError(
            f"configure() got unknown argument(s) {', '.join(unknown)}; valid ones are listed in "
            "docs/configuration.md (e.g. service_name='trading-bot')."
        )
    for message in unknown_variables(environ):
        report_unknown(message)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    bad_endpoints: list[tuple[str, str]] = []  # reported once every setting is known
    for option in OPTIONS:
        raw = arguments.get(option.name)
        if raw is not None:
            values[option.name] = _parse(option, raw, from_env=False)
            sources[option.name] = "argument"
            continue
        env_raw = environ.get(option.env) if option.env else None
        if env_raw is not None and env_raw.strip() != "":
            try:
                values[option.name] = _parse(option, env_raw, from_env=True)
            except ConfigError as error:
                if option.name in ENDPOINT_OPTIONS:
                    bad_endpoints.append((option.name, str(error)))
                else:
                    report(str(error))
            else:
                sources[option.name] = f"env {option.env}"
                continue
        values[option.name] = option.default
        sources[option.name] = "default"
    for name in ENDPOINT_OPTIONS:
        problem = _schemeless_over_http(values, name)
        if problem is None:
            continue
        option = OPTIONS_BY_NAME[name]
        from_env = sources[name] != "argument"
        message = (f"{_describe(option, from_env)}: {problem}. Fix: "
                   + (f"{option.env}=http://{values[name]}" if from_env else f"{name}='http://{values[name]}'")
                   + " (https:// for TLS).")
        if not from_env:
            raise ConfigError(message)
        bad_endpoints.append((name, message))
        values[name], sources[name] = option.default, "default"
    settings = Settings(values, sources)
    for name, message in bad_endpoints:
        explained(message, _without_endpoint(settings, name))
    return settings


ENDPOINT_OPTIONS = {"endpoint": ("traces", "metrics", "logs"), "traces_endpoint": ("traces",),
                    "metrics_endpoint": ("metrics",), "logs_endpoint": ("logs",)}


def _schemeless_over_http(values: Mapping[str, Any], name: str) -> str | None:
    """What is wrong when endpoint option ``name`` is host:port without a scheme and a signal would send
    to it over OTLP/HTTP: the SDK's HTTP exporter fails every export to such a URL (gRPC takes it)."""
    endpoint = values[name]
    if not endpoint or has_scheme(endpoint):
        return None
    over_http = [signal for signal in ENDPOINT_OPTIONS[name]
                 if (name != "endpoint" or not values[f"{signal}_endpoint"])
                 and (values[f"{signal}_protocol"] or values["protocol"]) == "http/protobuf"]
    if not over_http:
        return None
    which = "" if len(over_http) == len(ENDPOINT_OPTIONS[name]) else f" ({', '.join(over_http)})"
    return (f"{endpoint!r} has no scheme, and OTLP over HTTP{which} needs a URL: the exporter would fail "
            "every export (only gRPC takes host:port)")


def _without_endpoint(settings: Settings, name: str) -> str:
    """What really happens to the signals a rejected endpoint was for: with no endpoint the
    exporter default is files, so "the default applies" would hide where telemetry went."""
    from .exporters import exporter_names, otlp_endpoint

    places: dict[str, list[str]] = {}  # where -> the signals going there
    for signal in ENDPOINT_OPTIONS[name]:
        if name == "endpoint" and getattr(settings, f"{signal}_endpoint"):
            continue  # its own endpoint serves it
        where = []
        for exporter in exporter_names(settings, signal):
            if exporter == "otlp_file":
                where.append(f"to OTLP/JSON files in {settings.file_dir}")
            elif exporter == "otlp":
                where.append(f"over OTLP to {otlp_endpoint(settings, signal)[1]}")
            elif exporter == "none":
                where.append("nowhere (exporter none)")
            else:
                where.append(f"to the {exporter} exporter")
        places.setdefault(" and ".join(where), []).append(signal)
    if not places:
        return "Instead, nothing changes: each signal has its own endpoint."
    said = [f"{', '.join(signals[:-1]) + ' and ' if len(signals) > 1 else ''}{signals[-1]} go {where}"
            for where, signals in places.items()]
    return f"Instead, {'; '.join(said)}. Fix the URL to send them to your collector."


def _strict_setting(arguments: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
    if arguments.get("strict") is not None:
        return _parse(OPTIONS_BY_NAME["strict"], arguments["strict"], from_env=False)
    try:
        return parse_bool(environ.get("OTEL_MONITORING_STRICT", ""))
    except ValueError:
        return False  # reported with the other variables below


def markdown_table() -> str:
    """The configuration reference, as docs/configuration.md holds it."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `otel_monitoring/config.py` by `python -m otel_monitoring.config > "
        "docs/configuration.md`; a test keeps this file in step with the code.",
        "",
        "Every option is a keyword argument of `otel_monitoring.configure()` and, where a variable is",
        "named, an environment variable. An explicit argument wins over the environment, which wins",
        "over the default. `otel-monitoring doctor` prints the resolved values and where each came from.",
        "",
        "An `OTEL_MONITORING_*` variable that no setting reads (a typo such as `OTEL_MONITORING_SNAPSHOT_DIRR`)",
        "is reported once by `configure()` and listed by `doctor`, with the closest known name; it is",
        "ignored (under `OTEL_MONITORING_STRICT=true`, `configure()` raises instead). The known names are",
        "the table below and the variables read outside the settings, listed at the end.",
        "",
    ]
    section = None
    for option in OPTIONS:
        if option.section != section:
            section = option.section
            lines += [f"## {section}", "", "| argument | environment variable | default | meaning | example |",
                      "| --- | --- | --- | --- | --- |"]
        default = "" if option.default in (None, {}, ()) else f"`{option.default}`"
        env = f"`{option.env}`" if option.env else "(argument only)"
        lines.append(f"| `{option.name}` | {env} | {default} | {option.doc} | `{option.example}` |")
    lines += [
        "",
        "## Read by the OpenTelemetry SDK itself",
        "",
        "These standard variables are not options of `configure()`, but they work as usual because the",
        "pipeline is built from the SDK's own processors and exporters:",
        "",
        *[f"- `{name}`: {meaning}" for name, meaning in SDK_NATIVE_VARIABLES],
        "",
        "## Read outside the settings",
        "",
        "The stack commands, the scripts and the distro read these directly:",
        "",
        *[f"- `{name}`: {meaning}" for name, meaning in OTHER_VARIABLES.items()],
        "",
    ]
    return "\n".join(lines)


# The SDK's batch processors read these themselves and raise a bare ValueError naming no variable on
# a bad one; configure() validates them here and passes the values explicitly.
BATCH_VARIABLES = {
    "max_queue_size": ("MAX_QUEUE_SIZE", 2048, 1, 10_000_000),
    "schedule_delay_millis": ("SCHEDULE_DELAY", 5000, 0, int(MAX_DURATION_S * 1000)),
    "max_export_batch_size": ("MAX_EXPORT_BATCH_SIZE", 512, 1, 10_000_000),
    "export_timeout_millis": ("EXPORT_TIMEOUT", 30000, 0, int(MAX_DURATION_S * 1000)),
}


def batch_processor_arguments(prefix: str, environ: Mapping[str, str] | None = None,
                              report: Callable[[str], None] | None = None) -> dict[str, int]:
    """Keyword arguments of BatchSpanProcessor (``prefix`` OTEL_BSP) or BatchLogRecordProcessor (OTEL_BLRP)
    from the environment, each checked; a bad one is reported and replaced by the SDK's default."""
    environ = os.environ if environ is None else environ
    if report is None:
        from . import policy

        def report(message: str) -> None:
            policy.report(message, strict=_strict_setting({}, environ), consequence="The default applies.")

    result: dict[str, int] = {}
    for argument, (suffix, default, minimum, maximum) in BATCH_VARIABLES.items():
        variable = f"{prefix}_{suffix}"
        raw = environ.get(variable, "").strip()
        if prefix == "OTEL_BLRP" and argument == "schedule_delay_millis":
            default = 1000  # the log processor's own default
        result[argument] = default
        if not raw:
            continue
        try:
            result[argument] = parse_int(minimum=minimum, maximum=maximum)(raw)
        except ValueError as error:
            report(f"environment variable {variable}: {error}. Fix: a whole number from {minimum} to {maximum}, "
                   f"e.g. {variable}={default}.")
    if result["max_export_batch_size"] > result["max_queue_size"]:
        report(f"environment variable {prefix}_MAX_EXPORT_BATCH_SIZE ({result['max_export_batch_size']}) is above "
               f"{prefix}_MAX_QUEUE_SIZE ({result['max_queue_size']}). Fix: make the batch at most the queue.")
        result["max_export_batch_size"] = min(BATCH_VARIABLES["max_export_batch_size"][1], result["max_queue_size"])
    return result


# Standard variables the SDK's processors and OTLP exporters read on their own.
SDK_NATIVE_VARIABLES = (
    ("OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_EXPORT_TIMEOUT",
     "span batching (queue size bounds memory; spans beyond it are dropped, never blocking the app)"),
    ("OTEL_BLRP_SCHEDULE_DELAY, OTEL_BLRP_MAX_QUEUE_SIZE, OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, OTEL_BLRP_EXPORT_TIMEOUT",
     "log record batching"),
    ("OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE "
     "(and the per-signal forms)", "TLS for OTLP"),
    ("OTEL_EXPORTER_OTLP_COMPRESSION (and the per-signal forms)", "gzip or none"),
    ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "cumulative (default), delta or lowmemory"),
    ("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based (default), always_on, always_off"),
    ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, OTEL_SPAN_EVENT_COUNT_LIMIT",
     "span limits"),
    ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "instrumentors `opentelemetry-instrument` must not load"),
    ("OTEL_PYTHON_CONFIGURATOR, OTEL_PYTHON_DISTRO", "pick `otel_monitoring` when several are installed"),
)


if __name__ == "__main__":
    print(markdown_table(), end="")
