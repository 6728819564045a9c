"""Stage 1, resolve: experiments as data -> one validated run config per run, results/<run>/config.yaml.

A run is one experiment at one seed, named `<experiment>-s<seed>`. Its config is, merged in this order:
config/base.yaml, the scale (config/scales/<scale>.yaml), then every experiment of its `extends` chain, oldest
first (its `set`, then its `at_scale.<scale>`), then the run's name and seed. The merged config is validated by
ired.config (every cross-key rule) before any job starts.

This happens when the workflow is parsed (dry runs included). A run's file is rewritten only when its
effective config changed, so the file's mtime tells the train rule exactly which runs a config edit affects;
editing a comment or a description, or a library release that adds a key with its default, retrains nothing.
"""

import itertools
import os

from ired.config import build_config, dump_config, read_yaml
from ired.inputs import check_checkpoint_file
from ired.registry import resolve_runs


def write_run_config(path, cfg):
    """Write `cfg` to `path` unless the file already holds the same effective config (mtime is the signal)."""
    path = Path(path)
    if path.is_file():
        try:
            if build_config(read_yaml(path)) == cfg:
                return
        except IredError:
            pass  # unreadable or from an older library: rewrite
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp")
    header = f"# {cfg.name}: written by the pipeline from config/; edit config/, not this file.\n"
    tmp.write_text(f"{header}{dump_config(cfg)}")
    os.replace(tmp, path)


EXPERIMENTS = checked(REGISTRY.select, config["experiments"])
EXTERNALS = config["external_checkpoints"]
for _name, _external in EXTERNALS.items():  # cheap, no torch: a text file fails here, not as a retried job
    checked(check_checkpoint_file, _external["path"], f"external_checkpoints.{_name}.path")
_RESOLVED = checked(
    resolve_runs, REGISTRY, config["base"], config["scales"], config["scale"], EXPERIMENTS, config["max_seeds"]
)
_clash = sorted(set(EXTERNALS) & set(_RESOLVED))
if _clash:
    config_error(f"config key external_checkpoints: names {_clash} are also run names; rename them")
RUNS = {}
for _run in _RESOLVED.values():  # every check has passed: only now is anything written
    RUNS[_run.run] = {
        "experiment": _run.experiment,
        "seed": _run.seed,
        "description": _run.description,
        "milestones": [f"step_{s:07d}" for s in _run.milestones] + config["export"],
    }
    write_run_config(f"results/{_run.run}/config.yaml", _run.config)

CROSS_EVAL = list(
    itertools.product(config["cross_eval"]["protocols"], config["cross_eval"]["splits"], config["cross_eval"]["weights"])
)


wildcard_constraints:
    run=alternatives([*RUNS, *EXTERNALS]),
    milestone=r"step_\d{7}|last|best|external",
