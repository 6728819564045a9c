"""A progress bar for the interactive commands (``ired train``, ``ired evaluate``) on a terminal, and nothing
elsewhere: a log file, a pipe or a cluster job gets the plain lines only (no carriage returns, no bar).

:func:`progress` returns a :class:`Progress`: ``update(n)`` moves it, ``write(line)`` prints a line above it (the
train.log lines a trainer echoes), ``close()`` removes it. On a terminal (``stream.isatty()``) it is a ``tqdm`` bar
on that stream; otherwise every call but ``write`` does nothing. Drawing the bar reads no random number and changes
no result.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    """No bar: lines are printed as they are (a log file, a pipe, a cluster job)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    def update(self, n: int = 1) -> None:
        pass

    def write(self, line: str) -> None:
        print(line, file=self._out or sys.stdout, flush=True)

    def close(self) -> None:
        pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Bar(Progress):
    """A tqdm bar on a terminal; lines are written above it."""

    def __init__(self, bar: Any, out: TextIO | None) -> None:
        super().__init__(out)
        self._bar = bar

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def write(self, line: str) -> None:
        self._bar.write(line, file=self._out or sys.stdout)

    def close(self) -> None:
        self._bar.refresh()  # the final count once: tqdm skips redraws closer than mininterval (fast last units)
        self._bar.close()


def progress(total: int, description: str, initial: int = 0, unit: str = "it", stream: TextIO | None = None,
             out: TextIO | None = None) -> Progress:
    """A bar of ``total`` units on ``stream`` (default stderr) when it is a terminal, else a plain :class:`Progress`;
    ``out`` is where ``write`` prints (default stdout)."""
    stream = stream or sys.stderr
    if not _is_terminal(stream):
        return Progress(out)
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, desc=description, unit=unit, file=stream, dynamic_ncols=True,
               leave=False)
    return _Bar(bar, out)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False
