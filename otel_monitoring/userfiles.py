"""One loader for every file a user hands the package: alert rules, targets, prices, the alert
control file.

Whatever a file holds, loading it costs bounded time and memory:
- a size cap (``MAX_FILE_BYTES``, 256 KiB: twenty times the packaged rules and prices together,
  and under a second to parse); only that many bytes (plus one) are ever read;
- UTF-8 only (a BOM is allowed); another encoding is a named error with the line of the first
  bad byte;
- YAML through the safe loader (libyaml when present) with alias expansion bounded: ``*name``
  and ``<<`` let a 600-byte file stand for gigabytes ("billion laughs"), so the values they
  repeat may add up to ``MAX_EXPANDED_NODES`` (100,000) nodes, which a generous file written by
  hand or by ``yaml.safe_dump`` stays far below;
- nesting deeper than the interpreter can walk, numbers with thousands of digits and every other
  parser failure end as the caller's named error, never a bare ``UnicodeDecodeError`` or
  ``RecursionError``.

``Document.line(obj, key)`` gives the line of a mapping or list (or of one key in a mapping), so
structure errors can say where they are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from .config import ConfigError

__all__ = ["MAX_FILE_BYTES", "Document", "UserFileError", "load_file", "parse_text", "read_text"]

MAX_FILE_BYTES = 256 * 1024
MAX_EXPANDED_NODES = 100_000

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UserFileError(ConfigError):
    """A user file is unreadable, too large, not UTF-8, not valid YAML/JSON or has a bad value."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.path, self.line = path, line


class _LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, remembering the line of every mapping, list and mapping key it builds."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.lines: dict[int, int] = {}
        self.key_lines: dict[int, dict[Any, int]] = {}
        self.item_lines: dict[int, list[int]] = {}
        self.expanded = 0
        self._sizes: dict[int, int] = {}

    def _size(self, node: yaml.Node) -> int:
        """Nodes under ``node``, counting shared ones each time they appear (memoised: linear time)."""
        found = self._sizes.get(id(node))
        if found is None:
            if isinstance(node, yaml.MappingNode):
                found = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
            elif isinstance(node, yaml.SequenceNode):
                found = 1 + sum(self._size(item) for item in node.value)
            else:
                found = 1
            self._sizes[id(node)] = found
        return found

    def _expand(self, count: int, line: int) -> None:
        self.expanded += count
        if self.expanded > MAX_EXPANDED_NODES:
            raise _AliasFound(line)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A node built a second time is an alias (``*name``): the composer shares the node, so
        # this is the one place every alias passes, in the C loader as in the Python one. The
        # object is shared, but whoever walks the data walks it once per use: count them all.
        if node in self.constructed_objects:
            self._expand(self._size(node), node.start_mark.line + 1)
        elif node in self.recursive_objects:
            raise _AliasFound(node.start_mark.line + 1, recursive=True)
        obj = super().construct_object(node, deep)
        if isinstance(obj, (dict, list)):
            self.lines[id(obj)] = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                self.key_lines[id(obj)] = {key.value: key.start_mark.line + 1 for key, _ in node.value
                                           if isinstance(key, yaml.ScalarNode)}
            elif isinstance(node, yaml.SequenceNode):  # a plain value in a list has a line too
                self.item_lines[id(obj)] = [item.start_mark.line + 1 for item in node.value]
        return obj


    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Merge keys copy the merged mappings' entries into this one (recursively, each level
        # checked here before the next doubles it).
        before = len(node.value)
        super().flatten_mapping(node)
        if len(node.value) > before:
            self._expand(len(node.value) - before, node.start_mark.line + 1)


class _AliasFound(Exception):
    def __init__(self, line: int, recursive: bool = False):
        super().__init__(line)
        self.line, self.recursive = line, recursive


@dataclass
class Document:
    path: str
    data: Any
    _lines: dict[int, int] = field(default_factory=dict, repr=False)
    _key_lines: dict[int, dict[Any, int]] = field(default_factory=dict, repr=False)
    _item_lines: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def line(self, obj: Any, key: Any = None) -> int | None:
        """The line where ``obj`` (a mapping or list of this document) starts, or where ``key`` of it is
        (for a list, ``key`` is an item's index)."""
        if isinstance(obj, list) and isinstance(key, int):
            items = self._item_lines.get(id(obj), [])
            return items[key] if 0 <= key < len(items) else self._lines.get(id(obj))
        if key is not None:
            found = self._key_lines.get(id(obj), {}).get(key)
            if found is not None:
                return found
        return self._lines.get(id(obj))

    def where(self, obj: Any = None, key: Any = None) -> str:
        """``path, line N`` for messages (just the path when the line is unknown)."""
        line = None if obj is None else self.line(obj, key)
        return f"{self.path}, line {line}" if line else self.path


def _fail(error: type[ConfigError], message: str, path: str, line: int | None = None) -> ConfigError:
    if issubclass(error, UserFileError):
        return error(message, path, line)
    found = error(message)
    found.path, found.line = path, line  # type: ignore[attr-defined]
    return found


def read_text(path: str, what: str, *, error: type[ConfigError] = UserFileError,
              max_bytes: int = MAX_FILE_BYTES, fix: str = "check the path and its permissions") -> str:
    """The file's text: at most ``max_bytes`` read, UTF-8 checked. ``what`` names the file in messages,
    ``fix`` says what to do when it cannot be opened."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as problem:
        raise _fail(error, f"{what} {path}: cannot be read ({problem.strerror or problem}). Fix: {fix}.",
                    path) from None
    if len(raw) > max_bytes:
        raise _fail(error, f"{what} {path}: larger than {max_bytes} bytes, the limit for a configuration file. "
                           "Fix: split it or keep only the entries you need.", path)
    return decode(raw, path, what, error=error)


def decode(raw: bytes, path: str, what: str, *, error: type[ConfigError] = UserFileError) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        line = raw[:problem.start].count(b"\n") + 1
        raise _fail(error, f"{what} {path}, line {line}: not UTF-8 (byte 0x{raw[problem.start]:02x} at offset "
                           f"{problem.start}). Fix: save the file as UTF-8.", path, line) from None


def parse_text(text: str, path: str, what: str, *, fmt: str = "yaml", error: type[ConfigError] = UserFileError,
               decimals: bool = False) -> Document:
    """Parse already-read text as YAML (aliases refused) or JSON. ``decimals``: JSON numbers as Decimal."""
    try:
        if fmt == "json":
            kwargs: dict[str, Any] = {"parse_float": Decimal, "parse_int": Decimal} if decimals else {}
            return Document(path, json.loads(text, **kwargs))
        loader = _LineLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
        return Document(path, data, loader.lines, loader.key_lines, loader.item_lines)
    except ConfigError:
        raise
    except _AliasFound as found:
        problem = ("a value that contains itself (an alias inside its own anchor)" if found.recursive else
                   f"aliases (*name) and merge keys (<<) that expand to more than {MAX_EXPANDED_NODES} values")
        raise _fail(error, f"{what} {path}, line {found.line}: YAML {problem}. Fix: write the values out "
                           "without anchors and aliases.", path, found.line) from None
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        line = mark.line + 1 if mark else None
        raise _fail(error, f"{what} {path}{f', line {line}' if line else ''}: not valid YAML "
                           f"({problem.problem or problem}). Fix: check the indentation and quoting there.",
                    path, line) from None
    except json.JSONDecodeError as problem:
        raise _fail(error, f"{what} {path}, line {problem.lineno}: not valid JSON ({problem.msg}).", path,
                    problem.lineno) from None
    except RecursionError:
        raise _fail(error, f"{what} {path}: nested too deeply to read. Fix: flatten the structure.", path) from None
    except Exception as problem:  # noqa: BLE001 - any other parser failure is still this file's fault
        raise _fail(error, f"{what} {path}: cannot be parsed ({type(problem).__name__}: {str(problem)[:200]}).",
                    path) from None


def load_file(path: str | os.PathLike[str], what: str, *, error: type[ConfigError] = UserFileError,
              fmt: str = "auto", max_bytes: int = MAX_FILE_BYTES, decimals: bool = False,
              fix: str = "check the path and its permissions") -> Document:
    """Read and parse one user file; every failure is ``error`` naming ``what``, the path and the line.
    ``fmt``: "yaml", "json" or "auto" (JSON when the name ends in .json)."""
    path = os.fspath(path)
    if fmt == "auto":
        fmt = "json" if path.lower().endswith(".json") else "yaml"
    text = read_text(path, what, error=error, max_bytes=max_bytes, fix=fix)
    return parse_text(text, path, what, fmt=fmt, error=error, decimals=decimals)
