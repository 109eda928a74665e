"""`otel-monitoring stack up | status | down` with the real programs, on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from otel_monitoring.stack.process import http_ok, pid_alive, tail
from otel_monitoring.stack.components import StackPorts
from otel_monitoring.local.rules import load_rules
from otel_monitoring.stack.runner import ORDER
from stackprocs import http_get_json, require_binary
from support import REPO, clean_env, free_port


def _binaries_env() -> dict[str, str]:
    return {
        "OTEL_MONITORING_OTELCOL": require_binary("otelcol"),
        "OTEL_MONITORING_JAEGER": require_binary("jaeger"),
        "OTEL_MONITORING_PROMETHEUS": require_binary("prometheus"),
        "OTEL_MONITORING_ALERTMANAGER": require_binary("alertmanager"),
        "OTEL_MONITORING_VICTORIALOGS": require_binary("victorialogs"),
    }


def _stack(state_dir, *args: str, env: dict[str, str] | None = None, ports: dict[str, int] | None = None):
    port_args = [arg for name, port in (ports or {}).items() for arg in (f"--{name.replace('_', '-')}-port", str(port))]
    return subprocess.run(
        [sys.executable, "-m", "otel_monitoring.cli", "stack", *args, "--state-dir", str(state_dir), *port_args],
        env=clean_env(**(env or {})), capture_output=True, text=True, timeout=180, cwd=REPO,
    )


def test_up_status_down(tmp_path):
    env = _binaries_env()
    ports = {name: free_port() for name in StackPorts.port_names()}
    state = tmp_path / "state"
    up = _stack(state, "up", env=env, ports=ports)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{ports['otlp_grpc']}" in up.stdout
        pids = {name: int((state / f"{name}.pid").read_text()) for name in ORDER}
        dead = {name: tail(str(state / f"{name}.log")) for name, pid in pids.items() if not pid_alive(pid)}
        assert not dead, f"exited after a healthy start: {dead}"
        # `up` returned, the stack keeps running and healthy; status reads the ports from the state dir.
        status = _stack(state, "status", env=env)
        assert status.returncode == 0, status.stdout
        assert status.stdout.count("healthy") == len(ORDER) == 5
        assert http_ok(f"http://127.0.0.1:{ports['collector_health']}/")
        assert http_ok(f"http://127.0.0.1:{ports['prometheus']}/-/ready")
        # Prometheus scrapes the collector it was started with.
        with open(state / "prometheus.yml", encoding="utf-8") as handle:
            prometheus_config = handle.read()
        assert f"127.0.0.1:{ports['collector_prometheus']}" in prometheus_config
        assert f"127.0.0.1:{ports['alertmanager']}" in prometheus_config  # alerts go to the stack's Alertmanager
        # Prometheus loaded the rules of the packaged rules file and the stack's own, 30 days of retention.
        rules = http_get_json(f"http://127.0.0.1:{ports['prometheus']}/api/v1/rules")["data"]["groups"]
        loaded = {rule["name"] for group in rules for rule in group["rules"] if rule["type"] == "alerting"}
        assert {rule.id for rule in load_rules().rules} | {"ScrapeTargetDown"} <= loaded
        flags = http_get_json(f"http://127.0.0.1:{ports['prometheus']}/api/v1/status/flags")["data"]
        assert flags["storage.tsdb.retention.time"] == "30d"
        with open(f"/proc/{pids['alertmanager']}/cmdline", "rb") as handle:
            argv = handle.read().decode().split("\0")
        assert f"--web.external-url=http://127.0.0.1:{ports['alertmanager']}" in argv
        assert "--cluster.listen-address=" in argv  # no gossip port
        assert http_get_json(f"http://127.0.0.1:{ports['alertmanager']}/api/v2/status")["cluster"]["status"] == "disabled"
        assert json.loads((state / "state.json").read_text())["ports"]["otlp_grpc"] == ports["otlp_grpc"]
        again = _stack(state, "up", env=env)
        assert again.returncode == 0 and "already running" in again.stdout
        assert all((state / f"{name}.log").stat().st_size > 0 for name in pids)
    finally:
        down = _stack(state, "down", env=env)
    assert down.returncode == 0
    assert not any(pid_alive(pid) for pid in pids.values())
    assert _stack(state, "status", env=env).returncode == 3


def test_up_names_the_build_command_when_a_program_is_missing(tmp_path):
    env = {**_binaries_env(), "OTEL_MONITORING_JAEGER": str(tmp_path / "no-jaeger")}
    result = _stack(tmp_path / "state", "up", env=env, ports={name: free_port() for name in StackPorts.port_names()})
    assert result.returncode == 1
    assert "jaeger not found" in result.stdout and "scripts/build-stack.sh" in result.stdout
    assert not os.path.exists(tmp_path / "state" / "collector.pid")


def test_up_refuses_busy_ports_and_says_which(tmp_path):
    import socket

    ports = {name: free_port() for name in StackPorts.port_names()}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["otlp_grpc"]))
        busy.listen()
        result = _stack(tmp_path / "state", "up", env=_binaries_env(), ports=ports)
    assert result.returncode == 1
    assert f"otlp-grpc {ports['otlp_grpc']}" in result.stdout
    assert not os.path.exists(tmp_path / "state" / "jaeger.pid")


def test_up_names_a_missing_config_directory(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "otel_monitoring.cli", "stack", "up", "--state-dir", str(tmp_path / "state"),
         "--config-dir", str(tmp_path)], env=clean_env(), capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 1
    assert "agent.yaml" in result.stdout and "--config-dir" in result.stdout


def test_a_missing_program_skips_locally_and_fails_under_ci(monkeypatch, tmp_path):
    import pytest

    import stackprocs

    monkeypatch.setattr(stackprocs, "_BINARY_ENV", {"OTEL_MONITORING_JAEGER": str(tmp_path / "absent")})
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="scripts/build-stack.sh"):
        stackprocs.require_binary("jaeger")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="scripts/build-stack.sh"):
        stackprocs.require_binary("jaeger")


SEND_TRACES = """
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
provider = TracerProvider(resource=Resource.create({"service.name": sys.argv[2]}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
tracer = provider.get_tracer("restart-test")
for i in range(int(sys.argv[3])):
    with tracer.start_as_current_span(f"order-{i}"):
        with tracer.start_as_current_span("fill"):
            pass
provider.shutdown()
"""


def _jaeger_trace_ids(port: int, service: str) -> set[str]:
    from stackprocs import http_get_json

    data = http_get_json(f"http://127.0.0.1:{port}/api/traces?service={service}&limit=1000&lookback=1h")["data"] or []
    return {trace["traceID"] for trace in data if len(trace["spans"]) == 2}


def _up_send_restart(tmp_path, storage: str, traces: int = 30) -> tuple[set[str], set[str]]:
    """`stack up`, send ``traces`` two-span traces, wait until Jaeger has all, `stack down`, `stack up`:
    the trace ids Jaeger had before and after."""
    from stackprocs import wait_until

    env = _binaries_env()
    ports = {name: free_port() for name in StackPorts.port_names()}
    state = tmp_path / "state"
    service = f"restart-{storage}"
    up = _stack(state, "up", "--jaeger-storage", storage, env=env, ports=ports)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        sent = subprocess.run([sys.executable, "-c", SEND_TRACES, f"http://127.0.0.1:{ports['otlp_grpc']}", service,
                               str(traces)], env=clean_env(), capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr
        before = wait_until(lambda: (lambda ids: len(ids) == traces and ids)(_jaeger_trace_ids(ports["jaeger_query"], service)),
                            60, what=f"{traces} traces in Jaeger")
        assert _stack(state, "down", env=env).returncode == 0
        again = _stack(state, "up", "--jaeger-storage", storage, env=env, ports=ports)
        assert again.returncode == 0, again.stdout + again.stderr
        after = _jaeger_trace_ids(ports["jaeger_query"], service)
    finally:
        _stack(state, "down", env=env)
    return before, after


def test_stopping_and_starting_the_stack_loses_no_trace(tmp_path):
    before, after = _up_send_restart(tmp_path, "badger")
    assert after == before
    assert (tmp_path / "state" / "jaeger-data" / "keys").is_dir()


def test_memory_storage_is_the_option_that_forgets_on_restart(tmp_path):
    before, after = _up_send_restart(tmp_path, "memory")
    assert len(before) == 30 and after == set()


def test_up_serves_the_jaeger_ui_it_is_given_and_says_where_to_get_it_otherwise(tmp_path):
    from stackprocs import http_get_text, require_jaeger_ui

    ui = require_jaeger_ui()
    env = _binaries_env()
    ports = {name: free_port() for name in StackPorts.port_names()}
    state = tmp_path / "state"
    up = _stack(state, "up", env={**env, "OTEL_MONITORING_JAEGER_UI": ui}, ports=ports)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        page = http_get_text(f"http://127.0.0.1:{ports['jaeger_query']}/search")
        assert "<title>Jaeger UI</title>" in page and "not the Jaeger UI you are looking for" not in page
        # Jaeger filled in the template's placeholders: it serves these assets itself.
        assert "JAEGER_STORAGE_CAPABILITIES = {" in page and "JAEGER_STORAGE_CAPABILITIES = DEFAULT" not in page
        assert "Jaeger's UI is not installed" not in up.stdout
    finally:
        _stack(state, "down", env=env)
    ports = {name: free_port() for name in StackPorts.port_names()}
    bare = _stack(tmp_path / "bare", "up", env=env, ports=ports)
    try:
        assert bare.returncode == 0, bare.stdout + bare.stderr
        assert "Jaeger's UI is not installed" in bare.stdout and "--jaeger-ui" in bare.stdout
        assert "releases/download/v1.76.0/assets.tar.gz" in bare.stdout
    finally:
        _stack(tmp_path / "bare", "down", env=env)


def test_up_names_unusable_jaeger_ui_assets(tmp_path):
    result = _stack(tmp_path / "state", "up", "--jaeger-ui", str(tmp_path / "nothing.tar.gz"), env=_binaries_env(),
                    ports={name: free_port() for name in StackPorts.port_names()})
    assert result.returncode == 1
    assert "nothing.tar.gz" in result.stdout and "no such file" in result.stdout
    assert not os.path.exists(tmp_path / "state" / "jaeger.pid")


def test_a_health_probe_answered_by_a_non_http1_server_is_unhealthy_not_a_crash():
    # A gRPC server's HTTP/2 frames on the probed port (the program waited for has not bound it yet)
    # raised http.client.BadStatusLine out of `stack up`.
    import socket
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x05\x00\x00@\x00")  # HTTP/2 SETTINGS
        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        assert http_ok(f"http://127.0.0.1:{server.getsockname()[1]}/") is False
        thread.join(timeout=30)


# One trace with one log record in it, sent to whatever OTLP endpoint the environment names.
PORTS_APP = """
import logging
from opentelemetry import trace
import otel_monitoring as om
om.configure(service_name="ports-app")
log = logging.getLogger("ports")
with trace.get_tracer("app").start_as_current_span("fetch_ticker") as span:
    log.warning("ticker BTC/USDT arrived late")
    print(format(span.get_span_context().trace_id, "032x"), flush=True)
"""


def test_logs_and_traces_find_the_stack_on_the_ports_it_was_started_with(tmp_path):
    """`stack up` on non-default ports: `traces` and `logs` read its state directory (the default one,
    or --state-dir) for Jaeger's and VictoriaLogs' ports, as `stack status` does."""
    from otel_monitoring.stack.victorialogs import query
    from stackprocs import wait_until

    env = _binaries_env()
    ports = {name: free_port() for name in StackPorts.port_names()}
    xdg = tmp_path / "xdg"
    state = xdg / "otel-monitoring" / "stack"  # the default state directory under this XDG_STATE_HOME
    up = _stack(state, "up", env=env, ports=ports)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        app = subprocess.run([sys.executable, "-c", PORTS_APP], capture_output=True, text=True, timeout=120, cwd=REPO,
                             env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{ports['otlp_grpc']}"))
        assert app.returncode == 0, app.stderr
        trace_id = app.stdout.strip()
        wait_until(lambda: http_get_json(f"http://127.0.0.1:{ports['jaeger_query']}/api/traces/{trace_id}")["data"],
                   90, what="the trace in the stack's Jaeger")
        wait_until(lambda: list(query(f"http://127.0.0.1:{ports['victorialogs']}", f"_time:1h trace_id:={trace_id}")),
                   90, what="the record in the stack's VictoriaLogs")

        def cli(*argv: str, **extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "otel_monitoring.cli", *argv], env=clean_env(**extra),
                                  capture_output=True, text=True, timeout=60, cwd=tmp_path)

        found_by = {"the default state directory": ([], {"XDG_STATE_HOME": str(xdg)}),
                    "--state-dir": (["--state-dir", str(state)], {"XDG_STATE_HOME": str(tmp_path / "elsewhere")})}
        for how, (option, extra) in found_by.items():
            services = cli("traces", *option, **extra)
            assert services.returncode == 0, (how, services.stdout, services.stderr)
            assert "  ports-app" in services.stdout.splitlines(), (how, services.stdout)
            tree = cli("traces", trace_id, "--no-attributes", *option, **extra)
            assert tree.returncode == 0, (how, tree.stdout, tree.stderr)
            assert "fetch_ticker" in tree.stdout, (how, tree.stdout)
            logs = cli("logs", "--trace", trace_id, *option, **extra)
            assert logs.returncode == 0, (how, logs.stdout, logs.stderr)
            (line,) = logs.stdout.splitlines()
            assert line.endswith(f"WARN  ports-app trace={trace_id}  ticker BTC/USDT arrived late"), (how, line)
    finally:
        _stack(state, "down", env=env)
