"""Runtime settings of the dispatcher: where and with what resources jobs run, and the retry policy.

They come from the Snakemake profile (``profiles/<name>/dispatch.yaml`` or command-line flags), never from a run
config: the same experiment runs on a laptop (``cluster: local``) and on Slurm (``cluster: slurm``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from ired.core.errors import ConfigError
from ired.dispatch.policy import RetryPolicy

#: sbatch options the dispatcher sets itself from the job's resources (or needs for its bookkeeping): not allowed in
#: ``slurm_extra``, which names the resource to use instead.
MANAGED_SBATCH_OPTIONS: dict[str, str] = {
    "job-name": "job_name_prefix", "J": "job_name_prefix", "exclude": "(the retry policy's node exclusion)",
    "x": "(the retry policy's node exclusion)", "mem": "mem_mb", "time": "runtime", "t": "runtime",
    "cpus-per-task": "cpus_per_task", "c": "cpus_per_task", "partition": "slurm_partition",
    "p": "slurm_partition", "account": "slurm_account", "A": "slurm_account", "qos": "qos", "q": "qos",
    "constraint": "constraint", "C": "constraint", "gpus-per-node": "gpu", "gpus": "gpu", "G": "gpu",
    "gres": "gpu", "nodes": "(one node per job)", "N": "(one node per job)",
    "ntasks-per-node": "(one task per job)", "output": "(the run folder's dispatch/ logs)",
    "o": "(the run folder's dispatch/ logs)", "error": "(the run folder's dispatch/ logs)",
    "e": "(the run folder's dispatch/ logs)", "array": "(the array settings)", "a": "(the array settings)",
    "comment": "(the dispatcher's attempt tag)", "open-mode": "(submitit)",
    "signal": "(the dispatcher: a warning before the time limit, its lead scaled to runtime)",
}

#: The job resources, in Snakemake's names (the Slurm executor plugin's): they come from the rule's resources
#: (per scale in config/config.yaml, a profile's default-resources / set-resources, --set-resources on the command
#: line), never from the dispatch file. The old dispatch-file key of each, for the one-line error that says where
#: it went.
RESOURCE_KEYS: dict[str, str] = {
    "runtime": "timeout_min", "mem_mb": "mem_gb", "cpus_per_task": "cpus", "gpu": "gpus",
    "slurm_partition": "partition", "slurm_account": "account", "qos": "qos", "constraint": "constraint",
    "slurm_extra": "sbatch_extra",
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

    max_size: int = Field(default=16, ge=1, description="Most runs in one array (one sbatch).")
    window_s: float = Field(
        default=2.0, ge=0, description="Requests are submitted together once none came for window_s seconds (or the "
        "first has waited 5 x window_s, or max_size are waiting).")
    poll_s: float = Field(default=5.0, gt=0, description="One squeue for all the head's jobs this often, seconds.")


class DispatchSettings(BaseModel):
    """Where and how jobs run; the keys of a profile's ``dispatch.yaml`` (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    cluster: Literal["slurm", "local"] = Field(
        default="local", description="submitit executor: `slurm` (sbatch) or `local` (a subprocess).")
    # ---- job resources (Snakemake's names; set through resources, not the dispatch file: RESOURCE_KEYS)
    slurm_partition: str | None = Field(
        default=None, description="Slurm partition (--partition; null: the cluster's default).")
    slurm_account: str | None = Field(
        default=None, description="Slurm account (--account; null: the user's default account).")
    qos: str | None = Field(default=None, description="Slurm quality of service (--qos; null: the account's default).")
    constraint: str | None = Field(
        default=None,
        description="Node features a job needs (--constraint, e.g. `a100` or `a100|h100`; null: any node).")
    mem_mb: int = Field(
        default=4096, gt=0, description="Host memory per job, MB (--mem). The job's own Python with torch needs "
        "~300 MB.")
    cpus_per_task: int = Field(
        default=1, ge=1, description="CPUs per job (--cpus-per-task, and the job's torch threads).")
    gpu: int = Field(
        default=0, ge=0, description="GPUs per job (--gpus-per-node on Slurm; locally a device of the machine's "
        "own, one per job: local_gpus).")
    runtime: int | None = Field(
        default=None, ge=1, description="Time limit per attempt, minutes (--time; Slurm warns the job before it, the "
        "trainer checkpoints and the dispatcher resubmits: a slice, not a failure). Null: the partition's limit. Local "
        "jobs get no time limit unless local_runtime is true.")
    slurm_extra: dict[str, StrictBool | StrictInt | StrictStr] = Field(
        default_factory=dict,
        description="Further sbatch options (the resource slurm_extra: `--mail-type=FAIL --no-requeue`), long name "
        "without dashes -> value: a string or number gives `--name=value`, `true` the bare flag `--name`.",
    )
    # ---- what Snakemake has no name for (the dispatch file)
    local_runtime: bool = Field(
        default=False, description="Local jobs: apply the resource runtime as a time limit too (default: no limit; a "
        "local job has no scheduler that would resubmit it).")
    local_gpus: list[int] | None = Field(
        default=None, description="Local jobs: the device numbers of this machine that jobs asking for a GPU share "
        "out, one job per device at a time (null: CUDA_VISIBLE_DEVICES of the head if set, else every /dev/nvidiaN).")
    submit_retry_s: float = Field(
        default=1800.0, ge=0, description="Slurm: how long a refused sbatch (a QOS submit limit, a busy controller) is "
        "retried, with back-off, before the run stops in one line naming the refusal.")
    max_queued: int | None = Field(
        default=None, ge=1, description="Slurm: most of this user's ired jobs (array tasks counted one by one, as "
        "Slurm counts them) queued or running at once; a submission waits (at most submit_retry_s) below it. Set it "
        "under your QOS MaxSubmitJobsPerUser. Null: no cap.")
    python: str | None = Field(
        default=None, min_length=1,
        description="The command that starts Python on the nodes (Slurm only), e.g. /shared/envs/ired/bin/python "
        "(null: the head's own interpreter, sys.executable, which must exist at the same path on every node).",
    )
    job_name_prefix: str = Field(default="ired", min_length=1, description="Jobs are named <prefix>-<scale>-<run>.")
    poll_s: float | None = Field(
        default=None, gt=0,
        description="First interval between queue polls, seconds; grows to poll_max_s (null: 0.2 local, 1 on Slurm). "
        "A local job the head itself started is not polled: the head waits on the process and wakes when it ends.",
    )
    poll_max_s: float | None = Field(
        default=None, gt=0,
        description="Longest interval between queue polls, seconds (null: 1 local, 30 on Slurm, where many waiting "
        "heads must not flood the controller with squeue calls).",
    )
    array: ArraySettings | None = Field(
        default=None, description="Slurm: submit the runs of a head as job arrays, one process polling for all "
        "(e.g. {max_size: 16, window_s: 5}; null: one sbatch and one waiting poll per run).")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy per failure kind.")

    @field_validator("slurm_extra", mode="before")
    @classmethod
    def _check_slurm_extra(cls, extra: Any) -> Any:
        if isinstance(extra, str):
            extra = parse_sbatch_flags(extra)
        if not isinstance(extra, dict):
            return extra
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
        """``slurm_extra`` as submitit's ``additional_parameters``: ``True`` (a bare flag) kept, ``False`` left out,
        numbers as text."""
        return {name: value if value is True else str(value)
                for name, value in self.slurm_extra.items() if value is not False}

    @property
    def mem_gb(self) -> float:
        """The memory of a first attempt in GB (the OOM ladder's unit, :class:`ired.dispatch.policy.Plan`)."""
        return self.mem_mb / 1024

    @property
    def first_poll_s(self) -> float:
        """The first wait between polls: the setting, else the cluster's default (:data:`POLL_DEFAULTS`)."""
        return self.poll_s if self.poll_s is not None else POLL_DEFAULTS[self.cluster][0]

    @property
    def max_poll_s(self) -> float:
        """The longest wait between polls (never below the first one)."""
        longest = self.poll_max_s if self.poll_max_s is not None else POLL_DEFAULTS[self.cluster][1]
        return max(longest, self.first_poll_s)


def parse_sbatch_flags(text: str) -> dict[str, bool | str]:
    """``--mail-type=FAIL --no-requeue`` (the resource ``slurm_extra``, as Snakemake's Slurm plugin writes it) ->
    ``{"mail-type": "FAIL", "no-requeue": True}``; ``--name value`` is accepted too."""
    import shlex

    words = shlex.split(text)
    options: dict[str, bool | str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            raise ValueError(f"{word!r} in {text!r} is not an sbatch option (write --name=value or --flag)")
        name, eq, value = word.lstrip("-").partition("=")
        if eq:
            options[name] = value
        elif i + 1 < len(words) and not words[i + 1].startswith("-"):
            options[name] = words[i + 1]
            i += 1
        else:
            options[name] = True
        i += 1
    return options


def resources_from_snakemake(resources: Any) -> dict[str, Any]:
    """The job resources of a Snakemake job (``snakemake.resources`` of a rule script, or a mapping) that the
    dispatcher uses (:data:`RESOURCE_KEYS`); a resource that is not set is left out (the settings' default)."""
    found: dict[str, Any] = {}
    for key in RESOURCE_KEYS:
        value = resources.get(key) if hasattr(resources, "get") else getattr(resources, key, None)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if key in ("runtime", "mem_mb", "cpus_per_task", "gpu") and isinstance(value, (int, float, str)):
            try:
                value = int(float(value))
            except ValueError:
                raise ConfigError(f"resource {key}: {value!r} is not a number ({_WHERE_RESOURCES})") from None
        found[key] = value
    return found


_WHERE_RESOURCES = ("a Snakemake resource: per scale in config/config.yaml `resources`, in a profile's "
                    "default-resources / set-resources, or --set-resources train:NAME=VALUE")


def load_settings(path: str | Path | None = None, resources: dict[str, Any] | None = None,
                  **overrides: Any) -> DispatchSettings:
    """Settings from a dispatch YAML file (or the defaults), then the job's resources (:data:`RESOURCE_KEYS`,
    Snakemake's names), then keyword overrides whose value is not None.

    A resource key in the file (or its old name, e.g. ``timeout_min``) is a one-line error saying where it went."""
    from ired.core.config_io import deep_merge, read_yaml

    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    old_names = {old: new for new, old in RESOURCE_KEYS.items()} | {"partition": "slurm_partition",
                                                                    "account": "slurm_account"}
    for key in data:
        if key in RESOURCE_KEYS or key in old_names:
            new = key if key in RESOURCE_KEYS else old_names[key]
            unit = {"runtime": " (minutes)", "mem_mb": " (MB)"}.get(new, "")
            raise ConfigError(f"{path or 'dispatch settings'}: key {key}: moved: the job's {new}{unit} is "
                              f"{_WHERE_RESOURCES.replace('NAME', new)}")
    data = deep_merge(data, dict(resources or {}))
    data = deep_merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return DispatchSettings.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                         for e in exc.errors())
        raise ConfigError(f"{path or 'dispatch settings'}: {errs}") from None


def signal_lead_s(runtime_min: int) -> int:
    """Seconds of warning (SIGUSR2) before a job's time limit, scaled to the limit: a tenth of it, between 10 s and
    5 min. A fixed 90 s would arrive at once on a 1-minute limit; Slurm checks its timers every ~30 s and may send the
    warning that much early, so a short limit gets a short lead."""
    return int(min(300, max(10, runtime_min * 6)))
