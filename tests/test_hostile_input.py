"""Hostile input: bad environment values and files never stop the application (strict mode makes
them start-up errors); every user file goes through one bounded loader with named errors and line
numbers; a corrupt alert control file cannot freeze alerting; telemetry text reaching a terminal
is shown escaped; logging extras and the series cap make no noise."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import tracemalloc

import pytest

from support import clean_env, read_otlp_file, run_python, spans_from_requests

from otel_monitoring.cli import main
from otel_monitoring.config import ConfigError, batch_processor_arguments, load_settings
from otel_monitoring.instrumentation.targets import TargetError, TargetsInstrumentor, load_targets
from otel_monitoring.local.control import CONTROL_FILE, read_control
from otel_monitoring.local.engine import AlertEngine
from otel_monitoring.local.rules import RuleError, load_rules, parse_rules
from otel_monitoring.local.snapshot import Point
from otel_monitoring.meters.prices import PriceTableError, load_prices
from otel_monitoring.userfiles import MAX_FILE_BYTES, UserFileError, load_file
from otel_monitoring.views.terminal import safe_text

# "billion laughs": 9 levels of 9 aliases, 9**9 = 387 million strings from 600 bytes.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))

RULES_HEAD = """\
metrics:
  system.cpu.utilization: {type: gauge, unit: '1'}
rules:
"""


# --- the policy: environment values ---

APP = """
import otel_monitoring
from opentelemetry import trace
m = otel_monitoring.configure(service_name="app", exporter="otlp_file", file_dir={dir!r}, system_metrics=False)
print("STARTED", m.settings.health_port, m.settings.budgets, m.settings.metric_export_interval)
with trace.get_tracer("app").start_as_current_span("work"):
    pass
m.shutdown()
"""

BAD_ENV = {
    "OTEL_BSP_MAX_QUEUE_SIZE": "-1",
    "OTEL_MONITORING_HEALTH_PORT": "99999",
    "OTEL_MONITORING_BUDGETS": "daily:total=1e999",
    "OTEL_METRIC_EXPORT_INTERVAL": "soon",
}


def test_bad_environment_values_are_reported_once_and_the_application_starts(tmp_path):
    result = run_python(APP.format(dir=str(tmp_path)), env=clean_env(**BAD_ENV))
    assert result.returncode == 0, result.stderr
    assert "STARTED None () 10.0" in result.stdout  # every bad value fell back to its default
    for variable in BAD_ENV:
        lines = [line for line in result.stderr.splitlines() if variable in line]
        assert len(lines) == 1, (variable, result.stderr)
        assert "Example:" in lines[0] or "Fix:" in lines[0]
    assert "OTEL_BSP_MAX_QUEUE_SIZE: -1 is below the minimum 1" in result.stderr
    assert "OTEL_MONITORING_HEALTH_PORT: 99999 is above the maximum 65535" in result.stderr
    assert "OTEL_MONITORING_BUDGETS: budget daily:total needs a finite limit above 0 (USD), got '1e999'" in result.stderr
    assert "OTEL_METRIC_EXPORT_INTERVAL: could not convert string to float: 'soon'" in result.stderr
    assert "Traceback" not in result.stderr
    spans = spans_from_requests(read_otlp_file(tmp_path / "traces.jsonl", "traces"))
    assert [span.name for _, _, span in spans] == ["work"]  # the pipeline works with the defaults


@pytest.mark.parametrize("variable", sorted(BAD_ENV))
def test_strict_mode_turns_each_report_into_a_start_up_error(tmp_path, variable):
    env = clean_env(**{variable: BAD_ENV[variable]}, OTEL_MONITORING_STRICT="true")
    result = run_python(APP.format(dir=str(tmp_path)), env=env)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr and variable in result.stderr and "OTEL_MONITORING_STRICT is on" in result.stderr
    assert "STARTED" not in result.stdout


def test_arguments_in_code_still_raise():
    with pytest.raises(ConfigError, match=r"configure\(health_port=\.\.\.\).*above the maximum 65535"):
        load_settings({"health_port": 99999}, environ={})
    with pytest.raises(ConfigError, match="finite"):
        load_settings({"budgets": "daily:total=1e999"}, environ={})
    with pytest.raises(ConfigError, match="finite"):
        load_settings({"shutdown_timeout": float("inf")}, environ={})


def test_batch_processor_variables_are_checked_and_named():
    reports: list[str] = []
    arguments = batch_processor_arguments("OTEL_BSP", {"OTEL_BSP_MAX_QUEUE_SIZE": "-1",
                                                       "OTEL_BSP_SCHEDULE_DELAY": "1e999"}, reports.append)
    assert arguments == {"max_queue_size": 2048, "schedule_delay_millis": 5000, "max_export_batch_size": 512,
                         "export_timeout_millis": 30000}
    assert len(reports) == 2 and "OTEL_BSP_MAX_QUEUE_SIZE" in reports[0] and "OTEL_BSP_SCHEDULE_DELAY" in reports[1]
    good = batch_processor_arguments("OTEL_BLRP", {"OTEL_BLRP_MAX_QUEUE_SIZE": "100",
                                                   "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "50"}, reports.append)
    assert good == {"max_queue_size": 100, "schedule_delay_millis": 1000, "max_export_batch_size": 50,
                    "export_timeout_millis": 30000}


# --- one loader for every user file ---

def test_alias_bomb_is_refused_with_a_named_error_and_bounded_memory(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_HEAD + "  - id: x\n    annotations:\n" + "".join(
        f"      {line}\n" for line in BOMB.splitlines()))
    tracemalloc.start()
    try:
        with pytest.raises(RuleError, match=r"rules.yaml, line \d+: YAML aliases .* expand to more than 100000"):
            load_rules(str(rules))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, peak


def test_a_few_aliases_such_as_yaml_safe_dump_writes_are_accepted(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_HEAD + "  - &r {id: a, expr: {metric: system.cpu.utilization}, op: '>', threshold: 0.9, "
                                 "severity: warning, labels: &l {team: ops}}\n"
                                 "  - {id: b, expr: {metric: system.cpu.utilization}, op: '>', threshold: 0.95, "
                                 "severity: critical, labels: *l}\n")
    assert [r.labels for r in load_rules(str(path)).rules] == [{"team": "ops"}, {"team": "ops"}]


def test_size_cap_encoding_and_line_numbers(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    with pytest.raises(UserFileError, match=f"larger than {MAX_FILE_BYTES} bytes"):
        load_file(big, "rules file")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"rules:\n  - id: caf\xe9\n")
    with pytest.raises(RuleError, match=r"latin.yaml, line 2: not UTF-8 \(byte 0xe9"):
        load_rules(str(latin))
    with pytest.raises(PriceTableError, match=r"latin.yaml, line 2: not UTF-8"):
        load_prices(str(latin))
    with pytest.raises(TargetError, match=r"latin.yaml, line 2: not UTF-8"):
        load_targets(str(latin))
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES_HEAD + "  - id: ok\n    expr: {metric: system.cpu.utilization}\n    op: '>'\n"
                                "    threshold: 1\n    severity: warning\n"
                                "  - id: late\n    expr: {metric: system.cpu.utilization, window: 99999d}\n"
                                "    op: '>'\n    threshold: 1\n    severity: warning\n"
                                "  - id: endless\n    expr: {metric: system.cpu.utilization}\n"
                                "    op: '>'\n    threshold: .inf\n    severity: warning\n")
    ruleset = load_rules(str(bad), strict=False)
    assert [r.id for r in ruleset.rules] == ["ok"]
    assert ruleset.errors == [f"{bad}, line 10: rule 'late', field 'expr.window': '99999d' is longer than ten years",
                              f"{bad}, line 17: rule 'endless', field 'threshold': inf is not a finite number"]
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 50_000)
    with pytest.raises(RuleError, match="deep.yaml"):
        load_rules(str(deep))


def test_price_file_range_checks(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("llm:\n  my-model: {input: .inf, output: 1}\n")
    with pytest.raises(PriceTableError, match="llm.my-model.input"):
        load_prices(str(path))


# --- targets: strict mode, submodule typos, doctor ---

def test_submodule_typo_is_reported_and_strict_mode_raises(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text("targets:\n  - target: json.decodr:JSONDecoder.decode\n  - target: json.decoder:JSONDecoder.decode\n")
    entries, problems = load_targets(str(path))
    assert [e.target for e in entries] == ["json.decoder:JSONDecoder.decode"]
    assert len(problems) == 1 and "line 2" in problems[0] and "unknown module 'json.decodr'" in problems[0]
    instrumentor = TargetsInstrumentor()
    try:
        with pytest.raises(ConfigError, match="json.decodr.*OTEL_MONITORING_STRICT is on"):
            instrumentor.instrument(targets=str(path), settings=load_settings(environ={"OTEL_MONITORING_STRICT": "1"}))
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


TARGETS_APP = """
import otel_monitoring
m = otel_monitoring.configure(service_name="app", exporter="none", system_metrics=False)
print("STARTED")
m.shutdown()
"""


def test_non_utf8_targets_file_is_named_and_strict_mode_honoured(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_bytes(b"targets:\n  - target: caf\xe9:run\n")
    lenient = run_python(TARGETS_APP, env=clean_env(OTEL_MONITORING_TARGETS=str(path)))
    assert lenient.returncode == 0 and "STARTED" in lenient.stdout, lenient.stderr
    assert f"targets file {path}, line 2: not UTF-8" in lenient.stderr and "Traceback" not in lenient.stderr
    strict = run_python(TARGETS_APP, env=clean_env(OTEL_MONITORING_TARGETS=str(path), OTEL_MONITORING_STRICT="true"))
    assert strict.returncode != 0 and "STARTED" not in strict.stdout
    assert "TargetError" in strict.stderr and "not UTF-8" in strict.stderr


def test_doctor_reports_bad_files_and_variables(tmp_path, monkeypatch, capsys):
    targets = tmp_path / "targets.yaml"
    targets.write_text("targets:\n  - target: json.decodr:JSONDecoder.decode\n")
    monkeypatch.setenv("OTEL_MONITORING_TARGETS", str(targets))
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "-1")
    monkeypatch.setenv("OTEL_MONITORING_FILE_DIR", str(tmp_path / "out"))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert f"PROBLEM: targets file {targets}, line 2, entry 1" in out and "unknown module 'json.decodr'" in out
    assert "PROBLEM: environment variable OTEL_BSP_MAX_QUEUE_SIZE: -1 is below the minimum 1" in out
    assert "All good" not in out


def test_doctor_imports_the_apps_own_modules_from_where_it_runs(tmp_path):
    """Run where the app runs, doctor finds the app's modules (a console script's sys.path lacks
    the current directory) and still names a typo in one."""
    (tmp_path / "mybot").mkdir()
    (tmp_path / "mybot" / "__init__.py").write_text("")
    (tmp_path / "mybot" / "strategy.py").write_text("def decide(signal):\n    return signal\n")
    targets = tmp_path / "targets.yaml"
    targets.write_text("targets:\n  - target: mybot.strategy:decide\n  - target: mybot.strategi:decide\n")
    exe = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    result = subprocess.run([exe, "doctor", "--timeout", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=clean_env(OTEL_MONITORING_TARGETS=str(targets),
                                          OTEL_MONITORING_FILE_DIR=str(tmp_path / "out")))
    assert "unknown module 'mybot.strategi'" in result.stdout, result.stdout + result.stderr
    assert "unknown module 'mybot.strategy'" not in result.stdout


# --- the alert control file ---

CPU_RULE = {"id": "high_cpu", "expr": {"metric": "cpu"}, "op": ">", "threshold": 0.8, "severity": "warning"}


def test_corrupt_control_file_does_not_freeze_alerting(tmp_path, capsys):
    rules = parse_rules({"metrics": {"cpu": {"type": "gauge", "unit": "1"}}, "rules": [CPU_RULE]}).rules
    engine = AlertEngine(rules, control_dir=str(tmp_path))
    hostile = '{"acknowledged": {"high_cpu": Infinity, "x": 1e999}, "silenced": {"high_cpu": 1e300, "y": NaN, "z": -5}}'
    (tmp_path / CONTROL_FILE).write_text(hostile)
    assert read_control(str(tmp_path)) == {"acknowledged": {}, "silenced": {}}
    now = time.time()
    for step in range(3):
        engine.evaluate([Point("cpu", "gauge", "1", {}, value=0.95)], now + step)
        (tmp_path / "alerts.json").write_text(json.dumps(engine.alerts_document(now + step), allow_nan=False))
    document = json.loads((tmp_path / "alerts.json").read_text())
    assert [(a["id"], a["state"], a["silenced_until"]) for a in document["alerts"]] == [("high_cpu", "firing", None)]
    assert main(["alerts", "list", "--dir", str(tmp_path)]) == 0
    assert "high_cpu" in capsys.readouterr().out
    assert main(["alerts", "ack", "high_cpu", "--dir", str(tmp_path)]) == 0
    assert main(["alerts", "silence", "high_cpu", "--for", "1h", "--dir", str(tmp_path)]) == 0
    control = read_control(str(tmp_path))
    assert set(control["acknowledged"]) == {"high_cpu"} and set(control["silenced"]) == {"high_cpu"}
    engine.evaluate([Point("cpu", "gauge", "1", {}, value=0.95)], time.time())
    alert, = engine.alerts_document()["alerts"]
    assert alert["acknowledged"] and alert["silenced_until"]


# --- terminals ---

ESCAPES = "\x1b[2J\x1b]0;pwned\x07\x1b[31m\u202e"


def test_safe_text_escapes_every_control_character():
    assert safe_text(ESCAPES) == "\\x1b[2J\\x1b]0;pwned\\x07\\x1b[31m\\u202e"
    assert safe_text("plain ascii, ünïcode ok") == "plain ascii, ünïcode ok"
    assert all(ch.isprintable() for ch in safe_text("".join(map(chr, range(0x00, 0x100)))))


def test_top_and_alerts_show_escape_sequences_escaped(tmp_path, capsys):
    live = {"schema": 1, "timestamp": "2026-11-30T12:00:00.000Z", "timestamp_unix": time.time(), "interval_s": 5,
            "service": {"name": f"svc{ESCAPES}"}, "units": {},
            "counters": {"otel_monitoring.calls": [
                {"attributes": {"otel_monitoring.component": f"comp{ESCAPES}", "otel_monitoring.operation": f"op{ESCAPES}",
                                "otel_monitoring.outcome": "success"}, "value": 5, "rate_per_s": 1.0}]},
            "gauges": {}, "histograms": {}}
    (tmp_path / "metrics_live.json").write_text(json.dumps(live))
    alert = {"id": f"high_cpu{ESCAPES}", "rule_id": "high_cpu", "name": f"CPU{ESCAPES}", "severity": "warning",
             "state": "firing", "value": 0.9, "threshold": 0.8, "since": "2026-11-30T11:59:00.000Z",
             "acknowledged": False, "silenced_until": None, "labels": {}, "annotations": {"summary": ESCAPES}}
    (tmp_path / "alerts.json").write_text(json.dumps({"schema": 1, "alerts": [alert, "not an alert", {"id": 5}]}))
    assert main(["top", "--once", "--dir", str(tmp_path), "--width", "160"]) == 0
    top = capsys.readouterr().out
    assert main(["alerts", "list", "--dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    for output in (top, listing):
        assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
    assert "\\x1b[2J" in top and "high_cpu\\x1b[2J" in listing


def test_doctor_shows_variables_escaped(monkeypatch, capsys):
    monkeypatch.setenv("OTEL_SERVICE_NAME", f"svc{ESCAPES}")
    main(["doctor", "--timeout", "0.1"])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "svc\\x1b[2J" in out


# --- noise ---

NOISY = """
import logging, otel_monitoring
m = otel_monitoring.configure(service_name="app", exporter="otlp_file", file_dir={dir!r}, system_metrics=False)
log = logging.getLogger("app")
for i in range(50):
    log.warning("with extras", extra={{"order": {{"id": i}}, "obj": object(), "ids": [1, "a"], "ok": 3}})
m.shutdown()
"""


def test_non_primitive_logging_extras_make_no_noise_and_arrive_as_text(tmp_path):
    result = run_python(NOISY.format(dir=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "Invalid type" not in result.stderr
    records = [record for request in read_otlp_file(tmp_path / "logs.jsonl", "logs")
               for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records
               if record.body.string_value == "with extras"]
    assert len(records) == 50
    attrs = {kv.key: kv.value for kv in records[7].attributes}
    assert attrs["order"].string_value == "{'id': 7}" and attrs["ids"].string_value == "[1, 'a']"
    assert attrs["obj"].string_value.startswith("<object object at") and attrs["ok"].int_value == 3


def test_series_cap_warning_has_no_stray_traceback_line(telemetry, caplog, tmp_path, monkeypatch):
    from otel_monitoring.instrumentation.core import MAX_SERIES_PER_TARGET

    name = f"hostile_cap_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text("def trade(symbol):\n    return symbol\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"targets:\n  - target: {name}:trade\n    metric_attributes: {{trading.symbol: symbol}}\n")
    instrumentor = TargetsInstrumentor()
    instrumentor.instrument(targets=str(targets), settings=load_settings(environ={}),
                            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        module = __import__(name)
        with caplog.at_level(logging.WARNING):
            for i in range(MAX_SERIES_PER_TARGET + 5):
                module.trade(f"S{i}")
    finally:
        instrumentor.uninstrument()
    warnings = [r for r in caplog.records if "metric attribute sets" in r.getMessage()]
    assert len(warnings) == 1 and not warnings[0].exc_info
    assert "NoneType: None" not in caplog.text


@pytest.mark.stack
def test_traces_shows_escape_sequences_from_jaeger_escaped(tmp_path):
    import subprocess
    import sys

    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from stackprocs import start_jaeger, wait_until

    jaeger = start_jaeger(tmp_path)
    try:
        service = "hostile-names"
        provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://{jaeger.otlp_grpc_endpoint}",
                                                                        insecure=True)))
        with provider.get_tracer("t").start_as_current_span(f"op{ESCAPES}",
                                                             attributes={"http.route": f"/r{ESCAPES}"}) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
        provider.shutdown()
        wait_until(lambda: (jaeger.trace(trace_id) or {}).get("spans"), timeout=60, what="the trace in Jaeger")
        for args in (["--service", service], ["--service", service, "--last"], [trace_id]):
            done = subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "traces", "--jaeger", jaeger.query_url,
                                   "--width", "160", *args], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "\u202e" not in done.stdout
            assert "op\\x1b[2J" in done.stdout
    finally:
        jaeger.stop()
