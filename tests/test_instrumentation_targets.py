"""The targets file: the user's own functions traced by name, applied when their module is imported,
through configure() and through opentelemetry-instrument; bad entries named with the fix."""

from __future__ import annotations

import itertools
import os
import sys
import textwrap

import pytest
from opentelemetry.trace import SpanKind

from otel_monitoring.config import ConfigError, load_settings
from otel_monitoring.instrumentation.targets import TargetsInstrumentor
from support import clean_env, read_otlp_file, run_python, spans_from_requests, attributes

_numbers = itertools.count()

BOT_SOURCE = '''
class Strategy:
    exchange_id = "binance"

    def decide(self, symbol, prices, risk=1.0):
        side = "buy" if prices[-1] > prices[0] else "sell"
        return {"side": side, "size": 0.01 * risk}

    @staticmethod
    def normalise(symbol):
        return symbol.upper()


def fetch_prices(symbol, limit=3):
    if limit <= 0:
        raise ValueError("limit must be positive")
    return [1.0, 2.0, 3.0][:limit]
'''


def write_module(tmp_path, monkeypatch) -> str:
    name = f"instr_bot_{next(_numbers)}_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(BOT_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def write_targets(tmp_path, text: str) -> str:
    path = tmp_path / "targets.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def targets_for(module: str) -> str:
    return f"""
    targets:
      - target: {module}:Strategy.decide
        domain: trading
        kind: internal
        attributes:
          trading.symbol: symbol
          trading.signal.side: result.side
          trading.signal.size: result["size"]
        metric_attributes:
          trading.exchange: self.exchange_id
      - target: {module}:Strategy.normalise
      - target: {module}:fetch_prices
        component: market_data
        attributes:
          trading.symbol: symbol
    """


@pytest.fixture
def instrumentor():
    created = TargetsInstrumentor()
    yield created
    if created.is_instrumented_by_opentelemetry:
        created.uninstrument()


def test_entries_apply_to_a_module_imported_later(telemetry, tmp_path, monkeypatch, instrumentor):
    module_name = write_module(tmp_path, monkeypatch)
    path = write_targets(tmp_path, targets_for(module_name))
    instrumentor.instrument(targets=path, settings=load_settings(), tracer_provider=telemetry.tracer_provider,
                            meter_provider=telemetry.meter_provider)
    assert module_name not in sys.modules
    module = __import__(module_name)  # imported after instrument(): the post-import hook applies the entries
    strategy = module.Strategy()
    assert strategy.decide("BTC/USDT", [1.0, 2.0]) == {"side": "buy", "size": 0.01}
    assert module.Strategy.normalise("btc") == "BTC"
    with pytest.raises(ValueError):
        module.fetch_prices("ETH/USDT", limit=0)
    assert instrumentor.problems == []
    decide, normalise, fetch = telemetry.spans()
    assert decide.name == "Strategy.decide" and decide.kind is SpanKind.INTERNAL
    assert decide.attributes["trading.symbol"] == "BTC/USDT"
    assert decide.attributes["trading.signal.side"] == "buy"
    assert decide.attributes["trading.signal.size"] == 0.01
    assert decide.attributes["code.function.name"] == f"{module_name}.Strategy.decide"
    assert normalise.name == "Strategy.normalise"
    assert fetch.name == "market_data.fetch_prices" and fetch.attributes["error.type"] == "ValueError"
    duration = {p.attributes["operation"]: p for p in telemetry.metrics()["otel_monitoring.operation.duration"]}
    assert duration["decide"].attributes["trading.exchange"] == "binance"
    assert duration["decide"].attributes["domain"] == "trading"
    original = vars(module.Strategy)["decide"].__wrapped__
    instrumentor.uninstrument()
    assert vars(module.Strategy)["decide"] is original
    assert isinstance(vars(module.Strategy)["normalise"], staticmethod)


def test_bad_entries_are_named_and_skipped(telemetry, tmp_path, monkeypatch, instrumentor, caplog):
    module_name = write_module(tmp_path, monkeypatch)
    path = write_targets(tmp_path, f"""
    targets:
      - target: no_such_package_xyz.mod:run
      - target: {module_name}:Strategy.missing
      - target: {module_name}:fetch_prices
        attributes:
          trading.symbol: sym
      - target: {module_name}:fetch_prices
        attributes:
          trading.symbol: "symbol..x"
      - target: "not a target"
      - target: {module_name}:fetch_prices
        metric_attributes:
          trading.side: result.side
      - target: {module_name}:Strategy.decide
    """)
    instrumentor.instrument(targets=path, settings=load_settings(), tracer_provider=telemetry.tracer_provider,
                            meter_provider=telemetry.meter_provider)
    module = __import__(module_name)
    module.Strategy().decide("BTC/USDT", [2.0, 1.0])  # the good entry still works
    problems = instrumentor.problems
    assert len(problems) == 6, problems
    # All found at start-up, the module's source read but not imported, and reported in file order.
    expected = [
        ("line 3, entry 1", "unknown module 'no_such_package_xyz.mod'"),
        ("line 4, entry 2", "has no attribute 'missing'"),
        ("line 5, entry 3", "'sym' names no parameter"),
        ("line 8, entry 4", "bad expression"),
        ("line 11, entry 5", "not 'package.module:Class.method'"),
        ("line 12, entry 6", "metric attributes come from the call's arguments only"),
    ]
    for (entry, text), message in zip(expected, problems):
        assert entry in message and text in message and path in message and "Fix:" in message, message
    assert [s.name for s in telemetry.spans()] == ["Strategy.decide"]
    assert any("entry 2" in r.getMessage() for r in caplog.records)


def test_strict_mode_raises(telemetry, tmp_path, instrumentor):
    path = write_targets(tmp_path, "targets:\n  - target: no_such_package_xyz:run\n")
    with pytest.raises(ConfigError, match="entry 1"):
        instrumentor.instrument(targets=path, settings=load_settings({"targets_strict": True}),
                                tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)


def test_a_missing_file_is_reported_not_raised(telemetry, tmp_path, instrumentor):
    instrumentor.instrument(targets=str(tmp_path / "absent.yaml"), settings=load_settings(),
                            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    assert "cannot be read" in instrumentor.problems[0]


APP = """
import {module} as bot
print(bot.Strategy().decide("BTC/USDT", [1.0, 2.0])["side"])
{after}
"""


def _span_names(directory) -> dict[str, dict]:
    requests = read_otlp_file(os.path.join(directory, "traces.jsonl"), "traces")
    return {span.name: attributes(span.attributes) for _, _, span in spans_from_requests(requests)}


def test_configure_applies_the_targets_file(tmp_path, monkeypatch):
    module_name = write_module(tmp_path, monkeypatch)
    path = write_targets(tmp_path, targets_for(module_name))
    code = APP.format(module=module_name, after="")
    code = ("import otel_monitoring\nm = otel_monitoring.configure(service_name='t', exporter='otlp_file', "
            f"file_dir={str(tmp_path / 'out')!r}, targets={path!r})\n{code}\nm.shutdown()\n")
    result = run_python(code, env=clean_env(PYTHONPATH=str(tmp_path)), cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "buy"
    spans = _span_names(tmp_path / "out")
    assert spans["Strategy.decide"]["trading.symbol"] == "BTC/USDT"


def test_opentelemetry_instrument_loads_targets_and_ccxt_entry_points(tmp_path, monkeypatch):
    module_name = write_module(tmp_path, monkeypatch)
    path = write_targets(tmp_path, targets_for(module_name))
    after = textwrap.dedent("""
        import ccxt
        from otel_monitoring.examples.exchange_stub import ExchangeStub, point_ccxt_at
        with ExchangeStub() as stub:
            exchange = point_ccxt_at(ccxt.binance({"enableRateLimit": False}), stub.url)
            exchange.fetch_ticker("BTC/USDT")
        from opentelemetry import trace
        trace.get_tracer_provider().force_flush()
        import chromadb, langchain_core  # instrumentors attach when their library is imported
        from otel_monitoring.instrumentation.rag.chromadb import ChromadbInstrumentor
        from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor
        print("chromadb", ChromadbInstrumentor().is_instrumented_by_opentelemetry,
              "langchain", LangchainInstrumentor().is_instrumented_by_opentelemetry)
        import os
        print(os.environ["OTEL_PYTHON_EXCLUDED_URLS"])  # set by our pre-instrument hook
    """)
    instrument = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    env = clean_env(PYTHONPATH=str(tmp_path), OTEL_MONITORING_TARGETS=path, OTEL_TRACES_EXPORTER="otlp_file",
                    OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                    OTEL_MONITORING_FILE_DIR=str(tmp_path / "out"), OTEL_SERVICE_NAME="bot",
                    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="otel_monitoring_chromadb")
    result = run_python(APP.format(module=module_name, after=after), env=env, args=[instrument, sys.executable],
                        cwd=str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[:5] == ["buy", "chromadb", "False", "langchain", "True"]  # disabled by name
    assert lines[5] == load_settings().excluded_urls  # the contrib HTTP instrumentations skip health probes
    spans = _span_names(tmp_path / "out")
    assert spans["Strategy.decide"]["trading.signal.side"] == "buy"
    assert spans["ccxt.fetch_ticker"]["trading.exchange"] == "binance"
