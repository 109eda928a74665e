"""A whole targets file that cannot be used is said to be ignored, with the fix; strict mode refuses at
configure() what the application's sources prove wrong, without importing them (raising later, in
the application's own import, would break it); `doctor` lists the same. Real processes throughout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from support import clean_env, run_python

CLI = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")

FEEDS = '''
print("FEEDS MODULE IMPORTED")


def fetch_prices(symbol, limit=3):
    return [1.0, 2.0, 3.0][:limit]


class Base:
    def inherited(self, symbol):
        return symbol


class Strategy(Base):
    def decide(self, symbol):
        return "buy"
'''

CONFIGURE = """
import sys
import otel_monitoring
from otel_monitoring.config import ConfigError
try:
    otel_monitoring.configure(service_name="t", exporter="none", system_metrics=False)
except ConfigError as error:
    print("REFUSED:", error)
print("imported by configure:", "strictapp.feeds" in sys.modules)
"""


def _app(tmp_path, targets: str) -> dict[str, str]:
    package = tmp_path / "strictapp"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "feeds.py").write_text(FEEDS)
    (tmp_path / "targets.yaml").write_text(textwrap.dedent(targets))
    # The app's directory first, before whatever put this checkout on the path.
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)
    return clean_env(PYTHONPATH=path, OTEL_MONITORING_TARGETS=str(tmp_path / "targets.yaml"))


def test_a_missing_or_invalid_file_is_ignored_whole_and_says_how_to_fix(tmp_path):
    for name, text in (("absent.yaml", None), ("broken.yaml", "targets: [\n  - target: a:b\n")):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        done = run_python(CONFIGURE, env=clean_env(OTEL_MONITORING_TARGETS=str(path)), cwd=str(tmp_path))
        assert done.returncode == 0, done.stderr
        (line,) = [line for line in done.stderr.splitlines() if "targets file" in line]
        assert name in line and "Fix:" in line and "The whole targets file is ignored" in line, line
        assert "entry is skipped" not in line, line


def test_strict_refuses_a_misspelled_function_found_in_the_source_without_importing_it(tmp_path):
    env = _app(tmp_path, """
        targets:
          - target: strictapp.feeds:fetch_pricez
    """)
    done = run_python(CONFIGURE, env=dict(env, OTEL_MONITORING_STRICT="true"), cwd=str(tmp_path))
    assert "REFUSED: targets file" in done.stdout, done.stdout + done.stderr
    assert "strictapp.feeds has no attribute 'fetch_pricez'" in done.stdout
    assert "imported by configure: False" in done.stdout and "FEEDS MODULE IMPORTED" not in done.stdout


def test_strict_refuses_an_attribute_naming_no_parameter(tmp_path):
    env = _app(tmp_path, """
        targets:
          - target: strictapp.feeds:Strategy.decide
            attributes:
              trading.symbol: sym
    """)
    done = run_python(CONFIGURE, env=dict(env, OTEL_MONITORING_TARGETS_STRICT="true"), cwd=str(tmp_path))
    assert "'sym' names no parameter of Strategy.decide (parameters: symbol)" in done.stdout, done.stdout + done.stderr
    assert "imported by configure: False" in done.stdout


def test_strict_accepts_what_only_the_import_can_settle_and_applies_it(tmp_path):
    """An inherited method is not in the class's own source: not refused at start-up, wrapped at import."""
    env = _app(tmp_path, """
        targets:
          - target: strictapp.feeds:Strategy.inherited
            attributes:
              trading.symbol: symbol
          - target: strictapp.feeds:fetch_prices
    """)
    done = run_python(CONFIGURE + textwrap.dedent("""
        from strictapp import feeds
        print(feeds.Strategy().inherited("BTC/USDT"), feeds.fetch_prices("X"))
        from otel_monitoring.instrumentation.targets import TargetsInstrumentor
        print("applied:", sorted(TargetsInstrumentor().applied))
    """), env=dict(env, OTEL_MONITORING_STRICT="true"), cwd=str(tmp_path))
    assert "REFUSED" not in done.stdout, done.stdout + done.stderr
    assert "applied: ['strictapp.feeds:Strategy.inherited', 'strictapp.feeds:fetch_prices']" in done.stdout, done.stdout


def test_doctor_lists_what_the_source_proves_wrong(tmp_path):
    env = _app(tmp_path, """
        targets:
          - target: strictapp.feeds:fetch_pricez
          - target: strictapp.feeds:fetch_prices
            attributes:
              trading.symbol: sym
    """)
    done = subprocess.run([CLI, "doctor"], env=dict(env, OTEL_MONITORING_FILE_DIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    problems = [line for line in done.stdout.splitlines() if "PROBLEM: targets file" in line]
    assert len(problems) == 2, done.stdout
    assert "has no attribute 'fetch_pricez'" in problems[0] and "'sym' names no parameter" in problems[1]
    assert "FEEDS MODULE IMPORTED" not in done.stdout


# Four bad entries of four kinds between good ones: found by parsing the entry (a plain value, the
# result in a metric attribute), looking for the module, and reading its source.
MIXED = """
    targets:
      - target: strictapp.feeds:fetch_prices
      - target: strictapp.feeds:fetch_pricez
      - "not a target"
      - target: strictapp.feeds:Strategy.decide
        metric_attributes:
          trading.side: result.side
      - target: strictapp.feeds:Strategy.decide
      - target: no_such_package_xyz.mod:run
"""
MIXED_PROBLEMS = [  # (where, what) in file order
    ("line 4, entry 2 (strictapp.feeds:fetch_pricez)", "strictapp.feeds has no attribute 'fetch_pricez'"),
    ("line 5, entry 3 (not a target)", "target 'not a target' is not 'package.module:Class.method'"),
    ("line 6, entry 4 (strictapp.feeds:Strategy.decide)", "metric attribute 'trading.side' reads the result"),
    ("line 10, entry 6 (no_such_package_xyz.mod:run)", "unknown module 'no_such_package_xyz.mod'"),
]


def _in_order(lines: list[str], source: str) -> None:
    assert len(lines) == len(MIXED_PROBLEMS), lines
    for line, (where, what) in zip(lines, MIXED_PROBLEMS):
        assert f"targets file {source}, {where}: {what}" in line and "Fix:" in line, line


def test_every_problem_of_the_file_is_reported_in_file_order_and_strict_mode_raises_them_all(tmp_path):
    env = _app(tmp_path, MIXED)
    source = env["OTEL_MONITORING_TARGETS"]
    # Strict: one error carrying all four, in file order, before anything of the app is imported.
    done = run_python(CONFIGURE, env=dict(env, OTEL_MONITORING_TARGETS_STRICT="true"), cwd=str(tmp_path))
    assert f"REFUSED: 4 problems in targets file {source}, in file order:" in done.stdout, done.stdout + done.stderr
    _in_order([line for line in done.stdout.splitlines() if line.startswith("  - ")], source)
    assert "imported by configure: False" in done.stdout and "FEEDS MODULE IMPORTED" not in done.stdout
    # Otherwise each is logged once, in the same order, and the good entries are applied.
    done = run_python(CONFIGURE + textwrap.dedent("""
        from strictapp import feeds
        from otel_monitoring.instrumentation.targets import TargetsInstrumentor
        print("applied:", TargetsInstrumentor().applied)
    """), env=env, cwd=str(tmp_path))
    assert "REFUSED" not in done.stdout, done.stdout + done.stderr
    _in_order([line for line in done.stderr.splitlines() if "targets file" in line], source)
    assert "applied: ['strictapp.feeds:fetch_prices', 'strictapp.feeds:Strategy.decide']" in done.stdout, done.stdout
    # doctor lists the same, in the same order.
    doctor = subprocess.run([CLI, "doctor"], env=dict(env, OTEL_MONITORING_FILE_DIR=str(tmp_path)),
                            capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    _in_order([line for line in doctor.stdout.splitlines() if "PROBLEM: targets file" in line], source)


def test_strict_mode_leaves_nothing_applied_when_it_refuses(tmp_path):
    """configure() raised: no entry of the file wraps a function now or at a later import."""
    env = _app(tmp_path, MIXED)
    done = run_python(CONFIGURE + textwrap.dedent("""
        from strictapp import feeds
        print("wrapped:", hasattr(feeds.fetch_prices, "__wrapped__"), hasattr(feeds.Strategy.decide, "__wrapped__"))
    """), env=dict(env, OTEL_MONITORING_STRICT="true"), cwd=str(tmp_path))
    assert "REFUSED: 4 problems" in done.stdout, done.stdout + done.stderr
    assert "wrapped: False False" in done.stdout, done.stdout
