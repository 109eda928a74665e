"""Property-based tests (hypothesis) of every parser of user input: rules, targets, prices, budgets
and the other environment values, the alert control file. Random bytes and random structures
produce the parsers' named errors and nothing else, within bounded memory (measured with
tracemalloc, which counts allocations and so does not depend on the machine's load); time is
bounded by the loader's size cap, and no example may need more than pytest's timeout."""

from __future__ import annotations

import json
import math
import os
import tempfile
import tracemalloc

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_monitoring.config import OPTIONS, ConfigError, load_settings, parse_duration
from otel_monitoring.instrumentation.targets import TargetError, load_targets
from otel_monitoring.local.control import CONTROL_FILE, MAX_TIME, read_control
from otel_monitoring.local.engine import AlertEngine
from otel_monitoring.local.rules import RuleError, load_rules
from otel_monitoring.local.snapshot import Point
from otel_monitoring.meters.prices import PriceTableError, load_prices
from otel_monitoring.meters.settings import parse_budgets, parse_health_thresholds
from otel_monitoring.redaction import Redactor
from otel_monitoring.views.terminal import safe_text

PEAK_BYTES = 64 * 1024 * 1024
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
structures = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)), max_leaves=30)

# Keys the formats know, so random documents get past the first check often enough to reach the deep ones.
RULE_WORDS = ["metrics", "rules", "id", "name", "expr", "op", "threshold", "for", "severity", "cooldown", "escalate",
              "labels", "annotations", "kind", "metric", "match", "window", "aggregate", "group_by", "quantile",
              "denominator", "type", "unit", "cpu", "gauge", "counter", "histogram", ">", "warning", "5m", "after"]
TARGET_WORDS = ["targets", "target", "domain", "component", "operation", "kind", "attributes", "metric_attributes",
                "json:loads", "json.decoder:JSONDecoder.decode", "trading", "internal", "self.x", "result[0]"]
PRICE_WORDS = ["llm", "embeddings", "aliases", "exchanges", "fx", "external_apis", "compute", "input", "output",
               "maker", "taker", "per_call", "routes", "cpu_second", "gpt-4o", "USD"]


def worded(words: list[str]):
    keys = st.one_of(st.sampled_from(words), st.text(max_size=8))
    leaves = st.one_of(scalars, st.sampled_from(words))
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)), max_leaves=25)


def _file(data: bytes, suffix: str = ".yaml") -> str:
    handle = tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False)
    with handle:
        handle.write(data)
    return handle.name


def _only(errors: tuple[type[BaseException], ...], call, *args) -> None:
    """``call(*args)`` returns or raises one of ``errors``, and allocates less than PEAK_BYTES at peak."""
    tracemalloc.start()
    try:
        try:
            call(*args)
        except errors:
            pass
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, peak


def _dump(document) -> bytes:
    return yaml.safe_dump(document, allow_unicode=True).encode("utf-8")


@SETTINGS
@given(st.one_of(st.binary(max_size=2000), worded(RULE_WORDS).map(_dump)))
def test_rules_files(data):
    path = _file(data)
    try:
        _only((RuleError,), load_rules, path, False)
        _only((RuleError,), load_rules, path, True)
    finally:
        os.unlink(path)


@SETTINGS
@given(st.one_of(st.binary(max_size=2000), worded(TARGET_WORDS).map(_dump)))
def test_targets_files(data):
    path = _file(data)
    try:
        _only((TargetError,), load_targets, path)
    finally:
        os.unlink(path)


@SETTINGS
@given(st.one_of(st.binary(max_size=2000), worded(PRICE_WORDS).map(_dump),
                 worded(PRICE_WORDS).map(lambda d: json.dumps(d, default=str).encode())),
       st.sampled_from([".yaml", ".json"]))
def test_price_files(data, suffix):
    path = _file(data, suffix)
    try:
        _only((PriceTableError,), load_prices, path)
    finally:
        os.unlink(path)


@SETTINGS
@given(st.text(max_size=80))
def test_budgets_and_thresholds_and_durations(text):
    for parse in (parse_budgets, parse_health_thresholds, parse_duration):
        try:
            value = parse(text)
        except ValueError:
            continue
        if parse is parse_budgets:
            assert all(math.isfinite(b.limit_usd) and b.limit_usd > 0 for b in value)
        if parse is parse_duration:
            assert math.isfinite(value) and 0 <= value <= 10 * 366 * 86400


ENV_OPTIONS = [option for option in OPTIONS if option.env]


@SETTINGS
@given(st.sampled_from(ENV_OPTIONS), st.one_of(st.text(max_size=60), st.sampled_from(
    ["-1", "0", "1e999", "inf", "nan", "99999", "9" * 50, "true", "none,console", "a=b,c", "1e-999"])))
def test_environment_values_never_stop_the_application(option, value):
    if "\x00" in value:
        return  # the OS cannot put a NUL in an environment variable
    reports: list[str] = []
    settings_ = load_settings(environ={option.env: value}, report=reports.append)
    resolved = getattr(settings_, option.name)
    if reports:  # a bad value is named and the default applies
        assert len(reports) == 1 and option.env in reports[0] and resolved == option.default
    if isinstance(resolved, float):
        assert math.isfinite(resolved)
    # Strict mode: a start-up error, and only the named one.
    if option.name == "strict":
        return  # the switch itself: its own bad value was checked above
    try:
        load_settings(environ={option.env: value, "OTEL_MONITORING_STRICT": "true"})
    except ConfigError as error:
        assert reports and option.env in str(error)
    else:
        assert not reports


control_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**30, max_value=10**30),
                           st.text(max_size=5), st.none(), st.booleans())


@SETTINGS
@given(st.one_of(
    st.binary(max_size=500),
    st.fixed_dictionaries({"acknowledged": st.dictionaries(st.text(max_size=10), control_values, max_size=5),
                           "silenced": st.dictionaries(st.text(max_size=10), control_values, max_size=5)})
    .map(lambda d: json.dumps(d).encode()),
    structures.map(lambda d: json.dumps(d).encode())))
def test_control_file_never_stops_alerting(data):
    directory = tempfile.mkdtemp()
    try:
        with open(os.path.join(directory, CONTROL_FILE), "wb") as handle:
            handle.write(data)
        control = read_control(directory)
        for section in ("acknowledged", "silenced"):
            assert all(math.isfinite(v) and 0 <= v <= MAX_TIME for v in control[section].values())
        engine = AlertEngine([], control_dir=directory)
        engine.evaluate([Point("cpu", "gauge", "1", {}, value=0.5)], 1_800_000_000.0)
        json.dumps(engine.alerts_document(1_800_000_000.0), allow_nan=False)
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


@SETTINGS
@given(st.text(max_size=200))
def test_scrubbing_is_idempotent_and_sanitised_text_has_no_control_character(text):
    redactor = Redactor()
    once = redactor.scrub_text(text)
    assert redactor.scrub_text(once) == once
    assert safe_text(text).isprintable()


@pytest.mark.parametrize("depth", [10, 1000, 100_000])
def test_deeply_nested_documents_are_named_errors(depth):
    path = _file(("[" * depth + "]" * depth).encode())
    try:
        _only((RuleError,), load_rules, path)
        _only((TargetError,), load_targets, path)
        _only((PriceTableError,), load_prices, path)
    finally:
        os.unlink(path)
