"""Thresholds and defaults that several modules apply, each defined once, and the classifications
that use them.

The settings (``config.py``) take their defaults from here; the meters, local alerting, the
stack's Alertmanager configuration and the operator views refer to these names. The packaged alert
rules (``data/alert_rules.yaml``) are data, not code: tests/test_thresholds.py checks that they use
the same levels.
"""

from __future__ import annotations

# --- host resources: utilization in percent, (warning, critical) ---
HOST_RESOURCE_THRESHOLDS: dict[str, tuple[float, float]] = {
    "cpu": (70.0, 90.0),
    "memory": (80.0, 95.0),
    "disk": (85.0, 95.0),
}

# --- host health score (0-100) bands ---
HEALTH_SCORE_EXCELLENT = 90.0
HEALTH_SCORE_GOOD = 75.0
HEALTH_SCORE_WARNING = 50.0


def health_state(score: float) -> str:
    """EXCELLENT, GOOD, WARNING or CRITICAL for a host health score."""
    if score >= HEALTH_SCORE_EXCELLENT:
        return "EXCELLENT"
    if score >= HEALTH_SCORE_GOOD:
        return "GOOD"
    if score >= HEALTH_SCORE_WARNING:
        return "WARNING"
    return "CRITICAL"


# --- market-data freshness ---
MARKET_DATA_STATES = ("LIVE", "DELAYED", "STALE")
# Data polled over REST (age of the last update).
MARKET_DATA_LIVE_SECONDS = 600.0
MARKET_DATA_DELAYED_SECONDS = 3600.0
# WebSocket streams (silence since the last message): a live stream delivers every few seconds.
STREAM_LIVE_SECONDS = 10.0
STREAM_STALE_SECONDS = 60.0


def freshness(age_seconds: float, live_seconds: float, stale_seconds: float) -> str:
    """LIVE when younger than ``live_seconds``, DELAYED when younger than ``stale_seconds``, else STALE."""
    if age_seconds < live_seconds:
        return "LIVE"
    if age_seconds < stale_seconds:
        return "DELAYED"
    return "STALE"


# --- the packaged alert rules' levels, (warning, critical); the views colour readings by them ---
ERROR_RATE_PERCENT = (1.0, 5.0)
LATENCY_P95_SECONDS = (0.1, 0.5)
TRADING_LATENCY_P95_SECONDS = (0.15, 0.5)
BUDGET_PERCENT = (80.0, 100.0)
SIGNAL_ACCURACY_PERCENT = (75.0, 70.0)  # lower is worse
RETRIEVAL_HIT_RATE_PERCENT = (80.0, 60.0)  # lower is worse; the rule warns at 80
# Shown by the views only (no packaged rule).
ORDER_SUCCESS_PERCENT = (90.0, 80.0)  # lower is worse
RETRIEVAL_EMPTY_RATE_PERCENT = (10.0, 25.0)

# --- notifications: the lowest severity each channel receives unless OTEL_MONITORING_ALERT_ROUTES names it ---
ALERT_ROUTES = {"log": "info", "webhook": "info", "slack": "warning", "discord": "warning", "email": "critical"}

# --- a flush at a signal that interrupted the instrumentation itself ---
# The main thread may be inside this package's or the SDK's code, holding a lock that the flush's
# collection needs: the flush waits for that call to return, at most SIGNAL_DEFER_LIMIT_S.
SIGNAL_DEFER_LIMIT_S = 1.0
# Seconds a collection waits for a lock while the main thread is stopped in a flush it waits on
# (the holder may be that thread, which cannot release it): then it reads the state as it is.
COLLECTION_LOCK_WAIT_S = 0.2
