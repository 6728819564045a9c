"""Runtime settings of the dispatcher: where and with what resources jobs run, and the retry policy.

They come from the Snakemake profile (``profiles/<name>/dispatch.yaml`` or command-line flags), never from a run
config: the same experiment runs on a laptop (``cluster: local``) and on Slurm (``cluster: slurm``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ired.dispatch.policy import RetryPolicy
from ired.errors import ConfigError


#: (first, longest) interval between polls by cluster when the settings leave them out, seconds. Local jobs last
#: seconds to minutes and the head is on the same machine: poll closely. On Slurm every waiting head runs squeue,
#: so the interval backs off to half a minute (a job's end is still noticed within ~1.5x its run time).
POLL_DEFAULTS: dict[str, tuple[float, float]] = {"local": (0.2, 1.0), "slurm": (1.0, 30.0)}


class DispatchSettings(BaseModel):
    """Where and how jobs run; the keys of a profile's ``dispatch.yaml`` (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    cluster: Literal["slurm", "local"] = Field("local", description="submitit executor: `slurm` (sbatch) or `local` (a subprocess).")
    partition: str | None = Field(None, description="Slurm partition (null: the cluster's default).")
    account: str | None = Field(None, description="Slurm account (null: the user's default).")
    qos: str | None = Field(None, description="Slurm QOS (null: default).")
    mem_gb: float = Field(4.0, gt=0, description="Host memory per job (--mem). The job's own Python with torch needs ~0.3 GB.")
    cpus: int = Field(1, ge=1, description="CPUs per job (--cpus-per-task).")
    gpus: int = Field(0, ge=0, description="GPUs per job (--gpus-per-node).")
    timeout_min: int = Field(60, ge=1, description="Time limit per attempt, minutes.")
    job_name_prefix: str = Field("ired", min_length=1, description="Jobs are named <prefix>-<run>; used to re-attach by name.")
    sbatch_extra: dict[str, str] = Field(default_factory=dict, description="Further #SBATCH options, name -> value.")
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
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy per failure kind.")

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
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path or 'dispatch settings'}: {errs}") from None
