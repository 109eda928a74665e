"""`otel-monitoring stack up | status | down` with the real programs, on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from otel_monitoring.stack.process import http_ok, pid_alive
from otel_monitoring.stack.components import StackPorts
from stackprocs import require_binary
from support import REPO, clean_env, free_port


def _binaries_env() -> dict[str, str]:
    return {
        "OTEL_MONITORING_OTELCOL": require_binary("otelcol"),
        "OTEL_MONITORING_JAEGER": require_binary("jaeger"),
        "OTEL_MONITORING_PROMETHEUS": require_binary("prometheus"),
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
        pids = {name: int((state / f"{name}.pid").read_text()) for name in ("jaeger", "collector", "prometheus")}
        assert all(pid_alive(pid) for pid in pids.values())
        # `up` returned, the stack keeps running and healthy; status reads the ports from the state dir.
        status = _stack(state, "status", env=env)
        assert status.returncode == 0, status.stdout
        assert status.stdout.count("healthy") == 3
        assert http_ok(f"http://127.0.0.1:{ports['collector_health']}/")
        assert http_ok(f"http://127.0.0.1:{ports['prometheus']}/-/ready")
        # Prometheus scrapes the collector it was started with.
        with open(state / "prometheus.yml", encoding="utf-8") as handle:
            assert f"127.0.0.1:{ports['collector_prometheus']}" in handle.read()
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
