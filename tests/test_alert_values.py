"""An alert's value is written one way in every view, by its rule: a state rule as the state, a ratio
as a percent, seconds as a duration. Views that get a bare value (the history, Prometheus' alerts API)
take the unit from the rule; `top` shows the CPU sample the host rules read."""

from __future__ import annotations

from otel_monitoring.local.rules import load_rules, with_rule_units
from otel_monitoring.views.formatting import alert_value
from otel_monitoring.views.overview import alert_lines, system_readings
from otel_monitoring.views.prometheus import PrometheusSource
from otel_monitoring.views.snapshot import Snapshot


def test_state_rules_are_known_from_their_selector():
    rules = {rule.id: rule for rule in load_rules().rules}
    assert rules["market_data_stale"].indicates == "STALE"
    # A ratio, a duration, a health status averaged over a day: numbers, not states.
    assert {rules[r].indicates for r in ("high_cpu", "stale_market_data", "degraded_uptime")} == {None}


def test_alert_value_by_unit_and_state():
    stale = {"value": 1.0, "threshold": 1.0, "unit": "1", "indicates": "STALE"}
    assert (alert_value(stale), alert_value(stale, "threshold")) == ("STALE", "STALE")
    assert alert_value({**stale, "value": 0.0}) == "not STALE"
    assert alert_value({"value": 0.912, "unit": "1"}) == "91.2%"
    assert alert_value({"value": 390.0, "unit": "s"}) == "6.5m"
    assert alert_value({"value": None, "unit": "1"}) == "n/a"


def test_history_events_and_prometheus_alerts_take_their_rules_unit():
    events = with_rule_units([{"rule_id": "market_data_stale", "value": 1.0},
                              {"rule_id": "elevated_error_rate", "value": 0.0125},
                              {"rule_id": "no_such_rule", "value": 0.5}])
    assert [alert_value(e) for e in events] == ["STALE", "1.2%", "0.5"]
    # `top --prometheus`: Prometheus returns the value as a string with the exported rule_id label.
    snapshot = Snapshot(alerts=[{"id": "low_order_success_rate", "rule_id": "low_order_success_rate",
                                 "name": "low_order_success_rate", "severity": "warning", "state": "firing",
                                 "value": 0.5, "threshold": None, "since": ""}])
    PrometheusSource._alert_units(snapshot)
    (line,) = alert_lines(snapshot)
    assert line.shown() == "50.0% / 80.0%"


def test_top_shows_the_host_health_cpu_sample_the_alerts_read():
    snapshot = Snapshot(gauges={
        "system.cpu.utilization": [{"attributes": {"cpu.logical_number": "0", "cpu.mode": "idle"}, "value": 0.5}],
        "otel_monitoring.host.resource.utilization": [
            {"attributes": {"otel_monitoring.host.resource": "cpu"}, "value": 0.8},
            {"attributes": {"otel_monitoring.host.resource": "memory"}, "value": 0.25}]},
        units={"system.cpu.utilization": "1", "otel_monitoring.host.resource.utilization": "1"})
    readings = {r.label: r.value for r in system_readings(snapshot)}
    assert readings["CPU"] == 80.0 and readings["Memory"] == 25.0


def test_money_below_a_hundredth_of_a_cent_is_never_shown_as_zero():
    """A $0.00004 budget read "$0.00 of $0.00" in its budget message: sub-cent amounts keep four
    decimals, smaller ones two significant digits."""
    from otel_monitoring.views.formatting import usd

    assert [usd(x) for x in (0.00004, 0.000092, 0.0001, 0.0139, 0.5, 12.3, 0.0)] == \
        ["$0.00004", "$0.000092", "$0.0001", "$0.0139", "$0.50", "$12.30", "$0.00"]
