"""Whole-file JSON writes and reads for the snapshot directory (docs/snapshots.md).

A file is written to a temporary file in the same directory, flushed, then ``os.replace``d
over the old one: on POSIX and Windows a reader opens either the old or the new file, never
a partial one.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def atomic_write_json(path: str, document: Any) -> None:
    atomic_write_text(path, json.dumps(document, separators=(",", ":"), allow_nan=False, default=str))


def atomic_write_text(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp_path, 0o644)  # mkstemp makes 0600; readers may run as another user
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise


def read_json(path: str) -> Any | None:
    """The document at ``path``, or None if it does not exist or is not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
