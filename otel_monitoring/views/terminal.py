"""The one sanitiser for telemetry text shown in a terminal (``top``, ``traces``, ``alerts``, ``doctor``).

Span names, attribute values, service names and alert ids come from whoever produced the
telemetry. Printed raw, an escape sequence in them could clear the screen, retitle the window,
recolour or hide text, or reorder it (Unicode bidirectional controls). Every control character
(C0, DEL, C1), bidirectional control and line or paragraph separator is shown escaped instead
(``\\x1b``, ``\\u202e``); everything else is left as it is. The views apply it where they read
data (snapshot files, Jaeger, Prometheus), so what they render is already safe.
"""

from __future__ import annotations

from typing import Any

__all__ = ["safe_text", "safe_tree"]

_UNSAFE = {
    *range(0x00, 0x20), 0x7F, *range(0x80, 0xA0),  # C0, DEL, C1 (ESC, CSI, OSC, BEL...)
    0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A),  # bidirectional controls
    0x2028, 0x2029,  # line and paragraph separators
}
_TABLE = {code: (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _UNSAFE}
MAX_DEPTH = 64


def safe_text(value: Any) -> str:
    """``value`` as text a terminal shows literally."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():  # the common case, checked in C
        return text
    return text.translate(_TABLE)


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
