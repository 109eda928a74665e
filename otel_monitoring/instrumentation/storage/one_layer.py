"""One span per SQL statement when SQLAlchemy runs over an instrumented driver (psycopg, asyncpg).

Both contrib layers see the same statement: SQLAlchemy's span (named after the operation and the
database, with the engine's pool metrics beside it) and the driver's. The SQLAlchemy span is the
one kept: while SQLAlchemy hands a statement it already traces to the driver, the driver's
instrumentation is suppressed. Statements SQLAlchemy does not trace (the dialect's own setup
queries, ``BEGIN``/``ROLLBACK`` of the asyncpg adapter, engines created before instrumentation)
keep their driver span, and direct driver calls are untouched.
"""

from __future__ import annotations

from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import unwrap

__all__ = ["keep_sqlalchemy_layer", "release_sqlalchemy_layer"]

# The DefaultDialect methods through which every SQLAlchemy statement reaches the DB-API cursor
# (the psycopg and asyncpg dialects inherit them).
_METHODS = ("do_execute", "do_executemany", "do_execute_no_params")
# Where the contrib SQLAlchemy instrumentation keeps its span on the execution context.
_SQLALCHEMY_SPAN = "_otel_span"
_SUPPRESS = otel_context._SUPPRESS_INSTRUMENTATION_KEY

_wrapped = False


def _driver_quiet(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    execution = kwargs.get("context", args[-1] if args else None)
    if getattr(execution, _SQLALCHEMY_SPAN, None) is None:
        return wrapped(*args, **kwargs)
    token = otel_context.attach(otel_context.set_value(_SUPPRESS, True))
    try:
        return wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


def keep_sqlalchemy_layer() -> None:
    """Suppresses driver spans under statements SQLAlchemy traces (idempotent)."""
    global _wrapped
    if _wrapped:
        return
    from sqlalchemy.engine import default

    for method in _METHODS:
        wrapt.wrap_function_wrapper(default.DefaultDialect, method, _driver_quiet)
    _wrapped = True


def release_sqlalchemy_layer() -> None:
    """Undoes ``keep_sqlalchemy_layer`` exactly."""
    global _wrapped
    if not _wrapped:
        return
    from sqlalchemy.engine import default

    for method in _METHODS:
        unwrap(default.DefaultDialect, method)
    _wrapped = False
