"""The one sanitiser for telemetry text shown in a terminal (``top``, ``traces``, ``alerts``, ``doctor``).

Span names, attribute values, service names and alert ids come from whoever produced the
telemetry. Printed raw, an escape sequence in them could clear the screen, retitle the window,
recolour or hide text, or reorder it (Unicode bidirectional controls). Every control character
(C0, DEL, C1), format character (bidirectional controls) and separator other than the space is
shown escaped instead
(``\\x1b``, ``\\u202e``); everything else is left as it is. The views apply it where they read
data (snapshot files, Jaeger, Prometheus), so what they render is already safe.
"""

from __future__ import annotations

from typing import Any

__all__ = ["safe_text", "safe_tree"]

MAX_DEPTH = 64


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def safe_text(value: Any) -> str:
    """``value`` as text a terminal shows literally: every character Python does not call printable
    (controls, format characters such as bidirectional overrides, separators other than the space)
    is written as its escape."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(map(_escape, text))


def safe_tree(value: Any, _depth: int = 0) -> Any:
    """A JSON-like document with every string (keys included) passed through ``safe_text``."""
    if isinstance(value, str):
        return safe_text(value)
    if _depth >= MAX_DEPTH:
        return value if isinstance(value, (int, float, bool)) or value is None else safe_text(repr(value)[:200])
    if isinstance(value, dict):
        return {safe_text(k) if isinstance(k, str) else k: safe_tree(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [safe_tree(v, _depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(safe_tree(v, _depth + 1) for v in value)
    return value
