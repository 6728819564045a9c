"""Pre-declared seeds: every experiment of the registry runs the same seeds, so no comparison rests on a seed
added after a result."""

from pathlib import Path

import yaml

REGISTRY = Path(__file__).resolve().parents[1] / "config" / "experiments"


def _seeds(experiments, name):
    exp = experiments[name]
    if exp.get("seeds") is not None:
        return exp["seeds"]
    return _seeds(experiments, exp["extends"]) if exp.get("extends") else [0]


def test_every_experiment_runs_seeds_0_1_2():
    experiments = {}
    for path in sorted(REGISTRY.glob("*.yaml")):
        experiments.update(yaml.safe_load(path.read_text()) or {})
    assert len(experiments) >= 19
    uneven = {name: _seeds(experiments, name) for name in experiments if _seeds(experiments, name) != [0, 1, 2]}
    assert not uneven, f"experiments with other seeds than [0, 1, 2]: {uneven}"
