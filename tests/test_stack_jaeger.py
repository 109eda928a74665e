"""Jaeger as the stack runs it: its Monitor tab (service performance monitoring) reading the agent's
span metrics from the stack's Prometheus, no self-tracing loop, and the UI assets it serves."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import urllib.parse
from datetime import datetime

import pytest

from otel_monitoring.stack.jaeger_ui import JaegerUIError, resolve_assets
from stackprocs import (AGENT_CONFIG, JAEGER_CONFIG, http_get_json, start_collector, start_jaeger,
                        start_prometheus, wait_until)
from support import clean_env, free_port

SERVICE = "spm-probe"

# Spans of a known shape: `count` server spans named `name`, each `millis` long, OK or ERROR.
SEND = """
import sys, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
endpoint, service, plan = sys.argv[1], sys.argv[2], sys.argv[3]
provider = TracerProvider(resource=Resource.create({"service.name": service}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True), max_queue_size=4096, max_export_batch_size=4096))
tracer = provider.get_tracer("spm-test")
for item in plan.split(","):
    name, count, millis, status = item.split(":")
    for _ in range(int(count)):
        start = time.time_ns()
        span = tracer.start_span(name, kind=SpanKind.SERVER, start_time=start)
        if status == "error":
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + int(millis) * 1_000_000)
provider.shutdown()
"""


def _send(endpoint: str, service: str, plan: str) -> None:
    result = subprocess.run([sys.executable, "-c", SEND, endpoint, service, plan], env=clean_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def _by_operation(family: dict) -> dict[str, list[dict]]:
    """Jaeger's /api/metrics answer: {operation: metricPoints}."""
    result = {}
    for metric in family["metrics"]:
        labels = {label["name"]: label["value"] for label in metric["labels"]}
        result[labels["operation"]] = metric["metricPoints"]
    return result


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_monitor_tab_api_reads_the_agents_span_metrics_from_prometheus(tmp_path):
    prometheus_port = free_port()
    with start_jaeger(tmp_path, prometheus=prometheus_port) as jaeger, \
            start_collector(AGENT_CONFIG, tmp_path, jaeger_endpoint=jaeger.otlp_grpc_endpoint) as collector, \
            start_prometheus(tmp_path, [collector.prometheus_target], prometheus=prometheus_port) as prometheus:
        calls = f'traces_span_metrics_calls_total{{service_name="{SERVICE}"}}'

        def total_calls() -> float:
            result = prometheus.query(f"sum({calls})")
            return float(result[0]["value"][1]) if result else 0.0

        # Two rounds in the same 4:1 proportion: the counters exist from the first round, so a rate
        # over the second is defined (a series' first sample has nothing before it to rate against).
        _send(collector.otlp_grpc_endpoint, SERVICE, "GET /ok:4:30:ok,GET /fail:1:300:error")
        wait_until(lambda: total_calls() == 5, 60, what="the first round in Prometheus")
        _send(collector.otlp_grpc_endpoint, SERVICE, "GET /ok:40:30:ok,GET /fail:10:300:error")
        wait_until(lambda: total_calls() == 55, 60, what="the second round in Prometheus")
        time.sleep(2)  # one more scrape at the final values

        end_ms = int(time.time() * 1000)
        params = {"service": SERVICE, "groupByOperation": "true", "spanKind": "server", "endTs": end_ms,
                  "lookback": 60_000, "step": 5_000, "ratePer": 60_000}
        query = urllib.parse.urlencode(params)
        call_rates = _by_operation(http_get_json(f"{jaeger.query_url}/api/metrics/calls?{query}"))
        error_rates = _by_operation(http_get_json(f"{jaeger.query_url}/api/metrics/errors?{query}"))

    assert set(call_rates) == {"GET /ok", "GET /fail"}
    last = {operation: points[-1] for operation, points in call_rates.items()}
    ok_rate, fail_rate = (last[op]["gaugeValue"]["doubleValue"] for op in ("GET /ok", "GET /fail"))
    assert ok_rate > 0 and fail_rate > 0
    # The workload's proportion, exactly: both series were scraped at the same instants.
    assert ok_rate / fail_rate == pytest.approx(4.0, rel=1e-9)
    # Every call of GET /fail failed, none of GET /ok did.
    assert error_rates["GET /fail"][-1]["gaugeValue"]["doubleValue"] == pytest.approx(1.0)
    assert all(point["gaugeValue"]["doubleValue"] == 0 for point in error_rates.get("GET /ok", []))


def test_monitor_tab_rates_are_prometheus_rates_of_the_span_metrics(tmp_path):
    """What Jaeger shows is Prometheus' rate of traces_span_metrics_calls_total at the same instant."""
    prometheus_port = free_port()
    with start_jaeger(tmp_path, prometheus=prometheus_port) as jaeger, \
            start_collector(AGENT_CONFIG, tmp_path, jaeger_endpoint=jaeger.otlp_grpc_endpoint) as collector, \
            start_prometheus(tmp_path, [collector.prometheus_target], prometheus=prometheus_port) as prometheus:
        series = f'traces_span_metrics_calls_total{{service_name="{SERVICE}",span_name="GET /ok"}}'

        def total() -> float:
            result = prometheus.query(f"sum({series})")
            return float(result[0]["value"][1]) if result else 0.0

        _send(collector.otlp_grpc_endpoint, SERVICE, "GET /ok:3:10:ok")
        wait_until(lambda: total() == 3, 60, what="the first round in Prometheus")
        _send(collector.otlp_grpc_endpoint, SERVICE, "GET /ok:30:10:ok")
        wait_until(lambda: total() == 33, 60, what="the second round in Prometheus")
        time.sleep(2)
        end_ms = int(time.time() * 1000)
        query = urllib.parse.urlencode({"service": SERVICE, "groupByOperation": "true", "spanKind": "server",
                                        "endTs": end_ms, "lookback": 30_000, "step": 5_000, "ratePer": 60_000})
        points = _by_operation(http_get_json(f"{jaeger.query_url}/api/metrics/calls?{query}"))["GET /ok"]
        point = points[-1]
        at = _seconds(point["timestamp"])
        expected = prometheus.api("query", query=f"sum(rate({series}[1m]))", time=f"{at:.3f}")["result"]
    assert point["gaugeValue"]["doubleValue"] == pytest.approx(float(expected[0]["value"][1]), rel=1e-9)
    assert point["gaugeValue"]["doubleValue"] > 0


def _query_jaeger_a_few_times(jaeger) -> None:
    for _ in range(5):
        jaeger.services()
        jaeger.traces("anything")


def test_jaeger_does_not_trace_itself_into_the_agent(tmp_path):
    """Jaeger's query service sends its own spans to the default OTLP endpoint when tracing is on;
    here that endpoint is the agent collector (as 127.0.0.1:4317 is in the stack). The shipped config
    turns it off; the control run, same config with tracing on, shows the loop the test would catch."""
    import yaml

    with start_jaeger(tmp_path, name="sink") as sink, \
            start_collector(AGENT_CONFIG, tmp_path, jaeger_endpoint=sink.otlp_grpc_endpoint) as collector:
        def env(instance: str) -> dict[str, str]:
            # Jaeger's tracer reads the standard variables; the instance id tells the two runs apart.
            return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_grpc_endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "true",
                    "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}"}

        def agent_received(instance: str) -> bool:
            with open(collector.file("traces"), encoding="utf-8") as handle:
                return f'"stringValue":"{instance}"' in handle.read()

        with open(JAEGER_CONFIG, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        config["extensions"]["jaeger_query"]["enable_tracing"] = True
        control_config = tmp_path / "jaeger-tracing-on.yaml"
        control_config.write_text(yaml.safe_dump(config, sort_keys=False))
        with start_jaeger(tmp_path, name="control", config_path=str(control_config), env=env("jaeger-control-1")) as control:
            _query_jaeger_a_few_times(control)
            wait_until(lambda: agent_received("jaeger-control-1"), 60, what="the control Jaeger's own spans at the agent")
        with start_jaeger(tmp_path, name="shipped", env=env("jaeger-shipped-1")) as shipped:
            _query_jaeger_a_few_times(shipped)
            # The control's spans arrived within seconds; give the shipped one as long, and more.
            time.sleep(8)
            _query_jaeger_a_few_times(shipped)
        time.sleep(3)  # and its shutdown flush
        assert not agent_received("jaeger-shipped-1")
        assert "jaeger" in sink.services()  # the control's spans went all the way round


def test_ui_assets_from_an_archive_are_unpacked_once_into_the_cache(tmp_path):
    source = tmp_path / "ui"
    (source / "static").mkdir(parents=True)
    (source / "index.html").write_text("<html>jaeger ui</html>")
    (source / "static" / "app.js").write_text("console.log(1)")
    archive = tmp_path / "assets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="packages/jaeger-ui/build")  # a top-level folder is found through
    env = {"OTEL_MONITORING_CACHE": str(tmp_path / "cache")}
    first = resolve_assets(str(archive), env)
    assert first.startswith(str(tmp_path / "cache" / "jaeger-ui")) and open(os.path.join(first, "index.html")).read() == "<html>jaeger ui</html>"
    assert resolve_assets(str(archive), env) == first
    assert resolve_assets(None, {**env, "OTEL_MONITORING_JAEGER_UI": str(source)}) == str(source)
    assert resolve_assets(None, env) is None


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "absent.tar.gz"), "no such file"),
    (lambda p: (p / "empty").mkdir() or str(p / "empty"), "no index.html"),
    (lambda p: (p / "ui.zip").write_text("x") and str(p / "ui.zip"), "directory or a .tar.gz"),
    (lambda p: (p / "bad.tar.gz").write_text("not gzip") and str(p / "bad.tar.gz"), "cannot unpack"),
])
def test_unusable_ui_assets_are_named_with_the_fix(tmp_path, make, message):
    with pytest.raises(JaegerUIError, match=message):
        resolve_assets(make(tmp_path), {"OTEL_MONITORING_CACHE": str(tmp_path / "cache")})
