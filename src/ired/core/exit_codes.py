"""The exit codes of every ``ired`` command (docs/ARCHITECTURE.md, "Exit codes"). torch-free.

The dispatcher reads a trainer's exit status by these names: a user error and a divergence are never retried, a
failed write is resumed by the same command once there is space, the node-failure code makes it exclude the node.
"""

from __future__ import annotations

OK = 0
INTERNAL_ERROR = 1  # an unexpected error (a bug): one line; --debug or IRED_DEBUG=1 shows the traceback
GAVE_UP = 1  # `ired dispatch-train`: the dispatcher gave up on an infrastructure failure (its retries spent)
USER_ERROR = 2  # bad config or argument, unreadable file, corrupt checkpoint or metrics line, run folder held, no CUDA
DIVERGED = 3  # NaN/inf in the loss or gradients
STORAGE = 4  # a write failed (disk full, quota, read-only file system); the same command resumes
SLICE_END = 75  # stopped on a signal (SIGUSR2: the time-limit warning; SIGTERM: preemption, requeue) after a checkpoint
NODE_FAILURE = 120  # Python's exit when it cannot flush stdio; the default code of faults.exit_on_node
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
