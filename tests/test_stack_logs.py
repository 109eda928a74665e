"""Logs people can search: an application's stdlib logging goes through the agent collector into
VictoriaLogs, `otel-monitoring logs` finds records by service, level, trace and the log analyzer's
categories, and the collector's count connector turns those categories into metrics."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from otel_monitoring.stack import CONFIG_DIR, ManagedProcess
from otel_monitoring.stack.victorialogs import CATEGORIES, query, victorialogs_spec
from stackprocs import AGENT_CONFIG, require_binary, start_collector, wait_until
from support import REPO, clean_env, free_port


def test_count_connector_categories_are_the_saved_queries():
    """The collector counts each category with the pattern `otel-monitoring logs --category` uses."""
    with open(os.path.join(CONFIG_DIR, "agent.yaml"), encoding="utf-8") as handle:
        counted = yaml.safe_load(handle)["connectors"]["count"]["logs"]
    for name, category in CATEGORIES.items():
        (condition,) = counted[category["metric"]]["conditions"]
        literal = re.fullmatch(r'IsMatch\(body, "(.*)"\)', condition).group(1)
        assert literal.replace("\\\\", "\\") == category["pattern"], name
        assert counted[category["metric"]]["description"] == category["description"]


# Every record the application logs, and where each belongs.
APP = """
import logging, time
from opentelemetry import trace
import otel_monitoring as om
om.configure(service_name="log-app")
log = logging.getLogger("trading.orders")
log.setLevel(logging.INFO)
with trace.get_tracer("app").start_as_current_span("place_order") as span:
    log.error("connection refused by exchange binance")
    print(format(span.get_span_context().trace_id, "032x"), flush=True)
log.warning("order request timed out after 5 s")
log.warning("ticker fetch timeout, retrying")
log.info("slow operation: fetch_balance took 2.4 s")
log.info("order 42 filled")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("position math failed")
"""
EXPECTED = {"connection-errors": 1, "timeouts": 2, "slow-operations": 1}


def _logs_cli(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "logs", *args, "--url", url],
                          env=clean_env(), capture_output=True, text=True, timeout=60, cwd=REPO)


def test_logs_are_searchable_and_counted_by_category(tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    url = f"http://{listen}"
    store = ManagedProcess(victorialogs_spec(require_binary("victorialogs"), listen, str(tmp_path / "vl")),
                           str(tmp_path / "victorialogs.log")).start()
    try:
        with start_collector(AGENT_CONFIG, tmp_path, victorialogs=int(listen.rsplit(":", 1)[1])) as collector:
            app = subprocess.run([sys.executable, "-c", APP], capture_output=True, text=True, timeout=120, cwd=REPO,
                                 env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=collector.otlp_grpc_endpoint))
            assert app.returncode == 0, app.stderr
            trace_id = app.stdout.strip()
            records = wait_until(lambda: (lambda found: found if len(found) >= 6 else None)(
                list(query(url, '_time:1h service.name:="log-app"'))), 60, what="the six records in VictoriaLogs")
            assert len(records) == 6
            # Streams are per service and environment, not per process.
            assert {r["_stream"] for r in records} == {'{deployment.environment.name="local",service.name="log-app"}'}

            errors = _logs_cli("--service", "log-app", "--level", "error", url=url)
            assert errors.returncode == 0, errors.stderr
            lines = errors.stdout.splitlines()
            assert len(lines) == 2
            assert f"ERROR log-app trace={trace_id}  connection refused by exchange binance" in lines[0]
            assert "position math failed  [ZeroDivisionError: division by zero]" in lines[1]
            by_trace = _logs_cli("--trace", trace_id, url=url)
            assert [line.split("  ", 1)[1] for line in by_trace.stdout.splitlines()] == [
                "connection refused by exchange binance"]
            warnings = _logs_cli("--service", "log-app", "--level", "warning", "--logger", "trading.orders", url=url)
            assert len(warnings.stdout.splitlines()) == 4
            # --limit keeps the newest records, as tail does, and shows them in time order (it kept the
            # oldest). The app logged these two last, in this order.
            newest = _logs_cli("--service", "log-app", "--limit", "2", url=url)
            assert newest.returncode == 0, newest.stderr
            shown = newest.stdout.splitlines()
            assert len(shown) == 2, newest.stdout
            assert shown[0].endswith("log-app  order 42 filled"), newest.stdout
            assert shown[1].endswith("log-app  position math failed  [ZeroDivisionError: division by zero]")
            assert "the newest 2 records" in newest.stderr
            text = _logs_cli("filled", "--service", "log-app", url=url)
            assert text.stdout.rstrip().endswith("order 42 filled") and len(text.stdout.splitlines()) == 1
            for category, count in EXPECTED.items():
                found = _logs_cli("--category", category, "--service", "log-app", url=url)
                assert len(found.stdout.splitlines()) == count, (category, found.stdout)

            # The same categories as metrics, per service, in what Prometheus scrapes.
            def counted() -> dict[str, float] | None:
                values = {}
                for category in EXPECTED:
                    name = CATEGORIES[category]["metric"].replace(".", "_") + "_total"
                    match = re.search(rf'^{name}{{[^}}]*job="log-app"[^}}]*}} (\S+)', collector.exported_metrics(), re.M)
                    if not match:
                        return None
                    values[category] = float(match.group(1))
                return values

            assert wait_until(counted, 60, what="the category counts on the collector's exporter") == {
                k: float(v) for k, v in EXPECTED.items()}
    finally:
        store.stop()


def test_logs_cli_names_an_unreachable_store_and_bad_filters():
    dead = f"http://127.0.0.1:{free_port()}"
    result = _logs_cli("--level", "error", url=dead)
    assert result.returncode == 1 and f"cannot reach VictoriaLogs at {dead}" in result.stderr
    assert "otel-monitoring stack up" in result.stderr
    bad = _logs_cli("--level", "loud", url=dead)
    assert bad.returncode == 2 and "--level 'loud' is not a level" in bad.stderr
    bad = _logs_cli("--trace", "xyz", url=dead)
    assert bad.returncode == 2 and "is not a trace id" in bad.stderr
