"""The meters through configure(): defaults on, the health server only when asked, a bad price file
stops configure() with a clear message, and the metrics reach the OTLP/JSON files."""

from __future__ import annotations

import types

import pytest
from meters_support import read_metrics
from support import clean_env, free_port, read_otlp_file, run_python

from otel_monitoring.config import ConfigError, load_settings
from otel_monitoring.meters import MetersComponent, cost


def test_component_binds_the_public_functions_and_releases_them(telemetry):
    settings = load_settings({"health_default_checks": False, "system_metrics": False}, environ={})
    component = MetersComponent(settings)
    processors = component.span_processors()
    telemetry.tracer_provider.add_span_processor(processors[0])
    component.start(types.SimpleNamespace(meter_provider=telemetry.meter_provider))
    try:
        import otel_monitoring

        otel_monitoring.record_cost(0.25, "storage")
        with telemetry.tracer_provider.get_tracer("t").start_as_current_span(
                "chat", attributes={"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.output_tokens": 1000}):
            pass
        otel_monitoring.record_signal("s", "BTC/USDT", "buy")
        otel_monitoring.record_retrieval([0.9], collection="docs")
        metrics = read_metrics(telemetry.metric_reader)
        assert metrics["otel_monitoring.cost"].value(cost__type="storage") == 0.25
        assert metrics["otel_monitoring.cost"].value(gen_ai__request__model="gpt-4o-mini") == pytest.approx(0.0006)
        assert metrics["trading.signals"].value() == 1
        assert metrics["rag.retrievals"].value() == 1
        assert "system.cpu.utilization" not in metrics  # system_metrics=False
    finally:
        component.shutdown()
    assert cost._current.value is None


def test_market_data_thresholds_must_be_ordered(telemetry):
    settings = load_settings({"market_data_live_seconds": 600, "market_data_delayed_seconds": 60}, environ={})
    with pytest.raises(ConfigError, match="MARKET_DATA_DELAYED_SECONDS must be above"):
        MetersComponent(settings).start(types.SimpleNamespace(meter_provider=telemetry.meter_provider))


def test_bad_price_file_is_reported_and_stops_configure_in_strict_mode(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("llm:\n  house-model: {input: 1}\n")
    code = """
        import otel_monitoring
        try:
            m = otel_monitoring.configure(exporter="none")
        except otel_monitoring.ConfigError as error:
            print("CONFIG ERROR:", error)
        else:
            print("STARTED", m.component("meters").prices().resolve_model("gpt-4o"))
    """
    lenient = run_python(code, env=clean_env(OTEL_MONITORING_PRICES=str(prices)))
    assert "STARTED gpt-4o" in lenient.stdout, lenient.stderr  # the packaged prices still apply
    assert str(prices) in lenient.stderr and "llm.house-model needs input and output" in lenient.stderr
    assert "packaged table only" in lenient.stderr
    strict = run_python(code, env=clean_env(OTEL_MONITORING_PRICES=str(prices), OTEL_MONITORING_STRICT="true"))
    assert "CONFIG ERROR:" in strict.stdout, strict.stderr
    assert str(prices) in strict.stdout and "llm.house-model needs input and output" in strict.stdout


def test_no_port_is_opened_unless_asked_and_then_on_127_0_0_1():
    port = free_port()
    result = run_python(f"""
        import json, urllib.request, psutil, otel_monitoring
        from otel_monitoring.meters import MetersComponent
        monitoring = otel_monitoring.configure(exporter="none", health_default_checks=False)
        listening = [c for c in psutil.Process().net_connections("tcp") if c.status == "LISTEN"]
        print("LISTENING", len(listening))
        monitoring.shutdown()

        from otel_monitoring.config import load_settings
        from otel_monitoring.meters.health_checks import register_health_check
        register_health_check("feed", lambda: False)
        component = MetersComponent(load_settings({{"health_port": {port}, "system_metrics": False}}, environ={{}}))
        component.start(monitoring)
        try:
            urllib.request.urlopen("http://127.0.0.1:{port}/health", timeout=5)
        except urllib.error.HTTPError as error:
            print("STATUS", error.code, json.loads(error.read())["failed_checks"])
        print("BOUND", component.health_server.address[0])
        component.shutdown()
    """)
    assert "LISTENING 0" in result.stdout, result.stderr
    assert "STATUS 503 ['feed']" in result.stdout, result.stderr
    assert "BOUND 127.0.0.1" in result.stdout


def test_health_is_liveness_host_checks_are_reported_not_failed():
    """Host load is not the application's health: with the CPU, memory and disk checks set to fail
    whatever the machine does (thresholds of 0.0002 %), /health still answers 200 and
    /health/detailed reports the three failing host checks."""
    port = free_port()
    result = run_python(f"""
        import json, urllib.request, otel_monitoring
        from otel_monitoring.config import load_settings
        from otel_monitoring.meters import MetersComponent
        monitoring = otel_monitoring.configure(exporter="none", health_default_checks=False)
        component = MetersComponent(load_settings({{"health_port": {port}, "system_metrics": False,
            "host_health_thresholds": "cpu=0.0001:0.0002,memory=0.0001:0.0002,disk=0.0001:0.0002"}}, environ={{}}))
        component.start(monitoring)
        with urllib.request.urlopen("http://127.0.0.1:{port}/health", timeout=30) as response:
            print("LIVE", response.status, json.loads(response.read())["status"])
        with urllib.request.urlopen("http://127.0.0.1:{port}/health/detailed", timeout=30) as response:
            checks = json.loads(response.read())["checks"]
        print("FAILING", sorted(name for name, check in checks.items() if check["status"] == "unhealthy" and not check["critical"]))
        component.shutdown()
        monitoring.shutdown()
    """)
    assert "LIVE 200 healthy" in result.stdout, result.stderr
    assert "FAILING ['cpu', 'disk', 'memory']" in result.stdout, result.stdout + result.stderr


def test_meters_reach_the_otlp_files(tmp_path):
    result = run_python(f"""
        import otel_monitoring
        monitoring = otel_monitoring.configure(service_name="meters-e2e", exporter="otlp_file",
                                               file_dir={str(tmp_path)!r}, budgets="daily:total=100")
        with monitoring.tracer().start_as_current_span("chat", attributes={{
                "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 4000}}):
            pass
        otel_monitoring.mark_market_data("BTC/USDT")
        monitoring.shutdown()
    """)
    assert result.returncode == 0, result.stderr
    requests = read_otlp_file(str(tmp_path / "metrics.jsonl"), "metrics")
    found = {}
    for request in requests:
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
    cost_metric = found["otel_monitoring.cost"]
    assert cost_metric.unit == "USD" and cost_metric.sum.data_points[0].as_double == pytest.approx(0.01)
    for name in ("system.filesystem.utilization", "system.cpu.utilization", "otel_monitoring.host.health.score",
                 "otel_monitoring.cost.budget.utilization", "trading.market_data.status",
                 "otel_monitoring.health.check.status"):
        assert name in found, sorted(found)


def test_demo_summary_shows_cost_kpis_and_health(telemetry):
    from otel_monitoring.meters.health_checks import registry
    from otel_monitoring.meters.summary import summary_lines

    settings = load_settings({"system_metrics": False, "health_default_checks": False,
                              "budgets": "daily:total=10"}, environ={})
    component = MetersComponent(settings)
    component.start(types.SimpleNamespace(meter_provider=telemetry.meter_provider))
    registry.register("feed", lambda: (False, {"age_seconds": 99}))
    try:
        component.cost.record_llm("gpt-4o", input_tokens=1_000_000)
        component.trading.mark_market_data("BTC/USDT", timestamp=1.0)
        component.rag.record_retrieval([], collection="docs")
        text = "\n".join(summary_lines(types.SimpleNamespace(component=lambda name: component)))
    finally:
        registry.unregister("feed")
        component.shutdown()
    assert "model_inference  gpt-4o" in text and "2.500000" in text
    assert "budget daily:total: 2.5000 of 10.00 USD (25.0 %)" in text
    assert "market data BTC/USDT: STALE" in text
    assert "RAG KPIs: 1 retrievals (0 hit, 0 miss, 1 empty)" in text
    assert "feed FAILING (age_seconds 99)" in text


def test_opentelemetry_instrument_reports_the_system_meters_once(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "app.py"
    script.write_text("import otel_monitoring\notel_monitoring.record_cost(0.5, 'storage')\n")
    bindir = os.path.dirname(sys.executable)
    env = clean_env(OTEL_SERVICE_NAME="no-code-change", OTEL_MONITORING_FILE_DIR=str(tmp_path / "out"),
                    OTEL_TRACES_EXPORTER="otlp_file", OTEL_METRICS_EXPORTER="otlp_file", OTEL_LOGS_EXPORTER="none",
                    PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run([os.path.join(bindir, "opentelemetry-instrument"), sys.executable, str(script)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    series: dict[tuple[str, str], int] = {}
    for request in read_otlp_file(str(tmp_path / "out" / "metrics.jsonl"), "metrics"):
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    key = (scope_metrics.scope.name, metric.name)
                    series[key] = series.get(key, 0) + 1
    names = [name for _scope, name in series]
    for name in ("system.cpu.utilization", "system.memory.utilization", "system.filesystem.utilization",
                 "otel_monitoring.host.health.score", "otel_monitoring.cost"):
        assert names.count(name) == 1, (name, sorted(series))


SUMMARY_AFTER_SHUTDOWN = """
import json, sys, time
import otel_monitoring
from otel_monitoring.commands.demo import _meters_summary
from otel_monitoring.views.snapshot import read_snapshot_dir
monitoring = otel_monitoring.configure(service_name="ages", exporter="none", system_metrics=False,
                                       snapshot_dir=sys.argv[1], alert_rules="none", health_default_checks=False)
otel_monitoring.mark_market_data("BTC/USDT", "binance")
otel_monitoring.mark_market_data("SOL/USDT", "binance", timestamp=time.time() - 3600)  # an old quote
monitoring.shutdown()   # the demo's order: the final snapshot, then the summary
time.sleep(3)           # a shutdown that takes its time (flushing exporters, notifications)
final = read_snapshot_dir(sys.argv[1])
ages = {p["attributes"]["trading.symbol"]: p["value"] for p in final.gauges["trading.market_data.staleness"]}
print(json.dumps({"ages": ages, "lines": [l for l in _meters_summary(monitoring, final) if "market data" in l]}))
"""


def test_the_demo_summary_reads_market_data_ages_at_the_final_snapshot_not_after_shutdown(tmp_path):
    """The summary read each symbol's age after shutdown, when it had grown by however long shutdown
    took: a quote current at the end of the workload read 3 s old. It now prints the final
    snapshot's ages and states, the ones `top` and the alerts show."""
    import json
    import os
    import subprocess
    import sys

    from support import REPO, clean_env

    environment = clean_env(PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    run = subprocess.run([sys.executable, "-c", SUMMARY_AFTER_SHUTDOWN, str(tmp_path / "snapshots")], env=environment,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout.strip().splitlines()[-1])
    ages = shown["ages"]
    assert ages["SOL/USDT"] >= 3600 and ages["BTC/USDT"] < ages["SOL/USDT"]
    state = {"BTC/USDT": "LIVE", "SOL/USDT": "STALE"}  # the default limits: live up to 10 min, stale past 1 h
    assert shown["lines"] == [f"  market data {symbol}@binance: {state[symbol]} ({ages[symbol]:.1f} s old)"
                              for symbol in ("BTC/USDT", "SOL/USDT")]
