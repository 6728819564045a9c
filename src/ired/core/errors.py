"""The project's exceptions: small hierarchy, messages meant for people (printed without a traceback)."""

from typing import Literal


class IredError(Exception):
    """Base of every error ired reports to a user as one line."""


class ConfigError(IredError):
    """A config file, key or value is wrong; raised before any work starts."""


class CheckpointError(IredError):
    """A checkpoint file is missing, unreadable or from an incompatible run."""


class DivergedError(IredError):
    """Training produced NaN/inf; not retried."""

    def __init__(self, step: int, detail: str) -> None:
        super().__init__(f"run diverged at step {step}: {detail}")
        self.step = step


class SliceEnd(Exception):
    """The trainer stopped on a signal after writing a checkpoint at ``step`` (``signal``: ``SIGUSR2`` for the
    time-limit warning, ``SIGTERM`` for a preemption or requeue): not an error, the same command resumes there."""

    def __init__(self, signal: str, step: int) -> None:
        super().__init__(f"stopped by {signal} at step {step} after writing a checkpoint; the same command resumes")
        self.signal, self.step = signal, step


class DispatchError(IredError):
    """A dispatched job failed and the retry policy does not retry it (or its retries are spent), or a person stopped
    it (``stopped``: ``ired cancel``); the message names the cause, the logs and the attempt log.

    ``kind`` is the :class:`ired.dispatch.failures.FailureKind` of the last attempt (a ``str``: equal to its logged
    text; None: not a classified failure).
    """

    def __init__(self, message: str, kind: str | None = None, stopped: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.stopped = stopped


class RecordFileError(IredError):
    """A run-folder record (metrics.jsonl, status.json, attempts.jsonl...) is corrupt; names the file and line."""


class RunFolderBusy(IredError):
    """Another live process is training in the same run folder (it holds the folder's lock)."""


class StorageError(IredError, OSError):
    """Writing a run-folder file failed (disk full, quota, read-only file system); names the file.

    Also an ``OSError`` (with the original errno), so code that handles OS errors keeps working.
    """

    @classmethod
    def from_os_error(cls, exc: OSError, path: object) -> "StorageError":
        if isinstance(exc, StorageError):
            return exc
        reason = (exc.strerror or str(exc) or type(exc).__name__)
        reason = reason[:1].lower() + reason[1:]
        err = cls(f"{reason} writing {path}")
        err.errno = exc.errno
        err.filename = str(path)
        return err

    def __str__(self) -> str:  # OSError's own str() would print "[Errno None] ..."
        return str(self.args[0]) if self.args else "storage error"


class one_line_errors:  # noqa: N801 - used as a context manager: `with one_line_errors("summary"): ...`
    """In a pipeline script (stdout/stderr redirected to the rule's log): an :class:`IredError` is printed as one
    line to the log *and* to the terminal Snakemake runs in, and the script exits 2 instead of dumping a traceback
    into the log."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> "one_line_errors":
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is None or not isinstance(exc, IredError):
            return False
        import sys

        line = f"ired {self.what}: error: {exc}"
        print(line, file=sys.stderr, flush=True)
        if sys.__stderr__ is not None and sys.__stderr__ is not sys.stderr:
            print(line, file=sys.__stderr__, flush=True)
        raise SystemExit(4 if isinstance(exc, StorageError) else 2)
