"""What the storage bundle turns on: any of these libraries (the contrib ``instruments-any`` convention)."""

_instruments = ()
_instruments_any = ("sqlalchemy >= 1.0.0", "psycopg >= 3.1.0", "asyncpg >= 0.12.0", "redis >= 2.6")
_supports_metrics = True
