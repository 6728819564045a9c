"""The pipeline's configuration: every file under config/ validates, typos fail before any job, lint is clean.

These tests never train: they read files, or run Snakemake in dry-run / lint mode on a private copy.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from workflow_helpers import REPO, copy_workflow, planned_jobs, snakemake

from ired.core.config_io import build_config, json_schema
from ired.core.run_config import RunConfig

CONFIG = REPO / "config"
SCHEMAS = REPO / "workflow" / "schemas"
RUN_SCHEMA = json_schema()


def load(path: Path):
    return yaml.safe_load(path.read_text())


def validator(schema_file: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load(SCHEMAS / schema_file))


def flat_keys(d: dict, prefix: str = "") -> set[str]:
    keys = set()
    for k, v in d.items():
        keys |= flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return keys


def test_every_config_file_is_covered():
    """Each YAML under config/ is one of the kinds checked below (a new kind needs a schema and a test)."""
    files = {p.relative_to(CONFIG).as_posix() for p in CONFIG.rglob("*.yaml")}
    kinds = {f for f in files if f in ("config.yaml", "base.yaml") or f.split("/")[0] in ("scales", "experiments")}
    assert files == kinds


def test_pipeline_config_validates():
    validator("config.schema.yaml").validate(load(CONFIG / "config.yaml"))


#: Keys whose default is chosen when the workflow is parsed, not a constant of the schema (its description says how):
#: the scale is the one last run in the working directory, else ired.runs.paths.DEFAULT_SCALE (common.smk).
PARSE_TIME_DEFAULTS = {"scale": "DEFAULT_SCALE"}


@pytest.mark.parametrize("schema", ["config.schema.yaml"])
def test_schemas_describe_every_key_with_a_default(schema):
    """Every property of the pipeline's schemas has a description, and a default unless it is required (or chosen
    at parse time, and then its description names where)."""

    def walk(node, where, required=()):
        for key, sub in (node.get("properties") or {}).items():
            assert sub.get("description"), f"{schema}: {where}{key} has no description"
            if not where and key in PARSE_TIME_DEFAULTS:
                assert "default" not in sub and PARSE_TIME_DEFAULTS[key] in sub["description"], key
                continue
            assert "default" in sub or key in required, f"{schema}: {where}{key} has no default"
            walk(sub, f"{where}{key}.", sub.get("required", ()))
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{where}<name>.", extra.get("required", ()))

    walk(load(SCHEMAS / schema), "")


def test_base_config_states_every_default():
    base = load(CONFIG / "base.yaml")
    jsonschema.Draft202012Validator(RUN_SCHEMA).validate(base)
    defaults = RunConfig().to_dict()
    assert flat_keys(base) == flat_keys(defaults), "config/base.yaml is out of date: regenerate it with `ired config`"
    assert build_config(base, "config/base.yaml") == RunConfig()


@pytest.mark.parametrize("scale", sorted(p.name for p in (CONFIG / "scales").glob("*.yaml")))
def test_scale_files_validate(scale):
    jsonschema.Draft202012Validator(RUN_SCHEMA).validate(load(CONFIG / "scales" / scale))


def test_experiment_files_validate():
    """Every experiment of every registry file, with its fragments and extends chain (ired.registry.experiments)."""
    from ired.registry.experiments import load_registry

    registry = load_registry(CONFIG / "experiments", CONFIG / "scales")
    assert {p.stem for p in (CONFIG / "experiments").glob("*.yaml")} == set(registry.families)


def test_registry_has_the_research_notes_experiments():
    registry = {}
    for path in (CONFIG / "experiments").glob("*.yaml"):
        registry.update(load(path))
    assert {"q101", "q206", "q207", "q208", "q209"} <= set(registry)
    assert all(exp["description"].strip() for exp in registry.values())


def test_slurm_dispatch_settings_validate():
    from ired.dispatch import load_settings

    settings = load_settings(REPO / "profiles" / "slurm" / "dispatch.yaml")
    # the cluster's own defaults: a user's profile names no test cluster's partition or account
    assert (settings.cluster, settings.slurm_partition, settings.slurm_account, settings.qos) == (
        "slurm", None, None, None)


# ------------------------------------------------------------------------------------------------------
# Through the Snakemake CLI (dry runs and lint only)
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path):
    return copy_workflow(tmp_path / "wf")


@pytest.mark.parametrize("scale", ["laptop", "n20", "paper", "tiny"])
def test_every_experiment_resolves_at_every_scale(workdir, scale):
    """Every run resolves and validates when the workflow is parsed; planning writes nothing (the rule resolve
    writes each run's config.yaml, one job per training)."""
    proc = snakemake(workdir, "--dry-run", "--config", f"scale={scale}")
    assert f"ired: scale {scale} (given" in proc.stderr
    jobs = planned_jobs(workdir, "--config", f"scale={scale}")
    registry = {}
    for path in (CONFIG / "experiments").glob("*.yaml"):
        registry.update(load(path))
    assert jobs["train"] >= len(registry) and jobs["resolve"] == jobs["train"]
    assert f"results/{scale}/q101-s0/config.yaml" in proc.stdout
    assert not (workdir / "results").exists()


def test_without_a_scale_the_default_is_used_and_said(workdir):
    proc = snakemake(workdir, "--dry-run")
    assert ("ired: scale laptop (the default; --config scale=NAME for another); outputs in results/laptop/"
            in proc.stderr)
    assert not (workdir / "results").exists()


def test_experiment_typo_fails_before_any_job_naming_file_and_key(workdir):
    core = workdir / "config" / "experiments" / "core.yaml"
    core.write_text(core.read_text().replace("objective: {name: softplus}", "objective: {nmae: softplus}", 1))
    proc = snakemake(workdir, "--cores", "1", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config/experiments/core.yaml" in text and "'q206.set.objective.nmae'" in text, text
    assert "Execute" not in text and not (workdir / "logs").exists() and not (workdir / "results").exists()


def test_cross_key_error_names_the_experiment(workdir):
    core = workdir / "config" / "experiments" / "core.yaml"
    core.write_text(core.read_text().replace("model: {head: scalar}",
                                             "model: {head: scalar}\n    objective: {t_min: 99}"))
    proc = snakemake(workdir, "--dry-run", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "experiment q207" in text and "t_min" in text, text


def test_pipeline_config_typo_fails_naming_the_key(workdir):
    proc = snakemake(workdir, "--dry-run", "--config", "scael=paper", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "config/config.yaml" in text and "'scael'" in text, text


def test_unknown_experiment_selection_fails(workdir):
    proc = snakemake(workdir, "--dry-run", "--config", "experiments=[q101,q999]", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "q999" in text and "config key experiments" in text, text


def test_slurm_profile_resolves_from_the_repository_root(workdir):
    """The literal `snakemake --profile slurm all_ablations` finds ./slurm and plans the whole DAG."""
    proc = snakemake(workdir, "--profile", "slurm", "all_ablations", "--dry-run")
    assert "Using profiles slurm and workflow specific profile profiles/default" in proc.stderr
    assert "dispatch=profiles/slurm/dispatch.yaml" in proc.stdout


def test_the_dispatch_settings_come_from_the_config(workdir):
    """Config `dispatch` names the ired.dispatch settings file of the rules that run torch, over the profile's;
    only common.smk's choice of that file names a profile's file."""
    (workdir / "elsewhere").mkdir()
    (workdir / "elsewhere" / "dispatch.yaml").write_text("cluster: local\n")
    proc = snakemake(workdir, "--dry-run", "results/tiny/q101-s0/milestones", "--config", "scale=tiny",
                     "dispatch=elsewhere/dispatch.yaml")
    resources = [line for line in proc.stdout.splitlines() if line.strip().startswith("resources:")]
    assert sum("dispatch=elsewhere/dispatch.yaml" in line for line in resources) == 2, proc.stdout  # train, evaluate
    rules = [p for p in (workdir / "workflow").rglob("*.smk") if p.name != "common.smk"]
    assert "dispatch.yaml" not in "".join(p.read_text() for p in rules)


def test_set_resources_cannot_send_the_jobs_elsewhere(workdir):
    """`--set-resources` replaces the profile's set-resources whole: the train jobs still go to Slurm (the profile's
    dispatch.yaml), and the paper scale's train jobs ask for a GPU and a runtime, which the command line overrides."""
    proc = snakemake(workdir, "--profile", "slurm", "q101", "--dry-run", "--set-resources", "train:runtime=7",
                     "--config", "scale=paper")
    assert "ired: jobs run on Slurm (profiles/slurm/dispatch.yaml, profile slurm)" in proc.stderr
    train = [line for line in proc.stdout.splitlines() if "fresh=" in line]  # the train jobs' resources lines
    assert train and all("dispatch=profiles/slurm/dispatch.yaml" in line and "runtime=7" in line and "gpu=1" in line
                         for line in train), train
    proc = snakemake(workdir, "--profile", "slurm", "q101", "--dry-run", "--config", "scale=paper")
    assert all("runtime=240" in line and "gpu=1" in line for line in proc.stdout.splitlines() if "fresh=" in line)


def test_a_profile_without_dispatch_settings_stops_in_one_line(workdir):
    (workdir / "site").mkdir()
    (workdir / "site" / "config.yaml").write_text("jobs: 10\n")
    proc = snakemake(workdir, "--profile", "site", "--dry-run", check=False)
    assert (proc.returncode == 2 and "--profile site" in proc.stderr
            and "has no dispatch.yaml" in proc.stderr), proc.stderr


def test_a_resource_left_in_a_dispatch_file_stops_in_one_line(workdir):
    settings = workdir / "profiles" / "slurm" / "dispatch.yaml"
    settings.write_text(settings.read_text() + "timeout_min: 60\n")
    proc = snakemake(workdir, "--profile", "slurm", "--dry-run", check=False)
    assert proc.returncode == 2 and "key timeout_min: moved" in proc.stderr and "runtime" in proc.stderr, proc.stderr


def test_lint_passes(workdir):
    proc = snakemake(workdir, "--lint", check=False)
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
