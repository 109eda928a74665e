"""Alerts of the server stack reach people: Prometheus evaluates the rules generated from the same
rules file as the local engine and Alertmanager, configured from the same OTEL_MONITORING_ALERT_*
settings, notifies the channels. The end-to-end test runs `otel-monitoring stack up` and an
instrumented application as separate processes, and a local webhook receives the notification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from otel_monitoring.config import load_settings, parse_duration
from otel_monitoring.local.rules import load_rules, parse_rules
from otel_monitoring.stack.alertmanager import GROUP_WAIT, alertmanager_config, write_alertmanager_config
from otel_monitoring.stack.components import CONFIG_DIR, StackPorts
from stackprocs import http_get_json, require_binary, wait_until
from support import REPO, clean_env, free_port

PACKAGED_RULES = os.path.join(REPO, "otel_monitoring", "data", "alert_rules.yaml")
CHANNELS_ENV = {
    "OTEL_MONITORING_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
    "OTEL_MONITORING_ALERT_WEBHOOK_HEADERS": "authorization=Bearer%20s3cret",
    "OTEL_MONITORING_ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/X",
    "OTEL_MONITORING_ALERT_DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/abc",
    "OTEL_MONITORING_ALERT_EMAIL_TO": "ops@example.com,oncall@example.com",
    "OTEL_MONITORING_ALERT_SMTP_HOST": "smtp.example.com",
    "OTEL_MONITORING_ALERT_SMTP_USERNAME": "alerts",
    "OTEL_MONITORING_ALERT_SMTP_PASSWORD": "pw",
    "OTEL_MONITORING_ALERT_ROUTES": "slack=critical",
}


def test_alertmanager_config_follows_the_alert_settings(tmp_path):
    settings = load_settings(environ=CHANNELS_ENV)
    ruleset = load_rules()
    config = alertmanager_config(settings, ruleset)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"none", "webhook", "slack", "discord", "email"}
    assert receivers["webhook"]["webhook_configs"][0]["url"] == "http://127.0.0.1:9/hook"
    assert receivers["webhook"]["webhook_configs"][0]["http_config"]["authorization"] == {
        "type": "Bearer", "credentials": "s3cret"}
    assert receivers["email"]["email_configs"][0]["to"] == "ops@example.com, oncall@example.com"
    assert config["global"]["smtp_smarthost"] == "smtp.example.com:587" and config["global"]["smtp_require_tls"]
    # Severity routes: each channel from its lowest severity up (slack overridden to critical).
    routes = {r["receiver"]: r for r in config["route"]["routes"]}
    assert routes["webhook"]["matchers"] == ['severity=~"info|warning|critical|emergency"']
    assert routes["slack"]["matchers"] == ['severity=~"critical|emergency"']
    assert routes["discord"]["matchers"] == ['severity=~"warning|critical|emergency"']
    assert routes["email"]["matchers"] == ['severity=~"critical|emergency"']
    assert all(r["continue"] for r in routes.values())
    # A rule's cooldown is the repeat interval of its alerts.
    repeat = {}
    for sub in routes["webhook"]["routes"]:
        for rule_id in sub["matchers"][0].split('"')[1].split("|"):
            repeat[rule_id] = parse_duration(sub["repeat_interval"])
    assert repeat == {rule.id: rule.cooldown_s for rule in ruleset.rules if rule.cooldown_s}
    # Critical silences the warning of the same condition and group.
    inhibit = config["inhibit_rules"][0]
    assert inhibit["target_matchers"] == ['severity=~"info|warning"']
    assert {"condition", "component", "trading_strategy"} <= set(inhibit["equal"])
    path = write_alertmanager_config(str(tmp_path / "alertmanager.yml"), settings, ruleset)
    assert os.stat(path).st_mode & 0o077 == 0  # it holds URLs and a password
    result = subprocess.run([require_binary("amtool"), "check-config", path], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shipped_alertmanager_config_equals_a_fresh_export(tmp_path):
    out = tmp_path / "alertmanager.yml"
    result = subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "alerts", "export", "--alertmanager", str(out)],
                            env=clean_env(), capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    shipped = os.path.join(CONFIG_DIR, "alertmanager", "alertmanager.yml")
    with open(shipped, encoding="utf-8") as handle:
        assert out.read_text() == handle.read(), "run: otel-monitoring alerts export --alertmanager " + shipped
    check = subprocess.run([require_binary("amtool"), "check-config", shipped], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


class Webhook:
    """A local webhook receiver: every POST with its arrival time."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((time.time(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, status: str) -> list[tuple[float, dict]]:
        return [(at, alert) for at, body in self.received for alert in body["alerts"] if alert["status"] == status]


APP = """
import sys, time
import otel_monitoring as om
om.configure(service_name="alerting-app")
print("ready", flush=True)
for line in sys.stdin:
    correct, total = map(int, line.split())
    for i in range(total):
        om.record_signal_outcome("momentum", "BTC/USDT", correct=i < correct)
    print(time.time(), flush=True)
"""


def _stack(state_dir, action: str, env: dict[str, str], ports: dict[str, int] | None = None):
    port_args = [arg for name, port in (ports or {}).items() for arg in (f"--{name.replace('_', '-')}-port", str(port))]
    return subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "stack", action, "--state-dir", str(state_dir),
                           *port_args], env=env, capture_output=True, text=True, timeout=180, cwd=REPO)


def test_a_rule_firing_in_prometheus_notifies_a_webhook_through_alertmanager(tmp_path):
    binaries = {
        "OTEL_MONITORING_OTELCOL": require_binary("otelcol"), "OTEL_MONITORING_JAEGER": require_binary("jaeger"),
        "OTEL_MONITORING_PROMETHEUS": require_binary("prometheus"),
        "OTEL_MONITORING_ALERTMANAGER": require_binary("alertmanager"),
        "OTEL_MONITORING_VICTORIALOGS": require_binary("victorialogs"),
    }
    # The packaged signal-accuracy pair (warning < 0.75, critical < 0.70), without their 5-minute `for`.
    with open(PACKAGED_RULES, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    document["rules"] = [{k: v for k, v in rule.items() if k != "for"} for rule in document["rules"]
                         if rule.get("labels", {}).get("condition") == "signal_accuracy"]
    assert [r.severity for r in parse_rules(document).rules] == ["warning", "critical"]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(document))
    webhook = Webhook()
    ports = {name: free_port() for name in StackPorts.port_names()}
    env = clean_env(**binaries, OTEL_MONITORING_ALERT_RULES=str(rules_file), OTEL_MONITORING_ALERT_WEBHOOK_URL=webhook.url)
    state = tmp_path / "state"
    up = _stack(state, "up", env, ports)
    app = None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # The app with the defaults a user gets (metric export every 10 s), sending to the stack.
        app = subprocess.Popen([sys.executable, "-c", APP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{ports['otlp_grpc']}"), cwd=REPO)
        assert app.stdout.readline().strip() == "ready"
        app.stdin.write("6 10\n")  # accuracy 6/10 = 0.6: under both thresholds
        app.stdin.flush()
        event_at = float(app.stdout.readline())

        firing = wait_until(lambda: webhook.alerts("firing"), 120, interval=0.2, what="the firing notification")
        arrived_at, alert = firing[0]
        latency = arrived_at - event_at
        print(f"\nevent -> webhook notification: {latency:.1f} s")
        assert alert["labels"]["alertname"] == "low_signal_accuracy"
        assert alert["labels"]["severity"] == "critical" and alert["labels"]["trading_strategy"] == "momentum"
        assert alert["annotations"]["summary"] == "momentum: signal accuracy 0.6 (under 0.70)"
        assert alert["generatorURL"].startswith(f"http://127.0.0.1:{ports['prometheus']}/")
        # The warning fires too, in Prometheus and in Alertmanager, which inhibits it: nobody gets it.
        am = f"http://127.0.0.1:{ports['alertmanager']}"

        def inhibited_warning():
            for entry in http_get_json(f"{am}/api/v2/alerts"):
                if entry["labels"]["alertname"] == "declining_signal_accuracy":
                    return entry["status"]["inhibitedBy"]
            return None

        assert wait_until(inhibited_warning, 60, what="the warning in Alertmanager, inhibited")
        assert [a["labels"]["alertname"] for _, a in webhook.alerts("firing")] == ["low_signal_accuracy"]
        assert all(a["labels"]["alertname"] != "declining_signal_accuracy" for _, a in webhook.alerts("firing"))

        # Recovery: 36/40 = 0.9; the resolved notification follows.
        app.stdin.write("30 30\n")
        app.stdin.flush()
        app.stdout.readline()
        resolved = wait_until(lambda: webhook.alerts("resolved"), 120, interval=0.2, what="the resolved notification")
        assert resolved[0][1]["labels"]["alertname"] == "low_signal_accuracy"
        # The notification budget with the stack's defaults, from the files `stack up` wrote:
        # SDK export + scrape + evaluation + Alertmanager's group wait stays within 30 s.
        prometheus_config = yaml.safe_load((state / "prometheus.yml").read_text())["global"]
        budget = (load_settings(environ={}).metric_export_interval + parse_duration(prometheus_config["scrape_interval"])
                  + parse_duration(prometheus_config["evaluation_interval"]) + parse_duration(GROUP_WAIT)
                  + 1.0)  # the collector's batch timeout
        assert budget <= 30, budget
    finally:
        if app is not None:
            app.kill()
            app.wait()
        _stack(state, "down", env)


def test_stack_up_names_a_bad_rules_file(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("metrics: {}\nrules:\n  - id: r\n    expr: {metric: nope}\n    op: '>'\n    threshold: 1\n"
                   "    severity: warning\n")
    env = clean_env(OTEL_MONITORING_ALERT_RULES=str(bad), OTEL_MONITORING_OTELCOL=require_binary("otelcol"),
                    OTEL_MONITORING_JAEGER=require_binary("jaeger"), OTEL_MONITORING_PROMETHEUS=require_binary("prometheus"),
                    OTEL_MONITORING_ALERTMANAGER=require_binary("alertmanager"),
                    OTEL_MONITORING_VICTORIALOGS=require_binary("victorialogs"))
    result = _stack(tmp_path / "state", "up", env, {name: free_port() for name in StackPorts.port_names()})
    assert result.returncode == 1
    assert f"{bad}, line 4: rule 'r', field 'expr.metric'" in result.stdout
    assert not os.path.exists(tmp_path / "state" / "jaeger.pid")
