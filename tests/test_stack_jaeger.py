"""Jaeger as the stack runs it: its Monitor tab (service performance monitoring) reading the agent's
span metrics from the stack's Prometheus, no self-tracing loop, and the UI assets it serves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import time
import urllib.parse
from datetime import datetime

import pytest

from otel_monitoring.stack.jaeger_ui import JaegerUIError, resolve_assets
from stackprocs import (AGENT_CONFIG, JAEGER_CONFIG, JAEGER_UI_ASSETS, http_get_json, require_jaeger_ui, start_collector,
                        start_jaeger, start_prometheus, wait_until)
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
for number, round_plan in enumerate(plan.split("|")):
    if number:  # the next round when the test says so (one process, as a long-running server is)
        print("sent", flush=True)
        sys.stdin.readline()
    for item in round_plan.split(","):
        name, count, millis, status = item.split(":")
        for _ in range(int(count)):
            start = time.time_ns()
            span = tracer.start_span(name, kind=SpanKind.SERVER, start_time=start)
            if status == "error":
                span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=start + int(millis) * 1_000_000)
    provider.force_flush()
provider.shutdown()
"""


def _send(endpoint: str, service: str, plan: str) -> None:
    result = subprocess.run([sys.executable, "-c", SEND, endpoint, service, plan], env=clean_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


class _Rounds:
    """One sending process for a plan of rounds separated by "|": ``next()`` sends the next round."""

    def __init__(self, endpoint: str, service: str, plan: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SEND, endpoint, service, plan], env=clean_env(),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self._wait_sent()

    def _wait_sent(self) -> None:
        line = self.process.stdout.readline()
        assert line == "sent\n", self.process.stderr.read()[-3000:]

    def last(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        out, err = self.process.communicate(timeout=120)
        assert self.process.returncode == 0, err[-3000:]


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


LATENCY_SERVICE = "spm-latency"


@pytest.fixture(scope="module")
def latency_stack(tmp_path_factory):
    """Jaeger (with its UI when the assets are here), the agent and Prometheus, after one process sent
    120 ms and 30 ms server spans in two rounds. Yields (jaeger, prometheus)."""
    root = tmp_path_factory.mktemp("latency")
    prometheus_port = free_port()
    with start_jaeger(root, ui_assets=JAEGER_UI_ASSETS, prometheus=prometheus_port) as jaeger, \
            start_collector(AGENT_CONFIG, root, jaeger_endpoint=jaeger.otlp_grpc_endpoint) as collector, \
            start_prometheus(root, [collector.prometheus_target], prometheus=prometheus_port) as prometheus:
        count = f'sum(traces_span_metrics_duration_milliseconds_count{{service_name="{LATENCY_SERVICE}"}})'

        def counted() -> float:
            result = prometheus.query(count)
            return float(result[0]["value"][1]) if result else 0.0

        # Two rounds from one process (one series per bucket, as a server's), in the same 1:3
        # proportion: rate() over the window then scales every bucket series by the same factor, so
        # the quantiles are exact. (A histogram series born with its whole count has no increase to
        # rate; the second round gives it one.)
        rounds = _Rounds(collector.otlp_grpc_endpoint, LATENCY_SERVICE,
                         "GET /slow:3:120:ok,GET /fast:1:30:ok|GET /slow:30:120:ok,GET /fast:10:30:ok")
        wait_until(lambda: counted() == 4, 60, what="the first round in Prometheus")
        rounds.last()
        wait_until(lambda: counted() == 44, 60, what="the second round in Prometheus")
        time.sleep(2)  # one more scrape at the final values
        yield jaeger, prometheus


def _latencies(jaeger, quantile: float, by_operation: bool) -> dict[str, float]:
    # The UI's own window: a 10 minute rate, so the first round's sample is inside it however long
    # the second took on a loaded machine.
    query = urllib.parse.urlencode({
        "service": LATENCY_SERVICE, "quantile": quantile, "groupByOperation": str(by_operation).lower(),
        "spanKind": "server", "endTs": int(time.time() * 1000), "lookback": 60_000, "step": 5_000,
        "ratePer": 600_000})
    family = http_get_json(f"{jaeger.query_url}/api/metrics/latencies?{query}")
    if not by_operation:
        return {"": family["metrics"][0]["metricPoints"][-1]["gaugeValue"]["doubleValue"]}
    return {operation: points[-1]["gaugeValue"]["doubleValue"] for operation, points in _by_operation(family).items()}


def test_monitor_tab_latencies_are_the_spans_durations_in_milliseconds(latency_stack):
    """The Monitor tab takes /api/metrics/latencies as milliseconds; the span metrics are in seconds.
    120 ms and 30 ms spans, all in one bucket each ((100, 200] ms and (25, 50] ms), give Prometheus'
    histogram_quantile values exactly: p50 and p95 of the 120 ms operation are 150 and 195 ms, of the
    30 ms one 37.5 and 48.75 ms (the seconds histogram would read 0.15 and 0.195)."""
    jaeger, _ = latency_stack
    p50, p95 = _latencies(jaeger, 0.5, True), _latencies(jaeger, 0.95, True)
    service_p95 = _latencies(jaeger, 0.95, False)[""]

    assert p50 == {"GET /slow": pytest.approx(150.0), "GET /fast": pytest.approx(37.5)}
    assert p95 == {"GET /slow": pytest.approx(195.0), "GET /fast": pytest.approx(48.75)}
    # The bucket sense: each value lies in the bucket of the spans' true duration.
    assert 100 < p50["GET /slow"] <= 200 and 100 < p95["GET /slow"] <= 200
    assert 25 < p50["GET /fast"] <= 50 and 25 < p95["GET /fast"] <= 50
    # Service-wide: 10 of 40 calls at 30 ms, 30 at 120 ms; rank 38 of 40 is the 28th of the 30 in (100, 200].
    assert service_p95 == pytest.approx(100 + 100 * 28 / 30)


def test_monitor_tab_in_headless_chromium_shows_the_operations_p95_in_ms(latency_stack, tmp_path):
    """The Monitor tab as a person opens it: the operations table's "P95 Latency" column (the mean of
    the p95 points in its time frame, formatted by the UI) reads 195ms and 48.75ms."""
    from test_views_top import require_tool

    require_jaeger_ui()
    chromium = require_tool("chromium")
    jaeger, _ = latency_stack
    url = f"{jaeger.query_url}/monitor?service={urllib.parse.quote(LATENCY_SERVICE)}"
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1600,2000",
                           "--virtual-time-budget=20000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=180)
    dom = done.stdout
    assert "GET /slow" in dom and "GET /fast" in dom, dom[-3000:] + done.stderr[-2000:]
    assert "Latency (ms)" in dom  # the service chart's unit
    cells = re.findall(r">(\d+(?:\.\d+)?)(ms|μs|s)<", dom)
    assert ("195", "ms") in cells and ("48.75", "ms") in cells, cells


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
