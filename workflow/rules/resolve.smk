"""Stage 1, resolve: experiments as data -> one validated run config per run, results/<scale>/<run>/config.yaml.

A run is one experiment at one seed, named `<experiment>-s<seed>`. Its config is, merged in this order:
config/base.yaml, the scale (config/scales/<scale>.yaml), then every experiment of its `extends` chain, oldest
first (its `set`, then its `at_scale.<scale>`), then the run's name and seed. The merged config is validated by
ired.config (every cross-key rule) before any job starts.

Parsing resolves and validates every run (a typo fails before any job) but writes nothing: planning (a dry run,
--lint, a head refused by Snakemake's lock, a failing parse) leaves every file as it was. The file is written by
the job `resolve` (train.smk), whose parameter is the file's text; Snakemake's `params` rerun trigger reruns
it exactly when the effective config changed, and its new mtime reruns the run's training. Editing a comment or
a description, or a library release that adds a key with its default, retrains nothing.
"""

import itertools

from ired.config import build_config, deep_merge, dump_config

SCALE_FILE = Path(config["scales"]) / f"{config['scale']}.yaml"
if not SCALE_FILE.is_file():
    raise WorkflowError(
        f"config key scale: {config['scale']!r} has no file {SCALE_FILE} "
        f"(scales: {', '.join(sorted(p.stem for p in Path(config['scales']).glob('*.yaml')))})"
    )
BASE = check_run_fragment(read_config_file(config["base"], "config key base"), config["base"])
SCALE = check_run_fragment(read_config_file(SCALE_FILE, "config key scale"), SCALE_FILE)


def experiment_layers(exp_id, chain=()):
    """The (file, key prefix, fragment) layers of an experiment's `extends` chain, oldest first."""
    exp = REGISTRY[exp_id]
    parent = exp["extends"]
    if parent is not None and parent not in REGISTRY:
        raise WorkflowError(f"{exp['file']}: key {exp_id}.extends: unknown experiment {parent!r}")
    if exp_id in chain:
        raise WorkflowError(f"{exp['file']}: key {exp_id}.extends: cycle {' -> '.join([*chain, exp_id])}")
    layers = experiment_layers(parent, (*chain, exp_id)) if parent is not None else []
    scale = config["scale"]
    layers.append((exp["file"], f"{exp_id}.set.", exp["set"]))
    layers.append((exp["file"], f"{exp_id}.at_scale.{scale}.", exp["at_scale"].get(scale) or {}))
    return layers


def experiment_seeds(exp_id):
    """An experiment's seeds: its own, else its parent's, else [0]; at most `max_seeds` of them."""
    exp = REGISTRY[exp_id]
    if exp["seeds"] is not None:
        return exp["seeds"][: config["max_seeds"]]
    return experiment_seeds(exp["extends"]) if exp["extends"] is not None else [0]


def select_experiments(selection):
    """`all`, or experiment ids and family names (registry file names) in the order given."""
    if selection == "all":
        return list(REGISTRY)
    chosen = []
    for name in selection:
        ids = [name] if name in REGISTRY else [e for e, x in REGISTRY.items() if x["family"] == name]
        if not ids:
            families = sorted({x["family"] for x in REGISTRY.values()})
            raise WorkflowError(
                f"config key experiments: {name!r} is neither an experiment nor a family "
                f"(families: {', '.join(families)}; experiments: {', '.join(REGISTRY)})"
            )
        chosen += [i for i in ids if i not in chosen]
    return chosen


def resolve_run(exp_id, seed):
    """The validated RunConfig of one run."""
    layers = [(config["base"], "", BASE), (SCALE_FILE, "", SCALE), *experiment_layers(exp_id)]
    merged = {}
    for source, prefix, fragment in layers:
        merged = deep_merge(merged, check_run_fragment(fragment, source, prefix))
    merged = deep_merge(merged, {"name": f"{exp_id}-s{seed}", "seed": seed})
    source = f"{REGISTRY[exp_id]['file']}: experiment {exp_id} at scale {config['scale']}"
    try:
        cfg = build_config(merged, source)
    except IredError as exc:
        raise WorkflowError(str(exc)) from None
    late = [s for s in cfg.train.milestones if s > cfg.train.steps]
    if late:
        raise WorkflowError(f"{source}: key train.milestones: steps {late} are after train.steps={cfg.train.steps}")
    return cfg


def run_config_text(cfg):
    """The text of a run's config.yaml: a header, then every effective key (ired.config.dump_config)."""
    return f"# {cfg.name}: written by the pipeline from config/; edit config/, not this file.\n{dump_config(cfg)}"


EXPERIMENTS = select_experiments(config["experiments"])
RUNS = {}
for _exp in EXPERIMENTS:
    for _seed in experiment_seeds(_exp):
        _cfg = resolve_run(_exp, _seed)
        RUNS[_cfg.name] = {
            "experiment": _exp,
            "seed": _seed,
            "description": REGISTRY[_exp]["description"],
            "milestones": [f"step_{s:07d}" for s in sorted(set(_cfg.train.milestones))] + config["export"],
            "config": run_config_text(_cfg),
        }

EXTERNALS = config["external_checkpoints"]
_clash = sorted(set(EXTERNALS) & set(RUNS))
if _clash:
    raise WorkflowError(f"config key external_checkpoints: names {_clash} are also run names; rename them")
CROSS_EVAL = list(
    itertools.product(config["cross_eval"]["protocols"], config["cross_eval"]["splits"], config["cross_eval"]["weights"])
)


wildcard_constraints:
    run=alternatives([*RUNS, *EXTERNALS]),
    milestone=r"step_\d{7}|last|best|external",

