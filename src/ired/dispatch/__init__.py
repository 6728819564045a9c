"""Dispatch training and evaluation jobs with submitit, and survive the cluster.

- :mod:`~ired.dispatch.sacct`: sacct output as data (pure parsers) and careful queries;
- :mod:`~ired.dispatch.failures`: every failure kind, and the table that turns evidence into one;
- :mod:`~ired.dispatch.policy`: what to do about each kind (exclude nodes, OOM ladder by cause, slices, stop);
- :mod:`~ired.dispatch.ladder`: the OOM ladder's position, kept in the run folder for the next invocation;
- :mod:`~ired.dispatch.attempts`: ``attempts.jsonl`` and ``job.json`` in the run folder;
- :mod:`~ired.dispatch.settings`: where and with what resources jobs run (from the profile);
- :mod:`~ired.dispatch.executor`: one backend class per cluster kind (Slurm, local) behind one interface;
  :mod:`~ired.dispatch.broker`: job arrays; :mod:`~ired.dispatch.backends`: which of them a dispatch uses;
- :mod:`~ired.dispatch.jobs`: what runs on the node;
- :mod:`~ired.dispatch.runner`: the entry points (:func:`run_training`, :func:`dispatch`);
- :mod:`~ired.dispatch.loop`: the loop in phases (adopt, submit, wait, settle), over a task
  (:mod:`~ired.dispatch.tasks`, :mod:`~ired.dispatch.train_task`), the attempt log's rows
  (:mod:`~ired.dispatch.history`), job names (:mod:`~ired.dispatch.naming`) and stopping
  (:mod:`~ired.dispatch.stopping`);
- :mod:`~ired.dispatch.cli`: ``ired dispatch-train`` (:func:`add_dispatch_commands`).

Importing this package imports neither submitit nor torch.
"""

from ired.core.errors import DispatchError
from ired.dispatch.failures import Classification, Evidence, FailureKind, classify
from ired.dispatch.loop import DispatchResult
from ired.dispatch.policy import Plan, RetryPolicy, decide
from ired.dispatch.runner import dispatch, run_training
from ired.dispatch.settings import DispatchSettings, load_settings

__all__ = [
    "Classification",
    "DispatchError",
    "DispatchResult",
    "DispatchSettings",
    "Evidence",
    "FailureKind",
    "Plan",
    "RetryPolicy",
    "classify",
    "decide",
    "dispatch",
    "load_settings",
    "run_training",
]
