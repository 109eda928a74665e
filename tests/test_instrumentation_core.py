"""The wrapper core and the manual API: spans, RED metrics, call shapes, errors, suppression, restore."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

import otel_monitoring
from otel_monitoring.instrumentation import core
from otel_monitoring.instrumentation.core import Operation, Patcher, Telemetry


def points(telemetry, name):
    return {tuple(sorted(p.attributes.items())): p for p in telemetry.metrics().get(name, [])}


def red(telemetry, component, operation, outcome="success", error_type=None):
    """(histogram count, calls) for one series."""
    key = {"domain": "custom", "component": component, "operation": operation, "outcome": outcome}
    if error_type:
        key["error.type"] = error_type
    key = tuple(sorted(key.items()))
    histogram = points(telemetry, "otel_monitoring.operation.duration").get(key)
    calls = points(telemetry, "otel_monitoring.operation.calls").get(key)
    return (histogram.count if histogram else 0), (calls.value if calls else 0)


class Book:
    @otel_monitoring.traced("book", "method")
    def method(self, x):
        return x * 2

    @otel_monitoring.traced("book", "klass")
    @classmethod
    def klass(cls):
        return cls

    @otel_monitoring.traced("book", "static")
    @staticmethod
    def static(x):
        return x + 1

    @otel_monitoring.traced("book", "stream")
    def stream(self, n):
        for i in range(n):
            yield i

    @otel_monitoring.traced("book", "astream")
    async def astream(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @otel_monitoring.traced("book", "coroutine")
    async def coroutine(self, x):
        await asyncio.sleep(0)
        return x


def test_every_call_shape_gives_one_span_and_red_metrics(telemetry):
    book = Book()
    assert book.method(2) == 4
    assert Book.klass() is Book and book.klass() is Book
    assert Book.static(1) == 2 and book.static(1) == 2
    assert list(book.stream(3)) == [0, 1, 2]

    async def run():
        assert [i async for i in book.astream(2)] == [0, 1]
        assert await book.coroutine(5) == 5

    asyncio.run(run())
    names = sorted(span.name for span in telemetry.spans())
    assert names == sorted(["book.method", "book.klass", "book.klass", "book.static", "book.static",
                            "book.stream", "book.astream", "book.coroutine"])
    span = next(s for s in telemetry.spans() if s.name == "book.method")
    assert span.attributes["otel_monitoring.component"] == "book"
    assert span.attributes["otel_monitoring.operation"] == "method"
    assert span.status.status_code is StatusCode.UNSET
    assert red(telemetry, "book", "static") == (2, 2)
    assert red(telemetry, "book", "stream") == (1, 1)
    duration = points(telemetry, "otel_monitoring.operation.duration")
    any_point = next(iter(duration.values()))
    assert list(any_point.explicit_bounds)[:3] == [0.0005, 0.001, 0.0025]


def test_user_exception_propagates_unchanged_and_marks_the_span(telemetry):
    error = KeyError("missing")

    @otel_monitoring.traced("risk", "check")
    def check():
        raise error

    with pytest.raises(KeyError) as raised:
        check()
    assert raised.value is error
    assert raised.traceback[-1].name == "check"  # the user's frame is still where it was raised
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "KeyError"
    assert [event.name for event in span.events] == ["exception"]
    assert red(telemetry, "risk", "check", "error", "KeyError") == (1, 1)
    errors = points(telemetry, "otel_monitoring.operation.errors")
    assert [p.value for p in errors.values()] == [1]


def test_nested_calls_are_parent_and_child_and_the_context_is_restored(telemetry):
    @otel_monitoring.traced("pipeline", "inner")
    def inner():
        return trace.get_current_span()

    @otel_monitoring.traced("pipeline", "outer")
    def outer():
        return inner()

    before = otel_context.get_current()
    inner_span = outer()
    assert otel_context.get_current() == before
    spans = {s.name: s for s in telemetry.spans()}
    assert spans["pipeline.inner"].parent.span_id == spans["pipeline.outer"].context.span_id
    assert inner_span.get_span_context().span_id == spans["pipeline.inner"].context.span_id


def test_context_manager_sync_and_async(telemetry):
    with otel_monitoring.traced("risk", "limits") as span:
        span.set_attribute("trading.symbol", "BTC/USDT")
    with pytest.raises(ValueError):
        with otel_monitoring.traced("risk", "limits"):
            raise ValueError("over the limit")

    async def run():
        async with otel_monitoring.traced("risk", "async_limits"):
            await asyncio.sleep(0)

    asyncio.run(run())
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["risk.limits", "risk.limits", "risk.async_limits"]
    assert spans[0].attributes["trading.symbol"] == "BTC/USDT"
    assert spans[1].status.status_code is StatusCode.ERROR
    assert red(telemetry, "risk", "limits") == (1, 1)


def test_streams_end_when_exhausted_or_closed_without_detach_errors(telemetry, caplog):
    book = Book()
    caplog.set_level(logging.ERROR, logger="opentelemetry.context")
    stream = book.stream(10)
    assert next(stream) == 0
    stream.close()  # closed early
    # Started in one thread, finished and garbage-collected in another context.
    stream = book.stream(5)
    next(stream)
    worker = threading.Thread(target=lambda: list(stream))
    worker.start()
    worker.join()
    unstarted = book.stream(3)  # never iterated: no span, nothing leaks
    del unstarted

    async def run():
        agen = book.astream(10)
        assert await agen.__anext__() == 0
        await agen.aclose()

    asyncio.run(run())
    gc.collect()
    assert [s.name for s in telemetry.spans()] == ["book.stream", "book.stream", "book.astream"]
    assert all(s.status.status_code is StatusCode.UNSET for s in telemetry.spans())
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]


def test_a_failing_stream_marks_its_span(telemetry):
    @otel_monitoring.traced("feed", "ticks")
    def ticks():
        yield 1
        raise ConnectionError("feed dropped")

    with pytest.raises(ConnectionError):
        list(ticks())
    (span,) = telemetry.spans()
    assert span.attributes["error.type"] == "ConnectionError"


def test_suppressed_calls_are_not_traced(telemetry):
    @otel_monitoring.traced("exporter", "send")
    def send():
        return "sent"

    with suppress_instrumentation():
        assert send() == "sent"
    assert telemetry.spans() == []
    assert red(telemetry, "exporter", "send") == (0, 0)


def test_instrumentation_failure_is_logged_once_and_the_call_proceeds(telemetry, caplog):
    def broken_attributes(instance, args, kwargs):
        raise RuntimeError("bad extractor")

    operation = Operation(domain="custom", component="calc", operation="add", call_attributes=broken_attributes)
    add = core.wrap(lambda a, b: a + b, operation, Telemetry("test", telemetry.tracer_provider, telemetry.meter_provider))
    caplog.set_level(logging.DEBUG, logger="otel_monitoring.instrumentation")
    assert add(1, 2) == 3
    assert add(2, 2) == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "calc.add" in warnings[0].getMessage()
    assert [s.name for s in telemetry.spans()] == ["calc.add", "calc.add"]  # the spans survive, ended


def test_nesting_key_gives_one_span_for_an_override_calling_super(telemetry):
    class Base:
        def fetch(self):
            return "base"

    class Child(Base):
        def fetch(self):
            return "child+" + super().fetch()

    telemetry_source = Telemetry("test", telemetry.tracer_provider, telemetry.meter_provider)
    patcher = Patcher()
    for owner in (Base, Child):
        patcher.wrap(owner, "fetch", Operation(domain="trading", component="x", operation="fetch",
                                                nesting_key="x.fetch"), telemetry_source)
    assert Child().fetch() == "child+base"
    assert len(telemetry.spans()) == 1
    patcher.restore()


def test_patcher_restores_the_exact_originals():
    class Target:
        def method(self):
            return 1

        @classmethod
        def klass(cls):
            return 2

        @staticmethod
        def static():
            return 3

    class Sub(Target):
        pass

    before = {name: Target.__dict__[name] for name in ("method", "klass", "static")}
    patcher = Patcher()
    telemetry_source = core.GlobalTelemetry("test")
    for name in before:
        assert patcher.wrap(Target, name, Operation(domain="custom", component="t", operation=name), telemetry_source)
    assert patcher.wrap(Sub, "method", Operation(domain="custom", component="t", operation="m"),
                        telemetry_source, inherited=Target.__dict__["method"].__wrapped__)
    assert Target.__dict__["method"] is not before["method"]
    assert (Target().method(), Target.klass(), Target.static(), Sub().method()) == (1, 2, 3, 1)
    patcher.restore()
    assert all(Target.__dict__[name] is original for name, original in before.items())
    assert "method" not in Sub.__dict__


def test_record_operation_records_metrics_and_a_span(telemetry, caplog):
    otel_monitoring.record_operation("feed", "reconnect", 1.5, success=False, error_type="TimeoutError", venue="binance")
    otel_monitoring.record_operation("feed", "reconnect", 0.25, venue="binance")
    otel_monitoring.record_operation("feed", "reconnect", -1)  # bad input: logged, not raised
    (failed, ok) = telemetry.spans()
    assert failed.status.status_code is StatusCode.ERROR and failed.attributes["error.type"] == "TimeoutError"
    assert (failed.end_time - failed.start_time) == pytest.approx(1.5e9, rel=1e-6)
    duration = points(telemetry, "otel_monitoring.operation.duration")
    ok_point = duration[tuple(sorted({"domain": "custom", "component": "feed", "operation": "reconnect",
                                      "venue": "binance", "outcome": "success"}.items()))]
    assert ok_point.sum == pytest.approx(0.25)
    assert any("duration_s" in r.getMessage() for r in caplog.records)


def test_traced_rejects_bad_names():
    with pytest.raises(TypeError):
        otel_monitoring.traced("", "op")
    with pytest.raises(ValueError):
        otel_monitoring.traced("a", "b", domain="finance")


def test_error_types_per_series_are_bounded(telemetry):
    @otel_monitoring.traced("chaos", "raise")
    def raise_(kind):
        raise type(f"Error{kind}", (Exception,), {})()

    for kind in range(core.MAX_ERROR_TYPES_PER_SERIES + 5):
        with pytest.raises(Exception):  # noqa: B017 - each call raises a new subclass
            raise_(kind)
    types = {p.attributes.get("error.type") for p in telemetry.metrics()["otel_monitoring.operation.errors"]}
    assert len(types) == core.MAX_ERROR_TYPES_PER_SERIES + 1 and core.OTHER_ERROR_TYPE in types


def test_without_an_sdk_decorated_calls_go_straight_through():
    from support import reset_otel_globals

    reset_otel_globals()  # no provider set: the API's proxies, as with OTEL_SDK_DISABLED

    @otel_monitoring.traced("plain", "call")
    def call(x):
        return trace.get_current_span()

    assert call(1) is trace.INVALID_SPAN
    with otel_monitoring.traced("plain", "block") as span:
        assert span is trace.INVALID_SPAN
    otel_monitoring.record_operation("plain", "measured", 0.1)


def test_the_component_enables_installed_instrumentors_except_disabled_ones(telemetry):
    import chromadb  # noqa: F401 - imported, so the component enables their instrumentors at start
    import langchain_core  # noqa: F401 - as above
    from otel_monitoring.config import load_settings
    from otel_monitoring.instrumentation import InstrumentationComponent
    from otel_monitoring.instrumentation.trading.ccxt import CcxtInstrumentor
    from otel_monitoring.sdk import Monitoring

    settings = load_settings({"disabled_instrumentations": "otel_monitoring_ccxt,otel_monitoring_api,"
                                                           "otel_monitoring_genai_clients,otel_monitoring_storage"})
    monitoring = Monitoring(settings, telemetry.tracer_provider, telemetry.meter_provider, telemetry.logger_provider)
    component = InstrumentationComponent(settings)
    component.start(monitoring)
    try:
        enabled = {type(i).__name__ for i in component.enabled}
        assert enabled == {"LangchainInstrumentor", "ChromadbInstrumentor", "TargetsInstrumentor"}
        assert not CcxtInstrumentor().is_instrumented_by_opentelemetry
    finally:
        component.shutdown()
    assert component.enabled == []
    from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor

    assert not LangchainInstrumentor().is_instrumented_by_opentelemetry
    off = InstrumentationComponent(load_settings({"instrument": False}))
    off.start(monitoring)
    assert off.enabled == []


def test_calls_made_before_configure_do_not_hide_later_metrics():
    from support import make_telemetry, reset_otel_globals

    reset_otel_globals()

    @otel_monitoring.traced("early", "call")
    def call():
        return 1

    call()  # before any SDK: straight through, and no instruments left behind on the API's proxies
    later = make_telemetry()
    try:
        call()
        calls = [p for p in later.metrics()["otel_monitoring.operation.calls"] if p.attributes["component"] == "early"]
        assert [p.value for p in calls] == [1]
        assert [s.name for s in later.spans()] == ["early.call"]
    finally:
        later.tracer_provider.shutdown()
        later.meter_provider.shutdown()
        reset_otel_globals()


def test_coroutine_errors_and_generator_send_throw_pass_through(telemetry):
    error = TimeoutError("exchange slow")

    @otel_monitoring.traced("feed", "poll")
    async def poll():
        await asyncio.sleep(0)
        raise error

    @otel_monitoring.traced("feed", "echo")
    def echo():
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except ValueError:
                received = "recovered"

    async def run():
        with pytest.raises(TimeoutError) as raised:
            await poll()
        assert raised.value is error

    asyncio.run(run())
    stream = echo()
    assert next(stream) == "ready"
    assert stream.send("a") == "got a"
    assert stream.throw(ValueError("handled inside")) == "got recovered"
    stream.close()
    poll_span, echo_span = telemetry.spans()
    assert poll_span.attributes["error.type"] == "TimeoutError"
    assert echo_span.status.status_code is StatusCode.UNSET


def test_disabled_sdk_calls_read_no_global_state(monkeypatch):
    """OTEL_SDK_DISABLED=true (the user's path: no providers set): after the first call a
    decorated function neither asks the API for its providers nor reads the environment."""
    from support import reset_otel_globals
    from otel_monitoring.instrumentation import core

    reset_otel_globals()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    core.refresh_globals()

    @otel_monitoring.traced("plain", "disabled")
    def call(x):
        return trace.get_current_span(), x

    assert call(1) == (trace.INVALID_SPAN, 1)
    asked = []
    monkeypatch.setattr(core.trace, "get_tracer_provider", lambda: asked.append("tracer"))
    monkeypatch.setattr(core.metrics, "get_meter_provider", lambda: asked.append("meter"))
    monkeypatch.setattr(core, "_sdk_disabled", lambda: asked.append("environment"))
    for x in range(5):
        assert call(x) == (trace.INVALID_SPAN, x)
    assert asked == []
    monkeypatch.undo()
    reset_otel_globals()


def test_unset_providers_are_not_looked_up_per_call(monkeypatch):
    """Before configure(): one lookup when the wrapper first runs, then only when a provider is set."""
    from support import reset_otel_globals
    from otel_monitoring.instrumentation import core

    reset_otel_globals()

    @otel_monitoring.traced("plain", "unset")
    def call():
        return trace.get_current_span()

    assert call() is trace.INVALID_SPAN
    asked = []
    real = core.trace.get_tracer_provider
    monkeypatch.setattr(core.trace, "get_tracer_provider", lambda: asked.append(1) or real())
    for _ in range(5):
        call()
    assert asked == []
    monkeypatch.undo()
    reset_otel_globals()

