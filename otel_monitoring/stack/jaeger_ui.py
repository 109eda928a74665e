"""Jaeger's web UI for the stack. A Jaeger built from its Go module carries no UI (it serves a
placeholder page); Jaeger's ``jaeger_query`` extension serves built UI assets from a directory
(``ui.assets_path``). The user names them with ``OTEL_MONITORING_JAEGER_UI`` or ``--jaeger-ui``: a
directory holding ``index.html``, or a ``.tar.gz`` of one (Jaeger UI's release ``assets.tar.gz``),
unpacked once into the cache, keyed by the archive's checksum."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from typing import Mapping

from .binaries import cache_dir

JAEGER_UI_ENV = "OTEL_MONITORING_JAEGER_UI"
# The UI release that pairs with the Jaeger the build script builds (Jaeger v2.13.0 / module v1.76.0).
JAEGER_UI_VERSION = "v1.76.0"
JAEGER_UI_DOWNLOAD = f"https://github.com/jaegertracing/jaeger-ui/releases/download/{JAEGER_UI_VERSION}/assets.tar.gz"
NO_UI_HINT = (
    f"Jaeger's UI is not installed (Jaeger serves a placeholder page; its query API works): download "
    f"{JAEGER_UI_DOWNLOAD} (jaeger-ui {JAEGER_UI_VERSION}) and pass it with --jaeger-ui PATH or "
    f"{JAEGER_UI_ENV}=PATH (the .tar.gz or the directory it unpacks to)"
)


class JaegerUIError(ValueError):
    """The named UI assets cannot be used; the message names the path and the fix."""


def _assets_root(directory: str) -> str | None:
    """The directory holding the UI's ``index.html``: ``directory`` itself, or the shallowest one below
    it (archives are packed with or without a top-level folder)."""
    if os.path.isfile(os.path.join(directory, "index.html")):
        return directory
    best: tuple[int, str] | None = None
    for root, _dirs, files in os.walk(directory):
        if "index.html" in files:
            depth = root.count(os.sep)
            if best is None or depth < best[0]:
                best = (depth, root)
    return best[1] if best else None


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(tar: tarfile.TarFile, into: str) -> None:
    if hasattr(tarfile, "data_filter"):
        # Refuses absolute paths, links out of the tree and device files.
        tar.extractall(into, filter="data")
        return
    # Pythons before the extraction filters (3.10.11 and older): regular files and directories only.
    root = os.path.realpath(into)
    members = []
    for member in tar.getmembers():
        target = os.path.realpath(os.path.join(into, member.name))
        if not (member.isfile() or member.isdir()) or not (target == root or target.startswith(root + os.sep)):
            raise tarfile.TarError(f"refusing archive member {member.name!r}")
        members.append(member)
    tar.extractall(into, members=members)  # noqa: S202 (members checked above)


def _unpack(archive: str, cache: str) -> str:
    target = os.path.join(cache, "jaeger-ui", _sha256(archive)[:16])
    if not os.path.isdir(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        work = tempfile.mkdtemp(prefix=".unpack-", dir=os.path.dirname(target))
        try:
            with tarfile.open(archive, "r:gz") as tar:
                _extract(tar, work)
            try:
                os.rename(work, target)
            except OSError:
                if not os.path.isdir(target):  # another process unpacked the same archive meanwhile
                    raise
        except (tarfile.TarError, OSError) as error:
            raise JaegerUIError(f"cannot unpack Jaeger UI archive {archive}: {error}") from error
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def resolve_assets(source: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The directory Jaeger should serve the UI from, for ``source`` (or ``OTEL_MONITORING_JAEGER_UI``);
    None when neither names anything. JaegerUIError when the path is not usable."""
    source = source or environ.get(JAEGER_UI_ENV) or None
    if source is None:
        return None
    path = os.path.abspath(os.path.expanduser(source))
    if os.path.isdir(path):
        directory = path
    elif os.path.isfile(path) and (path.endswith(".tar.gz") or path.endswith(".tgz")):
        directory = _unpack(path, cache_dir(environ))
    elif os.path.exists(path):
        raise JaegerUIError(f"Jaeger UI assets {source}: expected a directory or a .tar.gz archive of the built UI")
    else:
        raise JaegerUIError(f"Jaeger UI assets {source}: no such file or directory (set {JAEGER_UI_ENV} or "
                            f"--jaeger-ui to the UI's assets.tar.gz or its unpacked directory)")
    root = _assets_root(directory)
    if root is None:
        raise JaegerUIError(f"Jaeger UI assets {source}: no index.html inside; expected the built UI "
                            f"({JAEGER_UI_DOWNLOAD})")
    return root
