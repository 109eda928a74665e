import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from support import make_telemetry, reset_otel_globals


@pytest.fixture
def telemetry():
    """Fresh in-memory tracer, meter and logger providers, set as the global ones for one test."""
    t = make_telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()
    t.logger_provider.shutdown()
    reset_otel_globals()


@pytest.fixture(autouse=True)
def _fresh_input_reports():
    """Each test sees its own "reported once" messages (otel_monitoring.policy dedupes per process)."""
    from otel_monitoring import policy

    policy._reset_for_tests()
    yield


@pytest.fixture(autouse=True)
def _no_otel_env(monkeypatch):
    """Tests start from a clean environment: no OTEL_* variable of the developer's leaks in."""
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)


_NEEDS_STACK: dict[str, bool] = {}


def pytest_collection_modifyitems(config, items):
    """Tests of a module that uses the built programs (tests/stackprocs.py) carry the ``stack`` marker,
    so `pytest -m "not stack"` runs everything else while the stack is being built (scripts/test)."""
    for item in items:
        path = str(item.fspath)
        if path not in _NEEDS_STACK:
            try:
                with open(path, encoding="utf-8") as handle:
                    _NEEDS_STACK[path] = "stackprocs" in handle.read()
            except OSError:
                _NEEDS_STACK[path] = False
        if _NEEDS_STACK[path]:
            item.add_marker(pytest.mark.stack)
