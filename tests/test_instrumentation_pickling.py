"""Instrumented callables pickle, copy and deepcopy as the plain ones do, and come back instrumented:
ccxt methods (through the class and bound to an exchange), langchain's BaseChatModel.invoke and an
embeddings model's bound method sent to a real process pool, ``@traced`` functions and methods."""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import pickle

import ccxt
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import BaseChatModel

from otel_monitoring.instrumentation.core import InstrumentedFunction
from otel_monitoring.instrumentation.manual import traced
from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor
from otel_monitoring.instrumentation.trading.ccxt import CcxtInstrumentor


@traced(component="pickling", operation="square")
def square(x: int) -> int:
    return x * x


class Squarer:
    @traced(component="pickling", operation="method")
    def twice(self, x: int) -> int:
        return 2 * x

    @traced(component="pickling", operation="classmethod")
    @classmethod
    def thrice(cls, x: int) -> int:
        return 3 * x


@pytest.fixture
def instrumented(telemetry):
    instrumentors = [CcxtInstrumentor(), LangchainInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield
    for instrumentor in instrumentors:
        instrumentor.uninstrument()


def is_instrumented(function) -> bool:
    return isinstance(function, InstrumentedFunction) or type(function).__name__ == "_BoundWrapper"


def test_ccxt_methods_pickle_and_copy(instrumented):
    assert is_instrumented(ccxt.binance.fetch_ticker)
    through_class = pickle.loads(pickle.dumps(ccxt.binance.fetch_ticker))
    assert is_instrumented(through_class)
    assert through_class.__wrapped__ is ccxt.binance.fetch_ticker.__wrapped__

    exchange = ccxt.binance({"apiKey": "k", "secret": "s"})
    assert copy.copy(exchange.fetch_ticker).__self__ is exchange
    deep = copy.deepcopy(exchange.fetch_ticker)
    assert is_instrumented(deep) and deep.__self__ is not exchange and deep.__self__.apiKey == "k"
    restored = pickle.loads(pickle.dumps(exchange.fetch_ticker))
    assert is_instrumented(restored) and type(restored.__self__) is ccxt.binance


def test_langchain_invoke_pickles(instrumented):
    assert is_instrumented(BaseChatModel.invoke)
    restored = pickle.loads(pickle.dumps(BaseChatModel.invoke))
    assert is_instrumented(restored)
    assert restored.__wrapped__ is BaseChatModel.invoke.__wrapped__


def test_bound_embeddings_method_runs_in_a_process_pool(instrumented, telemetry):
    embeddings = DeterministicFakeEmbedding(size=8)
    assert is_instrumented(embeddings.embed_query)
    expected = embeddings.embed_query("x")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(embeddings.embed_query, "x").result(timeout=120) == expected


def test_traced_functions_and_methods_pickle_and_copy(telemetry):
    assert pickle.loads(pickle.dumps(square)) is square
    assert copy.copy(square) is square and copy.deepcopy(square) is square
    squarer = Squarer()
    restored = pickle.loads(pickle.dumps(squarer.twice))
    assert is_instrumented(restored) and restored(4) == 8
    assert pickle.loads(pickle.dumps(Squarer.thrice))(4) == 12
    assert copy.deepcopy(squarer.twice)(5) == 10
    # Calls through what came back are traced like the originals.
    before = len(telemetry.spans())
    pickle.loads(pickle.dumps(square))(3)
    restored(1)
    names = [span.name for span in telemetry.spans()[before:]]
    assert names == ["pickling.square", "pickling.method"]


def test_local_functions_fail_as_they_would_without_instrumentation():
    @traced(component="pickling", operation="local")
    def local(x):
        return x

    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(local)


def test_traced_function_goes_through_process_pool_map():
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert list(pool.map(square, range(10))) == [x * x for x in range(10)]
