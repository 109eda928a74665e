"""Instrumentors attach whatever the order of configure() and the application's imports, from any
thread, and under opentelemetry-instrument nothing is imported that the program does not import.

Each case is a fresh interpreter importing one library: before configure(), after it (the order the
README shows, which once left FastAPI half-imported when starlette's import hook fired), after it in
another thread, and under opentelemetry-instrument with no configure() at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from support import REPO, clean_env

BIN = os.path.dirname(sys.executable)

# library -> (the application's import, the instrumentor that must be attached afterwards)
LIBRARIES = {
    # A FastAPI with its own telemetry gets our defaults on FastAPI.__init__ instead of the contrib
    # instrumentor (one server span per request either way); an older one gets the contrib one.
    "fastapi": ("from fastapi import FastAPI", "fastapi"),
    "requests": ("import requests", "opentelemetry.instrumentation.requests:RequestsInstrumentor"),
    "httpx": ("import httpx", "opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor"),
    "aiohttp": ("import aiohttp", "opentelemetry.instrumentation.aiohttp_client:AioHttpClientInstrumentor"),
    "langchain_core": ("from langchain_core.language_models import BaseChatModel",
                       "otel_monitoring.instrumentation.rag.langchain:LangchainInstrumentor"),
    "chromadb": ("import chromadb", "otel_monitoring.instrumentation.rag.chromadb:ChromadbInstrumentor"),
    "ccxt": ("import ccxt", "otel_monitoring.instrumentation.trading.ccxt:CcxtInstrumentor"),
    "openai": ("import openai", "opentelemetry.instrumentation.openai_v2:OpenAIInstrumentor"),
}
HEAVY = tuple(LIBRARIES)

PROGRAM = """
import importlib, sys, threading
MODE = {mode!r}
HEAVY = {heavy!r}

def attached():
    if {instrumentor!r} == "fastapi":
        import wrapt, fastapi.applications
        from otel_monitoring.instrumentation.api import fastapi_has_native_telemetry
        if fastapi_has_native_telemetry():
            return isinstance(vars(fastapi.applications.FastAPI)["__init__"], wrapt.FunctionWrapper)
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        return FastAPIInstrumentor().is_instrumented_by_opentelemetry
    module, _, name = {instrumentor!r}.partition(":")
    return getattr(importlib.import_module(module), name)().is_instrumented_by_opentelemetry

def app_import():
    {statement}

if MODE == "before":
    app_import()
if MODE != "instrument":
    import otel_monitoring
    otel_monitoring.configure(service_name="import-order")
preloaded = [m for m in HEAVY if m in sys.modules]
if MODE in ("after", "instrument"):
    app_import()
elif MODE == "thread":
    worker = threading.Thread(target=app_import)
    worker.start()
    worker.join()
print("preloaded", preloaded if MODE != "before" else [])
print("attached", attached())
"""


@pytest.mark.parametrize("mode", ["before", "after", "thread", "instrument"])
@pytest.mark.parametrize("library", list(LIBRARIES))
def test_instrumentor_attaches_in_any_import_order(tmp_path, library, mode):
    statement, instrumentor = LIBRARIES[library]
    code = textwrap.dedent(PROGRAM.format(mode=mode, heavy=HEAVY, instrumentor=instrumentor, statement=statement))
    env = clean_env(PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                    OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                    OTEL_MONITORING_SYSTEM_METRICS="false")
    command = [sys.executable, "-c", code]
    if mode == "instrument":
        command = [os.path.join(BIN, "opentelemetry-instrument"), *command]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "partially initialized" not in result.stderr
    assert "failed to start" not in result.stderr, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["preloaded"] == "[]"  # configure() / the distro imported none of the libraries
    assert lines["attached"] == "True"


CONCURRENT = """
import importlib, importlib.util, threading
import otel_monitoring
otel_monitoring.configure(service_name="threads", exporter="none", system_metrics=False)
# wrapt's import-hook finder marks a module "in progress" in one table shared by all threads while
# it looks the module up; a thread probing for a library (importlib.util.find_spec, as optional-
# dependency checks do) while others import it must not make those imports skip the hook.
stop = threading.Event()
def probe():
    while not stop.is_set():
        for name in ("requests", "httpx", "ccxt"):
            importlib.util.find_spec(name)
probes = [threading.Thread(target=probe) for _ in range(2)]
for t in probes:
    t.start()
start = threading.Barrier(3)
def load(name):
    start.wait()
    importlib.import_module(name)
loaders = [threading.Thread(target=load, args=(name,)) for name in ("requests", "httpx", "ccxt")]
for t in loaders:
    t.start()
for t in loaders:
    t.join()
stop.set()
for t in probes:
    t.join()
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from otel_monitoring.instrumentation.trading.ccxt import CcxtInstrumentor
print(RequestsInstrumentor().is_instrumented_by_opentelemetry, HTTPXClientInstrumentor().is_instrumented_by_opentelemetry,
      CcxtInstrumentor().is_instrumented_by_opentelemetry)
"""


def test_libraries_imported_concurrently_while_other_threads_probe_them_are_instrumented():
    """Real threads: three libraries imported at once after configure(), two more threads asking
    importlib for the same names all along. (CPython calls every meta-path finder under its global
    import lock, so wrapt's shared in-progress table is never seen half-way by another thread.)"""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CONCURRENT)],
                            env=clean_env(PYTHONPATH=REPO, OTEL_TRACES_EXPORTER="none"),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"], result.stdout + result.stderr
