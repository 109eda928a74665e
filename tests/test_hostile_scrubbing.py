"""Secrets scrubbed by the SDK itself: a real application process writes spans, span events, logs
and metrics full of secrets; every file it writes (OTLP/JSON files, snapshots, alerts) and what an
OTLP receiver gets hold the REDACTED markers and none of the secrets, while semantic-convention
values (token counts) arrive untouched."""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from otlp_receiver import OtlpReceiver
from support import REPO, attributes, clean_env, read_otlp_file, run_python, spans_from_requests

from otel_monitoring.redaction import (BEGIN_MARKER, END_MARKER, REDACTED, Redactor, collector_block,
                                       key_pattern, parameter_pattern)

SECRETS = ("s3cr3t-key", "sig-0xdeadbeef", "hunter2", "pa55w0rd", "tok-abc123", "c00kie-value", "bearer-xyz",
           "dbpass-777", "logpass-42", "metrickey-9", "eventsig-5", "statuskey-1")

APP = """
import logging, otel_monitoring
from opentelemetry import trace, metrics
logging.basicConfig(level=logging.INFO)
m = otel_monitoring.configure(service_name="scrub-app", {extra})
tracer = trace.get_tracer("app")
calls = metrics.get_meter("app").create_counter("app.calls", unit="{{call}}")
with tracer.start_as_current_span("GET") as span:
    span.set_attribute("url.full", "https://api.exchange.test/api/v3/order?symbol=BTCUSDT&apiKey=s3cr3t-key&signature=sig-0xdeadbeef")
    span.set_attribute("http.request.header.x-api-key", "s3cr3t-key")
    span.set_attribute("server.url", "https://bob:hunter2@db.example.test:5432/trades")
    span.set_attribute("db.password", "pa55w0rd")
    span.set_attribute("db.connection_string", "Server=db;User Id=app;Password=dbpass-777;Database=x")
    span.set_attribute("http.request.header.authorization", "Bearer bearer-xyz")
    span.set_attribute("http.request.header.cookie", "session=c00kie-value")
    span.set_attribute("app.note", "called with access_token=tok-abc123 and Bearer bearer-xyz")
    span.set_attribute("gen_ai.usage.input_tokens", 42)
    span.set_attribute("gen_ai.usage.output_tokens", 7)
    span.set_attribute("app.ssn", "123-45-6789")
    span.add_event("retry", {{"url.full": "https://x.test/p?sig=eventsig-5&page=2", "app.password": "pa55w0rd"}})
    span.set_status(trace.StatusCode.ERROR, "failed: https://x.test/q?api_key=statuskey-1")
    logging.getLogger("app").warning("login with password=logpass-42 to https://bob:hunter2@db.test/",
                                     extra={{"request.url": "https://x.test/?token=tok-abc123", "user.secret": "hunter2"}})
    calls.add(1, {{"url.full": "https://x.test/m?key=metrickey-9", "gen_ai.usage.input_tokens": 42}})
m.shutdown()
"""


def _all_text(directory) -> str:
    chunks = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                chunks.append(handle.read().decode("utf-8", "replace"))
    return "\n".join(chunks)


def _span(requests):
    (_resource, _scope, span), = [found for found in spans_from_requests(requests) if found[2].name == "GET"]
    return span


def _check_span(span, ssn_masked: bool = False, signature_kept: bool = False):
    attrs = attributes(span.attributes)
    signature = "sig-0xdeadbeef" if signature_kept else REDACTED
    assert attrs["url.full"] == ("https://api.exchange.test/api/v3/order?symbol=BTCUSDT&apiKey=REDACTED"
                                 f"&signature={signature}")
    assert attrs["http.request.header.x-api-key"] == REDACTED
    assert attrs["server.url"] == "https://REDACTED:REDACTED@db.example.test:5432/trades"
    assert attrs["db.password"] == REDACTED
    assert attrs["db.connection_string"] == "Server=db;User Id=app;Password=REDACTED;Database=x"
    assert attrs["http.request.header.authorization"] == REDACTED
    assert attrs["http.request.header.cookie"] == REDACTED
    assert attrs["app.note"] == "called with access_token=REDACTED and Bearer REDACTED"
    assert attrs["gen_ai.usage.input_tokens"] == 42 and attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["app.ssn"] == (REDACTED if ssn_masked else "123-45-6789")
    event, = span.events
    assert attributes(event.attributes) == {"url.full": "https://x.test/p?sig=REDACTED&page=2",
                                            "app.password": REDACTED}
    assert span.status.message == "failed: https://x.test/q?api_key=REDACTED"


def test_files_and_snapshots_hold_no_secret(tmp_path):
    files, snapshots = tmp_path / "files", tmp_path / "snapshots"
    result = run_python(APP.format(extra=f"exporter='otlp_file', file_dir={str(files)!r}, "
                                         f"snapshot_dir={str(snapshots)!r}, system_metrics=False"))
    assert result.returncode == 0, result.stderr
    _check_span(_span(read_otlp_file(files / "traces.jsonl", "traces")))

    records = [record for request in read_otlp_file(files / "logs.jsonl", "logs")
               for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records]
    login, = [r for r in records if "login with" in r.body.string_value]
    assert login.body.string_value == "login with password=REDACTED to https://REDACTED:REDACTED@db.test/"
    log_attrs = attributes(login.attributes)
    assert log_attrs["request.url"] == "https://x.test/?token=REDACTED" and log_attrs["user.secret"] == REDACTED

    points = [attributes(point.attributes)
              for request in read_otlp_file(files / "metrics.jsonl", "metrics")
              for rm in request.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
              if metric.name == "app.calls" for point in metric.sum.data_points]
    assert points and all(p == {"url.full": "https://x.test/m?key=REDACTED", "gen_ai.usage.input_tokens": 42}
                          for p in points)

    live = json.loads((snapshots / "metrics_live.json").read_text())
    series = live["counters"]["app.calls"]
    assert [s["attributes"]["url.full"] for s in series] == ["https://x.test/m?key=REDACTED"]

    everything = _all_text(files) + _all_text(snapshots)  # history.sqlite and alerts.json included
    assert REDACTED in everything
    leaked = [secret for secret in SECRETS if secret in everything]
    assert not leaked, leaked


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_otlp_export_holds_no_secret(protocol):
    receiver = OtlpReceiver()
    endpoint = receiver.start_grpc() if protocol == "grpc" else receiver.start_http()
    try:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
        result = run_python(APP.format(extra="system_metrics=False"), env=env)
        assert result.returncode == 0, result.stderr
        _check_span(_span(receiver.requests["traces"]))
        received = "\n".join(str(r) for signal in ("traces", "metrics", "logs") for r in receiver.requests[signal])
        assert "REDACTED" in received
        assert not [secret for secret in SECRETS if secret in received]
    finally:
        receiver.stop()


def test_names_can_be_added_and_removed(tmp_path):
    env = clean_env(OTEL_MONITORING_REDACT_NAMES="ssn", OTEL_MONITORING_REDACT_KEEP="signature")
    result = run_python(APP.format(extra=f"exporter='otlp_file', file_dir={str(tmp_path)!r}, system_metrics=False"),
                        env=env)
    assert result.returncode == 0, result.stderr
    _check_span(_span(read_otlp_file(tmp_path / "traces.jsonl", "traces")), ssn_masked=True, signature_kept=True)


def test_redaction_can_be_turned_off(tmp_path):
    env = clean_env(OTEL_MONITORING_REDACTION="false")
    result = run_python(APP.format(extra=f"exporter='otlp_file', file_dir={str(tmp_path)!r}, system_metrics=False"),
                        env=env)
    assert result.returncode == 0, result.stderr
    attrs = attributes(_span(read_otlp_file(tmp_path / "traces.jsonl", "traces")).attributes)
    assert attrs["db.password"] == "pa55w0rd"


def _semconv_keys() -> set[str]:
    import importlib
    import pkgutil

    keys = set()
    for package in ("opentelemetry.semconv.attributes", "opentelemetry.semconv._incubating.attributes"):
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            for name, value in vars(importlib.import_module(f"{package}.{info.name}")).items():
                if name.isupper() and isinstance(value, str) and "." in value and " " not in value:
                    keys.add(value)
    return keys


def test_no_semantic_convention_key_is_a_secret():
    keys = _semconv_keys()
    assert len(keys) > 500 and "gen_ai.usage.input_tokens" in keys  # the walk found the registry
    redactor = Redactor()
    assert sorted(k for k in keys if redactor.is_secret_key(k)) == []
    # and the one a user might fear for: values of semconv keys pass untouched when not secret-bearing
    assert redactor.scrub_attributes({"gen_ai.usage.input_tokens": 5, "gen_ai.request.model": "gpt-4o"}) is None


# --- the collector's second layer: generated from the same source, and agreeing with it ---

def _agent_config_text() -> str:
    with open(os.path.join(REPO, "collector-config", "agent.yaml"), encoding="utf-8") as handle:
        return handle.read()


def test_agent_collector_block_is_generated_from_the_python_list():
    text = _agent_config_text()
    start = text.index(BEGIN_MARKER)
    end = text.index(END_MARKER, start) + len(END_MARKER) + 1
    assert text[start:end] == collector_block(), "regenerate: python -m otel_monitoring.redaction"


def _ottl_string(text: str) -> str:
    """An OTTL double-quoted string's content, unescaped, with the collector's $$ turned into $."""
    return text.replace("\\\\", "\x00").replace('\\"', '"').replace("\x00", "\\").replace("$$", "$")


def test_agent_collector_patterns_decide_as_the_sdk_does():
    config = yaml.safe_load(_agent_config_text())
    key_regex = config["processors"]["attributes/redact"]["actions"][0]["pattern"]
    assert key_regex == key_pattern(Redactor().names)
    statements = config["processors"]["transform/redact"]["trace_statements"]
    span_statements = next(s for s in statements if s["context"] == "span")["statements"]
    parameter = re.search(r'replace_all_patterns\(attributes, "value", "(.*?)", "\$\$\{1\}\$\$\{2\}=REDACTED"\)',
                          span_statements[0]).group(1)
    assert _ottl_string(parameter) == parameter_pattern(Redactor().parameter_names)
    compiled = re.compile(key_regex)  # the same syntax in RE2 and Python's re
    redactor = Redactor()
    for key in ["db.password", "http.request.header.x-api-key", "gen_ai.usage.input_tokens", "exchange.apiKey",
                "user.secret", "secret_count", "trading.account_id", "cloud.account.id", "http.response.header.set-cookie",
                "gen_ai.usage.cache_read.input_tokens", "aws.s3.key", "messaging.message.key"] + sorted(_semconv_keys()):
        assert bool(compiled.match(key)) == redactor.is_secret_key(key), key
    # content deletion keeps its semantics: only message content, never token counts
    content = next(s for s in span_statements if "gen_ai" in s and "delete_matching_keys" in s)
    content_regex = _ottl_string(re.search(r'delete_matching_keys\(attributes, "(.*?)"\)', content).group(1))
    assert re.match(content_regex, "gen_ai.input.messages") and not re.match(content_regex, "gen_ai.usage.input_tokens")


def test_collector_block_updates_when_the_list_changes():
    """The generator is what keeps the collector in step: a name added in Python reaches its config."""
    block = collector_block(Redactor(add=["ssn"]))
    assert "ssn" in block and "ssn" not in collector_block()


COLLECTOR_APP = """
import logging, otel_monitoring
from opentelemetry import trace, metrics
m = otel_monitoring.configure(service_name="collector-scrub", system_metrics=False, redaction=False,
                              resource_attributes={{"deployment.account_id": "dbpass-777"}})
with trace.get_tracer("app").start_as_current_span("GET") as span:
    span.set_attribute("db.connection_string", "Server=db;User Id=app;Password=dbpass-777;Database=x")
    span.set_attribute("url.full", "https://api.exchange.test/o?symbol=BTCUSDT&signature=sig-0xdeadbeef")
    span.set_attribute("server.url", "https://bob:hunter2@db.example.test/")
    span.set_attribute("exchange.api_key", "s3cr3t-key")
    span.set_attribute("trading.account.id", "pa55w0rd")
    span.set_attribute("cloud.account.id", "123456789012")
    span.set_attribute("gen_ai.usage.input_tokens", 42)
    span.set_attribute("gen_ai.usage.output_tokens", 7)
    span.add_event("retry", {{"url.full": "https://x.test/p?sig=eventsig-5"}})
    logging.getLogger("app").warning("login with password=logpass-42", extra={{"user.secret": "hunter2"}})
    metrics.get_meter("app").create_counter("app.calls").add(1, {{"url.full": "https://x.test/m?key=metrickey-9"}})
m.shutdown()
"""


@pytest.mark.stack
def test_the_agent_collector_alone_redacts_with_the_same_list(tmp_path):
    """With the SDK's scrubbing off, the built collector running agent.yaml removes every secret and
    keeps the token counts and cloud.account.id (semantic conventions)."""
    from stackprocs import start_collector, wait_until

    collector = start_collector(os.path.join(REPO, "collector-config", "agent.yaml"), tmp_path)
    try:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=collector.otlp_grpc_endpoint, OTEL_METRIC_EXPORT_INTERVAL="500")
        result = run_python(COLLECTOR_APP.format(), env=env)
        assert result.returncode == 0, result.stderr

        def arrived():
            texts = [open(collector.file(s), encoding="utf-8").read() if os.path.exists(collector.file(s)) else ""
                     for s in ("traces", "logs", "metrics")]
            return texts if all("collector-scrub" in t for t in texts) and "x.test/m" in texts[2] else None

        traces, logs, metrics_text = wait_until(arrived, timeout=60, what="all three signals in the collector's files")
        span, = [s for _, _, s in spans_from_requests([parse for parse in read_otlp_file(collector.file("traces"),
                                                                                            "traces")])
                 if s.name == "GET"]
        attrs = attributes(span.attributes)
        assert attrs["db.connection_string"] == "Server=db;User Id=app;Password=REDACTED;Database=x"
        assert attrs["url.full"] == "https://api.exchange.test/o?symbol=BTCUSDT&signature=REDACTED"
        assert attrs["server.url"] == "https://REDACTED:REDACTED@db.example.test/"
        assert "exchange.api_key" not in attrs and "trading.account.id" not in attrs  # deleted by key
        assert attrs["cloud.account.id"] == "123456789012"
        assert attrs["gen_ai.usage.input_tokens"] == 42 and attrs["gen_ai.usage.output_tokens"] == 7
        assert attributes(span.events[0].attributes) == {"url.full": "https://x.test/p?sig=REDACTED"}
        everything = traces + logs + metrics_text
        assert "password=REDACTED" in logs and "key=REDACTED" in metrics_text
        assert not [secret for secret in SECRETS if secret in everything]
    finally:
        collector.stop()
