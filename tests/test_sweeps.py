"""Sweeps as data (ired.registry.sweeps, ired.registry.experiments): expansion, names, the resolved config's `sweep`,
and mistakes.

Library-level and fast (no Snakemake): the sweep's end-to-end run through the Snakemake CLI is in
tests/test_workflow_sweep.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ired.core.config_io import build_config, dump_config, load_config
from ired.core.errors import ConfigError
from ired.registry.experiments import load_registry, resolve_runs
from ired.registry.sweeps import format_value

CONFIG = Path(__file__).resolve().parents[1] / "config"
LR_SWEEP = """
lr_sweep:
  extends: q207
  description: lr x temperature, margin with negative steps.
  seeds: [0, 1, 2]
  sweep:
    grid: {train.lr: [1.0e-4, 3.0e-4, 1.0e-3], objective.temperature: [0.5, 1.0]}
    zip: {objective.margin: [0.1, 0.2], negatives.steps: [2, 4]}
"""


def registry_with(tmp_path: Path, text: str, name: str = "zz_sweeps.yaml") -> Path:
    folder = tmp_path / "experiments"
    shutil.copytree(CONFIG / "experiments", folder)
    (folder / name).write_text(text)
    return folder


def test_a_sweep_expands_to_named_points_in_order(tmp_path):
    registry = load_registry(registry_with(tmp_path, LR_SWEEP), CONFIG / "scales")
    sweep = registry.sweeps["lr_sweep"]
    assert sweep.keys == ("train.lr", "objective.temperature", "objective.margin", "negatives.steps")
    assert len(sweep.points) == 3 * 2 * 2  # grid product x zip positions
    assert sweep.points[:3] == (
        "lr_sweep-lr1e-4-temp0.5-margin0.1-steps2",
        "lr_sweep-lr1e-4-temp0.5-margin0.2-steps4",
        "lr_sweep-lr1e-4-temp1-margin0.1-steps2",
    )
    point = registry.experiments["lr_sweep-lr3e-4-temp1-margin0.2-steps4"]
    assert point.sweep == "lr_sweep" and point.seeds == (0, 1, 2) and point.family == "zz_sweeps"
    assert point.point == {"train.lr": 3.0e-4, "objective.temperature": 1.0, "objective.margin": 0.2,
                           "negatives.steps": 4}
    assert "lr_sweep" not in registry.experiments  # the sweep itself has no runs: its points do


def test_names_are_stable_and_safe():
    assert [format_value(v) for v in (3.0e-4, 1.0e-3, 0.01, 0.5, 1.0, 2, 150000.0, True, None, "hinge", [0.1, 0.5])] \
        == ["3e-4", "1e-3", "0.01", "0.5", "1", "2", "1.5e5", "true", "null", "hinge", "0.1_0.5"]


def test_the_run_config_carries_the_sweep_and_its_point(tmp_path):
    registry = load_registry(registry_with(tmp_path, LR_SWEEP), CONFIG / "scales")
    runs = resolve_runs(registry, CONFIG / "base.yaml", CONFIG / "scales", "tiny", ["lr_sweep"], 2)
    assert len(runs) == 12 * 2
    run = runs["lr_sweep-lr1e-3-temp0.5-margin0.2-steps4-s1"]
    assert (run.experiment, run.seed, run.sweep) == ("lr_sweep-lr1e-3-temp0.5-margin0.2-steps4", 1, "lr_sweep")
    cfg = run.config
    assert (cfg.train.lr, cfg.objective.temperature, cfg.objective.margin, cfg.negatives.steps) == (1e-3, 0.5, 0.2, 4)
    assert cfg.model.head == "scalar"  # the sweep extends q207
    written = yaml.safe_load(dump_config(cfg))
    assert written["sweep"] == {"name": "lr_sweep", "point": {"train.lr": 0.001, "objective.temperature": 0.5,
                                                              "objective.margin": 0.2, "negatives.steps": 4}}
    assert build_config(written) == cfg  # config.yaml reads back (ired train accepts it)
    ordinary = resolve_runs(registry, CONFIG / "base.yaml", CONFIG / "scales", "tiny", ["q207"], 1)["q207-s0"]
    assert ordinary.sweep is None and "sweep" not in yaml.safe_load(dump_config(ordinary.config))


def test_a_point_differs_from_its_parent_only_by_its_values(tmp_path):
    registry = load_registry(registry_with(tmp_path, LR_SWEEP), CONFIG / "scales")
    runs = resolve_runs(registry, CONFIG / "base.yaml", CONFIG / "scales", "laptop", ["lr_sweep", "q207"], 1)
    point = runs["lr_sweep-lr3e-4-temp0.5-margin0.2-steps4-s0"].config.to_dict()
    parent = runs["q207-s0"].config.to_dict()
    changed = {k for k in point if point[k] != parent.get(k)} | {k for k in parent if k not in point}
    assert changed == {"name", "train", "objective", "negatives", "sweep"}
    assert point["train"] == {**parent["train"], "lr": 3e-4}


def test_selection_all_leaves_sweeps_out_and_names_bring_them_in(tmp_path):
    registry = load_registry(registry_with(tmp_path, LR_SWEEP), CONFIG / "scales")
    everything = registry.select("all")
    assert "q207" in everything and not any(e.startswith("lr_sweep") for e in everything)
    assert registry.select(["lr_sweep"]) == list(registry.sweeps["lr_sweep"].points)
    assert registry.select(["zz_sweeps"]) == list(registry.sweeps["lr_sweep"].points)  # the family
    one = "lr_sweep-lr1e-4-temp1-margin0.2-steps4"
    assert registry.select([one, "q207"]) == [one, "q207"]
    with pytest.raises(ConfigError, match="neither an experiment, a sweep nor a family .*; sweeps: .*lr_sweep"):
        registry.select(["lr_swep"])


def test_the_example_sweep_of_config_is_cheap_and_separate():
    registry = load_registry(CONFIG / "experiments", CONFIG / "scales")
    assert set(registry.sweeps) == {"lr_temp"}
    assert len(registry.sweeps["lr_temp"].points) * 3 == 12  # 12 runs with the inherited seeds [0, 1, 2]
    assert not any(registry.experiments[e].sweep for e in registry.select("all"))


def test_a_sweep_run_config_loads_from_its_file(tmp_path):
    registry = load_registry(registry_with(tmp_path, LR_SWEEP), CONFIG / "scales")
    run = next(iter(resolve_runs(registry, CONFIG / "base.yaml", CONFIG / "scales", "tiny", ["lr_sweep"], 1).values()))
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(run.config))
    assert load_config(path) == run.config


# ------------------------------------------------------------------------------------------------------
# Mistakes: one line naming the file, the experiment, the key and what is allowed
# ------------------------------------------------------------------------------------------------------

HEAD = "bad:\n  extends: q207\n  description: x\n  sweep:\n"


@pytest.mark.parametrize(
    "sweep, fragments",
    [
        ("    grid: {train.lrr: [1.0e-4]}\n",
         ("experiment bad", "unknown key 'train.lrr'", "allowed under train: ", "lr,")),
        ("    grid: {trian.lr: [1.0e-4]}\n", ("unknown key 'trian.lr'", "allowed: ", "train")),
        ("    grid: {train: [1]}\n", ("key 'train' is a section", "train.")),
        ("    grid: {seed: [1, 2]}\n", ("unknown key 'seed'", "seeds: the experiment's `seeds`")),
        ("    grid: {train.lr: 1.0e-4}\n", ("sweep.grid", "key 'train.lr'", "a non-empty list of values")),
        ("    grid: {train.lr: []}\n", ("key 'train.lr'", "a non-empty list")),
        ("    grid: {train.lr: [-1.0]}\n", ("bad.sweep.grid.train.lr", "-1.0", "allowed: a number > 0")),
        ("    grid: {train.steps: [10, 10]}\n", ("repeat 10", "distinct values")),
        ("    zip: {train.lr: [1.0e-4, 3.0e-4], objective.margin: [0.1]}\n",
         ("unequal lengths", "train.lr: 2, objective.margin: 1", "lists of one length")),
        ("    grid: {train.lr: [1.0e-4]}\n    zip: {train.lr: [1.0e-4]}\n", ("'train.lr' is in both",)),
        ("    grid: {train.lr: [1.0e-4, 1.00000000000001e-4]}\n", ("repeat 1e-4", "distinct values")),
        ("    grid: {train.lr: [1.0e-4]}\n    labels: {train.lr: 'l r'}\n", ("labels.train.lr", "'l r'")),
        ("    grid: {train.lr: [1.0e-4], objective.temperature: [1.0]}\n    labels: {train.lr: temp}\n",
         ("same label 'temp'", "set sweep.labels")),
        ("    grid: {}\n", ("has no keys", "grid and/or zip")),
        ("    gird: {train.lr: [1.0e-4]}\n", ("unknown key 'bad.sweep.gird'", "allowed here: grid, zip, labels")),
        ("    grid: {objective.name: ['soft plus']}\n", ("cannot name a sweep point",)),
    ],
    ids=["unknown-leaf", "unknown-section", "section-not-value", "seed", "not-a-list", "empty-list", "bad-value",
         "repeated-value", "zip-lengths", "grid-and-zip", "same-printed-value", "bad-label", "same-label", "no-keys",
         "unknown-sweep-key", "unsafe-text"],
)
def test_sweep_mistakes(tmp_path, sweep, fragments):
    folder = registry_with(tmp_path, HEAD + sweep)
    with pytest.raises(ConfigError) as info:
        load_registry(folder, CONFIG / "scales")
    message = str(info.value)
    assert "\n" not in message and "zz_sweeps.yaml" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_a_sweep_cannot_be_extended_nor_set_by_hand(tmp_path):
    folder = registry_with(tmp_path, LR_SWEEP + "child:\n  extends: lr_sweep\n  description: x\n")
    with pytest.raises(ConfigError, match=r"key 'child.extends': 'lr_sweep' is a sweep, which cannot be extended"):
        load_registry(folder)
    folder = registry_with(tmp_path / "b", "odd:\n  description: x\n  set: {sweep: {name: a, point: {}}}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'odd.set.sweep'"):
        load_registry(folder)


def test_a_cross_key_error_of_one_point_names_the_point(tmp_path):
    folder = registry_with(tmp_path, HEAD + "    grid: {objective.t_min: [0, 99]}\n")
    with pytest.raises(ConfigError, match=r"experiment bad-t_min99 at scale tiny: .*t_min"):
        resolve_runs(load_registry(folder), CONFIG / "base.yaml", CONFIG / "scales", "tiny", "all")
