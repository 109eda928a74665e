"""The exported SDK rules, as Prometheus evaluates them for two services with the same component
name: each service alerts on its own error ratio and p95 (the collector's exporter puts the service
in ``job``), a burst counted before Prometheus' first scrape is in the ratio, and `top --prometheus
--service` shows that service's alerts only, their values written as the rest of the screen."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

import pytest
import yaml

from otel_monitoring.local.prometheus import render_prometheus_rules
from otel_monitoring.local.rules import load_rules
from otel_monitoring.views.formatting import alert_value
from otel_monitoring.views.overview import alert_lines
from otel_monitoring.views.prometheus import PrometheusSource
from stackprocs import AGENT_CONFIG, require_binary, start_collector, start_prometheus, wait_until
from support import REPO, clean_env

RED_CONDITIONS = ("error_rate", "latency_p95")
RED_RULES = ("elevated_error_rate", "high_error_rate", "slow_p95_latency", "critical_p95_latency")


def _red_rules(without_for: bool) -> str:
    """The packaged error-ratio and p95 rules, exported as `otel-monitoring alerts export` does."""
    ruleset = load_rules()
    ruleset.rules = [replace(r, for_s=0.0) if without_for else r for r in ruleset.rules
                     if r.labels.get("condition") in RED_CONDITIONS]
    assert sorted(r.id for r in ruleset.rules) == sorted(RED_RULES)
    return render_prometheus_rules(ruleset)


def _expr(exported: str, alert: str) -> str:
    return next(r["expr"] for r in yaml.safe_load(exported)["groups"][0]["rules"] if r["alert"] == alert)


def test_ratio_per_service_counts_series_born_inside_the_window(tmp_path):
    """Prometheus' own engine (`promtool test rules`), one-minute samples: svc-a has called `jobs`
    for 15 minutes, one error type all along and a first error of another type at minute 13 (6 at
    once); svc-b started at minute 12 with 100 calls and 30 errors already counted. At minute 15
    (window 10m-15m), svc-a's ratio is its rate plus the newborn series' whole value, svc-b's the
    newborn counts' ratio; neither reads the other's calls."""
    exported = _red_rules(without_for=False)
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(exported)
    a = {"job": "svc-a", "component": "jobs", "operation": "run"}
    b = {"job": "svc-b", "component": "jobs", "operation": "run"}

    def series(name: str, labels: dict[str, str]) -> str:
        return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"

    calls, errors = "otel_monitoring_operation_calls_total", "otel_monitoring_operation_errors_total"
    inputs = [
        {"series": series(calls, a), "values": "0+60x15"},                              # 1 call/s
        {"series": series(errors, {**a, "error_type": "TimeoutError"}), "values": "0+3x15"},
        {"series": series(errors, {**a, "error_type": "ValueError"}), "values": "_x13 6x2"},
        {"series": series(calls, b), "values": "_x12 100x3"},
        {"series": series(errors, {**b, "error_type": "ValueError"}), "values": "_x12 30x3"},
    ]
    # The values as Prometheus computes them, in its float arithmetic: rate() of the old series over
    # the 300 s window, the whole value / 300 for the newborn ones.
    ratio_a = (15 / 300 + 6 / 300) / (300 / 300)
    ratio_b = (30 / 300) / (100 / 300)
    assert ratio_a == pytest.approx(0.07) and ratio_b == pytest.approx(0.3)
    expected = {
        "elevated_error_rate": [(a, ratio_a), (b, ratio_b)],   # > 1 %
        "high_error_rate": [(a, ratio_a), (b, ratio_b)],       # > 5 %
    }
    tests = [{"expr": _expr(exported, alert), "eval_time": "15m",
              "exp_samples": [{"labels": "{" + f'component="jobs", job="{labels["job"]}"' + "}", "value": value}
                              for labels, value in samples]}
             for alert, samples in expected.items()]
    # What the rules read before: one ratio for both services, svc-a's first errors and all of svc-b missed.
    tests.append({"expr": "sum by (component) (rate(otel_monitoring_operation_errors_total[5m])) / "
                          "sum by (component) (rate(otel_monitoring_operation_calls_total[5m]))",
                  "eval_time": "15m", "exp_samples": [{"labels": '{component="jobs"}', "value": 0.05}]})
    unit_test = {"rule_files": [str(rules_file)], "evaluation_interval": "1m",
                 "tests": [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}]}
    test_file = tmp_path / "ratio_test.yml"
    test_file.write_text(yaml.safe_dump(unit_test))
    result = subprocess.run([require_binary("promtool"), "test", "rules", str(test_file)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


APP = """
import sys, time, otel_monitoring
otel_monitoring.configure(service_name=sys.argv[1])
calls, errors, pause = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

@otel_monitoring.traced("jobs", "run")
def run(i):
    time.sleep(pause)
    if i < errors:
        raise ValueError("failed")

for i in range(calls):
    try:
        run(i)
    except ValueError:
        pass
"""
# (calls, errors, seconds a call sleeps): the same component, ratios 4 % and 30 %.
WORKLOADS = {"svc-a": (200, 8, 0.0), "svc-b": (40, 12, 0.12)}


def _quantile(q: float, buckets: dict[float, float]) -> float:
    """histogram_quantile over cumulative buckets {upper bound: count}, as Prometheus interpolates."""
    bounds = sorted(buckets)
    rank = q * buckets[float("inf")]
    lower, below = 0.0, 0.0
    for upper in bounds:
        if buckets[upper] >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / (buckets[upper] - below)
        lower, below = upper, buckets[upper]
    raise AssertionError(buckets)


def test_two_services_one_component_alert_on_their_own_ratio_and_p95(tmp_path):
    """SDK -> collector -> Prometheus with the exported rules (their `for` off, so one evaluation
    fires them) and the stack's: each process makes all its calls and exports once, at exit, so
    everything it counted predates the first scrape."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "otel-monitoring.yml").write_text(_red_rules(without_for=True))
    (rules_dir / "stack.yml").write_text(open(f"{REPO}/collector-config/prometheus/rules/stack.yml").read())
    with start_collector(AGENT_CONFIG, tmp_path) as collector, \
            start_prometheus(tmp_path, [collector.prometheus_target], rules_dir=str(rules_dir)) as prom:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=collector.otlp_grpc_endpoint, OTEL_EXPORTER_OTLP_INSECURE="true",
                        OTEL_METRIC_EXPORT_INTERVAL="600000")   # no periodic export: only the one at exit
        for service, (calls, errors, pause) in WORKLOADS.items():
            app = subprocess.run([sys.executable, "-c", APP, service, str(calls), str(errors), str(pause)], env=env,
                                 capture_output=True, text=True, timeout=180, cwd=str(tmp_path))
            assert app.returncode == 0, app.stderr

        def counted() -> float | None:
            totals = {s["metric"]["job"]: float(s["value"][1])
                      for s in prom.query("sum by (job) (otel_monitoring_operation_calls_total)")}
            spans = {s["metric"]["service_name"]: float(s["value"][1])
                     for s in prom.query("sum by (service_name) (traces_span_metrics_calls_total)")}
            want = {service: float(calls) for service, (calls, _, _) in WORKLOADS.items()}
            return time.time() if totals == want and spans == want else None

        complete_at = wait_until(counted, 120, what="both services' calls in Prometheus")

        def evaluated() -> bool:
            groups = prom.api("rules")["groups"]
            return all(g["lastEvaluation"][:1] != "0" and _seconds(g["lastEvaluation"]) > complete_at for g in groups)

        wait_until(evaluated, 120, what="a rule evaluation after the calls arrived")
        alerts = prom.api("alerts")["alerts"]

        # The truth: each service's own ratio, and the p95 of its own buckets.
        buckets = {}
        for service in WORKLOADS:
            found = prom.query(f'sum by (le) (otel_monitoring_operation_duration_seconds_bucket{{job="{service}"}})')
            buckets[service] = {float(s["metric"]["le"]): float(s["value"][1]) for s in found}
            assert buckets[service][float("inf")] == WORKLOADS[service][0]
        ratio = {service: errors / calls for service, (calls, errors, _) in WORKLOADS.items()}
        p95 = {service: _quantile(0.95, buckets[service]) for service in WORKLOADS}
        assert p95["svc-b"] > 0.1   # every call slept 120 ms
        expected = {}
        for service in WORKLOADS:
            for rule, threshold in (("elevated_error_rate", 0.01), ("high_error_rate", 0.05)):
                if ratio[service] > threshold:
                    expected[(rule, service)] = ratio[service]
            for rule, threshold in (("slow_p95_latency", 0.1), ("critical_p95_latency", 0.5)):
                if p95[service] > threshold:
                    expected[(rule, service)] = p95[service]
        assert ("high_error_rate", "svc-b") in expected and ("high_error_rate", "svc-a") not in expected
        sdk = {(a["labels"]["alertname"], a["labels"]["job"]): a for a in alerts if a["labels"].get("rule_id")}
        assert set(sdk) == set(expected)
        for key, value in expected.items():
            assert sdk[key]["state"] == "firing", key
            assert sdk[key]["labels"]["component"] == "jobs"
            assert float(sdk[key]["value"]) == pytest.approx(value, rel=1e-9), key
        # The stack's span-metrics rules (their `for` kept: pending) on the same spans, per service.
        stack = {(a["labels"]["alertname"], a["labels"]["service_name"]): a for a in alerts
                 if "service_name" in a["labels"]}
        assert {key: a["state"] for key, a in stack.items() if "ErrorRate" in key[0]} == {
            ("ServiceErrorRateHigh", "svc-a"): "pending", ("ServiceErrorRateHigh", "svc-b"): "pending",
            ("ServiceErrorRateCritical", "svc-b"): "pending"}
        for (name, service), alert in stack.items():
            if "ErrorRate" in name:
                assert float(alert["value"]) == pytest.approx(ratio[service], rel=1e-9)

        # top --service: that service's rows only, each value and threshold as the screen writes them.
        for service in WORKLOADS:
            lines = alert_lines(PrometheusSource(prom.url, service=service).read())
            mine = {k: a for k, a in {**sdk, **stack}.items() if k[1] == service}
            assert sorted(line.name for line in lines) == sorted(name for name, _ in mine)
            for line in lines:
                alert = mine[(line.name, service)]
                threshold = float(alert["annotations"].get("threshold") or
                                  {"elevated_error_rate": 0.01, "high_error_rate": 0.05, "slow_p95_latency": 0.1,
                                   "critical_p95_latency": 0.5}[line.name])
                unit = "s" if "atency" in line.name or "p95" in line.name else "1"
                value = float(alert["value"])
                assert line.shown() == (f"{alert_value({'value': value, 'unit': unit})} / "
                                        f"{alert_value({'value': threshold, 'unit': unit})}"), line.name
        top = subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "top", "--once", "--prometheus", prom.url,
                              "--service", "svc-a"], capture_output=True, text=True, timeout=60, env=clean_env(), cwd=REPO)
        assert top.returncode == 0, top.stderr
        assert "4.0% / 1.0%" in top.stdout and "30.0%" not in top.stdout, top.stdout


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.rstrip("Z")[:26] + "+00:00").timestamp()
