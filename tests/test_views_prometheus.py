"""`otel-monitoring top --prometheus`: a real Prometheus (Debian's, started by tests/stackprocs.py)
scrapes a page written as the collector's prometheus exporter writes it (unit suffixes, _total,
labels with underscores, job = service.name); top's frame shows the same values and states as
from a snapshot directory, percentiles computed by Prometheus, and Prometheus' firing alert."""

from __future__ import annotations

import http.server
import itertools
import subprocess
import sys
import threading

import pytest

from otel_monitoring.views.overview import build_overview
from otel_monitoring.views.prometheus import PrometheusSource, match_exposed
from stackprocs import start_prometheus, wait_until
from support import free_port

RULES = """groups:
  - name: views-test
    interval: 1s
    rules:
      - alert: HighCPU
        expr: 1 - avg by (job) (system_cpu_utilization_ratio{state="idle"}) > 0.8
        labels: {severity: critical}
        annotations: {summary: "High CPU usage"}
"""


def exposition(scrapes: int) -> str:
    """The page after ``scrapes`` scrapes: counters and buckets grow by the same step each time,
    so rates and quantiles over any window are known."""
    n = scrapes
    bucket_shares = ((0.025, 0.0), (0.05, 0.6), (0.1, 0.9), (0.25, 1.0), ("+Inf", 1.0))
    lines = [
        "# TYPE system_cpu_utilization_ratio gauge",
        'system_cpu_utilization_ratio{job="trading-bot",instance="i-1",cpu="0",state="idle"} 0.05',
        'system_cpu_utilization_ratio{job="trading-bot",instance="i-1",cpu="0",state="user"} 0.95',
        'system_cpu_utilization_ratio{job="trading-bot",instance="i-1",cpu="1",state="idle"} 0.087',
        'system_cpu_utilization_ratio{job="other-service",instance="i-2",cpu="0",state="idle"} 0.9',
        # The host-health sample the CPU alert rules read (and `top --dir` shows), from both
        # instances: the highest, as the rules take it.
        "# TYPE otel_monitoring_host_resource_utilization_ratio gauge",
        'otel_monitoring_host_resource_utilization_ratio{job="trading-bot",instance="i-1",otel_monitoring_host_resource="cpu"} 0.874',
        'otel_monitoring_host_resource_utilization_ratio{job="trading-bot",instance="i-2",otel_monitoring_host_resource="cpu"} 0.862',
        "# TYPE system_memory_utilization_ratio gauge",
        'system_memory_utilization_ratio{job="trading-bot",instance="i-1",state="used"} 0.452',
        "# TYPE otel_monitoring_cost_budget_utilization_ratio gauge",
        'otel_monitoring_cost_budget_utilization_ratio{job="trading-bot",instance="i-1",otel_monitoring_budget_period="daily"} 0.85',
        "# TYPE otel_monitoring_cost_USD counter",   # the family's name: the samples carry _total
        f'otel_monitoring_cost_USD_total{{job="trading-bot",instance="i-1",cost_type="model_inference"}} {0.5 * n}',
        f'otel_monitoring_cost_USD_total{{job="trading-bot",instance="i-2",cost_type="model_inference"}} {0.25 * n}',
        # A second instance of the service: gauges are averaged, counters summed.
        'system_memory_utilization_ratio{job="trading-bot",instance="i-2",state="used"} 0.548',
        "# TYPE otel_monitoring_operation_duration_seconds histogram",
    ]
    labels = 'job="trading-bot",instance="i-1",component="trading",operation="create_order",outcome="success"'
    for le, share in bucket_shares:
        lines.append(f'otel_monitoring_operation_duration_seconds_bucket{{{labels},le="{le}"}} {share * 100 * n:g}')
    lines += [f"otel_monitoring_operation_duration_seconds_sum{{{labels}}} {4.0 * n:g}",
              f"otel_monitoring_operation_duration_seconds_count{{{labels}}} {100 * n}"]
    # The collector's spanmetrics connector, 1 call in 4 failing: edge-api is known only from its
    # traces; trading-bot's spans duplicate its SDK metrics.
    lines.append("# TYPE traces_span_metrics_duration_seconds histogram")
    for (service, span_name), (status, share) in itertools.product(
            (("edge-api", "GET /quote"), ("trading-bot", "create_order")),
            (("STATUS_CODE_UNSET", 3), ("STATUS_CODE_ERROR", 1))):
        span = (f'job="{service}",service_name="{service}",span_name="{span_name}",span_kind="SPAN_KIND_SERVER",'
                f'status_code="{status}"')
        for le, below in ((0.1, 0.5), (0.2, 1.0), ("+Inf", 1.0)):
            lines.append(f'traces_span_metrics_duration_seconds_bucket{{{span},le="{le}"}} {below * share * 10 * n:g}')
        lines += [f"traces_span_metrics_duration_seconds_sum{{{span}}} {share * n:g}",
                  f"traces_span_metrics_duration_seconds_count{{{span}}} {share * 10 * n}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    root = tmp_path_factory.mktemp("prom")
    scrapes = {"count": 0}

    class Exporter(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            scrapes["count"] += 1
            body = exposition(scrapes["count"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rules = root / "rules"
    rules.mkdir()
    (rules / "views.yml").write_text(RULES)
    prom = start_prometheus(root, [f"127.0.0.1:{server.server_address[1]}"], rules_dir=str(rules))
    try:
        source = PrometheusSource(prom.url, service="trading-bot")

        def ready():
            snapshot = source.read()
            points = snapshot.histograms.get("otel_monitoring.operation.duration", [])
            return snapshot if points and points[0].get("p50") is not None and snapshot.alerts else None

        wait_until(ready, timeout=90, what="two scrapes and the HighCPU alert in Prometheus")
        yield prom
    finally:
        prom.stop()
        server.shutdown()
        server.server_close()


def test_exposed_names_map_back_to_the_otel_names():
    exposed = {"system_cpu_utilization_ratio": {"type": "gauge"}, "otel_monitoring_cost_USD_total": {"type": "counter"},
               "otel_monitoring_cost_budget_utilization_ratio": {"type": "gauge"},
               "otel_monitoring_operation_duration_seconds": {"type": "histogram"}}
    assert match_exposed("otel_monitoring.cost", exposed) == ("otel_monitoring_cost_USD_total", "USD")
    assert match_exposed("system.cpu.utilization", exposed) == ("system_cpu_utilization_ratio", "1")
    assert match_exposed("otel_monitoring.operation.duration", exposed)[1] == "s"
    assert match_exposed("system.memory.utilization", exposed) is None


def test_overview_from_prometheus(prometheus):
    snapshot = PrometheusSource(prometheus.url, service="trading-bot").read()
    assert snapshot.problems == []
    overview = build_overview(snapshot)
    system = {r.label: r for r in overview.system}
    # The CPU `top --dir` and the CPU alert rules read (not system.cpu.utilization's 93.15 %, a
    # different reading): the highest instance's.
    assert system["CPU"].value == pytest.approx(87.4)
    assert system["Memory"].value == pytest.approx((45.2 + 54.8) / 2)
    assert overview.budgets[0].value == pytest.approx(85.0)
    cost = overview.cost_by_type[0]
    # Both instances summed: 0.5 + 0.25 per scrape (whole scrapes, however many there were).
    assert cost.label == "model_inference" and cost.value > 0 and cost.value / 0.75 == pytest.approx(round(cost.value / 0.75))
    one = build_overview(PrometheusSource(prometheus.url, service="trading-bot", instance="i-2").read())
    assert [r.value for r in one.system if r.label == "Memory"] == [pytest.approx(54.8)]
    assert one.cost_by_type[0].value / 0.25 == pytest.approx(round(one.cost_by_type[0].value / 0.25))
    assert one.red == []                                             # i-2 reports no operations
    row = next(r for r in overview.red if r.operation == "create_order")
    # Prometheus' histogram_quantile: 60 % of the calls in (25 ms, 50 ms], 30 % in (50, 100].
    assert row.p50 == pytest.approx(0.025 + 0.025 * 0.5 / 0.6, rel=1e-3)
    assert row.p95 == pytest.approx(0.1 + 0.15 * 0.05 / 0.1, rel=1e-3)
    assert row.error_pct == 0 and row.rate_per_s is None      # no call counter exposed: no rate claimed
    assert [(a.name, a.severity, a.state) for a in overview.alerts] == [("HighCPU", "critical", "firing")]


def test_top_once_against_prometheus(prometheus):
    done = subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "top", "--once", "--prometheus", prometheus.url,
                           "--service", "trading-bot"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for expected in ("trading-bot", "87.4%", "50.0%", "create_order", "46ms", "HighCPU", "CRITICAL", "firing"):
        assert expected in done.stdout, (expected, done.stdout)


def test_red_from_the_spanmetrics_connector_when_the_sdk_sends_none(prometheus):
    overview = build_overview(PrometheusSource(prometheus.url, service="edge-api").read())
    assert [(r.component, r.operation) for r in overview.red] == [("edge-api", "GET /quote")]
    row = overview.red[0]
    assert row.error_pct == pytest.approx(25.0)                   # status_code STATUS_CODE_ERROR
    assert row.p50 == pytest.approx(0.1, rel=1e-3)                # half of the calls under 100 ms
    # trading-bot has the SDK's own RED metrics: its spanmetrics (the same calls) are not shown twice.
    trading = build_overview(PrometheusSource(prometheus.url, service="trading-bot").read())
    assert [r.operation for r in trading.red] == ["create_order"]


APP = """
import time, otel_monitoring
otel_monitoring.configure(service_name="views-e2e-bot")

@otel_monitoring.traced("trading", "create_order")
def order(i):
    time.sleep(0.002)
    if i % 5 == 0:
        raise ValueError("rejected")

for round_ in range(3):
    for i in range(50):
        try:
            order(i)
        except ValueError:
            pass
    time.sleep(1.2)
otel_monitoring.record_cost(0.5, "model_inference")
time.sleep(1.5)
"""


def test_top_over_the_real_collector_and_prometheus(tmp_path):
    """SDK -> OTLP -> the built collector's prometheus exporter -> Prometheus -> top: the names
    and labels as they really arrive."""
    from stackprocs import AGENT_CONFIG, start_collector
    from support import clean_env, run_python

    with start_collector(AGENT_CONFIG, tmp_path) as collector, \
            start_prometheus(tmp_path, [collector.prometheus_target]) as prom:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=collector.otlp_grpc_endpoint, OTEL_EXPORTER_OTLP_INSECURE="true",
                        OTEL_METRIC_EXPORT_INTERVAL="500")
        app = run_python(APP, env=env, timeout=120)
        assert app.returncode == 0, app.stderr
        source = PrometheusSource(prom.url, service="views-e2e-bot")

        def complete():
            overview = build_overview(source.read())
            rows = [r for r in overview.red if r.operation == "create_order"]
            done = rows and rows[0].count == 150 and rows[0].p95 is not None and overview.cost_total_usd
            return overview if done else None

        overview = wait_until(complete, timeout=90, what="the app's metrics in Prometheus")
        row = next(r for r in overview.red if r.operation == "create_order")
        assert (row.component, row.error_pct) == ("trading", pytest.approx(20.0))
        assert 0.001 <= row.p50 <= 0.1      # calls of 2 ms and more; Prometheus interpolates in (1 ms, 2.5 ms]
        assert overview.cost_total_usd == pytest.approx(0.5)
        assert {r.label for r in overview.system} >= {"CPU", "Memory", "Disk"}
        assert all(r.value is not None for r in overview.system if r.label in ("CPU", "Memory", "Disk"))
