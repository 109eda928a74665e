"""Health checks against real parts on 127.0.0.1: a TCP listener, an HTTP server, a SQLite file
through SQLAlchemy, files for freshness; the health endpoint with a real client (200 and 503)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from meters_support import read_metrics
from support import free_port

from otel_monitoring.meters import checks
from otel_monitoring.meters.health_checks import HealthRegistry, is_healthy
from otel_monitoring.meters.health_server import HealthServer


@pytest.fixture
def registry():
    return HealthRegistry(default_timeout=2.0)


def results_by_name(registry):
    return {r.name: r for r in registry.run()}


def test_sync_async_failing_and_raising_checks(registry):
    async def async_ok():
        await asyncio.sleep(0.01)
        return True, {"rows": 3}

    registry.register("ok", lambda: None)
    registry.register("async", async_ok)
    registry.register("false", lambda: False)
    registry.register("raises", lambda: 1 / 0)
    registry.register("optional", lambda: False, critical=False)
    results = results_by_name(registry)
    assert results["ok"].healthy and results["async"].healthy
    assert results["async"].detail == {"rows": 3}
    assert not results["false"].healthy and results["false"].error is None
    assert results["raises"].error == "ZeroDivisionError: division by zero"
    assert not is_healthy(results.values())
    registry.unregister("false")
    registry.unregister("raises")
    assert is_healthy(registry.run())  # the failing non-critical check does not make the service unhealthy


def test_timeouts_fail_fast_and_a_stuck_check_is_not_started_twice(registry):
    release = threading.Event()
    calls = []

    def stuck():
        calls.append(1)
        release.wait(5)

    async def slow():
        await asyncio.sleep(5)

    registry.register("stuck", stuck, timeout=0.2)
    registry.register("slow", slow, timeout=0.2)
    began = time.perf_counter()
    results = results_by_name(registry)
    assert time.perf_counter() - began < 1.5
    assert not results["stuck"].healthy and "timed out after 0.2s" in results["stuck"].error
    assert not results["slow"].healthy and "timed out" in results["slow"].error
    again = results_by_name(registry)
    assert "still in progress" in again["stuck"].error
    assert len(calls) == 1
    release.set()


def test_tcp_check_against_a_real_listener():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        ok, detail = checks.tcp_check("127.0.0.1", port, timeout=1)()
        assert ok and detail == {"address": f"127.0.0.1:{port}"}
    with pytest.raises(OSError):
        checks.tcp_check("127.0.0.1", free_port(), timeout=1)()


@pytest.fixture
def http_server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            code = int(self.path.strip("/") or 200)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_check_against_a_real_server(http_server):
    assert checks.http_check(f"{http_server}/200")() == (True, {"url": f"{http_server}/200", "status_code": 200})
    assert checks.http_check(f"{http_server}/503")()[0] is False
    assert checks.http_check(f"{http_server}/404", expected_status=lambda c: c == 404)()[0] is True


def test_sql_check_against_a_real_sqlite_file(tmp_path):
    database = tmp_path / "app.db"
    ok, detail = checks.sql_check(f"sqlite:///{database}")()
    assert ok and detail["database"].endswith("app.db") and database.exists()
    registry = HealthRegistry()
    registry.register("db", checks.sql_check(f"sqlite:///{tmp_path}/missing-dir/app.db"))
    result = registry.run()[0]
    assert not result.healthy and "OperationalError" in result.error


def test_freshness_of_a_file_and_of_a_callable(tmp_path):
    feed = tmp_path / "candles.csv"
    feed.write_text("t,o,h,l,c\n")
    assert checks.freshness_check(feed, max_age_seconds=60)()[0] is True
    old = time.time() - 120
    os.utime(feed, (old, old))
    ok, detail = checks.freshness_check(feed, max_age_seconds=60)()
    assert not ok and detail["age_seconds"] == pytest.approx(120, abs=2)
    assert checks.freshness_check(lambda: (time.time() - 10) * 1000, max_age_seconds=60)()[0] is True  # ms


def test_system_checks_fail_at_their_threshold():
    assert checks.disk_space_check("/", max_utilization=1.01)()[0] is True
    assert checks.disk_space_check("/", max_utilization=0.0)()[0] is False
    assert checks.memory_check(max_utilization=0.0)()[0] is False
    assert checks.cpu_check(max_utilization=1.01)()[0] is True


def test_check_results_as_metrics(telemetry, registry):
    registry.observe(telemetry.meter_provider)
    registry.register("up", lambda: True)
    registry.register("down", lambda: False)
    registry.run()
    metrics = read_metrics(telemetry.metric_reader)
    status = metrics["otel_monitoring.health.check.status"]
    assert status.unit == "1"
    assert status.value(otel_monitoring__health__check__name="up") == 1
    assert status.value(otel_monitoring__health__check__name="down") == 0
    duration = metrics["otel_monitoring.health.check.duration"]
    assert duration.unit == "s" and duration.value(otel_monitoring__health__check__name="up").count == 1


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_endpoint_answers_200_then_503_with_the_failing_checks(registry):
    state = {"db": True}
    registry.register("db", lambda: state["db"])
    registry.register("cache", lambda: True, critical=False)
    server = HealthServer(registry).start()
    try:
        assert server.address[0] == "127.0.0.1"
        assert get(server.url) == (200, {"status": "healthy"})
        state["db"] = False
        assert get(server.url) == (503, {"status": "unhealthy", "failed_checks": ["db"]})
        code, body = get(server.url + "/detailed")
        assert code == 503 and body["checks"]["db"]["status"] == "unhealthy"
        assert body["checks"]["cache"]["status"] == "healthy" and body["checks"]["cache"]["critical"] is False
        assert get(server.url.replace("/health", "/other"))[0] == 404
    finally:
        server.stop()


def test_a_check_that_never_returns_does_not_hold_up_exit():
    from support import run_python

    result = run_python("""
        import threading, time
        from otel_monitoring.meters.health_checks import HealthRegistry
        registry = HealthRegistry()
        registry.register("hangs", threading.Event().wait, timeout=0.2)
        print([r.error for r in registry.run()])
    """, timeout=20)
    assert result.returncode == 0 and "timed out after 0.2s" in result.stdout, result.stderr


def test_a_forked_child_is_not_stuck_on_a_lock_another_thread_held():
    from support import run_python

    result = run_python("""
        import os, signal, threading
        from otel_monitoring.meters.health_checks import HealthRegistry
        registry = HealthRegistry()
        registry.register("ok", lambda: True)
        held, release = threading.Event(), threading.Event()

        def hold():
            with registry._lock:  # as the health runner does while it records a result
                held.set()
                release.wait()

        threading.Thread(target=hold, daemon=True).start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            signal.alarm(5)  # a deadlock ends the child with SIGALRM
            results = registry.run()
            os._exit(0 if results[0].healthy and "ok" in registry.last_results() else 3)
        _, status = os.waitpid(pid, 0)
        release.set()
        print("CHILD", os.waitstatus_to_exitcode(status))
    """, timeout=30)
    assert "CHILD 0" in result.stdout, (result.stdout, result.stderr)


def test_the_background_runner_starts_again_in_a_forked_child():
    from support import run_python

    result = run_python("""
        import os, signal, time
        from otel_monitoring.meters.health_checks import HealthRegistry, HealthRunner
        registry = HealthRegistry()
        runs = []
        registry.register("count", lambda: runs.append(os.getpid()))
        runner = HealthRunner(registry, interval=0.05)
        runner.start()
        time.sleep(0.2)
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)
            deadline = time.monotonic() + 5
            while runs.count(os.getpid()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            os._exit(0 if runs.count(os.getpid()) >= 2 else 3)
        _, status = os.waitpid(pid, 0)
        runner.stop()
        print("CHILD", os.waitstatus_to_exitcode(status))
    """, timeout=30)
    assert "CHILD 0" in result.stdout, (result.stdout, result.stderr)
