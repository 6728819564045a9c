"""Validation of the pipeline config and of every file it names, and the small get_* helpers of the rules.

Everything here runs when the workflow is parsed, so a typo in config/ fails before any job starts, in one line
naming the file and the key (exit code 2). The registry is loaded and validated by ired.registry.experiments; the run configs
themselves are resolved in resolve.smk.
"""

import os
import re
import sys
from pathlib import Path

import jsonschema
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from ired.dispatch.settings import load_settings
from ired.core.errors import IredError
from ired.registry.experiments import load_registry
from ired.runs import paths as layout  # the results folder's layout (ired.runs.paths): every path below comes from it

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
    run in this working directory (results/.last_scale, written by onstart), else the default scale
    (ired.runs.paths.DEFAULT_SCALE). Printed, so that a command never acts on another scale silently."""
    if given is not None:
        return given, "given"
    last = layout.last_scale()
    if last:
        return last, (f"the scale last run in this folder ({layout.RESULTS / layout.LAST_SCALE}); "
                      "--config scale=NAME for another")
    return layout.DEFAULT_SCALE, "the default; --config scale=NAME for another"


config["scale"], _scale_source = choose_scale(config.get("scale"))
validate_file(config, f"pipeline config ({', '.join(map(str, workflow.configfiles))})", "config.schema.yaml")
SCALE = layout.scale_folder(config["scale"])  # results/<scale>/: run folders, tables, plots, report
print(f"ired: scale {config['scale']} ({_scale_source}); outputs in {SCALE.folder}/", file=sys.stderr)
OUT = str(SCALE.folder)  # every output of the pipeline lives here
LOGS = str(SCALE.logs)  # logs/<scale>/: one log per job, mirroring the outputs
RUN = SCALE.run("{run}")  # the run folder as a rule's pattern: f"{RUN.final}" is results/<scale>/{run}/final.pt
# every experiment of every registry file, selected or not, with its `extends` chain (ired.registry.experiments)
REGISTRY = checked(load_registry, config["registry"], config["scales"])


def profile_in_use():
    """The --profile of this command (Snakemake keeps no record of it): the command line, else $SNAKEMAKE_PROFILE."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--profile" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
    return os.environ.get("SNAKEMAKE_PROFILE") or None


def choose_dispatch_file():
    """Where the jobs that run torch go: config `dispatch` when set, else the dispatch.yaml of the profile in use
    (found as Snakemake finds the profile), else the workflow profile's (local). A profile without one stops the
    parse: a cluster profile that silently ran its trainings on this machine would be worse. Not a resource: a
    command-line --set-resources replaces a profile's set-resources whole, and must not send jobs elsewhere."""
    if config.get("dispatch"):
        return config["dispatch"], "config `dispatch`"
    profile = profile_in_use()
    if profile:
        from snakemake.cli import get_profile_dir

        found = get_profile_dir(profile)
        if found is None:
            config_error(f"--profile {profile}: no such profile")
        path = Path(found[0]) / "dispatch.yaml"
        if not path.exists():
            config_error(f"--profile {profile} ({found[0]}) has no dispatch.yaml, which says where training and "
                         "evaluation jobs go: copy profiles/slurm/dispatch.yaml (Slurm) or profiles/default/dispatch.yaml "
                         "(this machine) into it, or name one with --config dispatch=PATH")
        real = os.path.realpath(path)  # ./slurm links to profiles/slurm: name the file itself
        inside = real.startswith(os.path.realpath(".") + os.sep)
        return (os.path.relpath(real) if inside else real), f"profile {profile}"
    return "profiles/default/dispatch.yaml", "the default: this machine; --profile slurm for Slurm"


def job_resources(rule_name):
    """The Snakemake resources of a train / evaluate job at this scale (config `resources`: the scale's entry, else
    `default`); a profile's set-resources and --set-resources override them key by key."""
    per_scale = config.get("resources", {})
    entry = per_scale.get(config["scale"], per_scale.get("default", {}))
    return dict(entry.get(rule_name, {}))


DISPATCH_FILE, _dispatch_source = choose_dispatch_file()
DISPATCH = checked(load_settings, DISPATCH_FILE)  # one-line errors (e.g. a key that moved to the resources) at parse
print(f"ired: jobs run {'on Slurm' if DISPATCH.cluster == 'slurm' else 'on this machine'} ({DISPATCH_FILE}, "
      f"{_dispatch_source})", file=sys.stderr)
if DISPATCH.cluster == "slurm":  # jobs on several nodes: the results folder's locks must hold across them
    from ired.runs.shared_fs import check_shared_locks

    checked(check_shared_locks, SCALE.folder)


# --------------------------------------------------------------------------------------------------
# Helpers of the rules (RUNS, KNOWN_RUNS, SWEEPS, EXTERNALS and EXPERIMENTS are built in resolve.smk)
# --------------------------------------------------------------------------------------------------


def alternatives(names):
    """A wildcard constraint matching exactly these names (and nothing when there are none). For a few names only:
    Snakemake copies a rule's constraints into every path pattern of the rule and rescans them for each job."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


#: What a run (or external checkpoint) name is made of (ired.registry.sweeps.NAME, then -s<seed>): the `run` wildcard's
#: constraint. Short on purpose (not the list of the runs: 1,000 names would slow every job of the plan); which
#: names are runs is checked by known_run when a job is planned (the parameters of the jobs resolve and evaluate,
#: which Snakemake evaluates for every job of a plan).
RUN_NAME = r"[A-Za-z][A-Za-z0-9_.+-]*"


def known_run(run):
    """The KNOWN_RUNS entry of a run; a name that is no run of this command stops the plan, naming it."""
    try:
        return KNOWN_RUNS[run]
    except KeyError:
        raise WorkflowError(
            f"{run!r} is not a run of this command: a run is <experiment>-s<seed>, for the experiments of config "
            f"`experiments` and the points of every sweep, with their seeds (max_seeds: {config['max_seeds']}); "
            f"scale {config['scale']}"
        ) from None


def get_external_checkpoint(wildcards):
    return EXTERNALS[wildcards.run]["path"]


def get_evaluation_of_run(wildcards):
    """What the evaluate job of one run needs to know of it: the milestones it exports and evaluates (its
    train.milestones as step_NNNNNNN, then config `export`), and its experiment, seed and name."""
    r = known_run(wildcards.run)
    return {"milestones": r["milestones"], "experiment": r["experiment"], "seed": r["seed"], "run": wildcards.run}


def get_evaluations(run):
    """Every evaluation JSON of one run (or external checkpoint): milestone x protocol x split x weights."""
    milestones = KNOWN_RUNS[run]["milestones"] if run in KNOWN_RUNS else ["external"]
    return [
        str(SCALE.run(run).evaluation(milestone, protocol, split, weights))
        for milestone in milestones
        for protocol, split, weights in CROSS_EVAL
    ]


def get_all_evaluations(wildcards=None):
    return [path for run in [*RUNS, *EXTERNALS] for path in get_evaluations(run)]


def get_all_evaluation_folders(wildcards=None):
    """The eval/ folder of every selected run and external checkpoint (outputs of evaluate / evaluate_external)."""
    return [str(SCALE.run(run).evaluations) for run in [*RUNS, *EXTERNALS]]


def get_finals(wildcards=None):
    return [str(SCALE.run(run).final) for run in RUNS]


def get_run_specs(wildcards=None):
    """One descriptor per training run for ired.reporting.summary (experiment, seed, run folder, description)."""
    return [
        {
            "experiment": r["experiment"],
            "seed": r["seed"],
            "run_dir": str(SCALE.run(run).folder),
            "run_id": run,
            "description": r["description"],
        }
        for run, r in RUNS.items()
    ]


def get_curves(wildcards=None):
    return [f"{OUT}/plots/curves/{run}.png" for run in RUNS]


def get_inference_sweep(run):
    """The inference-steps sweep of one training run's last checkpoint (written by the rule evaluate)."""
    return str(SCALE.run(run).inference_sweep)


def get_inference_sweeps(wildcards=None):
    return [get_inference_sweep(run) for run in RUNS]


def get_sweep_plot_experiments():
    """The experiments of the sweep plot (config inference_sweep.plot, ids or families) that this run has;
    every experiment when it has none of them. Unknown names fail at parse time, like `experiments`."""
    chosen = [e for e in checked(REGISTRY.select, config["inference_sweep"]["plot"], "inference_sweep.plot") if e in EXPERIMENTS]
    return chosen or list(EXPERIMENTS)


def get_run_targets(runs):
    """The outputs of the evaluate job of each of these runs: milestones/, eval/ and inference_sweep.json."""
    return [str(path) for run in runs for path in (SCALE.run(run).milestones, SCALE.run(run).evaluations,
                                                   SCALE.run(run).inference_sweep)]


def get_experiment_targets(experiment):
    """What `snakemake <experiment>` builds: get_run_targets of every run of the experiment."""
    return get_run_targets([run for run, r in KNOWN_RUNS.items() if r["experiment"] == experiment])


def get_sweep_targets(sweep):
    """What `snakemake <sweep>` builds: get_run_targets of every run of every point of the sweep."""
    return get_run_targets(SWEEPS[sweep])


def is_forced(wildcards):
    """1 when this command forces the training of this run, else 0 (a resource: not a rerun trigger)."""
    final = os.path.normpath(SCALE.run(wildcards.run).final)
    settings = workflow.dag_settings
    named = {os.path.normpath(str(t)) for t in settings.forcerun or ()}
    targets = {os.path.normpath(str(t)) for t in settings.targets or ()}
    forced = settings.forceall or "train" in named or final in named or (settings.forcetargets and final in targets)
    return int(bool(forced))

