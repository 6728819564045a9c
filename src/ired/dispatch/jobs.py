"""Functions that run on the compute node (pickled by submitit and called there).

The training job runs ``ired train`` in a child process rather than calling the trainer in-process, because
the trainer's *exit status* is the contract (0 done, 2 config error, 3 diverged, 120 injected node failure,
killed by a signal): a child process shows all of them exactly, including a SIGKILL that leaves no Python
alive to report anything; device-memory fragmentation dies with the child; and the node runs the very command a
person would run by hand. The wrapper writes ``<job folder>/<job id>_outcome.json`` (return code, node, wall
time), then exits the way the trainer did, so ``sacct`` tells the same story (``FAILED 120:0``, ``FAILED 3:0``,
a signal) to anyone who looks at the cluster, not only to this dispatcher.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ired.core.host import node_name
from ired.runs.atomic import write_text_atomic


def trainer_command(config_path: str, out_dir: str) -> list[str]:
    """The command a person would type: ``ired train CONFIG --out DIR``, as ``python -m ired`` with this job's
    interpreter (the ``ired`` script may not be on a node's PATH; the interpreter is the one the job runs)."""
    return [sys.executable, "-m", "ired", "train", config_path, "--out", out_dir]


def outcome_path(folder: Path, job_id: str) -> Path:
    return Path(folder) / f"{job_id}_outcome.json"


#: Signals the wrapper passes on to the trainer (the time-limit warning, a preemption's or requeue's SIGTERM);
#: the trainer checkpoints and exits with ``ired.core.exit_codes.SLICE_END`` (:mod:`ired.training.trainer`).
FORWARDED = (signal.SIGUSR2, signal.SIGTERM)
RESEND_S = 2.0  # a signal that came while the trainer was still starting (ignoring it) is sent again this often


def _ignore_forwarded() -> None:
    """In the trainer's process before it starts Python: ignore the forwarded signals until the trainer installs
    its own handlers (a warning that arrives while torch imports must not kill it; the wrapper sends it again)."""
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_IGN)


def run_trainer(config_path: str, out_dir: str) -> dict[str, Any]:
    """Train in a child process; return its outcome on success, else exit as it did (see module docstring).

    Replaces submitit's own handlers of SIGUSR2 (its checkpoint-and-requeue, which would kill the child) and
    SIGTERM: both are passed on to the trainer, which finishes its step, checkpoints and exits; the dispatcher then
    resubmits (a slice, :mod:`ired.dispatch.policy`)."""
    import submitit

    from ired.dispatch.gpu_slots import claimed_device

    env = submitit.JobEnvironment()
    t0 = time.time()
    sys.stdout.flush()
    sys.stderr.flush()
    received: list[int] = []
    with claimed_device():
        proc = subprocess.Popen(trainer_command(config_path, out_dir), stdin=subprocess.DEVNULL,
                                preexec_fn=_ignore_forwarded)

        def forward(signum: int, frame: Any) -> None:
            received.append(signum)
            try:
                proc.send_signal(signum)
            except OSError:
                pass

        for sig in FORWARDED:
            signal.signal(sig, forward)
        while True:
            try:
                proc.wait(timeout=RESEND_S)
                break
            except subprocess.TimeoutExpired:
                if received:  # again: the trainer may have been starting (ignoring it) the first time
                    forward(received[-1], None)
    outcome = {
        "returncode": proc.returncode,
        "node": node_name(),
        "job_id": str(env.job_id),
        "wall_time_s": round(time.time() - t0, 3),
    }
    if received:
        outcome["signal"] = signal.Signals(received[0]).name
    write_text_atomic(outcome_path(env.paths.folder, str(env.job_id)), json.dumps(outcome) + "\n")
    if proc.returncode == 0:
        return outcome
    print(f"ired dispatch: trainer exited with {proc.returncode} on {outcome['node']}", file=sys.stderr, flush=True)
    if proc.returncode < 0:
        signum = -proc.returncode
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the signal is delivered before this returns; a caught one falls through to exit
        os._exit(128 + signum)
    sys.exit(proc.returncode)


def call_target(target: str, threads: int, *args: Any) -> Any:
    """Import ``module:function`` here, on the node, and return ``function(*args)`` with ``threads`` CPU threads.

    The head pickles only the target's name, so it never imports what the job needs (torch takes seconds to import
    and the head only waits). The thread cap keeps a job within the CPUs it was given (``--cpus-per-task``, or one
    of a laptop's cores): torch would otherwise start one thread per core of the machine.
    """
    import importlib

    from ired.dispatch.gpu_slots import claimed_device

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    with claimed_device():  # before torch is imported: CUDA_VISIBLE_DEVICES is read once
        module, _, name = target.partition(":")
        fn = getattr(importlib.import_module(module), name)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        return fn(*args)
