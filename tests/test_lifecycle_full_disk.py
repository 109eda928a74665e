"""A full disk during file export: every line of traces.jsonl is whole, what could not be written is
counted and said once (and again, with the same count, at exit), and writing resumes when space
returns. The disk is a small real tmpfs filled by the export itself (needs root to mount)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from support import REPO, clean_env, read_otlp_file, spans_from_requests

CHILD = """
import sys, otel_monitoring
from opentelemetry import trace
otel_monitoring.configure(service_name="full-disk", file_dir=sys.argv[1], metrics_exporter="none",
                          logs_exporter="none", system_metrics=False)
tracer = trace.get_tracer("disk")
provider = trace.get_tracer_provider()

def batch(phase, number):
    for i in range(10):
        with tracer.start_as_current_span(f"{phase}-{number}-{i}") as span:
            span.set_attribute("payload", "x" * 600)
    provider.force_flush()

for number in range(40):
    batch("full", number)
print("filled", flush=True)
sys.stdin.readline()  # the test frees space
for number in range(10):
    batch("resumed", number)
print("done", flush=True)
"""


@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (run the suite as root to cover full disks)")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_disk_loses_whole_lines_counts_them_once_and_resumes(small_tmpfs):
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * 200 * 1024)  # the export gets ~56 KiB of 256 (it needs ~400): full part-way
    directory = small_tmpfs / "telemetry"
    env = clean_env(PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(directory)], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "filled"
    filler.unlink()
    (directory / "traces.jsonl").rename(small_tmpfs / "full-traces.jsonl")  # keep it; its space stays used
    out, err = process.communicate("go\n", timeout=120)
    assert process.returncode == 0, err
    assert out.strip() == "done"

    # Every line parses whole (read_otlp_file raises on a broken or glued line).
    written = [span.name for path in (small_tmpfs / "full-traces.jsonl", directory / "traces.jsonl")
               for _r, _s, span in spans_from_requests(read_otlp_file(str(path), "traces"))]
    full = [name for name in written if name.startswith("full-")]
    lost = 400 - len(full)
    assert 0 < lost < 400, "the disk was meant to fill part-way"
    assert sorted(name for name in written if name.startswith("resumed-")) == sorted(
        f"resumed-{n}-{i}" for n in range(10) for i in range(10))  # writing resumed, nothing lost then
    assert len(written) == len(set(written))

    warnings = [line for line in err.splitlines() if "cannot deliver telemetry to the telemetry directory" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    recovered = [line for line in err.splitlines() if "recovered; dropped so far" in line]
    assert len(recovered) == 1 and recovered[0].endswith(f"dropped so far: {lost} spans")
    assert f"telemetry not delivered by this process: {lost} spans" in err
