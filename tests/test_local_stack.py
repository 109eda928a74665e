"""One source of truth, checked against the real stack: the metrics the default rules use, emitted over
OTLP to the built collector, are exposed under the names the Prometheus export derives, and the
exported rules loaded into a real Prometheus alert on the same rules as the in-process engine."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from stackprocs import AGENT_CONFIG, start_collector, start_prometheus, wait_until

from otel_monitoring.local.engine import AlertEngine
from otel_monitoring.local.prometheus import prometheus_name
from otel_monitoring.local.rules import load_rules
from otel_monitoring.local.snapshot import SnapshotExporter, make_snapshot_reader

pytestmark = pytest.mark.stack

# A value per metric that breaches every default rule over it, and the attributes the rules select.
BREACHING = {
    "otel_monitoring.host.resource.utilization": [(0.95, {"otel_monitoring.host.resource": "cpu"}),
                                                  (0.97, {"otel_monitoring.host.resource": "memory"})],
    "system.filesystem.utilization": [(0.97, {"system.filesystem.mountpoint": "/"})],
    "otel_monitoring.operation.calls": [(10, {"component": "orders", "domain": "trading"}),
                                        (10, {"component": "checkout", "domain": "api"})],
    "otel_monitoring.operation.errors": [(5, {"component": "orders", "domain": "trading"}),
                                         (5, {"component": "checkout", "domain": "api"})],
    "otel_monitoring.operation.duration": [(3.0, {"component": "orders", "domain": "trading"}),
                                           (3.0, {"component": "checkout", "domain": "api"})],
    "rag.retrieval.hit_rate": [(0.5, {"rag.collection": "docs"})],
    "otel_monitoring.cost.budget.utilization": [(1.2, {"otel_monitoring.budget.name": "daily:total",
                                                       "otel_monitoring.budget.period": "daily"})],
    "otel_monitoring.health.check.status": [(0, {"otel_monitoring.health.check.name": "db"})],
    "trading.market_data.staleness": [(900.0, {"trading.symbol": "BTC/USDT", "trading.exchange": "binance"})],
    "trading.signal.accuracy": [(0.5, {"trading.strategy": "momentum"})],
    "trading.market_data.status": [(1, {"trading.symbol": "ETH/USDT", "trading.exchange": "binance",
                                        "trading.market_data.state": "STALE"})],
    "trading.market_data.latency": [(0.5, {"trading.exchange": "binance", "trading.symbol": "BTC/USDT"})],
    "trading.market_data.gaps": [(20, {"trading.exchange": "binance", "trading.symbol": "BTC/USDT"})],
    "trading.market_data.below_min_rate": [(1, {"trading.exchange": "binance", "trading.symbol": "BTC/USDT",
                                                "trading.market_data.channel": "watch_ticker"})],
    "trading.websocket.disconnects": [(5, {"trading.exchange": "binance", "trading.websocket.reason": "server_close"})],
    "trading.orders.placed": [(10, {"trading.exchange": "binance"})],
    "trading.orders.filled": [(1, {"trading.exchange": "binance"})],
}


def test_exposed_names_and_alerts_match_the_collector_and_prometheus(tmp_path):
    ruleset = load_rules()
    assert set(BREACHING) == set(ruleset.metrics), "give every metric of the default rules a breaching value"
    collector = start_collector(AGENT_CONFIG, tmp_path)
    prometheus = start_prometheus(tmp_path, [collector.prometheus_target])
    local = SnapshotExporter(str(tmp_path / "snapshots"), interval_s=3600)
    engine = AlertEngine(ruleset.rules)
    local.on_collection.append(lambda points, now: engine.evaluate(points, now))
    local_reader = make_snapshot_reader(local)
    otlp = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=collector.otlp_grpc_endpoint, insecure=True),
                                         export_interval_millis=500)
    provider = MeterProvider(resource=Resource.create({"service.name": "rules-check"}),
                             metric_readers=[otlp, local_reader], shutdown_on_exit=False)
    meter = provider.get_meter("rules-check")
    instruments = {}
    for name, info in ruleset.metrics.items():
        create = {"counter": meter.create_counter, "updowncounter": meter.create_up_down_counter,
                  "gauge": meter.create_gauge, "histogram": meter.create_histogram}[info.type]
        instruments[name] = (info.type, create(name, unit=info.unit))
    stop = threading.Event()

    def emit():
        while not stop.is_set():
            for name, samples in BREACHING.items():
                kind, instrument = instruments[name]
                for value, attributes in samples:
                    method = {"counter": "add", "updowncounter": "add", "gauge": "set", "histogram": "record"}[kind]
                    getattr(instrument, method)(value, attributes)
            local_reader.collect()
            stop.wait(0.5)

    emitter = threading.Thread(target=emit, daemon=True)
    emitter.start()
    try:
        page = wait_until(lambda: (text := collector.exported_metrics()) and "trading_signal_accuracy" in text and text,
                          60, what="the SDK's metrics on the collector's prometheus exporter")
        exposed = {line.split("{")[0].split(" ")[0] for line in page.splitlines() if line and not line.startswith("#")}
        for name, info in ruleset.metrics.items():
            expected = prometheus_name(info) + ("_bucket" if info.type == "histogram" else "")
            assert expected in exposed, f"{name}: expected {expected} on the collector's page"

        # An average over a day needs a day of history: low_uptime cannot fire in a test's minute.
        needs_history = {rule.id for rule in ruleset.rules if rule.kind == "average"}
        assert needs_history == {"degraded_uptime", "low_uptime"}
        every_rule = {rule.id for rule in ruleset.rules} - needs_history

        def alerting() -> set[str] | None:
            names = {alert["labels"]["rule_id"] for alert in prometheus.api("alerts")["alerts"]
                     if "rule_id" in alert["labels"]}
            assert not names & needs_history, f"{names & needs_history} alerted without their window of history"
            return names if names >= every_rule else None

        try:
            wait_until(alerting, 90, interval=1.0, what="every default rule pending or firing in Prometheus")
        except AssertionError:
            seen = {alert["labels"].get("rule_id") for alert in prometheus.api("alerts")["alerts"]}
            raise AssertionError(f"rules never pending or firing in Prometheus: {sorted(every_rule - seen)}") from None
        firing = {alert["labels"]["rule_id"] for alert in prometheus.api("alerts")["alerts"]
                  if alert["state"] == "firing" and "rule_id" in alert["labels"]}
        # Rules without `for` fire at once in both.
        assert {"daily_cost_near_budget", "daily_cost_over_budget"} <= firing
        # The in-process engine alerts on exactly the same rules.
        assert {alert["rule_id"] for alert in engine.alerts()} == every_rule
        assert {a["rule_id"] for a in engine.alerts() if a["state"] == "firing"} >= {
            "daily_cost_near_budget", "daily_cost_over_budget"}
    finally:
        stop.set()
        emitter.join()
        provider.shutdown()
        prometheus.stop()
        collector.stop()
