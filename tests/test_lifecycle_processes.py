"""Nothing the application produced is lost on the ways real processes end: SIGTERM to a script,
uvicorn and gunicorn (with and without --preload) stopped by SIGTERM, multiprocessing children
with each start method, ProcessPoolExecutor workers. Every test runs the real processes and counts
the spans they wrote to the OTLP/JSON file exporter against what the workload did."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from support import REPO, attributes, clean_env, free_port, read_otlp_file, spans_from_requests

BIN = os.path.dirname(sys.executable)


def env_for(directory: str, **extra: str) -> dict[str, str]:
    return clean_env(
        PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        OTEL_MONITORING_FILE_DIR=directory,
        OTEL_TRACES_EXPORTER="otlp_file",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_MONITORING_SYSTEM_METRICS="false",
        **extra,
    )


def file_spans(directory: str) -> list[tuple[dict, object]]:
    """[(resource attributes, span)] from every traces file of the directory."""
    path = os.path.join(directory, "traces.jsonl")
    if not os.path.exists(path):
        return []
    return [(attributes(resource.attributes), span)
            for resource, _scope, span in spans_from_requests(read_otlp_file(path, "traces"))]


def wait_for(predicate, what: str, limit: float = 60.0, interval: float = 0.1):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def wait_line(process: subprocess.Popen, text: str) -> None:
    for line in process.stdout:  # type: ignore[union-attr]
        if text in line:
            return
    raise AssertionError(f"process ended before printing {text!r}")


# --- a script killed with SIGTERM ---

SCRIPT = """
import os, signal, sys, time
import otel_monitoring
otel_monitoring.configure(service_name="sigterm-script")
from opentelemetry import trace
if os.environ.get("APP_HANDLER"):
    def on_term(signum, frame):
        print("app handler ran", flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, on_term)
tracer = trace.get_tracer("workload")
for i in range(25):
    with tracer.start_as_current_span(f"work-{i}"):
        pass
print("ready", flush=True)
if os.environ.get("SIGNAL_FROM_THREAD"):
    import threading
    main = threading.main_thread().ident

    def deliver_to_this_thread():
        # The kernel hands a process' signal to any thread; this one takes it while the main
        # thread is inside time.sleep(), which nothing then interrupts.
        while sys._current_frames()[main].f_code.co_name != "<module>" or \
                sys._current_frames()[main].f_lineno != SLEEP_LINE:
            time.sleep(0.01)
        time.sleep(0.2)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    SLEEP_LINE = sys._getframe().f_lineno + 2
    threading.Thread(target=deliver_to_this_thread, daemon=True).start()
time.sleep(120)
"""


def run_and_term(tmp_path, signum: int = signal.SIGTERM, **extra: str) -> tuple[int, str, list]:
    directory = str(tmp_path / "telemetry")
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SCRIPT)], env=env_for(directory, **extra),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_line(process, "ready")
    if not extra.get("SIGNAL_FROM_THREAD"):
        process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return process.returncode, out + err, file_spans(directory)


def test_sigterm_flushes_then_ends_by_the_signal(tmp_path):
    returncode, _output, spans = run_and_term(tmp_path)
    assert returncode == -signal.SIGTERM  # ended exactly as without instrumentation
    assert sorted(span.name for _r, span in spans) == sorted(f"work-{i}" for i in range(25))


def test_sighup_flushes_then_ends_by_the_signal(tmp_path):
    returncode, _output, spans = run_and_term(tmp_path, signal.SIGHUP)
    assert returncode == -signal.SIGHUP
    assert len(spans) == 25


def test_signal_flush_can_be_turned_off(tmp_path):
    returncode, _output, spans = run_and_term(tmp_path, OTEL_MONITORING_SIGNAL_FLUSH="false")
    assert returncode == -signal.SIGTERM
    assert spans == []  # the kernel's default action: nothing buffered survives


def test_the_applications_own_handler_runs_and_decides_the_exit(tmp_path):
    returncode, output, spans = run_and_term(tmp_path, APP_HANDLER="1")
    assert "app handler ran" in output
    assert returncode == 3
    assert len(spans) == 25


# A signal the main thread does not see (it landed on another thread, or just before the main
# thread entered a blocking call) would leave the handler pending until time.sleep(120) returns;
# the default action it replaces would have ended the process at once.

def test_sigterm_taken_by_another_thread_while_the_main_thread_sleeps_still_ends_the_process(tmp_path):
    returncode, _output, spans = run_and_term(tmp_path, SIGNAL_FROM_THREAD="1")
    assert returncode == -signal.SIGTERM
    assert sorted(span.name for _r, span in spans) == sorted(f"work-{i}" for i in range(25))


def test_the_applications_handler_runs_when_another_thread_takes_the_signal(tmp_path):
    returncode, output, spans = run_and_term(tmp_path, APP_HANDLER="1", SIGNAL_FROM_THREAD="1")
    assert output.count("app handler ran") == 1  # woken once, not run twice
    assert returncode == 3
    assert len(spans) == 25


# --- servers stopped with SIGTERM after N requests ---

APP = """
import otel_monitoring
otel_monitoring.configure(service_name="api-under-test")
from fastapi import FastAPI

app = FastAPI()

@app.get("/work")
def work():
    return {"ok": True}

@app.get("/ready")
def ready():
    return {"ok": True}
"""

REQUESTS = 20


def serve_and_stop(tmp_path, command: list[str]) -> tuple[int, list]:
    directory = str(tmp_path / "telemetry")
    (tmp_path / "app_under_test.py").write_text(textwrap.dedent(APP))
    env = env_for(directory)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    port = free_port()
    process = subprocess.Popen([*command, "--bind" if "gunicorn" in command[0] else "--port",
                                f"127.0.0.1:{port}" if "gunicorn" in command[0] else str(port)],
                               env=env, cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(ready, "the server to answer")
        for _ in range(REQUESTS):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/work", timeout=30) as response:
                assert response.status == 200
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.pid, file_spans(directory)


def server_spans(spans: list, route: str) -> list:
    return [(resource, span) for resource, span in spans
            if span.kind == 2 and attributes(span.attributes).get("http.route") == route]  # SPAN_KIND_SERVER


def test_uvicorn_workers_export_every_request(tmp_path):
    supervisor, spans = serve_and_stop(
        tmp_path, [os.path.join(BIN, "uvicorn"), "app_under_test:app", "--workers", "2", "--host", "127.0.0.1"])
    work = server_spans(spans, "/work")
    assert len(work) == REQUESTS
    pids = {resource["process.pid"] for resource, _span in server_spans(spans, "/work") + server_spans(spans, "/ready")}
    assert supervisor not in pids


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_gunicorn_uvicorn_workers_export_every_request(tmp_path, preload):
    command = [os.path.join(BIN, "gunicorn"), "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
               "--graceful-timeout", "30", *(["--preload"] if preload else []), "app_under_test:app"]
    master, spans = serve_and_stop(tmp_path, command)
    work = server_spans(spans, "/work")
    assert len(work) == REQUESTS
    # Each worker's telemetry carries its own pid and instance id, never the master's.
    resources = [resource for resource, _span in work]
    assert all(resource["process.pid"] != master for resource in resources)
    by_pid = {}
    for resource in resources:
        by_pid.setdefault(resource["process.pid"], set()).add(resource["service.instance.id"])
    assert all(len(ids) == 1 for ids in by_pid.values())
    assert len({next(iter(ids)) for ids in by_pid.values()}) == len(by_pid)


# --- multiprocessing children and process pools ---

CHILDREN = """
import multiprocessing, os, sys
import otel_monitoring
otel_monitoring.configure(service_name="mp-parent")
from opentelemetry import trace

def child(n):
    tracer = trace.get_tracer("child")
    for i in range(n):
        with tracer.start_as_current_span("child-work"):
            pass

if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    processes = [context.Process(target=child, args=(10,)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    print("children", " ".join(str(p.pid) for p in processes), "exit", *[p.exitcode for p in processes])
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_children_flush_before_exit(tmp_path, method):
    directory = str(tmp_path / "telemetry")
    script = tmp_path / "children.py"
    script.write_text(textwrap.dedent(CHILDREN))
    result = subprocess.run([sys.executable, str(script), method], env=env_for(directory),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    child_pids = {int(words[1]), int(words[2])}
    assert words[-2:] == ["0", "0"]
    spans = [(resource, span) for resource, span in file_spans(directory) if span.name == "child-work"]
    assert len(spans) == 20
    by_pid: dict[int, int] = {}
    for resource, _span in spans:
        by_pid[resource["process.pid"]] = by_pid.get(resource["process.pid"], 0) + 1
    assert by_pid == {pid: 10 for pid in child_pids}


POOL = """
import concurrent.futures, multiprocessing, sys
import otel_monitoring
otel_monitoring.configure(service_name="pool")

@otel_monitoring.traced(component="pool", operation="square")
def square(x):
    return x * x

if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        print(sum(pool.map(square, range(30))))
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_workers_flush_traced_functions(tmp_path, method):
    directory = str(tmp_path / "telemetry")
    script = tmp_path / "pool.py"
    script.write_text(textwrap.dedent(POOL))
    result = subprocess.run([sys.executable, str(script), method], env=env_for(directory),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(sum(x * x for x in range(30)))]
    spans = [(resource, span) for resource, span in file_spans(directory) if span.name == "pool.square"]
    assert len(spans) == 30
    assert os.getpid() not in {resource["process.pid"] for resource, _ in spans}


# --- the flush's threads and the application's log handlers at exit ---

STUCK_HANDLER = """
import logging, sys, threading
import otel_monitoring
otel_monitoring.configure(service_name="stuck-handler", shutdown_timeout=3)
from opentelemetry import trace

class Stuck(logging.Handler):
    # A log sink that never returns for records of other threads once the program has returned
    # (a remote handler whose server stopped reading): it holds its lock from then on.
    exiting = False
    def emit(self, record):
        if self.exiting and threading.current_thread() is not threading.main_thread():
            threading.Event().wait()
        sys.stderr.write("app log: " + record.getMessage() + "\\n")

handler = Stuck()
logging.getLogger().addHandler(handler)
tracer = trace.get_tracer("workload")
for _ in range(50):
    with tracer.start_as_current_span("op"):
        pass
Stuck.exiting = True
print("returning", flush=True)
"""


def test_a_stuck_log_handler_does_not_hold_the_exit(tmp_path):
    """The OTLP endpoint is closed, so the flush's threads log warnings while the program exits:
    they must not reach the application's stuck handler (its lock would then block the exit
    message and logging.shutdown for ever)."""
    environment = clean_env(PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
                            OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                            OTEL_MONITORING_SYSTEM_METRICS="false")
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(STUCK_HANDLER)], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=90)  # a hang, not a speed limit
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the process never ended; stderr: {err[-2000:]}") from None
    assert process.returncode == 0, err
    exit_message = [line for line in err.splitlines() if "telemetry not delivered" in line]
    assert len(exit_message) == 1 and "50 spans" in exit_message[0], err


OFF_MAIN = """
import os, sys, threading, time
import otel_monitoring
from opentelemetry import trace
threading.Thread(target=lambda: otel_monitoring.configure(service_name="off-main")).start()
time.sleep(0)
for t in threading.enumerate():
    if t is not threading.current_thread() and not t.daemon:
        t.join()
if os.environ.get("FROM_MAIN"):
    otel_monitoring.lifecycle.install_signal_flush()  # the fix the warning names
tracer = trace.get_tracer("workload")
for i in range(25):
    with tracer.start_as_current_span(f"work-{i}"):
        pass
print("ready", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("from_main", [False, True])
def test_configure_off_the_main_thread_warns_and_the_named_fix_flushes_on_sigterm(tmp_path, from_main):
    directory = str(tmp_path / "telemetry")
    extra = {"FROM_MAIN": "1"} if from_main else {}
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(OFF_MAIN)], env=env_for(directory, **extra),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_line(process, "ready")
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM
    assert "configure() ran outside the main thread" in err
    assert len(file_spans(directory)) == (25 if from_main else 0)


# --- notifications still on their way at exit are counted ---

NOTIFYING = """
import os, sys, time
import otel_monitoring
otel_monitoring.configure(service_name="notifier", exporter="none", system_metrics=False, snapshot_interval=0.5,
                          alert_rules=sys.argv[1], alert_routes="webhook=info", alert_webhook_url=sys.argv[2],
                          alert_notify_timeout=60, shutdown_timeout=5)
from opentelemetry import metrics
metrics.get_meter("app").create_counter("app.errors", unit="{error}").add(1)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.1)
print("returning", flush=True)
"""

ERROR_RULE = """
metrics:
  app.errors: {type: counter, unit: "{error}"}
rules:
  - id: app_errors
    name: Application errors
    expr:
      metric: app.errors
    op: ">="
    threshold: 1
    severity: warning
"""


def test_a_notification_still_being_delivered_at_exit_is_counted_in_the_exit_message(tmp_path):
    """The webhook accepts the connection and never answers: the alert's notification is in flight
    when the program returns; the exit message counts it (it used to count queued ones only)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = threading.Event()
    held = []

    def hold() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)
            accepted.set()

    threading.Thread(target=hold, daemon=True).start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(ERROR_RULE))
    go = tmp_path / "go"
    environment = env_for(str(tmp_path / "telemetry"), OTEL_MONITORING_SNAPSHOT_DIR=str(tmp_path / "snapshots"))
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(NOTIFYING), str(rules),
                                f"http://127.0.0.1:{server.getsockname()[1]}/hook", str(go)],
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert accepted.wait(120), "the alert never reached the webhook"
        go.touch()
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        server.close()
        for connection in held:
            connection.close()
    assert process.returncode == 0, err
    exit_message = [line for line in err.splitlines() if "telemetry not delivered" in line]
    assert len(exit_message) == 1 and "1 notifications" in exit_message[0], err
