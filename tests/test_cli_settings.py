"""The CLI reads its directories through the settings, as the application does: with
OTEL_MONITORING_SNAPSHOT_DIR=~/snaps, the application writes under $HOME/snaps and `top --once`
and `alerts list` both read that directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from stackprocs import wait_until
from support import REPO, clean_env

RULES = {
    "metrics": {"trading.signal.accuracy": {"type": "gauge", "unit": "1"}},
    "rules": [{"id": "low_signal_accuracy", "name": "Low signal accuracy", "severity": "critical", "op": "<",
               "threshold": 0.7, "expr": {"metric": "trading.signal.accuracy", "group_by": ["trading.strategy"]}}],
}

APP = """
import sys
import otel_monitoring as om
om.configure(service_name="tilde-app")
for i in range(10):
    om.record_signal_outcome("momentum", "BTC/USDT", correct=i < 6)
print("ready", flush=True)
sys.stdin.read()
"""


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=60, cwd=REPO)


def _firing(directory: str) -> list[dict]:
    try:
        with open(os.path.join(directory, "alerts.json"), encoding="utf-8") as handle:
            return [a for a in json.load(handle)["alerts"] if a["state"] == "firing"]
    except (OSError, ValueError, KeyError):
        return []


def test_alerts_list_and_top_expand_a_tilde_in_the_snapshot_dir(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    env = clean_env(HOME=str(home), OTEL_MONITORING_SNAPSHOT_DIR="~/snaps", OTEL_MONITORING_SNAPSHOT_INTERVAL="0.5",
                    OTEL_MONITORING_ALERT_RULES=str(rules), OTEL_TRACES_EXPORTER="none",
                    OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    app = subprocess.Popen([sys.executable, "-c", APP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           env=env, cwd=str(tmp_path))
    try:
        assert app.stdout.readline().strip() == "ready"
        snaps = str(home / "snaps")
        firing = wait_until(lambda: _firing(snaps), 60, what="the alert firing in $HOME/snaps/alerts.json")
        assert [a["id"] for a in firing] == ["low_signal_accuracy:momentum"]

        listing = _cli("alerts", "list", env=env)
        assert listing.returncode == 0, listing.stderr
        assert "low_signal_accuracy:momentum" in listing.stdout
        as_json = _cli("alerts", "list", "--json", env=env)
        assert as_json.returncode == 0, as_json.stderr
        assert [a["id"] for a in json.loads(as_json.stdout) if a["state"] == "firing"] == [
            "low_signal_accuracy:momentum"]
        top = _cli("top", "--once", "--width", "120", env=env)
        assert top.returncode == 0, top.stderr
        assert "Low signal accuracy  60.0% / 70.0%" in top.stdout  # 6 of 10 signals right
        # --dir takes a tilde too.
        explicit = _cli("alerts", "list", "--dir", "~/snaps", env=clean_env(HOME=str(home)))
        assert explicit.returncode == 0 and "low_signal_accuracy:momentum" in explicit.stdout, explicit.stderr
    finally:
        app.kill()
        app.wait()


def test_top_report_and_alerts_find_the_runs_directory_without_flags(tmp_path):
    """Where `otel-monitoring demo` (or an app with the file default and snapshots beside it) ran,
    the three commands read ./otel-data with no flag and no variable, and agree on it."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    app_env = clean_env(OTEL_MONITORING_SNAPSHOT_DIR="otel-data", OTEL_MONITORING_SNAPSHOT_INTERVAL="0.5",
                        OTEL_MONITORING_ALERT_RULES=str(rules), OTEL_TRACES_EXPORTER="none",
                        OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    app = subprocess.Popen([sys.executable, "-c", APP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           env=app_env, cwd=str(tmp_path))
    try:
        assert app.stdout.readline().strip() == "ready"
        wait_until(lambda: _firing(str(tmp_path / "otel-data")), 60, what="the alert firing in ./otel-data")
    finally:
        app.kill()
        app.wait()
    exe = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    env = clean_env(OTEL_MONITORING_ALERT_RULES=str(rules))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=60, cwd=str(tmp_path))

    listing = cli("alerts", "list")
    assert listing.returncode == 0 and "low_signal_accuracy:momentum" in listing.stdout, listing.stderr
    top = cli("top", "--once", "--width", "120")
    assert top.returncode == 0 and "Low signal accuracy  60.0% / 70.0%" in top.stdout, top.stdout + top.stderr
    report = cli("report", "--html", "report.html")
    assert report.returncode == 0, report.stderr
    assert "Low signal accuracy" in (tmp_path / "report.html").read_text(encoding="utf-8")
