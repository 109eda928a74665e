"""What happens when an input is bad: one rule for the whole package.

- An argument passed to ``configure()`` in code is the programmer's: a bad one raises
  ``ConfigError`` at once (their tests catch it).
- A bad environment value or file belongs to the deployment: it never stops the application. It
  is reported once, on the ``otel_monitoring`` logger at ERROR, naming the variable or file (and
  line), what is wrong and the fix; the package goes on with the default or without that input.
- ``OTEL_MONITORING_STRICT=true`` turns every such report made during start-up into a
  ``ConfigError`` raised by ``configure()`` (for CI and staging).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Mapping

from .config import ConfigError, parse_bool

__all__ = ["STRICT_VARIABLE", "report", "reporter", "reported", "strict_from"]

STRICT_VARIABLE = "OTEL_MONITORING_STRICT"

_logger = logging.getLogger("otel_monitoring")
_lock = threading.Lock()
_reported: list[str] = []
_seen: set[str] = set()


def strict_from(environ: Mapping[str, str] | None = None) -> bool:
    """The strict switch as the environment sets it (a bad value is itself reported, and off)."""
    raw = (os.environ if environ is None else environ).get(STRICT_VARIABLE, "")
    try:
        return parse_bool(raw)
    except ValueError:
        report(f"environment variable {STRICT_VARIABLE}: {raw!r} is not a boolean. Fix: "
               f"{STRICT_VARIABLE}=true or false.", strict=False)
        return False


def report(message: str, *, strict: bool, at_start: bool = True, consequence: str | None = None) -> None:
    """Report a bad environment value or file. Raises ``ConfigError`` when ``strict`` and at start-up;
    otherwise logs the message once per process (repeats are dropped)."""
    if strict and at_start:
        raise ConfigError(f"{message} ({STRICT_VARIABLE} is on)")
    with _lock:
        if message in _seen:
            return
        if len(_seen) < 10_000:  # bounded whatever a file holds
            _seen.add(message)
            _reported.append(message)
    _logger.error("otel-monitoring: %s %s", message,
                  consequence or "Going on without this input (the default applies).")


def reporter(strict: bool, consequence: str | None = None) -> Callable[[str], None]:
    """``report`` with the strict switch and consequence bound (for parsers that take a callback)."""
    return lambda message: report(message, strict=strict, consequence=consequence)


def reported() -> list[str]:
    """Messages reported so far in this process (doctor and tests read them)."""
    with _lock:
        return list(_reported)


def _reset_for_tests() -> None:
    with _lock:
        _seen.clear()
        _reported.clear()
