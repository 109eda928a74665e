"""Storage: the official contrib SQLAlchemy, psycopg (3), asyncpg and redis instrumentations.

Each is enabled when its library is installed, with the pipeline's providers: database spans
follow the database conventions (``db.system``, ``db.statement`` without parameter values); their
durations are the storage timings (the collector's spanmetrics connector turns them into RED
metrics; the contrib DB-API metrics need ``OTEL_SEMCONV_STABILITY_OPT_IN=database``). SQLAlchemy
engines created after the library is imported are traced (configure() attaches on import, so that
is every engine of an application that imports SQLAlchemy after configure()). With SQLAlchemy over
psycopg or asyncpg, a statement is one span: SQLAlchemy's (see ``one_layer``).
"""

from __future__ import annotations

import logging
from typing import Any

from ..contrib import ContribBundle, Member
from . import one_layer
from .package import _instruments_any

__all__ = ["StorageInstrumentor", "MEMBERS"]

_logger = logging.getLogger("otel_monitoring.instrumentation")

MEMBERS = {
    "sqlalchemy": Member("opentelemetry.instrumentation.sqlalchemy:SQLAlchemyInstrumentor", "sqlalchemy >= 1.0.0"),
    "psycopg": Member("opentelemetry.instrumentation.psycopg:PsycopgInstrumentor", "psycopg >= 3.1.0"),
    "asyncpg": Member("opentelemetry.instrumentation.asyncpg:AsyncPGInstrumentor", "asyncpg >= 0.12.0"),
    "redis": Member("opentelemetry.instrumentation.redis:RedisInstrumentor", "redis >= 2.6"),
}


class StorageInstrumentor(ContribBundle):
    """Enables the contrib database and cache instrumentations whose library is installed."""

    MEMBERS = MEMBERS
    _instruments_any = _instruments_any

    def _instrument(self, **kwargs: Any) -> None:
        super()._instrument(**kwargs)
        self._one_layer = False
        if any(type(member).__name__ == "SQLAlchemyInstrumentor" for member in self._enabled):
            try:
                one_layer.keep_sqlalchemy_layer()
                self._one_layer = True
            except Exception:  # two spans per statement beat a failed start
                _logger.warning("otel-monitoring: could not keep one span per SQLAlchemy statement", exc_info=True)

    def _uninstrument(self, **kwargs: Any) -> None:
        if getattr(self, "_one_layer", False):
            one_layer.release_sqlalchemy_layer()
            self._one_layer = False
        _dedupe_sqlalchemy_listeners()
        super()._uninstrument(**kwargs)


def _dedupe_sqlalchemy_listeners() -> None:
    """The contrib SQLAlchemy instrumentation records an async engine's listeners twice (once by
    ``create_async_engine``, once by the ``create_engine`` it calls) and its uninstrument then fails
    removing them a second time: keep one record of each."""
    try:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    except ImportError:
        return
    records, seen = [], set()
    for record in list(getattr(EngineTracer, "_remove_event_listener_params", ())):
        target, identifier, func = record
        key = (id(target()), identifier, func)
        if key not in seen:
            seen.add(key)
            records.append(record)
    EngineTracer._remove_event_listener_params[:] = records
