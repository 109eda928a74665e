"""The alert rules as Prometheus alerting rules: the serverless engine and the collector stack alert
on the same conditions (``otel-monitoring alerts export --prometheus FILE``).

Metric names are translated as the collector's prometheus exporter exposes them (the OTel
Prometheus compatibility spec, with suffixes on): non-alphanumerics to ``_``, the UCUM unit as a
word suffix (``s`` -> ``seconds``, ``By`` -> ``bytes``, ``1`` -> ``ratio`` on gauges; units in
braces dropped), and ``_total`` on counters. Attribute keys become label names the same way.
Cooldown and escalation have no PromQL form: Alertmanager's ``repeat_interval`` and routing do that.

Every rule aggregates per service as well as by its own ``group_by``: one Prometheus holds the
series of every service the collector serves, while the in-process engine sees one service only.
"""

from __future__ import annotations

import re

import yaml

from .rules import MetricInfo, Rule, RuleSet, Selector, format_duration

__all__ = ["label_name", "prometheus_name", "promql", "render_prometheus_rules"]

GROUP_NAME = "otel-monitoring"
# The label the collector's prometheus exporter gives the service (service.name, prefixed by
# service.namespace and a slash when there is one; kept by honor_labels in prometheus.yml).
SERVICE_LABEL = "job"

# UCUM units -> the words Prometheus names carry (the collector's translator table, in part).
_UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius",
    "Hz": "hertz", "%": "percent",
}
_PER_UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def _unit_tokens(info: MetricInfo) -> list[str]:
    unit = re.sub(r"\{[^}]*\}", "", info.unit).strip()
    if not unit:
        return []
    if unit == "1":
        return ["ratio"] if info.type == "gauge" else []
    main, _, per = unit.partition("/")
    tokens = []
    if main:
        tokens += [t for t in _NON_ALNUM.split(_UNIT_WORDS.get(main, main)) if t]
    if per:
        tokens += ["per"] + [t for t in _NON_ALNUM.split(_PER_UNIT_WORDS.get(per, per)) if t]
    return tokens


def prometheus_name(info: MetricInfo) -> str:
    """The name the collector's prometheus exporter gives the metric (``prometheus:`` in the file wins)."""
    if info.prometheus:
        return info.prometheus
    tokens = [t for t in _NON_ALNUM.split(info.name) if t]
    if info.type == "counter":
        tokens = [t for t in tokens if t != "total"]
    for token in _unit_tokens(info):
        if token not in tokens:
            tokens.append(token)
    if info.type == "counter":
        tokens.append("total")
    name = "_".join(tokens)
    return f"_{name}" if name[:1].isdigit() else name


def label_name(attribute: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", attribute)
    return f"key_{name}" if name[:1].isdigit() else name


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _selector(selector: Selector, metrics: dict[str, MetricInfo], suffix: str = "") -> str:
    name = prometheus_name(metrics[selector.metric]) + suffix
    if not selector.matchers:
        return name
    matchers = ", ".join(f"{label_name(m.key)}{m.op}{_quote(m.value)}" for m in selector.matchers)
    return f"{name}{{{matchers}}}"


def _number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _counted(function: str, selector: str, window_s: float) -> str:
    """``rate``/``increase`` of counter series over the window, including what a series counted
    before its first scrape. rate() sees only the increase between a series' first and last sample
    in the window, so a series born inside it (a short job, a crash-looping process, a first error)
    would lose everything counted before Prometheus first scraped it. Series that existed when the
    window began take rate(); series born inside it take their whole value (the SDK's counters
    start from zero), as the stack's recording rules do."""
    window = format_duration(window_s)
    born = f"({selector} unless {selector} offset {window})"
    whole = born if function == "increase" else f"{born} / {_number(window_s)}"
    return f"({function}({selector}[{window}]) unless {born} or {whole})"


def promql(rule: Rule, metrics: dict[str, MetricInfo]) -> str:
    """The rule's condition in PromQL."""
    labels = [SERVICE_LABEL, *(label_name(g) for g in rule.group_by if label_name(g) != SERVICE_LABEL)]
    by = f" by ({', '.join(labels)})"
    window = format_duration(rule.window_s)
    selector = _selector(rule.selector, metrics)
    if rule.kind == "value":
        expression = f"{rule.aggregate}{by} ({selector})"
    elif rule.kind == "average":
        expression = f"{rule.aggregate}{by} (avg_over_time({selector}[{window}]))"
    elif rule.kind in ("rate", "increase"):
        expression = f"{rule.aggregate}{by} {_counted(rule.kind, selector, rule.window_s)}"
    elif rule.kind == "ratio":
        assert rule.denominator is not None
        denominator = _selector(rule.denominator, metrics)
        expression = (f"(sum{by} {_counted('rate', selector, rule.window_s)} / "
                      f"sum{by} {_counted('rate', denominator, rule.window_s)})")
    else:  # quantile
        bucket = _selector(rule.selector, metrics, suffix="_bucket")
        by_le = f" by ({', '.join([*labels, 'le'])})"
        expression = (f"histogram_quantile({_number(rule.quantile or 0.5)}, "
                      f"sum{by_le} {_counted('rate', bucket, rule.window_s)})")
    condition = f"{expression} {rule.op} {_number(rule.threshold)}"
    if rule.kind == "average":
        # An average over a window needs that window of history (as in the in-process engine):
        # the series must already have existed in the window's first 1/24th.
        step = rule.window_s / 24
        history = (f"{rule.aggregate}{by} (present_over_time({selector}[{format_duration(step)}] "
                   f"offset {format_duration(rule.window_s - step)}))")
        return f"({condition}) and {history}"
    return condition


def _alert_name(rule: Rule) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", rule.id)


def prometheus_rules(ruleset: RuleSet) -> dict:
    rules = []
    for rule in ruleset.rules:
        entry: dict = {"alert": _alert_name(rule), "expr": promql(rule, ruleset.metrics)}
        if rule.for_s:
            entry["for"] = format_duration(rule.for_s)
        entry["labels"] = {"severity": rule.severity, "rule_id": rule.id, **rule.labels}
        annotations = {"summary": rule.name, **rule.annotations}
        entry["annotations"] = annotations
        rules.append(entry)
    return {"groups": [{"name": GROUP_NAME, "rules": rules}]}


def render_prometheus_rules(ruleset: RuleSet) -> str:
    header = (f"# Generated by `otel-monitoring alerts export --prometheus` from {ruleset.source}.\n"
              "# Do not edit: change the rules file and export again (docs/alerting.md).\n")
    return header + yaml.safe_dump(prometheus_rules(ruleset), sort_keys=False, width=1000, allow_unicode=True)
