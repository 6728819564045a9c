"""Cluster settings (profiles/*/dispatch.yaml) as sbatch sees them: options left out stay out, flag-only options,
and one-line errors naming the file and the key. No cluster needed: the sbatch script is submitit's own text."""

from __future__ import annotations

from pathlib import Path

import pytest
from submitit.slurm.slurm import _make_sbatch_string

from ired.dispatch import DispatchSettings, load_settings
from ired.dispatch.executor import slurm_parameters
from ired.dispatch.policy import Plan
from ired.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def sbatch_lines(settings: DispatchSettings, plan: Plan = Plan(mem_gb=2.0)) -> list[str]:
    params = slurm_parameters(settings, plan, "ired-tiny-q101-s0")
    text = _make_sbatch_string(command="python -m x", folder="/tmp/f", **params)
    return [line for line in text.splitlines() if line.startswith("#SBATCH")]


def test_the_slurm_profile_leaves_the_cluster_defaults_alone() -> None:
    lines = sbatch_lines(load_settings(REPO / "profiles" / "slurm" / "dispatch.yaml"))
    options = {line.split()[1].split("=")[0] for line in lines}
    assert not options & {"--partition", "--account", "--qos", "--constraint", "--gpus-per-node"}, lines
    assert {"--mem", "--time", "--cpus-per-task", "--job-name"} <= options


def test_site_settings_and_flag_only_options_reach_sbatch(tmp_path: Path) -> None:
    path = tmp_path / "dispatch.yaml"
    path.write_text("cluster: slurm\npartition: gpu\naccount: proj\nqos: high\nconstraint: a100|h100\ngpus: 2\n"
                    "sbatch_extra: {no-requeue: true, mail-type: FAIL, nice: 10, hold: false}\n")
    lines = sbatch_lines(load_settings(path), Plan(mem_gb=8.0, exclude=("node3",)))
    for expected in ("#SBATCH --partition=gpu", "#SBATCH --account=proj", "#SBATCH --qos=high",
                     "#SBATCH --constraint='a100|h100'", "#SBATCH --gpus-per-node=2", "#SBATCH --no-requeue",
                     "#SBATCH --mail-type=FAIL", "#SBATCH --nice=10", "#SBATCH --exclude=node3",
                     "#SBATCH --mem=8192M"):
        assert expected in lines, (expected, lines)
    assert not [line for line in lines if "no-requeue=" in line or "--hold" in line], lines


@pytest.mark.parametrize("extra, words", [
    ("{no-requeue: 'true'}", ["sbatch_extra", "'true' is a string", "no-requeue: true (unquoted)"]),
    ("{--mail-type: FAIL}", ["sbatch_extra", "without its dashes", "'mail-type'"]),
    ("{mem: 4G}", ["sbatch_extra", "'mem' is set by the dispatcher", "mem_gb"]),
    ("{partition: gpu}", ["sbatch_extra", "use partition"]),
    ("{mail type: FAIL}", ["sbatch_extra", "not an sbatch option name"]),
    ("{nice: [1, 2]}", ["sbatch_extra.nice"]),
])
def test_a_bad_sbatch_option_is_one_line_naming_file_and_key(tmp_path: Path, extra: str, words: list[str]) -> None:
    path = tmp_path / "dispatch.yaml"
    path.write_text(f"cluster: slurm\nsbatch_extra: {extra}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    for word in words:
        assert word in message, message


def test_pinned_interpreter_is_what_the_job_runs(tmp_path: Path) -> None:
    from ired.dispatch.executor import _slurm_executor_class

    settings = DispatchSettings(cluster="slurm", python="/shared/envs/ired/bin/python")
    executor = _slurm_executor_class()(folder=tmp_path, python=settings.python)
    assert executor._submitit_command_str.startswith("/shared/envs/ired/bin/python -u -m submitit")
