"""The otlp_file exporter: OTLP/JSON lines, rotation that never splits or loses a line, and the
entry points that let the SDK's own configuration use it by name."""

import glob
import json
import os
import threading
from importlib.metadata import entry_points

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_monitoring.exporters.file import OtlpFileSpanExporter, RotatingJsonlFile
from support import read_otlp_file, run_python, spans_from_requests


def _all_lines(directory, stem):
    files = sorted(glob.glob(os.path.join(directory, f"{stem}*.jsonl")))
    lines = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            lines += handle.read().splitlines()
    return files, lines


def test_rotation_keeps_whole_lines_and_prunes_backups(tmp_path):
    stream = RotatingJsonlFile(str(tmp_path / "traces.jsonl"), max_bytes=1000, max_backups=3)
    for i in range(100):
        stream.write(json.dumps({"i": i, "pad": "x" * 80}) + "\n")
    stream.close()
    files, lines = _all_lines(tmp_path, "traces")
    assert len(files) == 4  # the live file and max_backups rotated ones
    assert all(os.path.getsize(path) <= 1000 for path in files)
    numbers = [json.loads(line)["i"] for line in lines]
    assert numbers == sorted(numbers) and numbers[-1] == 99  # oldest pruned, order kept, nothing split


def test_a_line_larger_than_the_limit_is_written_whole(tmp_path):
    stream = RotatingJsonlFile(str(tmp_path / "metrics.jsonl"), max_bytes=100, max_backups=0)
    big = json.dumps({"blob": "y" * 500}) + "\n"
    stream.write("{}\n")
    stream.write(big)
    stream.close()
    _files, lines = _all_lines(tmp_path, "metrics")
    assert lines == ["{}", big.strip()]


def test_burst_from_many_threads_through_the_sdk_loses_no_span(tmp_path):
    exporter = OtlpFileSpanExporter(str(tmp_path), max_bytes=64 * 1024, max_backups=0)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=100_000, max_export_batch_size=64))
    tracer = provider.get_tracer("burst")

    def work(worker):
        for i in range(1000):
            with tracer.start_as_current_span(f"w{worker}") as span:
                span.set_attribute("i", i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.shutdown()

    files = sorted(glob.glob(str(tmp_path / "traces*.jsonl")))
    assert len(files) > 3, "the burst should have rotated several times"
    spans = []
    for path in files:
        spans += [span for _r, _s, span in spans_from_requests(read_otlp_file(path, "traces"))]
    assert len(spans) == 4000
    assert len({(span.name, span.attributes[0].value.int_value) for span in spans}) == 4000


def test_two_processes_rotating_the_same_file_interleave_no_line(tmp_path):
    code = f"""
    import json, sys
    from otel_monitoring.exporters.file import RotatingJsonlFile
    stream = RotatingJsonlFile({str(tmp_path / 'logs.jsonl')!r}, max_bytes=4096, max_backups=0)
    for i in range(3000):
        stream.write(json.dumps({{"who": sys.argv[1], "i": i, "pad": "z" * 50}}) + "\\n")
    """
    import subprocess
    import sys
    import textwrap

    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), who]) for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    _files, lines = _all_lines(tmp_path, "logs")
    records = [json.loads(line) for line in lines]  # raises on any split or interleaved line
    for who in ("a", "b"):
        assert sorted(r["i"] for r in records if r["who"] == who) == list(range(3000))


def test_entry_points_let_the_sdk_configurator_use_otlp_file(tmp_path):
    for group in ("opentelemetry_traces_exporter", "opentelemetry_metrics_exporter", "opentelemetry_logs_exporter"):
        assert "otlp_file" in {ep.name for ep in entry_points(group=group)}, group
    # The SDK's own configurator (no otel_monitoring.configure()) selects the exporter by name.
    code = """
    from opentelemetry.sdk._configuration import _initialize_components
    from opentelemetry import trace
    _initialize_components(auto_instrumentation_version="test")
    with trace.get_tracer("t").start_as_current_span("via-sdk-configurator"):
        pass
    trace.get_tracer_provider().shutdown()
    """
    from support import clean_env

    env = clean_env(OTEL_TRACES_EXPORTER="otlp_file", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                    OTEL_MONITORING_FILE_DIR=str(tmp_path))
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    names = [span.name for _r, _s, span in spans_from_requests(read_otlp_file(tmp_path / "traces.jsonl", "traces"))]
    assert names == ["via-sdk-configurator"]
