"""Reads a running Prometheus into a Snapshot, so ``top`` shows the collector stack the same way
it shows a snapshot directory. Names are mapped from the OpenTelemetry ones (views/catalog.py) to
what the collector's prometheus exporter exposes: dots to underscores, a unit suffix (``_ratio``,
``_seconds``, ``_USD``...) and ``_total`` on counters; labels keep the attributes with
underscores (views/snapshot.get_attr compares them loosely)."""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import catalog
from .snapshot import Snapshot
from .terminal import safe_tree
from .. import names

# Suffixes the exporter appends for units and counters; a name is ours if only these follow.
UNIT_SUFFIXES = {"ratio": "1", "seconds": "s", "milliseconds": "ms", "bytes": "By", "USD": "USD", "percent": "%"}
COUNTER_SUFFIX = "total"
# Labels the scrape adds that are not attributes of the series: the service's instances (and,
# with no --service, the services) are aggregated over them.
SCRAPE_LABELS = {"__name__", "job", "instance", "otel_scope_name", "otel_scope_version"}
AGGREGATED_AWAY = "without (job, instance, otel_scope_name, otel_scope_version)"
# RED from traces: the collector's spanmetrics connector.
SPANMETRICS_PREFIX = "traces_span_metrics_duration"
SPANMETRICS_NAME = names.TRACES_SPAN_METRICS_DURATION
RATE_WINDOW = "1m"
QUANTILE_WINDOW = "5m"

WANTED = {
    "gauge": (catalog.HOST_RESOURCE_UTILIZATION + catalog.CPU_UTILIZATION + catalog.MEMORY_UTILIZATION + catalog.FILESYSTEM_UTILIZATION + catalog.LOAD_AVERAGE_1M
              + catalog.HOST_HEALTH_SCORE + catalog.HEALTH_CHECK_STATUS + catalog.BUDGET_UTILIZATION + catalog.BUDGET_SPENT
              + catalog.BUDGET_LIMIT + catalog.PNL_REALIZED + catalog.PNL_UNREALIZED + catalog.SIGNAL_ACCURACY
              + catalog.MARKET_DATA_STALENESS + catalog.MARKET_DATA_STATUS + catalog.RAG_HIT_RATE + catalog.RAG_EMPTY_RATE
              + catalog.FEED_RATE + catalog.FEED_BELOW_MIN_RATE + catalog.ORDER_SUCCESS_RATE),
    "counter": catalog.COST + catalog.CALL_COUNTERS + catalog.FEED_MESSAGES + catalog.FEED_GAPS + catalog.WEBSOCKET_DISCONNECTS,
    "histogram": (catalog.DURATION_HISTOGRAMS + catalog.GENAI_TOKEN_USAGE + catalog.FILL_RATIO + catalog.RAG_RELEVANCE
                  + catalog.FEED_LATENCY),
}


class PrometheusError(RuntimeError):
    pass


def otel_to_prometheus_base(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_:]", "_", name)


def match_exposed(otel_name: str, exposed: dict[str, dict[str, str]]) -> tuple[str, str] | None:
    """(Prometheus name, unit) of an OpenTelemetry metric among the exposed names, or None."""
    base = otel_to_prometheus_base(otel_name)
    found = []
    for candidate in exposed:
        if candidate != base and not candidate.startswith(base + "_"):
            continue
        rest = [part for part in candidate[len(base):].split("_") if part]
        if all(part in UNIT_SUFFIXES or part == COUNTER_SUFFIX for part in rest):
            unit = next((UNIT_SUFFIXES[p] for p in rest if p in UNIT_SUFFIXES), exposed[candidate].get("unit", ""))
            found.append((candidate, unit))
    return min(found, key=lambda item: len(item[0])) if found else None


class PrometheusSource:
    def __init__(self, url: str, service: str | None = None, instance: str | None = None, timeout: float = 5.0,
                 since_start: bool = False):
        self.since_start = since_start  # percentiles over all buckets rather than the last QUANTILE_WINDOW
        self.url = url.rstrip("/")
        self.service = service
        self.instance = instance
        self.timeout = timeout

    # --- the HTTP API ---

    def _api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 (operator's URL)
                body = safe_tree(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            body = safe_tree(json.loads(error.read() or b"{}"))
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise PrometheusError(f"cannot query Prometheus at {self.url}: {getattr(error, 'reason', error)}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.url}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def _selector(self) -> str:
        # The exporter sets job to service.name (prefixed by service.namespace when there is one)
        # and instance to service.instance.id.
        matchers = []
        if self.service:
            # RE2 metacharacters escaped with a backslash, itself escaped inside the PromQL string.
            pattern = "".join(f"\\\\{c}" if c in ".+*?()[]{}|^$\\" else c for c in self.service)
            matchers.append(f'job=~"(.+/)?{pattern}"')
        if self.instance:
            matchers.append(f'instance="{self.instance}"')
        return "{" + ",".join(matchers) + "}" if matchers else ""

    def _vector(self, expression: str) -> list[tuple[dict[str, str], float | None]]:
        result = []
        for item in self._api("query", query=expression)["result"]:
            value = float(item["value"][1])
            labels = {k: v for k, v in item["metric"].items() if k not in SCRAPE_LABELS}
            result.append((labels, None if math.isnan(value) or math.isinf(value) else value))
        return result

    # --- building the snapshot ---

    def exposed(self) -> dict[str, dict[str, str]]:
        """{metric name: {type, unit}} of everything Prometheus scraped."""
        metadata = self._api("metadata")
        return {name: entries[0] for name, entries in metadata.items() if entries}

    def read(self) -> Snapshot:
        snapshot = Snapshot(source=self.url, service={"name": self.service or "prometheus"})
        try:
            exposed = self.exposed()
            self._gauges(snapshot, exposed)
            self._counters(snapshot, exposed)
            self._histograms(snapshot, exposed)
            self._alerts(snapshot)
            self._alert_units(snapshot)
        except PrometheusError as error:
            snapshot.problems.append(str(error))
            return snapshot
        snapshot.timestamp_unix = time.time()
        if not (snapshot.gauges or snapshot.counters or snapshot.histograms):
            snapshot.problems.append(f"Prometheus at {self.url} has none of the otel-monitoring metrics"
                                     + (f" for service {self.service}" if self.service else ""))
        return snapshot

    def _found(self, kind: str, exposed: dict[str, dict[str, str]]):
        for otel_name in dict.fromkeys(WANTED[kind]):
            match = match_exposed(otel_name, exposed)
            if match and exposed[match[0]].get("type") == kind:
                yield otel_name, match[0], match[1]

    def _gauges(self, snapshot: Snapshot, exposed: dict[str, dict[str, str]]) -> None:
        for otel_name, prom_name, unit in self._found("gauge", exposed):
            # Gauges (utilizations, scores, PnL) averaged over instances reporting the same series;
            # the host-health sample (the CPU and memory `top --dir` shows) as the alert rules read
            # it, the highest of the instances: the shown CPU is the value a CPU alert compares.
            how = "max" if otel_name in catalog.HOST_RESOURCE_UTILIZATION else "avg"
            points = [{"attributes": labels, "value": value} for labels, value in
                      self._vector(f"{how} {AGGREGATED_AWAY} ({prom_name}{self._selector()})") if value is not None]
            if points:
                snapshot.gauges[otel_name] = points
                snapshot.units[otel_name] = unit

    def _counters(self, snapshot: Snapshot, exposed: dict[str, dict[str, str]]) -> None:
        for otel_name, family, unit in self._found("counter", exposed):
            # Metadata names the family; its samples carry _total. Counters are summed over instances.
            series = family if family.endswith("_" + COUNTER_SUFFIX) else f"{family}_{COUNTER_SUFFIX}"
            rates = {json.dumps(found, sort_keys=True): v for found, v in
                     self._vector(f"sum {AGGREGATED_AWAY} (rate({series}{self._selector()}[{RATE_WINDOW}]))")}
            points = [{"attributes": labels, "value": value, "rate_per_s": rates.get(json.dumps(labels, sort_keys=True))}
                      for labels, value in self._vector(f"sum {AGGREGATED_AWAY} ({series}{self._selector()})")
                      if value is not None]
            if points:
                snapshot.counters[otel_name] = points
                snapshot.units[otel_name] = unit

    def _histograms(self, snapshot: Snapshot, exposed: dict[str, dict[str, str]]) -> None:
        found = list(self._found("histogram", exposed))
        for name, meta in exposed.items():  # the spanmetrics connector's RED from traces
            if name.startswith(SPANMETRICS_PREFIX) and meta.get("type") == "histogram":
                unit = next((UNIT_SUFFIXES[p] for p in name.split("_") if p in UNIT_SUFFIXES), "s")
                found.append((SPANMETRICS_NAME, name, unit))
        sdk_red = False
        for otel_name, prom_name, unit in found:
            if otel_name == SPANMETRICS_NAME and sdk_red:
                continue  # the same calls as the SDK's RED metrics, by span name: shown once

            scale = 0.001 if unit == "ms" else 1.0  # shown in seconds, as the SDK's histograms
            selector = self._selector()
            points: dict[str, dict[str, Any]] = {}

            def put(field: str, expression: str, factor: float = 1.0) -> None:
                for labels, value in self._vector(expression):
                    key = json.dumps(labels, sort_keys=True)
                    point = points.setdefault(key, {"attributes": labels})  # noqa: B023 - called in this iteration only
                    point[field] = None if value is None else value * factor

            put("count", f"sum {AGGREGATED_AWAY} ({prom_name}_count{selector})")
            put("sum", f"sum {AGGREGATED_AWAY} ({prom_name}_sum{selector})", scale)
            buckets = (f"sum {AGGREGATED_AWAY} ({prom_name}_bucket{selector})" if self.since_start else
                       f"sum {AGGREGATED_AWAY} (rate({prom_name}_bucket{selector}[{QUANTILE_WINDOW}]))")
            for field, quantile in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                put(field, f"histogram_quantile({quantile}, {buckets})", scale)
            kept = [p for p in points.values() if p.get("count")]
            sdk_red = sdk_red or bool(kept and otel_name in catalog.DURATION_HISTOGRAMS)
            if kept:
                snapshot.histograms.setdefault(otel_name, []).extend(kept)
                snapshot.units[otel_name] = "s" if unit in ("s", "ms") else unit

    @staticmethod
    def _alert_units(snapshot: Snapshot) -> None:
        """Prometheus gives an alert's value only: its rule (exported with a rule_id label) says its
        unit, state and threshold, so the value reads as in every other view."""
        from ..config import ConfigError, load_settings
        from ..local.rules import DEFAULT_RULES, with_rule_units

        try:
            source = load_settings().alert_rules
        except ConfigError:
            source = DEFAULT_RULES
        with_rule_units(snapshot.alerts, source)

    def _service_matches(self, labels: dict[str, str]) -> bool:
        """Whether an alert is about the --service: the SDK rules carry the exporter's ``job``
        (namespace/name), the span-metrics rules ``service_name``. An alert with neither (a scrape
        target, the collector's exporters) is about the stack and shown for every service."""
        name = labels.get("service_name", labels.get("job"))
        return name is None or name.rsplit("/", 1)[-1] == self.service

    def _alerts(self, snapshot: Snapshot) -> None:
        for alert in self._api("alerts").get("alerts", []):
            labels = alert.get("labels", {})
            if self.service and not self._service_matches(labels):
                continue  # another service's alert
            if self.instance and labels.get("instance") not in (None, self.instance):
                continue
            value = alert.get("value")
            try:
                value = float(value) if value is not None else None
            except ValueError:
                value = None
            annotations = alert.get("annotations", {})
            threshold = None
            try:  # the stack's rules state their threshold and unit (rules/stack.yml)
                threshold = float(annotations["threshold"]) if "threshold" in annotations else None
            except ValueError:
                pass
            extra = {"unit": annotations["unit"]} if "unit" in annotations else {}
            snapshot.alerts.append({**extra,
                "id": labels.get("alertname", "?"), "rule_id": labels.get("rule_id") or labels.get("alertname", "?"),
                "name": labels.get("alertname", "?"),   # the summary is a sentence: too long for a row
                "severity": labels.get("severity", "warning"), "state": alert.get("state", "firing"),
                "value": value, "threshold": threshold, "since": alert.get("activeAt", ""), "acknowledged": False,
                "labels": labels, "annotations": annotations})
