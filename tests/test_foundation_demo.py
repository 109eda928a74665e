"""The main job: `otel-monitoring demo` runs the examples on the embedded file default and summarises."""

import os
import subprocess
import sys

from support import clean_env, read_otlp_file, spans_from_requests


def test_demo_writes_otlp_files_and_prints_a_summary(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    result = subprocess.run([exe, "demo", "--duration", "3", "--output", str(tmp_path)],
                            env=clean_env(), capture_output=True, text=True, timeout=240, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "p50 ms" in out and "p95 ms" in out and "p99 ms" in out
    assert str(tmp_path / "traces.jsonl") in out
    spans = [span for _r, _s, span in spans_from_requests(read_otlp_file(tmp_path / "traces.jsonl", "traces"))]
    assert len(spans) > 10
    # Rows of the summary table (up to the first blank line) match the file's span counts.
    table = out.split("p99 ms", 1)[1].lstrip("\n").split("\n\n", 1)[0].splitlines()
    assert table, out
    for row in table:
        fields = row.rsplit(None, 5)
        name, count = fields[0].strip(), int(fields[1])
        assert count == sum(1 for span in spans if span.name == name), row
    logs = read_otlp_file(tmp_path / "logs.jsonl", "logs")
    assert any(record.trace_id for request in logs for rl in request.resource_logs
               for sl in rl.scope_logs for record in sl.log_records)
