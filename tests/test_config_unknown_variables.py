"""A misspelled OTEL_MONITORING_* variable is reported (once, naming the closest known one) by
configure() and by `otel-monitoring doctor`, instead of being ignored in silence."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from support import REPO, clean_env, run_python

from otel_monitoring.config import VARIABLE_PREFIX, known_variables, unknown_variables

CLI = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")


def test_configure_reports_a_misspelled_variable_once_with_the_closest_name(tmp_path):
    env = clean_env(OTEL_MONITORING_SNAPSHOT_DIRR=str(tmp_path / "snaps"), OTEL_MONITORING_FILE_DIR=str(tmp_path))
    done = run_python("""
        import otel_monitoring
        monitoring = otel_monitoring.configure(service_name="typo-check")
        otel_monitoring.configure(service_name="typo-check")  # idempotent: no second report
        monitoring.shutdown()
        print("app went on")
    """, env=env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "app went on" in done.stdout
    lines = [line for line in done.stderr.splitlines() if "OTEL_MONITORING_SNAPSHOT_DIRR" in line]
    assert len(lines) == 1, done.stderr
    assert "is ignored" in lines[0] and "did you mean OTEL_MONITORING_SNAPSHOT_DIR?" in lines[0]
    assert not (tmp_path / "snaps").exists()


def test_strict_mode_refuses_a_misspelled_variable(tmp_path):
    env = clean_env(OTEL_MONITORING_STRICT="true", OTEL_MONITORING_SNAPSHOT_DIRR=str(tmp_path),
                    OTEL_MONITORING_FILE_DIR=str(tmp_path))
    done = run_python("""
        import otel_monitoring
        from otel_monitoring.config import ConfigError
        try:
            otel_monitoring.configure(service_name="typo-check")
        except ConfigError as error:
            print("refused:", error)
    """, env=env, cwd=str(tmp_path))
    assert "refused: environment variable OTEL_MONITORING_SNAPSHOT_DIRR" in done.stdout, done.stdout + done.stderr


def test_doctor_lists_the_misspelled_variable_and_where_telemetry_goes_instead_of_a_bad_endpoint(tmp_path):
    env = clean_env(OTEL_MONITORING_ALERT_SLACK_URL="https://hooks.example/x", OTEL_MONITORING_FILE_DIR=str(tmp_path),
                    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="ftp://collector")
    done = subprocess.run([CLI, "doctor"], env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert ("PROBLEM: environment variable OTEL_MONITORING_ALERT_SLACK_URL is not an otel-monitoring setting and is "
            "ignored. Fix: did you mean OTEL_MONITORING_ALERT_SLACK_WEBHOOK_URL?") in done.stdout, done.stdout
    (line,) = [line for line in done.stdout.splitlines() if "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in line]
    assert line.endswith(f"Instead, traces go to OTLP/JSON files in {tmp_path}. Fix the URL to send them to your "
                         "collector."), line


def test_a_name_like_no_other_points_at_the_settings_reference():
    (message,) = unknown_variables({"OTEL_MONITORING_FOO": "1", "OTEL_MONITORING_STRICT": "false", "HOME": "/"})
    assert "OTEL_MONITORING_FOO" in message and "docs/configuration.md" in message


def test_every_variable_the_project_reads_is_known():
    """A variable read anywhere (package, scripts) but missing from config.py's tables would be
    reported as unknown to the users who set it."""
    pattern = re.compile(rf"\b{VARIABLE_PREFIX}[A-Z0-9_]*[A-Z0-9]\b")
    found: set[str] = set()
    for top in ("otel_monitoring", "scripts"):
        for directory, _dirs, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if os.path.join(directory, name) == os.path.join(REPO, "otel_monitoring", "config.py"):
                    continue  # the tables themselves (and a misspelt example in the reference's text)
                if name.endswith((".py", ".sh")) or "." not in name:
                    with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as handle:
                        found |= set(pattern.findall(handle.read()))
    assert found - known_variables() == set()
    assert len(found) > 30


TRACED_APP = """
import otel_monitoring
monitoring = otel_monitoring.configure(service_name="endpoint-check")

@otel_monitoring.traced("app", "work")
def work():
    return 1

work()
monitoring.shutdown()
"""


def test_a_bad_endpoint_says_where_telemetry_really_goes(tmp_path):
    """It said "the default applies" while, with no endpoint left, the exporters wrote files."""
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT="http//127.0.0.1:4317", OTEL_MONITORING_FILE_DIR=str(tmp_path / "files"))
    done = run_python(TRACED_APP, env=env, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "OTEL_EXPORTER_OTLP_ENDPOINT" in line]
    assert f"Instead, traces, metrics and logs go to OTLP/JSON files in {tmp_path / 'files'}." in line, line
    assert "default applies" not in line
    assert (tmp_path / "files" / "traces.jsonl").stat().st_size > 0  # where it said

    # An explicit otlp exporter for traces: those go to the default endpoint, the rest to files.
    done = run_python(TRACED_APP, env=dict(env, OTEL_TRACES_EXPORTER="otlp", OTEL_BSP_EXPORT_TIMEOUT="200"),
                      cwd=str(tmp_path))
    (line,) = [line for line in done.stderr.splitlines() if "OTEL_EXPORTER_OTLP_ENDPOINT" in line]
    assert "Instead, traces go over OTLP to http://127.0.0.1:4317; metrics and logs go to OTLP/JSON files" in line, line
