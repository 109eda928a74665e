"""Storage: the official contrib SQLAlchemy, psycopg (3), asyncpg and redis instrumentations.

Each is enabled when its library is installed, with the pipeline's providers: database spans
follow the database conventions (``db.system``, ``db.statement`` without parameter values) and
the contrib packages record their own duration metrics. SQLAlchemy engines created after the
library is imported are traced (configure() attaches on import, so that is every engine of an
application that imports SQLAlchemy after configure()).
"""

from __future__ import annotations

from ..contrib import ContribBundle, Member
from .package import _instruments_any

__all__ = ["StorageInstrumentor", "MEMBERS"]

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
