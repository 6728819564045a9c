"""Validation of the pipeline config and of every file it names, and the small get_* helpers of the rules.

Everything here runs when the workflow is parsed, so a typo in config/ fails before any job starts, in one line
naming the file and the key (exit code 2). The registry is loaded and validated by ired.registry; the run configs
themselves are resolved in resolve.smk.
"""

import os
import re
import sys
from pathlib import Path

import jsonschema
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from ired.errors import IredError
from ired.registry import load_registry

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"


def config_error(message):
    """Stop the parse with one line on stderr and exit code 2, like every `ired` command (no Snakemake stack)."""
    print(f"ired: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def checked(function, *args, **kwargs):
    """Call a library function; its one-line IredError stops the parse (config_error)."""
    try:
        return function(*args, **kwargs)
    except IredError as exc:
        config_error(str(exc))


def validate_file(data, source, schema):
    """snakemake.utils.validate, with the failing file and key in the message; fills schema defaults."""
    try:
        validate(data, str(SCHEMAS / schema))
    except WorkflowError as exc:
        cause = exc.__cause__ or exc.__context__  # the jsonschema.ValidationError
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        key = ".".join(str(p) for p in cause.absolute_path) or "(top level)"
        value = "" if isinstance(cause.instance, (dict, list)) else f"value {cause.instance!r}: "
        config_error(f"{source}: key {key}: {value}{cause.message} (keys and allowed values: workflow/schemas/{schema})")
    return data


def choose_scale(given):
    """The scale of this command: the one given (--config scale=, a config file), else the one last used by a real
    run in this working directory (results/.last_scale, written by onstart), else the schema's default. Printed, so
    that a command never acts on another scale silently."""
    if given is not None:
        return given, "given"
    try:
        last = LAST_SCALE.read_text().strip()
    except OSError:
        last = ""
    if last:
        return last, f"the scale last run in this folder ({LAST_SCALE}); --config scale=NAME for another"
    return None, "the default; --config scale=NAME for another"


LAST_SCALE = Path("results") / ".last_scale"
_scale, _scale_source = choose_scale(config.get("scale"))
if _scale is not None:
    config["scale"] = _scale
validate_file(config, f"pipeline config ({', '.join(map(str, workflow.configfiles))})", "config.schema.yaml")
print(f"ired: scale {config['scale']} ({_scale_source}); outputs in results/{config['scale']}/", file=sys.stderr)
OUT = f"results/{config['scale']}"  # every output of the pipeline lives here: run folders, tables, plots, report
LOGS = f"logs/{config['scale']}"  # one log per job, mirroring the outputs
# every experiment of every registry file, selected or not, with its `extends` chain (ired.registry)
REGISTRY = checked(load_registry, config["registry"], config["scales"])


# --------------------------------------------------------------------------------------------------
# Helpers of the rules (RUNS, KNOWN_RUNS, SWEEPS, EXTERNALS and EXPERIMENTS are built in resolve.smk)
# --------------------------------------------------------------------------------------------------


def alternatives(names):
    """A wildcard constraint matching exactly these names (and nothing when there are none)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


def milestone_file(milestone):
    """Where a milestone lives in the run folder; all but final.pt are undeclared (docs/ARCHITECTURE.md)."""
    if milestone == "last":
        return "final.pt"
    if milestone == "best":
        return "checkpoints/best.pt"
    return f"checkpoints/{milestone}.pt"


def get_milestone_source(wildcards):
    return f"{OUT}/{wildcards.run}/{milestone_file(wildcards.milestone)}"


def get_external_checkpoint(wildcards):
    return EXTERNALS[wildcards.run]["path"]


def get_checkpoints(run):
    """The exported (or imported) checkpoint files of one run: results/<scale>/<run>/milestones/<milestone>.pt."""
    milestones = KNOWN_RUNS[run]["milestones"] if run in KNOWN_RUNS else ["external"]
    return [f"{OUT}/{run}/milestones/{m}.pt" for m in milestones]


def get_evaluations(run):
    """Every evaluation JSON of one run: checkpoint x protocol x split x weights."""
    return [
        f"{OUT}/{run}/eval/{Path(ckpt).stem}/{protocol}.{split}.{weights}.json"
        for ckpt in get_checkpoints(run)
        for protocol, split, weights in CROSS_EVAL
    ]


def get_all_evaluations(wildcards=None):
    return [path for run in [*RUNS, *EXTERNALS] for path in get_evaluations(run)]


def get_finals(wildcards=None):
    return [f"{OUT}/{run}/final.pt" for run in RUNS]


def get_run_specs(wildcards=None):
    """One descriptor per training run for ired.summary (experiment, seed, run folder, description)."""
    return [
        {
            "experiment": r["experiment"],
            "seed": r["seed"],
            "run_dir": f"{OUT}/{run}",
            "run_id": run,
            "description": r["description"],
        }
        for run, r in RUNS.items()
    ]


def get_curves(wildcards=None):
    return [f"{OUT}/plots/curves/{run}.png" for run in RUNS]


def get_sweep(run):
    """The inference-steps sweep of one training run's last checkpoint (landscape.smk)."""
    return f"{OUT}/{run}/inference_sweep.json"


def get_sweeps(wildcards=None):
    return [get_sweep(run) for run in RUNS]


def get_sweep_run(wildcards):
    """What a sweep row says about its run: experiment, seed and run id."""
    r = KNOWN_RUNS[wildcards.run]
    return {"experiment": r["experiment"], "seed": r["seed"], "run": wildcards.run}


def get_sweep_plot_experiments():
    """The experiments of the sweep plot (config inference_sweep.plot, ids or families) that this run has;
    every experiment when it has none of them. Unknown names fail at parse time, like `experiments`."""
    chosen = [e for e in checked(REGISTRY.select, config["inference_sweep"]["plot"], "inference_sweep.plot") if e in EXPERIMENTS]
    return chosen or list(EXPERIMENTS)


def get_run_targets(runs):
    """Checkpoints, their cross-evaluations and the inference sweep of each of these runs."""
    return [path for run in runs for path in [*get_checkpoints(run), *get_evaluations(run), get_sweep(run)]]


def get_experiment_targets(experiment):
    """What `snakemake <experiment>` builds: get_run_targets of every run of the experiment."""
    return get_run_targets([run for run, r in KNOWN_RUNS.items() if r["experiment"] == experiment])


def get_sweep_targets(sweep):
    """What `snakemake <sweep>` builds: get_run_targets of every run of every point of the sweep."""
    return get_run_targets(SWEEPS[sweep])


def is_forced(wildcards):
    """1 when this command forces the training of this run, else 0 (a resource: not a rerun trigger)."""
    final = os.path.normpath(f"{OUT}/{wildcards.run}/final.pt")
    settings = workflow.dag_settings
    named = {os.path.normpath(str(t)) for t in settings.forcerun or ()}
    targets = {os.path.normpath(str(t)) for t in settings.targets or ()}
    forced = settings.forceall or "train" in named or final in named or (settings.forcetargets and final in targets)
    return int(bool(forced))

