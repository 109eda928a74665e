"""The packaged alert rules (data, not code) fire at the levels otel_monitoring.thresholds defines,
which the settings, the meters and the views use: a level changed in one place shows here."""

import os

import pytest

from otel_monitoring import thresholds
from otel_monitoring.config import load_settings
from otel_monitoring.local.rules import load_rules
from otel_monitoring.views.states import THRESHOLDS, State
from support import REPO

RULES = os.path.join(REPO, "otel_monitoring", "data", "alert_rules.yaml")


@pytest.fixture(scope="module")
def rules():
    return {rule.id: rule for rule in load_rules(RULES).rules}


@pytest.mark.parametrize("rule_id, expected", [
    ("high_cpu", thresholds.HOST_RESOURCE_THRESHOLDS["cpu"][0] / 100),
    ("critical_cpu", thresholds.HOST_RESOURCE_THRESHOLDS["cpu"][1] / 100),
    ("high_memory", thresholds.HOST_RESOURCE_THRESHOLDS["memory"][0] / 100),
    ("critical_memory", thresholds.HOST_RESOURCE_THRESHOLDS["memory"][1] / 100),
    ("disk_almost_full", thresholds.HOST_RESOURCE_THRESHOLDS["disk"][0] / 100),
    ("disk_full", thresholds.HOST_RESOURCE_THRESHOLDS["disk"][1] / 100),
    ("elevated_error_rate", thresholds.ERROR_RATE_PERCENT[0] / 100),
    ("high_error_rate", thresholds.ERROR_RATE_PERCENT[1] / 100),
    ("slow_p95_latency", thresholds.LATENCY_P95_SECONDS[0]),
    ("critical_p95_latency", thresholds.LATENCY_P95_SECONDS[1]),
    ("slow_trading_p95_latency", thresholds.TRADING_LATENCY_P95_SECONDS[0]),
    ("critical_trading_p95_latency", thresholds.TRADING_LATENCY_P95_SECONDS[1]),
    ("daily_cost_near_budget", thresholds.BUDGET_PERCENT[0] / 100),
    ("daily_cost_over_budget", thresholds.BUDGET_PERCENT[1] / 100),
    ("declining_signal_accuracy", thresholds.SIGNAL_ACCURACY_PERCENT[0] / 100),
    ("low_signal_accuracy", thresholds.SIGNAL_ACCURACY_PERCENT[1] / 100),
    ("low_retrieval_hit_rate", thresholds.RETRIEVAL_HIT_RATE_PERCENT[0] / 100),
])
def test_packaged_rules_fire_at_the_shared_levels(rules, rule_id, expected):
    assert rules[rule_id].threshold == pytest.approx(expected)


def test_settings_and_views_take_the_shared_defaults():
    settings = load_settings(environ={})
    assert settings.host_health_thresholds == thresholds.HOST_RESOURCE_THRESHOLDS
    assert (settings.market_data_live_seconds, settings.market_data_delayed_seconds) == (
        thresholds.MARKET_DATA_LIVE_SECONDS, thresholds.MARKET_DATA_DELAYED_SECONDS)
    assert (settings.stream_live_seconds, settings.stream_stale_seconds) == (
        thresholds.STREAM_LIVE_SECONDS, thresholds.STREAM_STALE_SECONDS)
    # A reading the rules warn about is a warning in top and the report too.
    warning, critical = thresholds.ERROR_RATE_PERCENT
    assert THRESHOLDS["error_rate"].state(warning) is State.WARNING
    assert THRESHOLDS["error_rate"].state(critical) is State.CRITICAL
    assert THRESHOLDS["cpu"].state(thresholds.HOST_RESOURCE_THRESHOLDS["cpu"][1]) is State.CRITICAL
