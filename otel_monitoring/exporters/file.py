"""The ``otlp_file`` exporter: OTLP/JSON lines in a directory, rotated by size.

The format is OpenTelemetry's (``opentelemetry-exporter-otlp-json-file``: one
``Export{Trace,Metrics,Logs}ServiceRequest`` per line, as the collector's file exporter and the
"OTLP File" spec do); spans, the bulk of the data, are encoded by ``otlp_json`` into the same lines
several times faster, metrics and logs by the library. What this module adds is where the lines go: ``traces.jsonl``,
``metrics.jsonl`` and ``logs.jsonl`` under one directory, rotated by size into
``traces-2026-11-22T05-15-00.123.jsonl`` (the collector's naming), keeping ``max_backups``.

Each line is written with one ``O_APPEND`` write under an ``flock`` on a lock file beside it,
so threads, forked workers and separate processes sharing the directory never interleave or
split a line, and a rotation by one process is seen by the others before their next write.

A line is written whole or not at all: when a write fails part-way (ENOSPC, EFBIG, EIO) the file
is cut back to where the line began, still under the lock. If even that fails, the next write
(by any process) first ends the broken line, so the lines after it stay readable. The batch is
reported as failed; ``build_exporters`` counts what was lost and says it once, and writing
resumes by itself when space returns.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter
from opentelemetry.exporter.otlp.json.file.metric_exporter import FileMetricExporter
from opentelemetry.exporter.otlp.json.file.trace_exporter import FileSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from ..config import ConfigError, load_settings
from .otlp_json import spans_line

# The library's own logger: its failures are what the delivery report captures and words for the user.
_logger = logging.getLogger("opentelemetry.exporter.otlp.json.file.trace_exporter")

__all__ = [
    "RotatingJsonlFile",
    "OtlpFileSpanExporter",
    "OtlpFileMetricExporter",
    "OtlpFileLogExporter",
    "prepare_directory",
]

FILE_NAMES = {"traces": "traces.jsonl", "metrics": "metrics.jsonl", "logs": "logs.jsonl"}


def prepare_directory(directory: str, source: str = "OTEL_MONITORING_FILE_DIR") -> str:
    """Create the directory and check it is writable; ConfigError naming ``source`` if not."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"{source}: cannot create the telemetry directory {directory!r} ({error.strerror}). "
            f"Choose a writable directory, e.g. {source}=./otel-data"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{source}: the telemetry directory {directory!r} is not writable by this process. "
            f"Fix its permissions or choose another, e.g. {source}=./otel-data"
        )
    return directory


class RotatingJsonlFile:
    """A write-only text stream taking whole lines; see the module docstring for the guarantees."""

    def __init__(self, path: str, max_bytes: int = 100 * 1024 * 1024, max_backups: int = 10):
        self.path = os.path.abspath(path)
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self._lock_path = os.path.join(os.path.dirname(self.path), f".{os.path.basename(self.path)}.lock")
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._pid = -1
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _open(self) -> None:
        # flock belongs to the open file description, which a forked child shares with its
        # parent: reopen in every new process so parent and child really exclude each other.
        self._close_fds()
        self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._pid = os.getpid()

    def _close_fds(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fd = self._lock_fd = None

    def write(self, text: str) -> int:
        self.write_bytes(text.encode("utf-8"))
        return len(text)

    def write_bytes(self, data: bytes) -> None:
        """Write one whole line of UTF-8 bytes (see the module docstring)."""
        with self._thread_lock:
            if self._closed:
                raise ValueError("write to a closed telemetry file")
            if self._fd is None or self._pid != os.getpid():
                self._open()
            assert self._lock_fd is not None
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._follow_rotation()
                size = os.fstat(self._fd).st_size
                if self.max_bytes and size + len(data) > self.max_bytes and size > 0:
                    self._rotate()
                    size = 0
                if size and os.pread(self._fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a line left broken by an earlier failed write ends here
                try:
                    _write_all(self._fd, data)
                except OSError:
                    _cut_back(self._fd, size)
                    raise
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _follow_rotation(self) -> None:
        """Another process may have rotated the file since we opened it: write to the new one."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if current is None or current.st_ino != os.fstat(self._fd).st_ino:
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _rotate(self) -> None:
        stem, ext = os.path.splitext(self.path)
        millis = int(time.time() * 1000)
        while True:  # names sort in rotation order: on a clash take the next millisecond
            stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}"
            backup = f"{stem}-{stamp}{ext}"
            if not os.path.exists(backup):
                break
            millis += 1
        os.rename(self.path, backup)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._prune(stem, ext)

    def _prune(self, stem: str, ext: str) -> None:
        if self.max_backups <= 0:
            return
        backups = sorted(glob.glob(f"{glob.escape(stem)}-*{ext}"))
        for old in backups[: max(0, len(backups) - self.max_backups)]:
            try:
                os.remove(old)
            except FileNotFoundError:
                pass

    def flush(self) -> None:
        """Every write is already a system call on an unbuffered descriptor."""

    def close(self) -> None:
        with self._thread_lock:
            self._closed = True
            self._close_fds()


def _cut_back(fd: int, size: int) -> None:
    """Remove what a failed write left after ``size`` (shrinking needs no free space)."""
    try:
        if os.fstat(fd).st_size > size:
            os.ftruncate(fd, size)
    except OSError:
        pass  # the next write ends the broken line instead


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError as error:
            if error.errno == errno.EAGAIN:
                continue
            raise
        view = view[written:]


def _stream_for(signal: str, directory: str | None, max_bytes: int | None, max_backups: int | None) -> RotatingJsonlFile:
    settings = None
    if directory is None or max_bytes is None or max_backups is None:
        settings = load_settings()  # constructed by name (entry point): read OTEL_MONITORING_FILE_*
    directory = prepare_directory(directory if directory is not None else settings.file_dir)
    return RotatingJsonlFile(
        os.path.join(directory, FILE_NAMES[signal]),
        max_bytes=max_bytes if max_bytes is not None else settings.file_max_bytes,
        max_backups=max_backups if max_backups is not None else settings.file_max_backups,
    )


class OtlpFileSpanExporter(FileSpanExporter):
    """Spans as OTLP/JSON lines in ``<directory>/traces.jsonl``, encoded by ``otlp_json`` (the same
    lines as the library's encoder, several times faster)."""

    def __init__(self, directory: str | None = None, max_bytes: int | None = None, max_backups: int | None = None):
        self.file = _stream_for("traces", directory, max_bytes, max_backups)
        super().__init__(stream=self.file)  # type: ignore[arg-type]
        self._shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            _logger.warning("Exporter already shutdown, ignoring call")
            return SpanExportResult.FAILURE
        try:
            line = spans_line(spans)
            if line is not None:
                self.file.write_bytes(line)
        except Exception as error:  # reported as a failed batch, as the library does
            _logger.exception("Failed to write spans batch to stream: %s: %s", type(error).__name__, error)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._shut_down = True
        super().shutdown()
        self.file.close()


class OtlpFileMetricExporter(FileMetricExporter):
    """Metrics as OTLP/JSON lines in ``<directory>/metrics.jsonl``."""

    def __init__(self, directory: str | None = None, max_bytes: int | None = None,
                 max_backups: int | None = None, **kwargs: Any):
        self.file = _stream_for("metrics", directory, max_bytes, max_backups)
        super().__init__(stream=self.file, **kwargs)  # type: ignore[arg-type]

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        super().shutdown()
        self.file.close()


class OtlpFileLogExporter(FileLogExporter):
    """Log records as OTLP/JSON lines in ``<directory>/logs.jsonl``."""

    def __init__(self, directory: str | None = None, max_bytes: int | None = None, max_backups: int | None = None):
        self.file = _stream_for("logs", directory, max_bytes, max_backups)
        super().__init__(stream=self.file)  # type: ignore[arg-type]

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        super().shutdown()
        self.file.close()
