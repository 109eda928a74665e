"""Alert operations: an acknowledgement records who, `alerts test` reaches every configured channel
(locally and through a real Alertmanager), and the HTML report refreshes itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from otel_monitoring.config import load_settings
from otel_monitoring.local.history import HistoryStore
from otel_monitoring.stack import ManagedProcess
from otel_monitoring.stack.alertmanager import alertmanager_spec, write_alertmanager_config
from stackprocs import require_binary, wait_until
from support import REPO, clean_env, free_port
from test_stack_alerting import Webhook

RULES = {
    "metrics": {"trading.signal.accuracy": {"type": "gauge", "unit": "1"}},
    "rules": [{"id": "low_signal_accuracy", "name": "Low signal accuracy", "severity": "critical", "op": "<",
               "threshold": 0.7, "expr": {"metric": "trading.signal.accuracy", "group_by": ["trading.strategy"]}}],
}

APP = """
import sys, time
import otel_monitoring as om
om.configure(service_name="ack-app")
for i in range(10):
    om.record_signal_outcome("momentum", "BTC/USDT", correct=i < 6)
print("ready", flush=True)
sys.stdin.read()
"""


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_monitoring.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60, cwd=REPO)


def _alerts(directory) -> list[dict]:
    try:
        with open(os.path.join(directory, "alerts.json"), encoding="utf-8") as handle:
            return json.load(handle)["alerts"]
    except (OSError, ValueError):
        return []


def test_ack_by_is_recorded_by_the_running_application(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    snapshots = tmp_path / "snapshots"
    env = clean_env(OTEL_MONITORING_SNAPSHOT_DIR=str(snapshots), OTEL_MONITORING_SNAPSHOT_INTERVAL="0.5",
                    OTEL_MONITORING_ALERT_RULES=str(rules), OTEL_TRACES_EXPORTER="none",
                    OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    app = subprocess.Popen([sys.executable, "-c", APP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           env=env, cwd=REPO)
    try:
        assert app.stdout.readline().strip() == "ready"
        alert_id = "low_signal_accuracy:momentum"
        wait_until(lambda: any(a["id"] == alert_id and a["state"] == "firing" for a in _alerts(snapshots)), 60,
                   what="the alert firing in alerts.json")
        done = _cli("alerts", "ack", alert_id, "--by", "maria", "--dir", str(snapshots), env=env)
        assert done.returncode == 0, done.stderr
        assert "Acknowledged low_signal_accuracy:momentum by maria" in done.stdout
        # The application applies it: alerts.json, the history and `alerts list` name who.
        acked = wait_until(lambda: [a for a in _alerts(snapshots) if a["id"] == alert_id and a["acknowledged"]], 60,
                           what="the acknowledgement applied by the application")
        assert acked[0]["acknowledged_by"] == "maria"
        events = wait_until(lambda: [e for e in HistoryStore(str(snapshots)).alert_events()
                                     if e["event"] == "acknowledged"], 30, what="the acknowledgement in the history")
        assert [(e["alert_id"], e["by"]) for e in events] == [(alert_id, "maria")]
        listing = _cli("alerts", "list", "--history", "1h", "--dir", str(snapshots), env=env)
        assert "acknowledged by maria" in listing.stdout
        assert f"acknowledged critical  {alert_id} value 60.0% by maria" in listing.stdout  # the history line, in the rule's unit
    finally:
        app.kill()
        app.wait()


def test_alerts_test_reaches_each_local_channel_and_alertmanager(tmp_path):
    webhook = Webhook()
    settings_env = {"OTEL_MONITORING_ALERT_WEBHOOK_URL": webhook.url, "OTEL_SERVICE_NAME": "ops-check"}
    # A real Alertmanager configured from the same settings.
    listen = f"127.0.0.1:{free_port()}"
    config = write_alertmanager_config(str(tmp_path / "alertmanager.yml"), load_settings(environ=settings_env), None)
    process = ManagedProcess(alertmanager_spec(require_binary("alertmanager"), listen, config, str(tmp_path / "am")),
                             str(tmp_path / "alertmanager.log")).start()
    try:
        done = _cli("alerts", "test", "--alertmanager", f"http://{listen}", env=clean_env(**settings_env))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "local    log      sent" in done.stdout and "local    webhook  sent" in done.stdout
        assert "alertmanager webhook" in done.stdout

        def both():
            local = [b for _, b in webhook.received if b.get("source") == "otel-monitoring"]
            through = [a for _, b in webhook.received for a in b.get("alerts", [])
                       if a["labels"].get("otel_monitoring_test") == "webhook"]
            return (local, through) if local and through else None

        local, through = wait_until(both, 60, what="the local and the Alertmanager test notifications")
        assert local[0]["service"] == "ops-check" and local[0]["alert"]["name"] == "Test notification"
        assert through[0]["status"] == "firing" and through[0]["labels"]["alertname"] == "otel_monitoring_test"
        # One channel only; an unconfigured one is named and fails.
        slack = _cli("alerts", "test", "--channel", "slack", "--alertmanager", "none", env=clean_env(**settings_env))
        assert slack.returncode == 1 and "slack    not configured" in slack.stdout
    finally:
        process.stop()


def test_alerts_test_names_a_failing_channel(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/hook"
    done = _cli("alerts", "test", "--channel", "webhook", "--alertmanager", "none",
                env=clean_env(OTEL_MONITORING_ALERT_WEBHOOK_URL=dead, OTEL_MONITORING_ALERT_NOTIFY_TIMEOUT="2"))
    assert done.returncode == 1
    assert "local    webhook  FAILED: ConnectionRefusedError" in done.stdout


def test_report_refresh_is_a_meta_refresh_under_the_pages_policy(tmp_path):
    from otel_monitoring.views.html_report import CSP

    (tmp_path / "snap").mkdir()
    out = tmp_path / "report.html"
    done = _cli("report", "--dir", str(tmp_path / "snap"), "--html", str(out), "--refresh", "300", "--window", "7d",
                env=clean_env())
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    head = page[:page.index("</head>")]
    assert '<meta http-equiv="refresh" content="300">' in head
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in head
    assert "<script" not in page  # the policy forbids scripts; the refresh needs none
    assert "Alert history (7 days)" in page and "trends over the 7 days before" in page
    bad = _cli("report", "--dir", str(tmp_path / "snap"), "--html", str(out), "--refresh", "0", env=clean_env())
    assert bad.returncode == 2 and "--refresh" in bad.stderr


def test_report_refreshes_itself_in_headless_chromium(tmp_path):
    """The page asks for itself again under its own policy (no script, no other request)."""
    import http.server
    import threading

    from test_views_top import require_tool

    browser = require_tool("chromium")
    (tmp_path / "snap").mkdir()
    done = _cli("report", "--dir", str(tmp_path / "snap"), "--html", str(tmp_path / "report.html"), "--refresh", "1",
                env=clean_env())
    assert done.returncode == 0, done.stderr
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: Handler(*a, directory=str(tmp_path), **k))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # A headless browser left on the page, as a wall screen would be, until it has asked twice.
    process = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                f"--user-data-dir={tmp_path / 'profile'}",
                                f"http://127.0.0.1:{server.server_address[1]}/report.html"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(requests) >= 3, 90, what="the page reloading itself")
    finally:
        process.kill()
        process.wait()
        server.shutdown()
        server.server_close()
    assert set(requests) == {"/report.html"}, requests  # nothing but the page itself
