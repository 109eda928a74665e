"""configure() end to end, each in a fresh interpreter: exporters, files read back as OTLP protobuf
messages, idempotence, opentelemetry-instrument, an unreachable collector, fork."""

import json
import os
import sys
import time

import pytest

from otlp_receiver import OtlpReceiver
from support import attributes, clean_env, free_port, read_otlp_file, run_python, spans_from_requests

APP = """
import logging, otel_monitoring
from opentelemetry import trace, metrics
logging.basicConfig(level=logging.INFO)
m = otel_monitoring.configure(service_name="svc-under-test", service_version="1.2.3", environment="staging",
                              {extra})
tracer = trace.get_tracer("app")
orders = metrics.get_meter("app").create_counter("app.orders", unit="{{order}}")
with tracer.start_as_current_span("parent") as parent:
    with tracer.start_as_current_span("child"):
        orders.add(3, {{"side": "buy"}})
        logging.getLogger("app").warning("inside child")
m.shutdown()
"""


def _app(extra: str = "") -> str:
    return APP.format(extra=extra)


def test_file_exporter_output_parses_as_otlp_with_links_metrics_and_logs(tmp_path):
    result = run_python(_app(f"exporter='otlp_file', file_dir={str(tmp_path)!r}"))
    assert result.returncode == 0, result.stderr

    trace_requests = read_otlp_file(tmp_path / "traces.jsonl", "traces")
    found = spans_from_requests(trace_requests)
    by_name = {span.name: (resource, span) for resource, _scope, span in found}
    assert set(by_name) == {"parent", "child"}
    resource, parent = by_name["parent"]
    _, child = by_name["child"]
    resource_attrs = attributes(resource.attributes)
    assert resource_attrs["service.name"] == "svc-under-test"
    assert resource_attrs["service.version"] == "1.2.3"
    assert resource_attrs["deployment.environment.name"] == "staging"
    assert resource_attrs["host.name"] and resource_attrs["process.pid"] > 0
    assert child.parent_span_id == parent.span_id and child.trace_id == parent.trace_id
    assert len(parent.trace_id) == 16 and len(parent.span_id) == 8  # hex ids turned back into bytes

    points = [
        point
        for request in read_otlp_file(tmp_path / "metrics.jsonl", "metrics")
        for rm in request.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
        if metric.name == "app.orders" for point in metric.sum.data_points
    ]
    assert points and points[-1].as_int == 3 and attributes(points[-1].attributes) == {"side": "buy"}

    records = [
        record
        for request in read_otlp_file(tmp_path / "logs.jsonl", "logs")
        for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records
    ]
    inside = [r for r in records if r.body.string_value == "inside child"]
    assert len(inside) == 1
    assert inside[0].trace_id == child.trace_id and inside[0].span_id == child.span_id
    assert inside[0].severity_text == "WARN" or inside[0].severity_number == 13


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_otlp_exporter_delivers_all_three_signals_with_headers(protocol):
    receiver = OtlpReceiver()
    endpoint = receiver.start_grpc() if protocol == "grpc" else receiver.start_http()
    try:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                        OTEL_EXPORTER_OTLP_HEADERS="x-tenant=acme%20corp")
        result = run_python(_app(), env=env)
        assert result.returncode == 0, result.stderr
        assert sorted(span.name for span in receiver.spans()) == ["child", "parent"]
        assert receiver.requests["metrics"] and receiver.requests["logs"]
        assert all(h.get("x-tenant") == "acme corp" for h in receiver.headers)
    finally:
        receiver.stop()


def test_console_and_none_exporters():
    console = run_python(_app("traces_exporter='console', metrics_exporter='none', logs_exporter='none'"))
    assert console.returncode == 0, console.stderr
    printed = console.stdout
    assert '"name": "parent"' in printed and '"name": "child"' in printed

    nothing = run_python(_app("exporter='none'"))
    assert nothing.returncode == 0 and nothing.stdout == ""


def test_configure_twice_returns_one_pipeline_and_exports_each_span_once(tmp_path):
    code = f"""
    import otel_monitoring
    from opentelemetry import trace
    first = otel_monitoring.configure(exporter="otlp_file", file_dir={str(tmp_path)!r})
    second = otel_monitoring.configure(exporter="console")
    assert first is second, "second configure() built a new pipeline"
    assert otel_monitoring.get_monitoring() is first
    with trace.get_tracer("t").start_as_current_span("only-once"):
        pass
    first.shutdown()
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    names = [span.name for _r, _s, span in spans_from_requests(read_otlp_file(tmp_path / "traces.jsonl", "traces"))]
    assert names == ["only-once"]


def test_configure_adopts_a_pipeline_someone_else_built(tmp_path):
    code = """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    import otel_monitoring
    m = otel_monitoring.configure(exporter="otlp_file")
    assert m.tracer_provider is provider and not m.owns_providers
    with trace.get_tracer("t").start_as_current_span("s"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["s"]
    """
    result = run_python(code, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "otel-data" / "traces.jsonl").exists(), "a second exporter pipeline was built"


def test_sdk_disabled_installs_nothing(tmp_path):
    code = """
    import otel_monitoring
    from opentelemetry import trace
    m = otel_monitoring.configure()
    with trace.get_tracer("t").start_as_current_span("s") as span:
        assert not span.get_span_context().is_valid
    """
    result = run_python(code, env=clean_env(OTEL_SDK_DISABLED="true"), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "otel-data").exists()


def test_sampler_from_environment_applies(tmp_path):
    code = f"""
    import otel_monitoring
    from opentelemetry import trace
    m = otel_monitoring.configure(exporter="otlp_file", file_dir={str(tmp_path)!r})
    for i in range(50):
        with trace.get_tracer("t").start_as_current_span("s"):
            pass
    m.shutdown()
    """
    result = run_python(code, env=clean_env(OTEL_TRACES_SAMPLER="always_off"))
    assert result.returncode == 0, result.stderr
    assert not os.path.exists(tmp_path / "traces.jsonl") or os.path.getsize(tmp_path / "traces.jsonl") == 0


def test_opentelemetry_instrument_configures_an_unchanged_app_without_duplicates(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(
        "import otel_monitoring\n"
        "from opentelemetry import trace\n"
        "handle = otel_monitoring.configure(exporter='console')  # must not build a second pipeline\n"
        "with trace.get_tracer('app').start_as_current_span('work'):\n"
        "    pass\n"
    )
    bindir = os.path.dirname(sys.executable)
    env = clean_env(OTEL_SERVICE_NAME="instrumented-app", OTEL_MONITORING_FILE_DIR=str(tmp_path / "out"),
                    PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    import subprocess

    result = subprocess.run([os.path.join(bindir, "opentelemetry-instrument"), sys.executable, str(script)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "already instrumented" not in result.stderr  # e.g. system metrics started twice
    assert '"name": "work"' not in result.stdout, "configure() inside the app built a console pipeline"
    found = spans_from_requests(read_otlp_file(tmp_path / "out" / "traces.jsonl", "traces"))
    assert [span.name for _r, _s, span in found] == ["work"]
    assert attributes(found[0][0].attributes)["service.name"] == "instrumented-app"


def test_unreachable_collector_bounds_exit_and_warns_once():
    port = free_port()  # nothing listens here
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_EXPORTER_OTLP_TIMEOUT="30",          # without our bound, exit would wait on retries this long
        OTEL_MONITORING_SHUTDOWN_TIMEOUT="2",
        OTEL_METRIC_EXPORT_INTERVAL="200",
    )
    code = """
    import logging, time, otel_monitoring
    from opentelemetry import trace
    logging.basicConfig(level=logging.INFO)
    otel_monitoring.configure(service_name="lonely")
    tracer = trace.get_tracer("t")
    for i in range(2000):
        with tracer.start_as_current_span(f"op"):
            pass
        if i % 500 == 0:
            logging.getLogger("app").info("still working %d", i)
    time.sleep(1.5)
    print("app finished normally")
    """
    started = time.monotonic()
    result = run_python(code, env=env, timeout=25)  # a hang fails here with TimeoutExpired
    assert result.returncode == 0, result.stderr
    assert "app finished normally" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    # One warning when delivery starts failing, one at exit counting every span it lost.
    assert len(warnings) == 2, "\n".join(warnings)
    assert f"127.0.0.1:{port}" in warnings[0] and "reported once" in warnings[0]
    assert "telemetry not delivered by this process: 2000 spans" in warnings[1]
    assert time.monotonic() - started < 25


def test_forked_child_and_parent_both_export(tmp_path):
    code = f"""
    import os, otel_monitoring
    from opentelemetry import trace
    m = otel_monitoring.configure(exporter="otlp_file", file_dir={str(tmp_path)!r})
    tracer = trace.get_tracer("t")
    with tracer.start_as_current_span("before-fork"):
        pass
    pid = os.fork()
    if pid == 0:
        for i in range(200):
            with tracer.start_as_current_span("in-child"):
                pass
        m.shutdown()
        os._exit(0)
    for i in range(200):
        with tracer.start_as_current_span("in-parent"):
            pass
    _, status = os.waitpid(pid, 0)
    assert status == 0
    m.shutdown()
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "traces.jsonl", encoding="utf-8") as handle:
        for line in handle:
            json.loads(line)  # no interleaved or split line
    names = [span.name for _r, _s, span in spans_from_requests(read_otlp_file(tmp_path / "traces.jsonl", "traces"))]
    assert names.count("in-child") == 200
    assert names.count("in-parent") == 200
    assert names.count("before-fork") == 1


def test_forked_child_exports_over_grpc_on_its_own():
    receiver = OtlpReceiver()
    endpoint = receiver.start_grpc()
    code = """
    import os, otel_monitoring
    from opentelemetry import trace
    m = otel_monitoring.configure()
    tracer = trace.get_tracer("t")
    with tracer.start_as_current_span("before-fork"):
        pass
    m.force_flush()  # the parent's gRPC channel is connected before the fork
    pid = os.fork()
    if pid == 0:
        for i in range(50):
            with tracer.start_as_current_span("in-child"):
                pass
        m.shutdown()
        os._exit(0)
    for i in range(50):
        with tracer.start_as_current_span("in-parent"):
            pass
    os.waitpid(pid, 0)
    m.shutdown()
    """
    try:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
        result = run_python(code, env=env)
        assert result.returncode == 0, result.stderr
        names = [span.name for span in receiver.spans()]
        assert (names.count("before-fork"), names.count("in-child"), names.count("in-parent")) == (1, 50, 50)
    finally:
        receiver.stop()


def test_basic_config_after_configure_still_sets_up_the_apps_console(tmp_path):
    code = f"""
    import logging, otel_monitoring
    m = otel_monitoring.configure(exporter="otlp_file", file_dir={str(tmp_path)!r})
    logging.basicConfig(level=logging.INFO, format="APP %(levelname)s %(message)s")
    logging.getLogger("app").info("hello console")
    m.shutdown()
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "APP INFO hello console" in result.stderr
    bodies = [record.body.string_value for request in read_otlp_file(tmp_path / "logs.jsonl", "logs")
              for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records]
    assert bodies == ["hello console"]


def test_an_app_without_logging_setup_still_sees_its_warnings_on_stderr(tmp_path):
    code = f"""
    import logging, otel_monitoring
    m = otel_monitoring.configure(exporter="otlp_file", file_dir={str(tmp_path)!r})
    logging.getLogger("app").warning("disk almost full")
    logging.getLogger("app").info("not shown: Python's default shows warnings only")
    m.shutdown()
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "disk almost full"
    bodies = [record.body.string_value for request in read_otlp_file(tmp_path / "logs.jsonl", "logs")
              for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records]
    assert bodies == ["disk almost full"]  # the root logger stays at WARNING: info is not emitted at all


# The stock SDK's pipeline with its exporters configured from the environment alone: the reference
# for what an OTEL_EXPORTER_OTLP_* setting means.
STOCK_APP = """
import logging
from opentelemetry.exporter.otlp.proto.{kind}._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.{kind}.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.{kind}.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
meter_provider = MeterProvider([PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=600000)])
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter()))
logging.getLogger("app").addHandler(LoggingHandler(logger_provider=logger_provider))
with tracer_provider.get_tracer("app").start_as_current_span("parent"):
    meter_provider.get_meter("app").create_counter("app.orders").add(3)
    logging.getLogger("app").warning("inside child")
for provider in (tracer_provider, meter_provider, logger_provider):
    provider.shutdown()
"""


def _delivered(env: dict[str, str], code: str) -> set[str]:
    """The signals a fresh interpreter running ``code`` delivered to a plaintext gRPC receiver named by
    host:port without a scheme (``{port}`` in env values)."""
    receiver = OtlpReceiver()
    port = receiver.start_grpc().rsplit(":", 1)[1]
    try:
        result = run_python(code, env=clean_env(**{k: v.format(port=port) for k, v in env.items()}), timeout=120)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        return {signal for signal, requests in receiver.requests.items() if requests}
    finally:
        receiver.stop()


@pytest.mark.parametrize("insecure, delivered", [
    ({"OTEL_EXPORTER_OTLP_INSECURE": "true"}, {"traces", "metrics", "logs"}),
    # Without the setting the exporter uses TLS, which a plaintext collector refuses; a signal's own
    # setting wins over the generic one.
    ({"OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"}, {"traces"}),
])
def test_a_grpc_endpoint_without_scheme_means_what_it_means_to_the_sdk(insecure, delivered):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_TIMEOUT": "3", **insecure}
    assert _delivered(env, STOCK_APP.format(kind="grpc")) == delivered  # the reference
    assert _delivered(env, _app()) == delivered


def test_an_http_endpoint_without_scheme_is_refused_with_the_fix_as_the_sdk_cannot_send_to_it():
    env = clean_env(OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_EXPORTER_OTLP_ENDPOINT="127.0.0.1:4318")
    stock = run_python(STOCK_APP.format(kind="http"), env=env, timeout=120)
    assert "Failed to export" in stock.stderr, stock.stderr  # every export, at once
    ours = run_python(_app(), env=env, timeout=120)
    assert ours.returncode == 0, ours.stderr
    (line,) = [line for line in ours.stderr.splitlines() if "OTEL_EXPORTER_OTLP_ENDPOINT" in line]
    assert ("environment variable OTEL_EXPORTER_OTLP_ENDPOINT: '127.0.0.1:4318' has no scheme, and OTLP over "
            "HTTP needs a URL") in line, line
    assert "Fix: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (https:// for TLS)." in line, line
    assert "Traceback" not in ours.stderr
