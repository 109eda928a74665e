"""Alert rules: the YAML file format, parsed and validated (docs/alerting.md).

One file drives both the in-process engine (``engine.py``) and the Prometheus export
(``prometheus.py``). It has two sections: ``metrics`` declares each metric the rules use, with
its instrument type and unit (what Prometheus needs to know its exposed name), and ``rules``
lists the rules. Every problem is reported as ``RuleError`` naming the file, the rule and the
field, with what is expected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping


from ..config import ALERT_SEVERITIES, ConfigError, parse_duration
from ..userfiles import Document, load_file, parse_text

__all__ = ["DEFAULT_RULES", "INHIBIT_LABEL", "KINDS", "SEVERITIES", "Matcher", "MetricInfo", "Rule", "RuleError", "RuleSet",
           "load_rules", "parse_duration", "parse_rules"]

SEVERITIES = ALERT_SEVERITIES
KINDS = ("value", "average", "rate", "increase", "ratio", "quantile")
OPERATORS = (">", "<", ">=", "<=", "==", "!=")
AGGREGATES = ("max", "min", "sum", "avg")
METRIC_TYPES = ("counter", "updowncounter", "gauge", "histogram")
DEFAULT_RULES = "default"  # the packaged otel_monitoring/data/alert_rules.yaml
# The rule a budget event fires when no rule of the rules file reads the budget gauge (local/__init__.py).
BUDGET_RULE_ID = "budget"
# Rules of one signal at two severities share this label; the firing higher one silences the lower
# (in the local engine and through the stack's Alertmanager inhibition).
INHIBIT_LABEL = "condition"

_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class RuleError(ConfigError):
    """A rule or the rules file is invalid; the message names the rule and the field."""


def format_duration(seconds: float) -> str:
    """Seconds as Prometheus writes durations (``5m``, ``90s``, ``1h``)."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(round(seconds * 1000))}ms"


@dataclass(frozen=True)
class Matcher:
    """An attribute matcher: ``=`` value, ``!=`` value, ``=~`` regex, ``!~`` regex (full match, as PromQL)."""

    key: str
    op: str
    value: str

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        actual = "" if attributes.get(self.key) is None else str(attributes[self.key])
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class MetricInfo:
    name: str
    type: str  # counter, updowncounter, gauge, histogram
    unit: str = ""
    prometheus: str | None = None  # the exposed name, when the default translation is not it


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        return all(m.matches(attributes) for m in self.matchers)


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    kind: str
    selector: Selector
    op: str
    threshold: float
    severity: str
    for_s: float = 0.0
    window_s: float = 300.0
    aggregate: str = "max"
    group_by: tuple[str, ...] = ()
    quantile: float | None = None
    denominator: Selector | None = None
    cooldown_s: float = 0.0
    escalate_after_s: float | None = None
    escalate_to: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    unit: str = ""  # of the value compared with the threshold: "1" for ratios, the metric's otherwise
    # The state a state-indicator gauge (1 in the state its attribute names, 0 otherwise) stands for,
    # e.g. STALE: its value is shown as that state, not as a number.
    indicates: str | None = None

    def breached(self, value: float) -> bool:
        return {
            ">": value > self.threshold, "<": value < self.threshold, ">=": value >= self.threshold,
            "<=": value <= self.threshold, "==": value == self.threshold, "!=": value != self.threshold,
        }[self.op]


@dataclass
class RuleSet:
    source: str
    metrics: dict[str, MetricInfo]
    rules: list[Rule]
    errors: list[str]  # one message per rejected rule (lenient loading keeps the good ones)


# --- parsing ---

class _Field:
    """Turns a bad value into a RuleError naming the file, the line, the rule and the field."""

    def __init__(self, source: str, rule: str | None, raw: Any = None, document: Document | None = None):
        self.source, self.rule, self.raw, self.document = source, rule, raw, document

    def _line(self, path: str) -> int | None:
        if self.document is None or self.raw is None:
            return None
        parts = [p for p in path.split(".") if p]
        container: Any = self.raw
        for part in parts[:-1]:
            inner = container.get(part) if isinstance(container, Mapping) else None
            if not isinstance(inner, (Mapping, list)):
                break
            container = inner
        return self.document.line(container, parts[-1] if parts else None) or self.document.line(self.raw)

    def error(self, path: str, message: str) -> RuleError:
        line = self._line(path)
        source = f"{self.source}, line {line}" if line else self.source
        where = f"{source}: rule {self.rule!r}" if self.rule else source
        return RuleError(f"{where}, field '{path}': {message}")


def _matchers(raw: Any, path: str, check: _Field) -> tuple[Matcher, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise check.error(path, "expected a mapping of attribute: value (prefix the value with != , =~ or !~ "
                                "to negate or use a regular expression)")
    matchers = []
    for key, value in raw.items():
        text = "" if value is None else str(value)
        op = "="
        for prefix in ("!=", "=~", "!~"):
            if text.startswith(prefix):
                op, text = prefix, text[len(prefix):].strip()
                break
        if op in ("=~", "!~"):
            try:
                re.compile(text)
            except re.error as error:
                raise check.error(f"{path}.{key}", f"bad regular expression {text!r} ({error})") from None
        matchers.append(Matcher(str(key), op, text))
    return tuple(matchers)


def _selector(raw: Mapping[str, Any], path: str, metrics: Mapping[str, MetricInfo], check: _Field) -> Selector:
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        raise check.error(f"{path}.metric", "missing; name the OpenTelemetry metric, e.g. system.cpu.utilization")
    if metric not in metrics:
        raise check.error(f"{path}.metric", f"{metric!r} is not declared in the 'metrics' section of the file "
                                            "(declare it with its type and unit)")
    return Selector(metric, _matchers(raw.get("match"), f"{path}.match", check))


def _number(raw: Any, path: str, check: _Field) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise check.error(path, f"{str(raw)[:40]!r} is not a number")
    try:
        number = float(raw)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise check.error(path, f"{str(raw)[:40]} is not a finite number")
    return number


def _duration(raw: Any, path: str, check: _Field, default: float | None) -> float | None:
    if raw is None:
        return default
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise check.error(path, str(error)) from None


def _choice(raw: Any, path: str, choices: tuple[str, ...], check: _Field, default: str | None = None) -> str:
    if raw is None and default is not None:
        return default
    if raw not in choices:
        raise check.error(path, f"{raw!r} is not one of {', '.join(choices)}")
    return raw


def _strings(raw: Any, path: str, check: _Field) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise check.error(path, "expected a mapping of name: text")
    return {str(k): str(v) for k, v in raw.items()}


_RULE_FIELDS = {"id", "name", "expr", "op", "threshold", "for", "severity", "cooldown", "escalate", "labels",
                "annotations"}
_EXPR_FIELDS = {"kind", "metric", "match", "window", "aggregate", "group_by", "quantile", "denominator"}


def _rule(raw: Any, index: int, metrics: Mapping[str, MetricInfo], source: str,
          document: Document | None = None) -> Rule:
    rule_id = raw.get("id") if isinstance(raw, Mapping) else None
    label = str(rule_id)[:80] if rule_id else f"#{index + 1}"
    check = _Field(source, label, raw, document)
    if not isinstance(raw, Mapping):
        raise check.error("", "a rule is a mapping with id, name, expr, op, threshold, severity")
    unknown = sorted(set(raw) - _RULE_FIELDS)
    if unknown:
        raise check.error(unknown[0], f"unknown field; valid fields are {', '.join(sorted(_RULE_FIELDS))}")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise check.error("id", f"{rule_id!r} is not an id (letters, digits, _ . -; e.g. high_cpu)")
    expr = raw.get("expr")
    if not isinstance(expr, Mapping):
        raise check.error("expr", "missing; e.g. expr: {metric: system.cpu.utilization}")
    unknown = sorted(set(expr) - _EXPR_FIELDS)
    if unknown:
        raise check.error(f"expr.{unknown[0]}", f"unknown field; valid fields are {', '.join(sorted(_EXPR_FIELDS))}")
    kind = _choice(expr.get("kind"), "expr.kind", KINDS, check, default="value")
    selector = _selector(expr, "expr", metrics, check)
    metric_type = metrics[selector.metric].type
    wanted = {"rate": ("counter",), "increase": ("counter",), "ratio": ("counter",), "quantile": ("histogram",),
              "value": ("counter", "updowncounter", "gauge"), "average": ("updowncounter", "gauge")}[kind]
    if metric_type not in wanted:
        raise check.error("expr.kind", f"{kind!r} needs a {' or '.join(wanted)} metric; {selector.metric} is a "
                                       f"{metric_type}")
    denominator = None
    if kind == "ratio":
        if not isinstance(expr.get("denominator"), Mapping):
            raise check.error("expr.denominator", "a ratio needs denominator: {metric: ..., match: {...}}")
        denominator = _selector(expr["denominator"], "expr.denominator", metrics, check)
        if metrics[denominator.metric].type != "counter":
            raise check.error("expr.denominator.metric", f"{denominator.metric} is not a counter")
    elif "denominator" in expr:
        raise check.error("expr.denominator", "only a ratio has a denominator")
    quantile = None
    if kind == "quantile":
        quantile = _number(expr.get("quantile"), "expr.quantile", check)
        if not 0 < quantile < 1:
            raise check.error("expr.quantile", f"{quantile} is not between 0 and 1 (e.g. 0.95)")
    group_by = expr.get("group_by") or ()
    if isinstance(group_by, str):
        group_by = (group_by,)
    if not isinstance(group_by, (list, tuple)) or not all(isinstance(g, str) for g in group_by):
        raise check.error("expr.group_by", "expected a list of attribute names")
    op = _choice(raw.get("op"), "op", OPERATORS, check)
    threshold = _number(raw.get("threshold"), "threshold", check)
    severity = _choice(raw.get("severity"), "severity", SEVERITIES, check)
    name = raw.get("name") or rule_id
    window = _duration(expr.get("window"), "expr.window", check, 300.0)
    if window <= 0:
        raise check.error("expr.window", "must be more than 0")
    escalate_after = escalate_to = None
    escalate = raw.get("escalate")
    if escalate is not None:
        if not isinstance(escalate, Mapping) or "after" not in escalate:
            raise check.error("escalate", "expected {after: 30m, to: critical}")
        escalate_after = _duration(escalate["after"], "escalate.after", check, None)
        higher = SEVERITIES[SEVERITIES.index(severity) + 1:]
        if not higher:
            raise check.error("escalate", "the severity is already emergency; there is nothing to escalate to")
        escalate_to = _choice(escalate.get("to"), "escalate.to", higher, check, default=higher[0])
    return Rule(
        id=rule_id, name=str(name), kind=kind, selector=selector, op=op, threshold=threshold, severity=severity,
        for_s=_duration(raw.get("for"), "for", check, 0.0), window_s=window,
        aggregate=_choice(expr.get("aggregate"), "expr.aggregate", AGGREGATES, check,
                          default="sum" if kind in ("rate", "increase") else "max"),
        group_by=tuple(group_by), quantile=quantile, denominator=denominator,
        cooldown_s=_duration(raw.get("cooldown"), "cooldown", check, 0.0),
        escalate_after_s=escalate_after, escalate_to=escalate_to,
        labels=_strings(raw.get("labels"), "labels", check),
        annotations=_strings(raw.get("annotations"), "annotations", check),
        unit=_compared_unit(kind, metrics[selector.metric].unit),
        indicates=_indicated_state(kind, metrics[selector.metric], selector),
    )


def _indicated_state(kind: str, metric: MetricInfo, selector: Selector) -> str | None:
    """The state a rule over a state-indicator gauge tests: a gauge of unit 1 selected by an exact
    match on a ``*.state`` attribute (e.g. trading.market_data.state = STALE)."""
    if kind != "value" or metric.type != "gauge" or metric.unit != "1":
        return None
    return next((m.value for m in selector.matchers if m.op == "=" and m.key.endswith(".state")), None)


def _compared_unit(kind: str, metric_unit: str) -> str:
    """The unit of a rule's value: a ratio of counters is a fraction; a rate is per second; the
    others (value, average, quantile, increase) keep the metric's unit."""
    if kind == "ratio":
        return "1"
    if kind == "rate":
        return f"{metric_unit}/s" if metric_unit else "/s"
    return metric_unit


def _metrics(raw: Any, source: str, document: Document | None = None) -> dict[str, MetricInfo]:
    check = _Field(source, None, {"metrics": raw}, document)
    if not isinstance(raw, Mapping):
        raise check.error("metrics", "expected a mapping of metric name: {type: gauge, unit: '1'}")
    metrics = {}
    for name, info in raw.items():
        if not isinstance(info, Mapping):
            raise check.error(f"metrics.{name}", "expected {type: counter|updowncounter|gauge|histogram, unit: ...}")
        metric_type = _choice(info.get("type"), f"metrics.{name}.type", METRIC_TYPES, check)
        prometheus = info.get("prometheus")
        metrics[str(name)] = MetricInfo(str(name), metric_type, str(info.get("unit") or ""),
                                        str(prometheus) if prometheus else None)
    return metrics


def parse_rules(document: Any, source: str = "<rules>", strict: bool = True, lines: Document | None = None) -> RuleSet:
    """Validate a parsed rules document. ``strict`` raises on the first bad rule; otherwise bad rules
    are left out and their messages collected in ``errors``. ``lines``: the loaded file, for line numbers."""
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
        raise RuleError(f"{source}: expected a mapping with 'metrics' and a 'rules' list. Fix: see "
                        "docs/alerting.md for the format.")
    metrics = _metrics(document.get("metrics", {}), source, lines)
    rules: list[Rule] = []
    errors: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(document["rules"]):
        try:
            rule = _rule(raw, index, metrics, source, lines)
            if rule.id in seen:
                raise _Field(source, rule.id, raw, lines).error("id", "duplicate id; every rule needs its own")
        except RuleError as error:
            if strict:
                raise
            errors.append(str(error))
            continue
        seen.add(rule.id)
        rules.append(rule)
    return RuleSet(source, metrics, rules, errors)


def load_rules(path: str = DEFAULT_RULES, strict: bool = True) -> RuleSet:
    """Read a rules file (``"default"`` for the packaged one) through the bounded loader."""
    if path == DEFAULT_RULES:
        source = "otel_monitoring/data/alert_rules.yaml"
        text = resources.files("otel_monitoring").joinpath("data/alert_rules.yaml").read_text(encoding="utf-8")
        loaded = parse_text(text, source, "alert rules file", error=RuleError)
    else:
        loaded = load_file(path, "alert rules file", error=RuleError, fmt="yaml")
    return parse_rules(loaded.data, loaded.path, strict=strict, lines=loaded)


def with_rule_units(alerts: list[dict[str, Any]], source: str = DEFAULT_RULES) -> list[dict[str, Any]]:
    """``alerts`` (history events, or alerts from Prometheus' API) with the unit, indicated state and
    threshold of their rule (by ``rule_id``) filled in where missing, so every view formats their
    values the one way (views.formatting.alert_value). A rules file that cannot be read leaves them
    as they are (shown as plain numbers)."""
    try:
        rules = {rule.id: rule for rule in load_rules(source, strict=False).rules}
    except Exception:  # noqa: BLE001 - a view still shows the alerts without their units
        rules = {}
    for alert in alerts:
        rule = rules.get(str(alert.get("rule_id")))
        if rule is None:
            if alert.get("rule_id") == BUDGET_RULE_ID:  # made per budget event, in no rules file
                alert.setdefault("unit", "1")
            continue
        alert.setdefault("unit", rule.unit)
        alert.setdefault("indicates", rule.indicates)
        if alert.get("threshold") is None:
            alert["threshold"] = rule.threshold
    return alerts
