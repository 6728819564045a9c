import subprocess
import sys

import pytest

from ired.core.config_io import dump_config, json_schema, load_config
from ired.core.errors import ConfigError
from ired.core.run_config import OMITTED_AT_DEFAULT, RunConfig


def test_defaults_are_the_reference():
    cfg = RunConfig()
    assert (cfg.data.n, cfg.model.width, cfg.model.depth, cfg.model.time_dim) == (20, 512, 3, 128)
    assert (cfg.diffusion.steps, cfg.diffusion.cosine_s) == (10, 0.008)
    assert (cfg.train.batch_size, cfg.train.lr, cfg.train.beta1, cfg.train.beta2) == (2048, 1e-4, 0.9, 0.99)
    assert (cfg.train.grad_clip, cfg.train.ema_decay, cfg.train.ema_every) == (1.0, 0.995, 10)
    assert (cfg.objective.weight, cfg.objective.temperature) == (0.5, 1.0)
    assert (cfg.negatives.steps, cfg.negatives.init_noise, cfg.negatives.clamp) == (2, 3.0, 2.0)
    assert (cfg.inference.steps_per_level, cfg.inference.clamp) == (5, 2.0)


def test_yaml_and_set_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {head: scalar}\ntrain: {steps: 7}\n")
    cfg = load_config(path, ["train.steps=9", "objective.name=hinge"])
    assert (cfg.model.head, cfg.train.steps, cfg.objective.name) == ("scalar", 9, "hinge")
    assert load_config(None, [f"{k}" for k in []]).train.steps == 50000
    assert "head: scalar" in dump_config(cfg)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("objective.name=softmax", ["objective.name", "softmax", "'hinge'"]),
        ("train.stepz=3", ["train.stepz", "allowed here", "steps"]),
        ("train.steps=-1", ["train.steps", "-1", "an integer >= 1"]),
        ("train.lr=1e-4x", ["train.lr", "1e-4x", "a number > 0"]),
        ("model.width=wide", ["model.width", "wide", "integer"]),
        ("train.micro_batch=3", ["micro_batch=3", "must divide"]),
        ("objective.t_min=10", ["t_min=10", "diffusion.steps=10"]),
    ],
)
def test_bad_values_name_key_value_and_allowed(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert "\n" not in message
    for fragment in expected:
        assert fragment in message


def test_error_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("negatives: {name: adversarial}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*negatives\.name.*adversarial.*'mined'"):
        load_config(path)


def test_cli_bad_config_is_one_line_without_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: {batch_sise: 64}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ired.cli", "train", str(path), "--out", str(tmp_path / "run")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.batch_sise" in lines[0] and "bad.yaml" in lines[0]
    assert not (tmp_path / "run").exists(), "no work may start on a bad config"


def test_schema_describes_every_key_with_a_default():
    schema = json_schema()

    def walk(node, defs, path=""):
        for name, prop in node.get("properties", {}).items():
            ref = prop.get("$ref") or next((a["$ref"] for a in prop.get("allOf", []) if "$ref" in a), None)
            assert prop.get("description"), f"{path}{name} has no description"
            if ref:
                walk(defs[ref.split("/")[-1]], defs, f"{path}{name}.")
            else:
                assert "default" in prop, f"{path}{name} has no default"

    walk(schema, schema["$defs"])


# ------------------------------------------------------------------------------------------------------
# The text of a run config: the pipeline's params trigger compares it, so how it is made must never change it
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["plain words", "x: y # z", "'quoted' \"twice\"", "1e5", "yes", " padded ",
                                  "long " * 40, "caf\u00e9 \u00d7 2", "line\nbreak", "tab\there", "back\\slash", ""])
def test_yaml_text_is_pyyamls_whichever_emitter_writes_it(text):
    import yaml

    from ired.core.yamlio import Dumper, dump_yaml

    data = {"name": text, "nested": {"description": text, "values": [text, 1.5e-4, None, True]}}
    assert dump_yaml(data) == yaml.dump(data, Dumper=Dumper, sort_keys=False)


def test_a_seed_s_config_text_derived_from_another_is_its_dump():
    from pathlib import Path

    from ired.core.config_io import dump_config_from
    from ired.registry.experiments import load_registry, resolve_runs

    config = Path(__file__).resolve().parents[1] / "config"
    registry = load_registry(config / "experiments", config / "scales")
    runs = resolve_runs(registry, config / "base.yaml", config / "scales", "laptop",
                        [*registry.select("all"), "lr_temp"])
    first = {}
    for run in runs.values():
        like = first.setdefault(run.experiment, (run.config, dump_config(run.config)))
        assert dump_config_from(run.config, *like) == dump_config(run.config), run.run
    q101, q207 = runs["q101-s1"].config, runs["q207-s0"].config  # other keys differ: dumped afresh
    assert dump_config_from(q101, q207, dump_config(q207)) == dump_config(q101)


def test_keys_added_later_stay_out_of_a_dump_at_their_default():
    """A key added to the run config after results existed (config.OMITTED_AT_DEFAULT) leaves the dump of a run
    that does not set it byte-identical, so the pipeline's config.yaml files and their rerun trigger do not change
    on upgrade; a run that sets it says so."""
    plain = dump_config(load_config(None, []))
    for dotted in OMITTED_AT_DEFAULT:
        assert f"{dotted.rsplit('.', 1)[-1]}:" not in plain
    held = dump_config(load_config(None, ["faults.hold_at_step=7"]))
    assert "hold_at_step: 7" in held and load_config(None, ["faults.hold_at_step=7"]).faults.hold_at_step == 7
    assert held.replace("  hold_at_step: 7\n", "") == plain
