"""Cluster settings (profiles/*/dispatch.yaml) as sbatch sees them: options left out stay out, flag-only options,
and one-line errors naming the file and the key. No cluster needed: the sbatch script is submitit's own text."""

from __future__ import annotations

from pathlib import Path

import pytest
from submitit.slurm.slurm import _make_sbatch_string

from ired.core.errors import ConfigError
from ired.dispatch import DispatchSettings, load_settings
from ired.dispatch.executor import slurm_parameters
from ired.dispatch.policy import Plan

REPO = Path(__file__).resolve().parents[1]
SMALL_PLAN = Plan(mem_gb=2.0)  # frozen, so one shared default is safe


def sbatch_lines(settings: DispatchSettings, plan: Plan = SMALL_PLAN) -> list[str]:
    params = slurm_parameters(settings, plan, "ired-tiny-q101-s0")
    text = _make_sbatch_string(command="python -m x", folder="/tmp/f", **params)
    return [line for line in text.splitlines() if line.startswith("#SBATCH")]


LAPTOP = {"runtime": 60, "mem_mb": 4096, "cpus_per_task": 1, "gpu": 0}  # config/config.yaml, resources.default


def test_the_slurm_profile_leaves_the_cluster_defaults_alone() -> None:
    lines = sbatch_lines(load_settings(REPO / "profiles" / "slurm" / "dispatch.yaml", resources=LAPTOP))
    options = {line.split()[1].split("=")[0] for line in lines}
    assert not options & {"--partition", "--account", "--qos", "--constraint", "--gpus-per-node"}, lines
    assert {"--mem", "--time", "--cpus-per-task", "--job-name", "--signal"} <= options


def test_snakemake_resources_reach_sbatch_with_flag_only_options(tmp_path: Path) -> None:
    resources = {"slurm_partition": "gpu", "slurm_account": "proj", "qos": "high", "constraint": "a100|h100",
                 "gpu": 2, "runtime": 600, "mem_mb": 8192, "cpus_per_task": 4,
                 "slurm_extra": "--no-requeue --mail-type=FAIL --nice 10"}
    settings = load_settings(REPO / "profiles" / "slurm" / "dispatch.yaml", resources=resources)
    lines = sbatch_lines(settings, Plan(mem_gb=settings.mem_gb, exclude=("node3",)))
    for expected in ("#SBATCH --partition=gpu", "#SBATCH --account=proj", "#SBATCH --qos=high",
                     "#SBATCH --constraint='a100|h100'", "#SBATCH --gpus-per-node=2", "#SBATCH --no-requeue",
                     "#SBATCH --mail-type=FAIL", "#SBATCH --nice=10", "#SBATCH --exclude=node3",
                     "#SBATCH --mem=8192M", "#SBATCH --time=600", "#SBATCH --cpus-per-task=4",
                     "#SBATCH --signal=USR2@300"):
        assert expected in lines, (expected, lines)
    assert not [line for line in lines if "no-requeue=" in line], lines


@pytest.mark.parametrize("runtime, lead", [(1, 10), (7, 42), (60, 300), (2880, 300)])
def test_the_time_limit_warning_is_scaled_to_the_limit(runtime: int, lead: int) -> None:
    """A 90 s warning on a 1-minute limit would arrive at once: the lead is a tenth of the limit, 20 s to 5 min."""
    lines = sbatch_lines(load_settings(resources={**LAPTOP, "runtime": runtime}, cluster="slurm"))
    assert f"#SBATCH --signal=USR2@{lead}" in lines and f"#SBATCH --time={runtime}" in lines, lines


def test_snakemake_resources_as_a_rule_script_sees_them() -> None:
    from ired.dispatch.settings import resources_from_snakemake

    class Resources(dict):  # snakemake.resources: a mapping with more keys than the dispatcher uses
        pass

    found = resources_from_snakemake(Resources(_cores=1, tmpdir="/tmp", dispatch="x.yaml", runtime=7, mem_mb="2048",
                                               gpu=0, slurm_extra=""))
    assert found == {"runtime": 7, "mem_mb": 2048, "gpu": 0}


@pytest.mark.parametrize("line, words", [
    ("timeout_min: 60", ["key timeout_min: moved", "runtime (minutes)", "--set-resources train:runtime="]),
    ("mem_gb: 4", ["key mem_gb: moved", "mem_mb (MB)", "default-resources / set-resources"]),
    ("partition: gpu", ["key partition: moved", "slurm_partition"]),
    ("sbatch_extra: {mail-type: FAIL}", ["key sbatch_extra: moved", "slurm_extra"]),
    ("gpu: 1", ["key gpu: moved", "a Snakemake resource"]),
])
def test_a_resource_in_the_dispatch_file_says_where_it_went(tmp_path: Path, line: str, words: list[str]) -> None:
    path = tmp_path / "dispatch.yaml"
    path.write_text(f"cluster: slurm\n{line}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("extra, words", [
    ("--mem=4G", ["slurm_extra", "'mem' is set by the dispatcher", "mem_mb"]),
    ("--partition=gpu", ["slurm_extra", "use slurm_partition"]),
    ("--time 5", ["slurm_extra", "use runtime"]),
    ("mail-type=FAIL", ["slurm_extra", "is not an sbatch option"]),
])
def test_a_bad_sbatch_option_is_one_line_naming_the_resource(extra: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(resources={"slurm_extra": extra}, cluster="slurm")
    message = str(err.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message


def test_pinned_interpreter_is_what_the_job_runs(tmp_path: Path) -> None:
    from ired.dispatch.executor import _slurm_executor_class

    settings = DispatchSettings(cluster="slurm", python="/shared/envs/ired/bin/python")
    executor = _slurm_executor_class()(folder=tmp_path, python=settings.python)
    assert executor._submitit_command_str.startswith("/shared/envs/ired/bin/python -u -m submitit")
