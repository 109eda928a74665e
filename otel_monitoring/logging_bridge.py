"""stdlib logging -> OpenTelemetry logs, without changing what the application's logging does.

The bridge is one handler on the root logger (the contrib ``LoggingHandler``, which stamps the
active span's trace and span ids). Two things a root handler would otherwise change are kept as
they were:
- ``logging.basicConfig()`` called after ``configure()`` still configures the console (contrib's
  config-function wrappers let it run as if the handler were absent);
- a warning that no handler of the application's handles still reaches stderr through
  ``logging.lastResort``, as Python does when logging is not configured.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.instrumentation.logging.handler import LoggingHandler, _overwrite_logging_config_fns

# Loggers whose records stay out of the OTel pipeline: the SDK's and exporters' own (exporting a
# record about a failed export would feed the failure) and ours about delivery.
EXCLUDED_PREFIXES = ("opentelemetry", "otel_monitoring.export", "grpc", "urllib3.connectionpool")


_PRIMITIVES = (str, bool, int, float, bytes)


def _attribute_value(value: Any) -> Any:
    """A value the OTel attribute types accept: primitives and homogeneous sequences of them as
    they are, anything else (a dict, an object, a mixed list) as its ``str``. The SDK would drop
    the attribute with one "Invalid type" line on stderr per record."""
    if value is None or isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, (list, tuple)) and value and all(type(v) is type(value[0]) for v in value) \
            and isinstance(value[0], (str, bool, int, float)):
        return value
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a __str__ that raises must not break the application's logging
        return f"<{type(value).__name__}>"


class BridgeHandler(LoggingHandler):
    def __init__(self, logger_provider, level: int):
        super().__init__(level=logging.NOTSET, logger_provider=logger_provider)
        self.bridge_level = level

    def _get_attributes(self, record: logging.LogRecord):
        attributes, event_name = super()._get_attributes(record)
        return {key: _attribute_value(value) for key, value in attributes.items() if value is not None}, event_name

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.lastResort.level and not _handled_elsewhere(record, self):
            logging.lastResort.handle(record)
        if record.levelno >= self.bridge_level and not record.name.startswith(EXCLUDED_PREFIXES):
            super().emit(record)


def _handled_elsewhere(record: logging.LogRecord, bridge: logging.Handler) -> bool:
    """Whether a handler other than the bridge sees this record (Logger.callHandlers' walk)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        for handler in logger.handlers:
            if handler is not bridge and record.levelno >= handler.level:
                return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def install(logger_provider, level_name: str) -> logging.Handler:
    handler = BridgeHandler(logger_provider, getattr(logging, level_name.upper()))
    logging.getLogger().addHandler(handler)
    _overwrite_logging_config_fns(handler)
    return handler
