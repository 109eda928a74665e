"""One stale symbol, one critical alert, on the stack's path: Prometheus' own rule engine
(`promtool test rules`) evaluates the exported rules on known series, and a real Alertmanager with
the generated configuration inhibits the age warning under the STALE critical of the same symbol."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from datetime import datetime, timedelta, timezone

import yaml

from otel_monitoring.config import load_settings
from otel_monitoring.local.prometheus import render_prometheus_rules
from otel_monitoring.local.rules import load_rules
from otel_monitoring.stack.alertmanager import alertmanager_spec, write_alertmanager_config
from otel_monitoring.stack.process import ManagedProcess
from stackprocs import http_get_json, require_binary, wait_until
from support import free_port

BTC = {"trading_symbol": "BTC/USDT", "trading_exchange": "binance"}
ETH = {"trading_symbol": "ETH/USDT", "trading_exchange": "binance"}


def _series(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _alert(rule: str, severity: str, labels: dict[str, str]) -> dict[str, str]:
    return {"alertname": rule, "rule_id": rule, "severity": severity, "condition": "market_data_stale", **labels}


def test_exported_rules_fire_as_expected_and_alertmanager_inhibits_the_warning(tmp_path):
    rules_file = tmp_path / "otel-monitoring.yml"
    rules_file.write_text(render_prometheus_rules(load_rules()))
    # BTC: its stream froze (STALE from the first minute, its age growing a minute a minute); ETH:
    # polled data as old, but LIVE by its own limits. Seven minutes on, the age rule's `for: 1m` is over.
    status = "trading_market_data_status_ratio"
    unit_test = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": _series("trading_market_data_staleness_seconds", BTC), "values": "0+60x10"},
                {"series": _series(status, {**BTC, "trading_market_data_state": "STALE"}), "values": "0 1x10"},
                {"series": _series(status, {**BTC, "trading_market_data_state": "LIVE"}), "values": "1 0x10"},
                {"series": _series("trading_market_data_staleness_seconds", ETH), "values": "0+60x10"},
                {"series": _series(status, {**ETH, "trading_market_data_state": "STALE"}), "values": "0x10"},
                {"series": _series(status, {**ETH, "trading_market_data_state": "LIVE"}), "values": "1x10"},
            ],
            "alert_rule_test": [
                {"eval_time": "7m", "alertname": "market_data_stale", "exp_alerts": [
                    {"exp_labels": _alert("market_data_stale", "critical", BTC),
                     "exp_annotations": {"summary": "BTC/USDT on binance: market data STALE (no update within its "
                                                    "threshold)"}}]},
                {"eval_time": "7m", "alertname": "stale_market_data", "exp_alerts": [
                    {"exp_labels": _alert("stale_market_data", "warning", labels),
                     "exp_annotations": {"summary": f"{labels['trading_symbol']} on binance: last market data "
                                                    "420s old (over 5 minutes)"}} for labels in (BTC, ETH)]},
                # A minute before: the age rule is still pending, the STALE critical already fires.
                {"eval_time": "6m", "alertname": "stale_market_data", "exp_alerts": []},
            ],
        }],
    }
    test_file = tmp_path / "stale_test.yml"
    test_file.write_text(yaml.safe_dump(unit_test))
    result = subprocess.run([require_binary("promtool"), "test", "rules", str(test_file)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

    # The three alerts Prometheus fires, sent to an Alertmanager configured as `stack up` does.
    config = tmp_path / "alertmanager.yml"
    write_alertmanager_config(str(config), load_settings(environ={}), load_rules())
    listen = f"127.0.0.1:{free_port()}"
    (tmp_path / "am").mkdir()
    process = ManagedProcess(alertmanager_spec(require_binary("alertmanager"), listen, str(config), str(tmp_path / "am")),
                             str(tmp_path / "alertmanager.log")).start(timeout=60)
    try:
        now = datetime.now(timezone.utc)
        sent = [_alert("market_data_stale", "critical", BTC), _alert("stale_market_data", "warning", BTC),
                _alert("stale_market_data", "warning", ETH)]
        body = json.dumps([{"labels": labels, "startsAt": now.isoformat(),
                            "endsAt": (now + timedelta(hours=1)).isoformat()} for labels in sent]).encode()
        request = urllib.request.Request(f"http://{listen}/api/v2/alerts", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (127.0.0.1)
            assert response.status == 200

        def states():
            found = {(a["labels"]["alertname"], a["labels"]["trading_symbol"]): a["status"]
                     for a in http_get_json(f"http://{listen}/api/v2/alerts")}
            return found if len(found) == 3 and found[("stale_market_data", "BTC/USDT")]["inhibitedBy"] else None

        found = wait_until(states, 60, what="the BTC warning inhibited")
        # One notification for BTC (the critical), one for ETH (its warning): nothing inhibits those.
        assert {key: status["state"] for key, status in found.items()} == {
            ("market_data_stale", "BTC/USDT"): "active", ("stale_market_data", "BTC/USDT"): "suppressed",
            ("stale_market_data", "ETH/USDT"): "active"}
    finally:
        process.stop()
