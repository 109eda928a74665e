"""Faults with the real programs: the collector stopped under a running app, and Jaeger stopped
behind the collector (its persistent sending queue delivers what arrived meanwhile, even across a
collector restart). The numbers these tests print are the ones docs/collector.md reports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from stackprocs import AGENT_CONFIG, start_collector, start_jaeger, wait_until
from support import attributes, clean_env, read_otlp_file, spans_from_requests

# The app: otel_monitoring.configure(exporter="otlp"), a span every 20 ms, tagged with the phase
# (collector up / down / restarted); prints what it measured as JSON. The test moves the phases by
# creating files, so the app never waits on the test.
APP = """
import json, os, sys, time
import otel_monitoring
from otel_monitoring.exporters import delivery

control = sys.argv[1]
monitoring = otel_monitoring.configure(service_name="fault-app", exporter="otlp", endpoint=sys.argv[2],
                                       metrics_exporter="none", logs_exporter="none", system_metrics=False)
tracer = monitoring.tracer("fault-app")
open(control + ".ready", "w").close()
sent = {"before": 0, "down": 0, "after": 0}
slowest = 0.0
errors = []
phase = "before"
while not os.path.exists(control + ".end"):
    phase = "after" if os.path.exists(control + ".up") else "down" if os.path.exists(control + ".down") else "before"
    started = time.perf_counter()
    try:
        with tracer.start_as_current_span("work", attributes={"phase": phase, "seq": sum(sent.values())}):
            pass
    except Exception as error:  # the point: there must be none
        errors.append(repr(error))
    slowest = max(slowest, time.perf_counter() - started)
    sent[phase] += 1
    time.sleep(0.02)
flush_started = time.perf_counter()
flushed = monitoring.force_flush(timeout=15)
flush_seconds = time.perf_counter() - flush_started
dropped = sum(report.dropped["spans"] for report in delivery._reports)
monitoring.shutdown()
print(json.dumps({"sent": sent, "slowest_call_s": slowest, "errors": errors, "dropped_counted": dropped,
                  "flushed": flushed, "flush_s": flush_seconds}))
"""

OUTAGE_SECONDS = 12  # longer than the SDK's 10 s OTLP export timeout, so the retry window runs out


def _touch(path: str) -> None:
    with open(path, "w"):
        pass


def _spans_by_phase(collector) -> dict[str, int]:
    counts = {"before": 0, "down": 0, "after": 0}
    try:
        requests = read_otlp_file(collector.file("traces"), "traces")
    except FileNotFoundError:
        return counts
    for _, _, span in spans_from_requests(requests):
        phase = attributes(span.attributes).get("phase")
        if phase in counts:
            counts[phase] += 1
    return counts


def test_collector_down_mid_run_neither_blocks_nor_raises_and_loss_is_accounted(tmp_path):
    collector = start_collector(AGENT_CONFIG, tmp_path)
    control = str(tmp_path / "phase")
    app_log = open(tmp_path / "app.log", "w+", encoding="utf-8")  # a file: a full pipe would block the app
    app = subprocess.Popen([sys.executable, "-c", APP, control, collector.otlp_grpc_endpoint],
                           env=clean_env(), stdout=subprocess.PIPE, stderr=app_log, text=True)
    try:
        wait_until(lambda: os.path.exists(control + ".ready") or app.poll() is not None, 60, what="the app to start")
        time.sleep(3)
        _touch(control + ".down")
        collector.stop()
        time.sleep(OUTAGE_SECONDS)
        collector.start()
        _touch(control + ".up")
        time.sleep(3)
        _touch(control + ".end")
        out, _ = app.communicate(timeout=60)
    finally:
        if app.poll() is None:
            app.kill()
        collector.stop()
        app_log.seek(0)
        err = app_log.read()
        app_log.close()
    assert app.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    collector.start()  # read what the files hold once it flushed on stop
    received = _spans_by_phase(collector)
    collector.stop()
    sent = report["sent"]
    print(f"\ncollector down {OUTAGE_SECONDS}s: sent {sent}, received {received}, "
          f"dropped counted by the SDK {report['dropped_counted']}, slowest span call {report['slowest_call_s'] * 1000:.1f} ms, "
          f"final flush {report['flush_s']:.2f}s")
    assert report["errors"] == []
    # Never blocked: a blocked call would take the export timeout (10 s) or the outage (12 s).
    assert report["slowest_call_s"] < 1.0
    assert sent["down"] > 100
    # Everything sent while the collector was up arrived; what was sent while it was down either
    # arrived (exported after the restart, within the retry window) or was counted as dropped.
    assert received["before"] >= sent["before"] - report["dropped_counted"]
    assert received["after"] == sent["after"]
    lost = sum(sent.values()) - sum(received.values())
    assert lost == report["dropped_counted"], f"lost {lost} spans but the SDK counted {report['dropped_counted']}"


SEND_SPANS = """
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
provider = TracerProvider(resource=Resource.create({"service.name": sys.argv[2]}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
tracer = provider.get_tracer("queue-test")
for i in range(int(sys.argv[3])):
    with tracer.start_as_current_span(f"queued-{i}"):
        pass
provider.shutdown()
"""


def test_jaeger_down_the_persistent_queue_delivers_across_a_collector_restart(tmp_path):
    # Memory storage: the restarted Jaeger starts empty, so what it shows can only come from the queue.
    jaeger = start_jaeger(tmp_path, storage="memory")
    collector = start_collector(AGENT_CONFIG, tmp_path, jaeger_endpoint=jaeger.otlp_grpc_endpoint)
    try:
        _send_spans(collector.otlp_grpc_endpoint, "before-outage", 5)
        wait_until(lambda: jaeger.traces("before-outage"), 30, what="spans while Jaeger is up")

        jaeger.stop()
        _send_spans(collector.otlp_grpc_endpoint, "during-outage", 50)
        # The backlog is visible where the CollectorExportBacklog alert looks (rules/stack.yml).
        wait_until(lambda: re.search(r'otelcol_exporter_queue_size\{[^}]*exporter="otlp_grpc/jaeger"[^}]*\} [1-9]',
                                     collector.own_metrics()), 10, what="a non-empty queue towards Jaeger")
        # The batch reaches the queue, fails against the stopped Jaeger, stays on disk; the
        # collector is restarted while Jaeger is still down: the queue survives in file_storage.
        time.sleep(2)
        collector.stop()
        collector.start()
        time.sleep(1)
        jaeger.start()  # a fresh, empty Jaeger
        traces = wait_until(lambda: (lambda t: len(t) == 50 and t)(jaeger.traces("during-outage", limit=100)),
                            60, what="the 50 queued spans in the restarted Jaeger")
        assert {trace["spans"][0]["operationName"] for trace in traces} == {f"queued-{i}" for i in range(50)}
        assert jaeger.traces("before-outage") == []  # proves it is a new, empty Jaeger
    finally:
        collector.stop()
        jaeger.stop()



def _send_spans(endpoint: str, service: str, count: int) -> None:
    result = subprocess.run([sys.executable, "-c", SEND_SPANS, endpoint, service, str(count)],
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
