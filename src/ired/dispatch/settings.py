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


class DispatchSettings(BaseModel):
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
    poll_s: float = Field(1.0, gt=0, description="First interval between queue polls, seconds (grows to poll_max_s).")
    poll_max_s: float = Field(30.0, gt=0, description="Longest interval between queue polls, seconds.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retry policy per failure kind.")


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
