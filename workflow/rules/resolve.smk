"""Stage 1, resolve: experiments as data -> one validated run config per run, results/<scale>/<run>/config.yaml.

A run is one experiment at one seed, named `<experiment>-s<seed>`. Its config is, merged in this order:
config/base.yaml, the scale (config/scales/<scale>.yaml), then every experiment of its `extends` chain, oldest
first (its `set`, then its `at_scale.<scale>`), then, for a sweep's point, the point's values, then the run's
name and seed (ired.registry.experiments.resolve_runs; a sweep's run also carries `sweep: {name, point}`). The merged config is
validated by ired.core.run_config (every cross-key rule) before any job starts.

RUNS are the runs of the selected experiments (config `experiments`: what all_ablations, the tables and the plots
cover). KNOWN_RUNS add the runs of every sweep of the registry, selected or not, so that `snakemake <sweep>` and
a sweep run's files are targets whatever `experiments` says; SWEEPS maps each sweep to its runs.

Parsing resolves and validates every run (a typo fails before any job) but writes nothing: planning (a dry run,
--lint, a head refused by Snakemake's lock, a failing parse) leaves every file as it was. The file is written by
the job `resolve` (train.smk), whose parameter is the file's text; Snakemake's `params` rerun trigger reruns
it exactly when the effective config changed, and its new mtime reruns the run's training. Editing a comment or
a description, or a library release that adds a key with its default, retrains nothing.
"""

import itertools

from ired.core.config_io import dump_config, dump_config_from
from ired.runs.inputs import check_checkpoint_file
from ired.registry.experiments import resolve_runs


EXPERIMENTS = checked(REGISTRY.select, config["experiments"])
_selected = set(EXPERIMENTS)
_sweep_points = [p for sweep in REGISTRY.sweeps.values() for p in sweep.points if p not in _selected]
EXTERNALS = config["external_checkpoints"]
for _name, _external in EXTERNALS.items():  # cheap, no torch: a text file fails here, not as a retried job
    checked(check_checkpoint_file, _external["path"], f"external_checkpoints.{_name}.path")
_RESOLVED = checked(
    resolve_runs, REGISTRY, config["base"], config["scales"], config["scale"], [*EXPERIMENTS, *_sweep_points],
    config["max_seeds"],
)
_clash = sorted(set(EXTERNALS) & set(_RESOLVED))
if _clash:
    config_error(f"config key external_checkpoints: names {_clash} are also run names; rename them")
KNOWN_RUNS = {
    _run.run: {
        "experiment": _run.experiment,
        "seed": _run.seed,
        "description": _run.description,
        "milestones": [f"step_{s:07d}" for s in _run.milestones] + config["export"],
        "sweep": _run.sweep,  # None, or the sweep's name
        "point": _run.point,  # the sweep point: dotted key -> value
        "resolved": _run.config,  # its RunConfig; the text of config.yaml is made when a job needs it
    }
    for _run in _RESOLVED.values()
}
RUNS = {run: r for run, r in KNOWN_RUNS.items() if r["experiment"] in _selected}
SWEEPS = {name: [run for run, r in KNOWN_RUNS.items() if r["sweep"] == name] for name in REGISTRY.sweeps}

CROSS_EVAL = list(
    itertools.product(config["cross_eval"]["protocols"], config["cross_eval"]["splits"], config["cross_eval"]["weights"])
)


_DUMPED = {}  # experiment -> (config, dump) of the first of its runs asked for; its other seeds derive from it


def get_run_config_text(wildcards):
    """The text of one run's config.yaml (the resolve rule's parameter, hence its rerun trigger). Computed when
    Snakemake plans the job; the seeds of one experiment share most of it (ired.core.config_io.dump_config_from)."""
    r = known_run(wildcards.run)
    cfg = r["resolved"]
    like = _DUMPED.get(r["experiment"])
    text = dump_config_from(cfg, *like) if like else dump_config(cfg)
    _DUMPED.setdefault(r["experiment"], (cfg, text))
    return f"# {cfg.name}: written by the pipeline from config/; edit config/, not this file.\n{text}"


wildcard_constraints:
    run=RUN_NAME,
