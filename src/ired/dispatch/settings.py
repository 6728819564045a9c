"""Runtime settings of the dispatcher: where and with what resources jobs run, and the retry policy.

They come from the Snakemake profile (``profiles/<name>/dispatch.yaml`` or command-line flags), never from a run
config: the same experiment runs on a laptop (``cluster: local``) and on Slurm (``cluster: slurm``).
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from ired.dispatch.policy import RetryPolicy
from ired.errors import ConfigError


#: sbatch options the dispatcher sets itself from its own keys (or needs for its bookkeeping): not allowed in
#: ``sbatch_extra``, which names the key to use instead.
MANAGED_SBATCH_OPTIONS: dict[str, str] = {
    "job-name": "job_name_prefix", "J": "job_name_prefix", "exclude": "(the retry policy's node exclusion)",
    "x": "(the retry policy's node exclusion)", "mem": "mem_gb", "time": "timeout_min", "t": "timeout_min",
    "cpus-per-task": "cpus", "c": "cpus", "partition": "partition", "p": "partition", "account": "account",
    "A": "account", "qos": "qos", "q": "qos", "constraint": "constraint", "C": "constraint",
    "gpus-per-node": "gpus", "nodes": "(one node per job)", "N": "(one node per job)",
    "ntasks-per-node": "(one task per job)", "output": "(the run folder's dispatch/ logs)",
    "o": "(the run folder's dispatch/ logs)", "error": "(the run folder's dispatch/ logs)",
    "e": "(the run folder's dispatch/ logs)", "array": "(the array settings)", "a": "(the array settings)",
    "comment": "(the dispatcher's attempt tag)", "open-mode": "(submitit)", "signal": "(submitit)",
}

_SBATCH_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9-]*")

#: (first, longest) interval between polls by cluster when the settings leave them out, seconds. Local jobs last
#: seconds to minutes and the head is on the same machine: poll closely. On Slurm every waiting head runs squeue,
#: so the interval backs off to half a minute (a job's end is still noticed within ~1.5x its run time).
POLL_DEFAULTS: dict[str, tuple[float, float]] = {"local": (0.2, 1.0), "slurm": (1.0, 30.0)}


class ArraySettings(BaseModel):
    """Small runs share submissions (Slurm only): the head's dispatchers request, one of them submits arrays and
    polls the queue for all (:mod:`ired.dispatch.broker`)."""

    model_config = ConfigDict(extra="forbid")

    max_size: int = Field(16, ge=1, description="Most runs in one array (one sbatch).")
    window_s: float = Field(
        2.0, ge=0, description="Requests are submitted together once none came for window_s seconds (or the first "
        "has waited 5 x window_s, or max_size are waiting).")
    poll_s: float = Field(5.0, gt=0, description="One squeue for all the head's jobs this often, seconds.")


class DispatchSettings(BaseModel):
    """Where and how jobs run; the keys of a profile's ``dispatch.yaml`` (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    cluster: Literal["slurm", "local"] = Field("local", description="submitit executor: `slurm` (sbatch) or `local` (a subprocess).")
    partition: str | None = Field(None, description="Slurm partition (--partition; null: the cluster's default).")
    account: str | None = Field(None, description="Slurm account (--account; null: the user's default account).")
    qos: str | None = Field(None, description="Slurm quality of service (--qos; null: the account's default).")
    constraint: str | None = Field(
        None, description="Node features a job needs (--constraint, e.g. `a100` or `a100|h100`; null: any node).")
    mem_gb: float = Field(4.0, gt=0, description="Host memory per job (--mem). The job's own Python with torch needs ~0.3 GB.")
    cpus: int = Field(1, ge=1, description="CPUs per job (--cpus-per-task).")
    gpus: int = Field(0, ge=0, description="GPUs per job (--gpus-per-node; a job is one task on one node).")
    timeout_min: int = Field(60, ge=1, description="Time limit per attempt, minutes.")
    python: str | None = Field(
        None, min_length=1,
        description="The command that starts Python on the nodes (Slurm only), e.g. /shared/envs/ired/bin/python "
        "(null: the head's own interpreter, sys.executable, which must exist at the same path on every node).",
    )
    job_name_prefix: str = Field("ired", min_length=1, description="Jobs are named <prefix>-<scale>-<run>.")
    sbatch_extra: dict[str, StrictBool | StrictInt | StrictStr] = Field(
        default_factory=dict,
        description="Further sbatch options, long name without dashes -> value: a string or number gives "
        "`--name=value`, `true` the bare flag `--name` (e.g. `no-requeue: true`), `false` leaves it out.",
    )
    poll_s: float | None = Field(
        None, gt=0,
        description="First interval between queue polls, seconds; grows to poll_max_s (null: 0.2 local, 1 on Slurm). "
        "A local job the head itself started is not polled: the head waits on the process and wakes when it ends.",
    )
    poll_max_s: float | None = Field(
        None, gt=0,
        description="Longest interval between queue polls, seconds (null: 1 local, 30 on Slurm, where many waiting "
        "heads must not flood the controller with squeue calls).",
    )
    array: ArraySettings | None = Field(
        None, description="Slurm: submit the runs of a head as job arrays, one process polling for all "
        "(e.g. {max_size: 16, window_s: 5}; null: one sbatch and one waiting poll per run).")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy per failure kind.")

    @field_validator("sbatch_extra")
    @classmethod
    def _check_sbatch_extra(cls, extra: dict[str, bool | int | str]) -> dict[str, bool | int | str]:
        for name, value in extra.items():
            if name.startswith("-"):
                raise ValueError(f"option {name!r}: write the long option name without its dashes "
                                 f"({name.lstrip('-')!r})")
            if not _SBATCH_OPTION.fullmatch(name):
                raise ValueError(f"option {name!r} is not an sbatch option name (allowed: letters, digits and '-', "
                                 "e.g. mail-type, no-requeue)")
            if name in MANAGED_SBATCH_OPTIONS:
                raise ValueError(f"option {name!r} is set by the dispatcher: use {MANAGED_SBATCH_OPTIONS[name]}")
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                raise ValueError(
                    f"option {name!r}: {value!r} is a string; write {name}: {value.strip().lower()} (unquoted) for a "
                    f"flag without a value (true gives --{name}, false leaves it out)")
        return extra

    def sbatch_options(self) -> dict[str, str | bool]:
        """``sbatch_extra`` as submitit's ``additional_parameters``: ``True`` (a bare flag) kept, ``False`` left out,
        numbers as text."""
        return {name: value if value is True else str(value)
                for name, value in self.sbatch_extra.items() if value is not False}

    @property
    def first_poll_s(self) -> float:
        """The first wait between polls: the setting, else the cluster's default (:data:`POLL_DEFAULTS`)."""
        return self.poll_s if self.poll_s is not None else POLL_DEFAULTS[self.cluster][0]

    @property
    def max_poll_s(self) -> float:
        """The longest wait between polls (never below the first one)."""
        longest = self.poll_max_s if self.poll_max_s is not None else POLL_DEFAULTS[self.cluster][1]
        return max(longest, self.first_poll_s)


def load_settings(path: str | Path | None = None, **overrides: Any) -> DispatchSettings:
    """Settings from a YAML file (or the defaults), then keyword overrides whose value is not None."""
    from ired.config import deep_merge, read_yaml

    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    data = deep_merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return DispatchSettings.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                         for e in exc.errors())
        raise ConfigError(f"{path or 'dispatch settings'}: {errs}") from None
