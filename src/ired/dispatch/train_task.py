"""A training run as dispatched work: its first plan from the config, each attempt's config (the plan's
fallbacks applied, validated in the head), the run folder's verdict (``status.json``, the newest checkpoint),
and what to do with a run that is already there: collect it when it finished, drop it to train afresh when
forced or when it is a run of another config, keep a diverged one as a result when asked. torch-free:
checkpoints are verified by :mod:`ired.runs.checkpoint_format`, never loaded."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ired.core.errors import DispatchError, IredError
from ired.dispatch.failures import FailureKind
from ired.dispatch.policy import Plan
from ired.dispatch.settings import DispatchSettings
from ired.dispatch.tasks import Task
from ired.runs.atomic import write_bytes_atomic, write_text_atomic
from ired.runs.paths import RunPaths, dispatch_folder

log = logging.getLogger("ired.dispatch")


class TrainTask(Task):
    def __init__(self, config_path: Path, run_dir: Path) -> None:
        from ired.core.config_io import build_config, read_yaml

        self.base = read_yaml(config_path)
        self.cfg = build_config(self.base, str(config_path))  # a config error stops here, before any job
        self.config_path = config_path
        self.run_dir = run_dir
        self.paths = RunPaths(run_dir)
        self.name = self.cfg.name

    def initial_plan(self, settings: DispatchSettings) -> Plan:
        cfg = self.cfg
        contrastive = cfg.objective.contrastive  # draws negatives: their fallbacks apply
        return Plan(
            mem_gb=settings.mem_gb,
            micro_batch=cfg.train.effective_micro_batch,
            batch_size=cfg.train.batch_size,
            negatives_steps=cfg.negatives.steps if contrastive else None,
            buffer_size=cfg.negatives.buffer_size if contrastive and cfg.negatives.name == "replay" else None,
        )

    def attempt_config(self, plan: Plan, attempt: int) -> Path:
        """The attempt's config file: the run's config with the plan's fallbacks applied, validated here."""
        from ired.core.config_io import build_config, deep_merge, dump_config

        over: dict[str, Any] = {}
        if plan.micro_batch is not None and plan.micro_batch != self.cfg.train.effective_micro_batch:
            over.setdefault("train", {})["micro_batch"] = plan.micro_batch
        if plan.negatives_steps is not None and plan.negatives_steps != self.cfg.negatives.steps:
            over.setdefault("negatives", {})["steps"] = plan.negatives_steps
        if plan.buffer_size is not None and plan.buffer_size != self.cfg.negatives.buffer_size:
            over.setdefault("negatives", {})["buffer_size"] = plan.buffer_size
        cfg = build_config(deep_merge(self.base, over), f"{self.config_path} (attempt {attempt})")
        path = dispatch_folder(self.run_dir) / f"attempt_{attempt}.yaml"
        write_text_atomic(path, dump_config(cfg))
        return path

    def job(self, plan: Plan, attempt: int) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        from ired.dispatch.jobs import run_trainer

        return run_trainer, (str(self.attempt_config(plan, attempt)), str(self.run_dir))

    def status(self) -> dict[str, Any]:
        try:
            return json.loads(self.paths.status.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def run_status(self, since: float | None) -> tuple[str | None, str | None]:
        path = self.paths.status
        if not path.exists() or (since is not None and path.stat().st_mtime < since - 1):
            return (None, None)  # stale: written by an earlier attempt
        st = self.status()
        detail = st.get("detail")
        if st.get("status") == "diverged" and st.get("diverged_at") is not None:
            detail = f"diverged at step {st['diverged_at']}" + (f": {detail}" if detail else "")
        return (st.get("status"), detail)

    def confirms_success(self) -> bool:
        return self.status().get("status") == "completed"

    def other_config(self) -> list[str]:
        """Keys (dotted) in which the run in the folder differs from this config; [] when it is this run or
        none.

        Resource knobs (micro-batch, threads, device, fault injection ...) do not count: the trainer's own
        rule for "same run" (:func:`ired.core.same_run.config_differences`).
        """
        done = self.paths.resolved_config
        if not done.exists():
            return []
        from ired.core.config_io import read_yaml
        from ired.core.same_run import config_differences

        try:
            return config_differences(read_yaml(done), self.cfg.to_dict())
        except IredError:
            return ["resolved_config.yaml (unreadable)"]

    def finished(self) -> str | None:
        """``completed`` or ``diverged`` when ``status.json`` says the run has ended, else None."""
        st = self.status().get("status")
        return st if st in ("completed", "diverged") else None

    def on_success(self) -> None:
        """A completed attempt whose ``final.pt`` is gone gets it back from the final step checkpoint.

        That happens when the job finished while no head watched it and the rerun's Snakemake, which deletes
        an incomplete job's outputs before running it again, removed the file. The trainer saves the state of
        its last step to ``checkpoints/step_<steps>.pt`` as well as to ``final.pt`` and never prunes it;
        copying it back costs nothing and runs no job.
        """
        final = self.paths.final
        if final.exists():
            return
        from ired.core.errors import CheckpointError
        from ired.runs.checkpoint_format import step_path, verify_checkpoint  # no torch in the head

        source = step_path(self.paths.checkpoints, int(self.status()["step"]))
        if not source.exists():
            raise DispatchError(f"{self.name}: the job completed but {final} and {source} are both missing; "
                                f"rerun to train again (attempts: {self.run_dir / 'attempts.jsonl'})")
        try:
            verify_checkpoint(source)
        except CheckpointError as exc:
            raise DispatchError(f"{self.name}: the job completed but {final} is missing and its copy is "
                                f"damaged ({exc}); `snakemake --forcerun {final}` trains it again") from None
        write_bytes_atomic(final, source.read_bytes())
        log.info("%s: %s was removed after its job completed (a rerun of an interrupted pipeline job); "
                 "restored from %s", self.name, final, source)

    def collect(self, previous: str) -> None:
        """A finished run is run again (e.g. after an interrupted head): keep it; put back a ``final.pt`` that
        Snakemake deleted before rerunning the job, from the run's own checkpoint. No job, no attempt row."""
        final = self.paths.final
        if final.exists():
            log.info("%s: already %s; nothing to do", self.name, previous)
            return
        if previous == "completed":
            self.on_success()
        else:
            self.keep_diverged(DispatchError(f"{self.name}: diverged earlier", FailureKind.diverged))
        log.info("%s: already %s; %s restored from its own checkpoint, nothing trained", self.name, previous,
                 final)

    def drop_result(self, why: str) -> bool:
        """Forget the run in the folder so that this config trains from step 0: remove ``checkpoints/``,
        ``final.pt`` and ``status.json``. True when there was anything to drop.

        The rest stays: ``attempts.jsonl`` keeps the history, the trainer starts ``metrics.jsonl`` afresh, and
        ``train.log`` keeps growing.
        """
        final, checkpoints, status = self.paths.final, self.paths.checkpoints, self.paths.status
        if not (final.exists() or checkpoints.exists() or status.exists()):
            return False
        log.warning("%s: %s: deleting %s and %s to train afresh", self.name, why, checkpoints, final)
        shutil.rmtree(checkpoints, ignore_errors=True)
        final.unlink(missing_ok=True)
        status.unlink(missing_ok=True)
        return True

    def keep_diverged(self, error: DispatchError) -> Path:
        """Make the newest checkpoint before the divergence ``final.pt`` (unless the trainer wrote one)."""
        final = self.paths.final
        if not final.exists():
            from ired.runs.checkpoint_format import newest_verified_checkpoint  # no torch in the head

            newest = newest_verified_checkpoint(self.paths.checkpoints)
            if newest is None:
                raise DispatchError(f"{error} (no checkpoint was written before the divergence, so there is "
                                    "no final.pt to keep as its result)", FailureKind.diverged) from error
            write_bytes_atomic(final, newest.read_bytes())
            log.warning("%s; keeping %s as %s (status.json says diverged)", error, newest, final)
        return final

    def logs(self) -> list[Path]:
        return [self.paths.train_log]

    def checkpoint_step(self) -> int | None:
        from ired.runs.checkpoint_format import list_step_checkpoints  # no torch in the head

        found = list_step_checkpoints(self.paths.checkpoints)
        return found[-1][0] if found else None
