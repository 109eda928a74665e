"""The alert engine: rule values (threshold, rate, ratio, quantile, average) and the state machine
(pending, firing, cooldown, escalation, acknowledge, silence, resolve), driven by a controllable clock."""

from __future__ import annotations

import json
import os

import pytest

from otel_monitoring.local.control import read_control, request_acknowledge, request_silence
from otel_monitoring.local.engine import AlertEngine
from otel_monitoring.local.rules import parse_rules
from otel_monitoring.local.snapshot import Point

METRICS = {
    "cpu": {"type": "gauge", "unit": "1"},
    "calls": {"type": "counter", "unit": "{call}"},
    "errors": {"type": "counter", "unit": "{error}"},
    "latency": {"type": "histogram", "unit": "s"},
    "health": {"type": "gauge", "unit": "1"},
}


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def rules(*raw: dict):
    return parse_rules({"metrics": METRICS, "rules": list(raw)}).rules


CPU_RULE = {"id": "high_cpu", "name": "High CPU", "expr": {"metric": "cpu", "match": {"state": "busy"}},
            "op": ">", "threshold": 0.8, "for": "5m", "severity": "warning", "cooldown": "15m",
            "escalate": {"after": "30m"}, "labels": {"team": "ops"},
            "annotations": {"summary": "CPU at {{ $value }} on {{ $labels.host_name }}"}}


def cpu(value: float) -> list[Point]:
    return [Point("cpu", "gauge", "1", {"state": "busy"}, value=value),
            Point("cpu", "gauge", "1", {"state": "idle"}, value=1 - value)]


class Recorder:
    def __init__(self, engine: AlertEngine):
        self.events = []
        engine.listeners.append(self.events.append)

    def kinds(self) -> list[tuple[str, bool]]:
        found = [(e.kind, e.notify) for e in self.events]
        self.events.clear()
        return found


def test_pending_firing_escalation_resolve_and_cooldown():
    clock = Clock()
    engine = AlertEngine(rules(CPU_RULE), clock=clock)
    seen = Recorder(engine)
    engine.evaluate(cpu(0.5))
    assert engine.alerts() == [] and seen.kinds() == []
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("pending", False)]
    alert = engine.alerts()[0]
    assert (alert["id"], alert["state"], alert["value"], alert["threshold"]) == ("high_cpu", "pending", 0.9, 0.8)
    clock.advance(299)
    engine.evaluate(cpu(0.95))
    assert seen.kinds() == [] and engine.alerts()[0]["state"] == "pending"
    clock.advance(1)
    engine.evaluate(cpu(0.95))
    assert seen.kinds() == [("firing", True)]
    alert = engine.alerts()[0]
    assert alert["state"] == "firing" and alert["severity"] == "warning"
    assert alert["labels"] == {"team": "ops"} and alert["annotations"]["summary"] == "CPU at 0.95 on "
    clock.advance(30 * 60 - 1)
    engine.evaluate(cpu(0.95))
    assert seen.kinds() == []
    clock.advance(1)
    engine.evaluate(cpu(0.95))
    assert seen.kinds() == [("escalated", True)]
    assert engine.alerts()[0]["severity"] == "critical"
    clock.advance(60)
    engine.evaluate(cpu(0.95))
    assert seen.kinds() == []  # escalates once
    engine.evaluate(cpu(0.2))
    assert seen.kinds() == [("resolved", True)]
    assert engine.alerts()[0]["state"] == "resolved"
    clock.advance(10)
    engine.evaluate(cpu(0.2))
    assert engine.alerts() == []  # resolved alerts stay listed for one interval only
    # Fires again 40 min after the first notification: past the 15 min cooldown, so notified.
    clock.advance(60)
    engine.evaluate(cpu(0.9))
    clock.advance(300)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("pending", False), ("firing", True)]
    assert engine.alerts()[0]["severity"] == "warning"  # a new episode starts at the rule's severity
    # Flaps within the cooldown: tracked and shown as firing, but not notified again.
    engine.evaluate(cpu(0.1))
    clock.advance(60)
    engine.evaluate(cpu(0.9))
    clock.advance(300)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("resolved", True), ("pending", False), ("firing", False)]
    assert engine.alerts()[0]["state"] == "firing"
    engine.evaluate(cpu(0.1))
    assert seen.kinds() == [("resolved", False)]  # its firing was not sent, so neither is its end


def test_pending_that_clears_before_for_is_resolved_without_notification():
    clock = Clock()
    engine = AlertEngine(rules(CPU_RULE), clock=clock)
    seen = Recorder(engine)
    engine.evaluate(cpu(0.9))
    clock.advance(100)
    engine.evaluate(cpu(0.5))
    assert seen.kinds() == [("pending", False), ("resolved", False)]
    # A missing series counts as "condition false" too.
    engine.evaluate(cpu(0.9))
    clock.advance(100)
    engine.evaluate([])
    assert seen.kinds() == [("pending", False), ("resolved", False)]


def test_acknowledge_stops_escalation():
    clock = Clock()
    engine = AlertEngine(rules(CPU_RULE), clock=clock)
    seen = Recorder(engine)
    assert engine.acknowledge("high_cpu") is False  # nothing active
    engine.evaluate(cpu(0.9))
    clock.advance(300)
    engine.evaluate(cpu(0.9))
    assert engine.acknowledge("high_cpu") is True
    assert seen.kinds() == [("pending", False), ("firing", True), ("acknowledged", False)]
    assert engine.alerts()[0]["acknowledged"] is True
    clock.advance(3600)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == []
    assert engine.alerts()[0]["severity"] == "warning"


def test_silence_suppresses_notifications_until_it_ends():
    clock = Clock()
    engine = AlertEngine(rules({**CPU_RULE, "cooldown": 0}), clock=clock)
    seen = Recorder(engine)
    until = engine.silence("high_cpu", 3600)
    assert until == clock.now + 3600
    engine.evaluate(cpu(0.9))
    clock.advance(300)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("pending", False), ("firing", False)]
    alert = engine.alerts()[0]
    assert alert["state"] == "firing" and alert["silenced_until"] is not None
    engine.evaluate(cpu(0.1))
    assert seen.kinds() == [("resolved", False)]
    clock.advance(3600)  # the silence is over
    engine.evaluate(cpu(0.9))
    clock.advance(300)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("pending", False), ("firing", True)]
    assert engine.alerts()[0]["silenced_until"] is None


def test_cli_requests_through_the_control_file(tmp_path):
    clock = Clock()
    engine = AlertEngine(rules(CPU_RULE), clock=clock, control_dir=str(tmp_path))
    seen = Recorder(engine)
    engine.evaluate(cpu(0.9))
    clock.advance(300)
    engine.evaluate(cpu(0.9))
    seen.kinds()
    # What `otel-monitoring alerts ack / silence` write from another process.
    request_acknowledge(str(tmp_path), "high_cpu", clock.now)
    request_silence(str(tmp_path), "high_cpu", clock.now + 600, clock.now)
    clock.advance(5)
    engine.evaluate(cpu(0.9))
    assert sorted(seen.kinds()) == [("acknowledged", False), ("silenced", False)]
    alert = engine.alerts()[0]
    assert alert["acknowledged"] is True and alert["silenced_until"] is not None
    # The API writes the same file, so the CLI sees what the application did.
    engine.silence("high_cpu", 0)
    assert read_control(str(tmp_path))["silenced"] == {}
    assert engine.alerts()[0]["silenced_until"] is None
    # An acknowledgement from an earlier episode does not carry over to a new one.
    engine.evaluate(cpu(0.1))
    clock.advance(10)
    engine.evaluate(cpu(0.9))
    assert engine.alerts()[0]["acknowledged"] is False


ERROR_RATE = {"id": "error_rate", "name": "Error rate", "severity": "critical", "op": ">", "threshold": 0.05,
              "expr": {"kind": "ratio", "metric": "errors", "denominator": {"metric": "calls"},
                       "group_by": ["component"], "window": "5m"}}


def red(calls: dict[str, float], errors: dict[str, float]) -> list[Point]:
    return ([Point("calls", "counter", "", {"component": c, "operation": "x"}, value=v) for c, v in calls.items()]
            + [Point("errors", "counter", "", {"component": c, "error.type": "E"}, value=v) for c, v in errors.items()])


def test_ratio_over_the_window_per_group():
    clock = Clock()
    engine = AlertEngine(rules({**ERROR_RATE, "threshold": 0.01}), clock=clock)
    engine.evaluate(red({"api": 0, "db": 0}, {}))
    clock.advance(60)
    engine.evaluate(red({"api": 100, "db": 100}, {"api": 10}))  # 10% errors on api, none on db
    alerts = {a["id"]: a for a in engine.alerts()}
    assert set(alerts) == {"error_rate:api"}
    assert alerts["error_rate:api"]["value"] == pytest.approx(0.10)
    assert alerts["error_rate:api"]["labels"] == {"component": "api"}
    assert alerts["error_rate:api"]["state"] == "firing"  # no `for`: fires at once
    seen = Recorder(engine)
    # Clean traffic: the window (5 min) forgets the old errors after 5 minutes, not before.
    for minute in range(1, 11):
        clock.advance(60)
        engine.evaluate(red({"api": 100 + 100 * minute, "db": 100 + 100 * minute}, {"api": 10}))
        if minute == 4:
            assert engine.alerts()[0]["state"] == "firing"
            assert engine.alerts()[0]["value"] == pytest.approx(10 / 500)  # 10 errors in the window's 500 calls
        if minute == 5:
            assert [e.kind for e in seen.events] == ["resolved"]
            assert engine.alerts()[0]["value"] == 0.0
    assert engine.alerts() == []


def test_rate_and_counter_restart():
    rule = {"id": "rate", "name": "Call rate", "severity": "info", "op": ">", "threshold": 0.5,
            "expr": {"kind": "rate", "metric": "calls", "window": "1m"}}
    clock = Clock()
    engine = AlertEngine(rules(rule), clock=clock)
    clock.advance(10)
    engine.evaluate(red({"api": 100}, {}))  # 100 calls in the engine's first 10 s
    assert engine.alerts()[0]["value"] == pytest.approx(10.0)
    clock.advance(60)
    engine.evaluate(red({"api": 160}, {}))
    assert engine.alerts()[0]["value"] == pytest.approx(1.0)
    clock.advance(60)
    engine.evaluate(red({"api": 5}, {}))  # the process restarted: no value rather than a negative rate
    assert engine.alerts()[0]["state"] == "resolved"


def histogram(counts: list[int], total: float, lo: float, hi: float) -> list[Point]:
    return [Point("latency", "histogram", "s", {}, count=sum(counts), sum=total, min=lo, max=hi,
                  bounds=(0.1, 0.5, 1.0, 2.0), counts=tuple(counts))]


def test_windowed_quantile():
    rule = {"id": "p95", "name": "p95", "severity": "warning", "op": ">", "threshold": 0.5,
            "expr": {"kind": "quantile", "quantile": 0.95, "metric": "latency", "window": "5m"}}
    clock = Clock()
    engine = AlertEngine(rules(rule), clock=clock)
    clock.advance(10)
    engine.evaluate(histogram([100, 0, 0, 0, 0], 5.0, 0.01, 0.09))
    assert engine.alerts() == []
    clock.advance(400)
    # 100 slow calls (1-2 s) since: the window's p95 is in the 1-2 s bucket, the cumulative one would not be.
    engine.evaluate(histogram([100, 0, 0, 100, 0], 155.0, 0.01, 1.9))
    alert = engine.alerts()[0]
    assert 1.0 < alert["value"] <= 1.9


def test_average_over_the_window():
    rule = {"id": "uptime", "name": "Uptime", "severity": "critical", "op": "<", "threshold": 0.995,
            "expr": {"kind": "average", "metric": "health", "window": "1h", "aggregate": "min"}}
    clock = Clock()
    engine = AlertEngine(rules(rule), clock=clock)
    for i in range(200):
        engine.evaluate([Point("health", "gauge", "1", {"check": "db"}, value=0.0 if i == 0 else 1.0)])
        clock.advance(60)
    # one failed check in the first hour, then healthy: the average climbs back over 0.995 after an hour
    assert engine.alerts() == []


def test_an_average_needs_its_window_of_history_before_it_can_fire():
    """A check failing at start-up is not "0 % uptime over the last hour" at the first snapshot."""
    rule = {"id": "uptime", "name": "Uptime", "severity": "critical", "op": "<", "threshold": 0.995,
            "expr": {"kind": "average", "metric": "health", "window": "1h", "aggregate": "min"}}
    clock = Clock()
    engine = AlertEngine(rules(rule), clock=clock)
    for _ in range(59):  # a failing check every minute for 59 minutes: not yet an hour of history
        engine.evaluate([Point("health", "gauge", "1", {"check": "db"}, value=0.0)])
        assert engine.alerts() == []
        clock.advance(60)
    engine.evaluate([Point("health", "gauge", "1", {"check": "db"}, value=0.0)])
    clock.advance(60)
    engine.evaluate([Point("health", "gauge", "1", {"check": "db"}, value=0.0)])
    (alert,) = engine.alerts()
    assert alert["state"] == "firing" and alert["value"] == 0.0


def test_a_failing_rule_does_not_stop_the_others(caplog):
    clock = Clock()
    engine = AlertEngine(rules({**CPU_RULE, "for": 0}, {**CPU_RULE, "id": "other", "for": 0}), clock=clock)
    broken = engine.rules[0]
    real_payload = engine._payload

    def payload(rule, points):
        if rule is broken:
            raise ZeroDivisionError("a bug in one rule")
        return real_payload(rule, points)

    engine._payload = payload  # type: ignore[method-assign]
    engine.evaluate(cpu(0.9))
    assert [a["id"] for a in engine.alerts()] == ["other"]
    assert "failed to evaluate" in caplog.text


def test_alerts_document_is_json(tmp_path):
    clock = Clock()
    engine = AlertEngine(rules({**CPU_RULE, "for": 0}), clock=clock)
    engine.evaluate(cpu(float("nan")))  # a NaN gauge is "not breached", and never makes invalid JSON
    engine.evaluate(cpu(0.99))
    document = engine.alerts_document()
    text = json.dumps(document, allow_nan=False)
    assert json.loads(text)["alerts"][0]["since"].endswith("Z")
    assert os.listdir(tmp_path) == []


def test_a_firing_held_back_is_notified_when_the_silence_or_cooldown_ends():
    clock = Clock()
    engine = AlertEngine(rules({**CPU_RULE, "for": 0, "cooldown": "15m", "escalate": None}), clock=clock)
    seen = Recorder(engine)
    engine.silence("high_cpu", 600)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("pending", False), ("firing", False)]
    clock.advance(599)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == []
    clock.advance(1)  # the silence is over and the CPU is still high
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("firing", True)]
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == []  # once
    # Resolves and comes back 5 minutes later, inside the 15 min cooldown: held back until it ends.
    engine.evaluate(cpu(0.1))
    clock.advance(300)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("resolved", True), ("pending", False), ("firing", False)]
    clock.advance(599)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == []
    clock.advance(1)
    engine.evaluate(cpu(0.9))
    assert seen.kinds() == [("firing", True)]


def test_a_firing_critical_inhibits_the_warning_of_its_condition():
    clock = Clock()
    warning = {"id": "cpu_warn", "expr": {"metric": "cpu", "match": {"state": "busy"}}, "op": ">", "threshold": 0.7,
               "severity": "warning", "labels": {"condition": "cpu"}}
    critical = {**warning, "id": "cpu_crit", "threshold": 0.9, "severity": "critical"}
    other = {**warning, "id": "other_warn", "labels": {"condition": "not-cpu"}}
    engine = AlertEngine(rules(warning, critical, other), clock=clock)
    seen = Recorder(engine)
    engine.evaluate(cpu(0.95))  # both levels cross at once: the critical is decided first
    notified = {(e.alert["rule_id"], e.kind) for e in seen.events if e.notify}
    assert notified == {("cpu_crit", "firing"), ("other_warn", "firing")}
    assert {a["rule_id"]: a["state"] for a in engine.alerts()} == {
        "cpu_warn": "firing", "cpu_crit": "firing", "other_warn": "firing"}  # listed, only not sent
    seen.events.clear()
    clock.advance(5)
    engine.evaluate(cpu(0.8))  # the critical resolves; the warning, still true, is sent now
    notified = [(e.alert["rule_id"], e.kind) for e in seen.events if e.notify]
    assert notified == [("cpu_crit", "resolved"), ("cpu_warn", "firing")]
