"""The rules file: validation messages that name the rule and the field, the packaged default rules,
the Prometheus export (names as the collector exposes them, promtool-valid, checked in), and the
`otel-monitoring alerts` command on a snapshot directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from otel_monitoring.cli import main
from otel_monitoring.local.control import read_control
from otel_monitoring.local.prometheus import prometheus_name, promql, render_prometheus_rules
from otel_monitoring.local.rules import MetricInfo, RuleError, load_rules, parse_rules

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKED_IN = os.path.join(REPO, "collector-config", "prometheus", "rules", "otel-monitoring.yml")
METRICS = {"cpu": {"type": "gauge", "unit": "1"}, "calls": {"type": "counter", "unit": "{call}"},
           "latency": {"type": "histogram", "unit": "s"}}
GOOD = {"id": "r1", "name": "R", "expr": {"metric": "cpu"}, "op": ">", "threshold": 0.9, "severity": "warning"}


@pytest.mark.parametrize("change, field, message", [
    ({"severity": "severe"}, "severity", "'severe' is not one of info, warning, critical, emergency"),
    ({"op": "=>"}, "op", "'=>' is not one of"),
    ({"threshold": "high"}, "threshold", "'high' is not a number"),
    ({"for": "5 minutes"}, "for", "is not a duration like 30s, 5m, 1h or 7d"),
    ({"expr": {"metric": "memory"}}, "expr.metric", "'memory' is not declared in the 'metrics' section"),
    ({"expr": {"metric": "cpu", "kind": "rate"}}, "expr.kind", "'rate' needs a counter metric; cpu is a gauge"),
    ({"expr": {"metric": "latency", "kind": "quantile", "quantile": 95}}, "expr.quantile", "not between 0 and 1"),
    ({"expr": {"metric": "calls", "kind": "ratio"}}, "expr.denominator", "a ratio needs denominator"),
    ({"expr": {"metric": "cpu", "match": {"state": "=~("}}}, "expr.match.state", "bad regular expression"),
    ({"expr": {"metric": "cpu", "windw": "5m"}}, "expr.windw", "unknown field"),
    ({"severity": "emergency", "escalate": {"after": "5m"}}, "escalate", "already emergency"),
    ({"escalate": {"after": "5m", "to": "info"}}, "escalate.to", "'info' is not one of critical, emergency"),
    ({"treshold": 1}, "treshold", "unknown field"),
])
def test_a_bad_rule_is_named_with_its_field(change, field, message):
    with pytest.raises(RuleError) as caught:
        parse_rules({"metrics": METRICS, "rules": [{**GOOD, **change}]}, "rules.yaml")
    text = str(caught.value)
    assert text.startswith(f"rules.yaml: rule 'r1', field '{field}': "), text
    assert message in text


def test_lenient_loading_keeps_the_good_rules_and_reports_the_bad(tmp_path):
    document = {"metrics": METRICS, "rules": [GOOD, {**GOOD, "id": "r2", "severity": "bad"}, {**GOOD}, {"name": "x"}]}
    ruleset = parse_rules(document, "f.yaml", strict=False)
    assert [r.id for r in ruleset.rules] == ["r1"]
    assert len(ruleset.errors) == 3
    assert "rule 'r1', field 'id': duplicate id" in ruleset.errors[1]
    assert "rule '#4', field 'id'" in ruleset.errors[2]
    (tmp_path / "broken.yaml").write_text("rules: [\n")
    with pytest.raises(RuleError, match=r"broken.yaml, line 2: not valid YAML"):
        load_rules(str(tmp_path / "broken.yaml"))
    with pytest.raises(RuleError, match="alert rules file .*missing.yaml: cannot be read"):
        load_rules(str(tmp_path / "missing.yaml"))


def test_default_rules_cover_the_reference_thresholds():
    ruleset = load_rules()
    assert ruleset.errors == []
    rules = {r.id: r for r in ruleset.rules}
    expected = {"high_cpu": (">", 0.7, 300), "high_error_rate": (">", 0.05, 180), "low_retrieval_hit_rate": ("<", 0.8, 600),
                "low_signal_accuracy": ("<", 0.7, 300), "low_uptime": ("<", 0.995, 0),
                "daily_cost_over_budget": (">=", 1.0, 0), "stale_market_data": (">", 300, 60)}
    for rule_id, (op, threshold, for_s) in expected.items():
        assert (rules[rule_id].op, rules[rule_id].threshold, rules[rule_id].for_s) == (op, threshold, for_s), rule_id
    assert {"high_memory", "disk_almost_full", "slow_p95_latency"} <= set(rules)
    assert all(r.severity in ("info", "warning", "critical", "emergency") for r in ruleset.rules)
    # Two levels per signal at the references' thresholds: {condition: {severity: threshold}}.
    levels: dict[str, dict[str, float]] = {}
    for rule in ruleset.rules:
        if "condition" in rule.labels:
            levels.setdefault(rule.labels["condition"], {})[rule.severity] = rule.threshold
    assert levels["cpu"] == {"warning": 0.70, "critical": 0.90}
    assert levels["memory"] == {"warning": 0.80, "critical": 0.95}
    assert levels["latency_p95"] == {"warning": 0.1, "critical": 0.5}
    assert levels["error_rate"] == {"warning": 0.01, "critical": 0.05}
    assert levels["uptime"] == {"warning": 0.999, "critical": 0.995}
    assert levels["signal_accuracy"] == {"warning": 0.75, "critical": 0.70}
    assert levels["market_data_stale"] == {"warning": 300, "critical": 1}  # age over 300 s; state STALE
    assert all(set(pair) == {"warning", "critical"} for pair in levels.values()), levels


@pytest.mark.parametrize("name, kind, unit, exposed", [
    ("system.filesystem.utilization", "gauge", "1", "system_filesystem_utilization_ratio"),
    ("otel_monitoring.cost", "counter", "USD", "otel_monitoring_cost_USD_total"),
    ("otel_monitoring.operation.duration", "histogram", "s", "otel_monitoring_operation_duration_seconds"),
    ("otel_monitoring.operation.calls", "counter", "{call}", "otel_monitoring_operation_calls_total"),
    ("system.memory.usage", "updowncounter", "By", "system_memory_usage_bytes"),
    ("http.server.request.size", "histogram", "By", "http_server_request_size_bytes"),
    ("app.throughput", "gauge", "By/s", "app_throughput_bytes_per_second"),
    ("trading.order.fill_ratio", "histogram", "1", "trading_order_fill_ratio"),
])
def test_prometheus_names_follow_the_collector_translation(name, kind, unit, exposed):
    assert prometheus_name(MetricInfo(name, kind, unit)) == exposed


def test_promql_of_each_kind():
    document = {"metrics": {**METRICS, "errors": {"type": "counter", "unit": "{error}"},
                            "cpu2": {"type": "gauge", "unit": "1", "prometheus": "node_cpu_busy"}},
                "rules": [
                    {**GOOD, "id": "v", "expr": {"metric": "cpu2", "match": {"host.name": "a\"b", "mode": "!=idle"}}},
                    {**GOOD, "id": "r", "expr": {"metric": "calls", "kind": "rate", "window": "2m"}},
                    {**GOOD, "id": "i", "expr": {"metric": "calls", "kind": "increase", "window": "1d"}},
                    {**GOOD, "id": "q", "expr": {"metric": "latency", "kind": "quantile", "quantile": 0.99,
                                                 "group_by": ["component"], "match": {"domain": "=~trad.*"}}},
                    {**GOOD, "id": "ra", "expr": {"metric": "errors", "kind": "ratio", "group_by": "component",
                                                  "denominator": {"metric": "calls"}}},
                    {**GOOD, "id": "a", "op": "<", "threshold": 0.995,
                     "expr": {"metric": "cpu", "kind": "average", "window": "1h", "aggregate": "min"}},
                ]}
    ruleset = parse_rules(document)
    exprs = {r.id: promql(r, ruleset.metrics) for r in ruleset.rules}
    assert exprs == {
        # every rule per service (the exporter's job label), as well as by its own group_by
        "v": 'max by (job) (node_cpu_busy{host_name="a\\"b", mode!="idle"}) > 0.9',
        # counters: rate() of the series that existed when the window began, the whole value of
        # those born inside it (what they counted before their first scrape)
        "r": ("sum by (job) (rate(calls_total[2m]) unless (calls_total unless calls_total offset 2m)"
              " or (calls_total unless calls_total offset 2m) / 120) > 0.9"),
        "i": ("sum by (job) (increase(calls_total[1d]) unless (calls_total unless calls_total offset 1d)"
              " or (calls_total unless calls_total offset 1d)) > 0.9"),
        "q": ('histogram_quantile(0.99, sum by (job, component, le) (rate(latency_seconds_bucket{domain=~"trad.*"}[5m])'
              ' unless (latency_seconds_bucket{domain=~"trad.*"} unless latency_seconds_bucket{domain=~"trad.*"} offset 5m)'
              ' or (latency_seconds_bucket{domain=~"trad.*"} unless latency_seconds_bucket{domain=~"trad.*"} offset 5m)'
              " / 300)) > 0.9"),
        "ra": ("(sum by (job, component) (rate(errors_total[5m]) unless (errors_total unless errors_total offset 5m)"
               " or (errors_total unless errors_total offset 5m) / 300)"
               " / sum by (job, component) (rate(calls_total[5m]) unless (calls_total unless calls_total offset 5m)"
               " or (calls_total unless calls_total offset 5m) / 300)) > 0.9"),
        # an average needs its window of history: the series existed in the window's first 1/24th
        "a": ("(min by (job) (avg_over_time(cpu_ratio[1h])) < 0.995)"
              " and min by (job) (present_over_time(cpu_ratio[150s] offset 3450s))"),
    }


def test_checked_in_prometheus_rules_equal_a_fresh_export(tmp_path):
    out = tmp_path / "rules.yml"
    assert main(["alerts", "export", "--prometheus", str(out)]) == 0
    with open(CHECKED_IN, encoding="utf-8") as handle:
        assert out.read_text() == handle.read(), "run: otel-monitoring alerts export --prometheus " + CHECKED_IN
    exported = yaml.safe_load(out.read_text())["groups"][0]["rules"]
    cpu = next(r for r in exported if r["alert"] == "high_cpu")
    assert cpu["for"] == "5m" and cpu["labels"] == {"severity": "warning", "rule_id": "high_cpu", "condition": "cpu"}
    assert cpu["expr"] == ('max by (job) (otel_monitoring_host_resource_utilization_ratio{otel_monitoring_host_resource="cpu"}) '
                           "> 0.7")


def test_promtool_accepts_the_export(tmp_path):
    from stackprocs import require_binary  # $OTEL_MONITORING_PROMTOOL, then PATH; skips if absent (fails under CI)

    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "rules", CHECKED_IN], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules().rules)} rules found" in result.stdout
    # and a rules file with every kind of expression
    document = {"metrics": METRICS, "rules": [
        {**GOOD, "id": "q", "expr": {"metric": "latency", "kind": "quantile", "quantile": 0.9}},
        {**GOOD, "id": "ra", "expr": {"metric": "calls", "kind": "ratio", "denominator": {"metric": "calls"},
                                      "match": {"outcome": "error"}}},
        {**GOOD, "id": "a", "expr": {"metric": "cpu", "kind": "average", "window": "90s"}},
    ]}
    path = tmp_path / "kinds.yml"
    path.write_text(render_prometheus_rules(parse_rules(document)))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the CLI on a snapshot directory ---

def write_alerts(directory, *alerts):
    (directory / "alerts.json").write_text(json.dumps({"schema": 1, "timestamp": "2026-11-22T05:00:00.000Z",
                                                       "alerts": list(alerts)}))


ALERT = {"id": "high_cpu", "rule_id": "high_cpu", "name": "High CPU usage", "severity": "warning", "state": "firing",
         "value": 0.93, "threshold": 0.8, "since": "2026-11-22T04:55:00.000Z", "acknowledged": False,
         "silenced_until": None, "labels": {}, "annotations": {}}


def test_cli_list_ack_silence(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OTEL_MONITORING_SNAPSHOT_DIR", str(tmp_path))
    # A directory no process has written to is not "all clear": it says so and exits 1, as top does.
    assert main(["alerts", "list"]) == 1
    out, err = capsys.readouterr()
    assert "No pending or firing alerts." not in out
    assert f"no metrics_live.json yet in {tmp_path}: no process has written there yet" in err
    assert main(["top", "--once", "--dir", str(tmp_path)]) == 1
    assert "no metrics_live.json yet in " in capsys.readouterr().out
    # Snapshots and an evaluation without alerts: nothing pending or firing.
    (tmp_path / "metrics_live.json").write_text(json.dumps({"schema": 1, "timestamp_unix": time.time(),
                                                            "counters": {}, "gauges": {}, "histograms": {}}))
    write_alerts(tmp_path)
    assert main(["alerts", "list"]) == 0
    assert "No pending or firing alerts." in capsys.readouterr().out
    write_alerts(tmp_path, ALERT)
    assert main(["alerts", "list"]) == 0
    out = capsys.readouterr().out
    assert "firing" in out and "high_cpu" in out and "0.93" in out

    assert main(["alerts", "ack", "nope"]) == 1
    assert "no active alert 'nope'; active: high_cpu" in capsys.readouterr().err
    assert main(["alerts", "ack", "high_cpu"]) == 0
    assert "high_cpu" in read_control(str(tmp_path))["acknowledged"]

    assert main(["alerts", "silence", "high_cpu", "--for", "soon"]) == 2
    assert main(["alerts", "silence", "low_signal_accuracy", "--for", "1h"]) == 0  # a rule id, not active yet
    assert main(["alerts", "silence", "high_cpu", "--for", "1h"]) == 0
    silenced = read_control(str(tmp_path))["silenced"]
    assert set(silenced) == {"high_cpu", "low_signal_accuracy"}
    capsys.readouterr()
    assert main(["alerts", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["acknowledged"] is True and listed[0]["silenced_until"] is not None  # pending requests show
    assert main(["alerts", "silence", "high_cpu", "--for", "0"]) == 0
    assert set(read_control(str(tmp_path))["silenced"]) == {"low_signal_accuracy"}
    assert main(["alerts", "silence", "typo", "--for", "1h"]) == 1
    (tmp_path / "metrics_live.json").write_text(json.dumps({"timestamp_unix": 1.0, "interval_s": 5.0}))
    capsys.readouterr()
    assert main(["alerts", "list"]) == 0
    assert "is the application running?" in capsys.readouterr().err


def test_cli_without_directory_and_check(tmp_path, capsys, monkeypatch):
    # Run where no snapshots are: a checkout where the demo ran holds them in ./otel-data.
    monkeypatch.chdir(tmp_path)
    assert main(["alerts", "list"]) == 2
    assert "pass --dir or set OTEL_MONITORING_SNAPSHOT_DIR" in capsys.readouterr().err
    assert main(["alerts", "check"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"metrics": METRICS, "rules": [GOOD, {**GOOD, "id": "x", "op": "~"}]}))
    assert main(["alerts", "check", "--rules", str(bad)]) == 1
    assert "rule 'x', field 'op'" in capsys.readouterr().err
    assert main(["alerts", "export", "--prometheus", "-", "--rules", str(bad)]) == 1


def test_cli_runs_as_a_program(tmp_path):
    result = subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "alerts", "export", "--prometheus", "-"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["groups"][0]["name"] == "otel-monitoring"


def test_cli_list_history(tmp_path, capsys):
    import time

    from otel_monitoring.local.history import HistoryStore

    store = HistoryStore(str(tmp_path))
    store.record_alert_event(time.time() - 7200, "old", "old", "Old", "info", "firing", 1.0)
    store.record_alert_event(time.time() - 60, "high_cpu", "high_cpu", "High CPU", "warning", "firing", 0.93)
    store.close()
    assert main(["alerts", "list", "--dir", str(tmp_path), "--history", "1h"]) == 0
    out = capsys.readouterr().out
    assert "firing       warning   high_cpu value 93.0%" in out and "old" not in out.split("Alert events")[1]
