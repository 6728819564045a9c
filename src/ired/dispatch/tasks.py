"""What the dispatch loop runs: a :class:`Task` says what differs between kinds of work (its first plan, the
job of an attempt, whether its own record agrees that it is done). A training run is
:class:`ired.dispatch.train_task.TrainTask`; any picklable function (a cross-evaluation job) is
:class:`CallTask`, whose attempts differ only in their resources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ired.dispatch.policy import Plan
from ired.dispatch.settings import DispatchSettings


class Task:
    """What differs between a training run and a plain function call."""

    name: str

    def initial_plan(self, settings: DispatchSettings) -> Plan:
        raise NotImplementedError

    def job(self, plan: Plan, attempt: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        raise NotImplementedError

    def run_status(self, since: float | None) -> tuple[str | None, str | None]:
        return (None, None)

    def confirms_success(self) -> bool:
        """The job function returned; does the task's own record agree that the work is done?"""
        return True

    def on_success(self) -> None:
        """Called once the success is confirmed, before it is logged: put the task's outputs in order."""

    def logs(self) -> list[Path]:
        return []

    def checkpoint_step(self) -> int | None:
        """The step the next attempt would resume from (None: the task keeps no checkpoints)."""
        return None


class CallTask(Task):
    """``fn(*args)`` as a job: the same retries, attempt log and re-attach as training; only resources change.
    """

    def __init__(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.name, self.fn, self.args = name, fn, args

    def initial_plan(self, settings: DispatchSettings) -> Plan:
        return Plan(mem_gb=settings.mem_gb)

    def job(self, plan: Plan, attempt: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.fn, self.args
