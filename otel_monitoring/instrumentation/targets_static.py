"""What can be proved about a targets entry before its module is imported, from the module's source.

Strict mode (and ``otel-monitoring doctor``) must find a misspelled function or parameter at
start-up, but importing the application's modules early would run their code before the
application does. So the module's source is parsed (``ast``, nothing executed) and an entry is
reported only when the source proves it wrong: the name is bound nowhere in the module (or class),
or a plain function has no parameter of the name an attribute reads. Anything the source cannot
settle (a re-export, ``from x import *``, a module ``__getattr__``, an inherited or decorated
method, a C extension) is left to the check made when the module is imported.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from typing import Iterator

from .targets import TargetEntry, TargetError, _reader

MAX_SOURCE_BYTES = 4 * 1024 * 1024  # a larger module is left to the import-time check

_UNKNOWN = object()  # the source cannot settle it


def _source_path(module: str) -> str | None:
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0]) if parts[0] not in sys.modules else sys.modules[parts[0]].__spec__
        for part in parts[1:]:
            locations = getattr(spec, "submodule_search_locations", None) if spec is not None else None
            if not locations:
                return None
            spec = importlib.machinery.PathFinder.find_spec(part, list(locations))
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None) if spec is not None else None
    return origin if isinstance(origin, str) and origin.endswith(".py") else None


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that bind names in this scope: nested blocks (if, try, with, for, match...)
    included, the bodies of functions and classes (their own scopes) not."""
    for statement in body:
        yield statement
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for child in ast.iter_child_nodes(statement):
            if isinstance(child, ast.stmt):
                yield from _statements([child])
            elif hasattr(child, "body") and isinstance(child.body, list):  # except handlers, match cases
                yield from _statements(child.body)


def _binding(body: list[ast.stmt], name: str, module_scope: bool) -> object:
    """The def/class binding ``name`` in this scope, _UNKNOWN when it is bound some other way (or may
    be), None when the scope provably does not bind it."""
    found: object = None
    for statement in _statements(body):
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if statement.name == name:
                found = statement if found is None else _UNKNOWN  # defined twice: whichever runs last
            elif module_scope and statement.name == "__getattr__":
                return _UNKNOWN
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            for alias in statement.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == name:
                    return _UNKNOWN
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if any(name in {n.id for n in ast.walk(t) if isinstance(n, ast.Name)} for t in targets):
                return _UNKNOWN
        elif isinstance(statement, (ast.Global, ast.Nonlocal, ast.Delete)):
            return _UNKNOWN
    return found


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> list[str] | None:
    """The parameters inspect.signature would list (self/cls dropped in a class), or None when a
    decorator may have changed them."""
    decorators = [d.id if isinstance(d, ast.Name) else None for d in function.decorator_list]
    if any(d not in ("staticmethod", "classmethod") for d in decorators):
        return None
    arguments = function.args
    names = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
    if arguments.vararg:
        names.append(arguments.vararg.arg)
    names += [a.arg for a in arguments.kwonlyargs]
    if arguments.kwarg:
        names.append(arguments.kwarg.arg)
    if in_class and "staticmethod" not in decorators:
        names = names[1:]
    return names


def static_problem(entry: TargetEntry, source: str) -> str | None:
    """The message for a problem the module's source proves (the one the import-time check would
    give), or None when the source shows none or cannot tell."""
    path = _source_path(entry.module)
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            return None
        tree = ast.parse(data, filename=path)
    except (OSError, SyntaxError, ValueError):
        return None  # the import will say what is wrong with the module itself
    body: list[ast.stmt] = tree.body
    parts = entry.qualname.split(".")
    node: object = None
    parent: ast.ClassDef | None = None
    for depth, part in enumerate(parts):
        node = _binding(body, part, module_scope=depth == 0)
        if node is _UNKNOWN:
            return None
        if node is None:
            if parent is not None and (parent.bases or parent.keywords or parent.decorator_list):
                return None  # inherited, or made by a metaclass or decorator
            where = ".".join([entry.module, *parts[:depth]])
            return (f"{entry.describe(source)}: {where} has no attribute {part!r}. "
                    "Fix: check the spelling and that it is defined at import time.")
        if depth < len(parts) - 1:
            if not isinstance(node, ast.ClassDef):
                return None
            parent, body = node, node.body
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    parameters = _parameters(node, in_class=len(parts) > 1)
    if parameters is None:
        return None
    for paths in (entry.attributes, entry.metric_attributes):
        for attribute_path in paths.values():
            try:
                _reader(attribute_path, parameters, entry, source)
            except TargetError as problem:
                return str(problem)
    return None
