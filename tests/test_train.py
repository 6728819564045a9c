import json
import subprocess
import sys
import threading
import time

import pytest
import torch
from conftest import TINY, tiny_config

from ired.core.errors import CheckpointError, DivergedError
from ired.core.metrics import ALL_COLUMNS
from ired.runs.checkpoint import load_checkpoint
from ired.training.trainer import train


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _science(rows):
    return [{k: v for k, v in r.items() if k != "sec_per_step"} for r in rows]


def test_tiny_run_writes_the_contract(tmp_path):
    start = time.time()
    result = train(tiny_config(), tmp_path, echo=False)
    assert time.time() - start < 60
    assert result.status == "completed" and result.step == 60
    for name in ("final.pt", "resolved_config.yaml", "metrics.jsonl", "metrics_contract.json", "status.json",
                 "train.log"):
        assert (tmp_path / name).is_file(), name
    rows = _rows(tmp_path)
    assert [r["step"] for r in rows] == [20, 40, 60]
    for row in rows:
        assert set(row) == set(ALL_COLUMNS)
    last = rows[-1]
    for name in ("val_task_mse", "val_task_mse_raw", "val_harder_task_mse", "val_denoise_mse", "train_task_mse_raw",
                 "train_batch_task_mse", "train_batch_task_mse_raw"):
        assert isinstance(last[name], float)
    # denoise-only: contrastive quantities do not apply and are null, never made up
    assert last["E_neg"] is None and last["frac_sat"] is None and last["loss_contrastive"] is None
    assert set(json.loads((tmp_path / "metrics_contract.json").read_text())) == set(ALL_COLUMNS)
    ckpt = load_checkpoint(tmp_path / "final.pt")
    assert ckpt["step"] == 60 and ckpt["config"]["name"] == "tiny" and ckpt["code_version"]
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "completed"
    log = (tmp_path / "train.log").read_text()
    assert "metrics contract" in log and "ETA" in log and "objective:" in log


@pytest.mark.parametrize("head", ["vector", "scalar"])
@pytest.mark.parametrize(
    "objective, negatives",
    [("denoise", "mined"), ("softplus", "mined"), ("cd", "langevin"), ("hinge", "replay"), ("softplus", "replay")],
)
def test_every_objective_and_sampler_learns(tmp_path, head, objective, negatives):
    cfg = tiny_config(
        f"model.head={head}", f"objective.name={objective}", f"negatives.name={negatives}", "objective.weight=0.1",
        "train.lr=3e-3", "train.steps=120", "train.eval_every=60", "train.log_every=20", "negatives.buffer_size=128",
    )
    train(cfg, tmp_path, echo=False)
    rows = _rows(tmp_path)
    assert rows[-1]["train_denoise_mse"] < 0.9 * rows[0]["train_denoise_mse"]
    if objective != "denoise":
        assert all(r["E_neg"] is not None and 0 <= r["frac_sat"] <= 1 for r in rows)
        assert all(r["loss_contrastive"] is not None for r in rows)


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    overrides = ("objective.name=softplus", "negatives.name=langevin")
    train(tiny_config(*overrides), tmp_path / "a", echo=False)
    train(tiny_config(*overrides), tmp_path / "b", echo=False)
    train(tiny_config(*overrides, "seed=1"), tmp_path / "c", echo=False)
    a, b, c = (_science(_rows(tmp_path / k)) for k in "abc")
    assert a == b
    assert a != c


def _cli_train(out, *overrides):
    config = out.parent / "defaults.yaml"  # an empty file is an error: `{}` states "no differences"
    config.write_text("{}\n")
    args = [sys.executable, "-m", "ired.cli", "train", str(config), "--out", str(out)]
    for o in (*TINY, *overrides):
        args += ["--set", o]
    return subprocess.run(args, capture_output=True, text=True)


def test_sigkill_mid_run_resumes_to_identical_numbers(tmp_path):
    overrides = ("objective.name=softplus", "negatives.name=replay", "negatives.buffer_size=100", "train.steps=80")
    assert _cli_train(tmp_path / "whole", *overrides).returncode == 0
    killed = _cli_train(tmp_path / "killed", *overrides, "faults.kill_at_step=50")
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / "killed" / "final.pt").exists()
    assert json.loads((tmp_path / "killed" / "status.json").read_text())["status"] == "running"
    resumed = _cli_train(tmp_path / "killed", *overrides, "faults.kill_at_step=50")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "step 40" in resumed.stdout
    assert _science(_rows(tmp_path / "killed")) == _science(_rows(tmp_path / "whole"))
    a, b = load_checkpoint(tmp_path / "whole" / "final.pt"), load_checkpoint(tmp_path / "killed" / "final.pt")
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])


def test_hold_at_step_waits_after_its_checkpoint_until_released_once(tmp_path):
    """faults.hold_at_step: the trainer stops after that step's checkpoint, holds until `release` appears in the run
    folder, then finishes with the numbers of an unheld run; faults_fired.json records the hold, so that a resumed
    run does not hold again."""
    overrides = ("train.steps=40", "train.checkpoint_every=20", "train.log_every=10")
    whole = train(tiny_config(*overrides), tmp_path / "whole", echo=False)
    held_dir = tmp_path / "held"
    seen: dict[str, object] = {}

    def release_when_held() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not (held_dir / "faults_fired.json").exists():
            time.sleep(0.05)
        time.sleep(0.5)  # still holding half a second later: nothing past step 20 was written
        seen["checkpoints"] = sorted(p.name for p in (held_dir / "checkpoints").glob("step_*.pt"))
        seen["status"] = json.loads((held_dir / "status.json").read_text())["status"]
        seen["rows"] = [r["step"] for r in _rows(held_dir)]
        (held_dir / "release").touch()

    releaser = threading.Thread(target=release_when_held)
    releaser.start()
    held = train(tiny_config(*overrides, "faults.hold_at_step=20"), held_dir, echo=False)
    releaser.join()
    assert seen == {"checkpoints": ["step_0000000.pt", "step_0000020.pt"], "status": "running", "rows": [10, 20]}
    assert held.status == "completed" and _science(_rows(held_dir)) == _science(_rows(whole.out_dir))
    log = (held_dir / "train.log").read_text()
    assert "holding at step 20" in log and "released at step 20" in log
    assert json.loads((held_dir / "faults_fired.json").read_text())["hold_at_step"]["step"] == 20


def test_resume_refuses_a_different_experiment(tmp_path):
    train(tiny_config("train.steps=20"), tmp_path, echo=False)
    with pytest.raises(CheckpointError, match="different config.*model.head"):
        train(tiny_config("train.steps=40", "model.head=scalar"), tmp_path, echo=False)


def test_accumulation_keeps_the_experiment(tmp_path):
    train(tiny_config("train.steps=20"), tmp_path / "full", echo=False)
    train(tiny_config("train.steps=20", "train.micro_batch=16"), tmp_path / "micro", echo=False)
    full, micro = _rows(tmp_path / "full")[-1], _rows(tmp_path / "micro")[-1]
    assert abs(full["train_denoise_mse"] - micro["train_denoise_mse"]) < 1e-4
    assert abs(full["val_task_mse_raw"] - micro["val_task_mse_raw"]) < 1e-3


def test_divergence_stops_with_status_and_step(tmp_path):
    with pytest.raises(DivergedError) as info:
        train(tiny_config("train.lr=1e30", "train.grad_clip=1e30"), tmp_path, echo=False)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "diverged" and status["diverged_at"] == info.value.step
    proc = _cli_train(tmp_path / "cli", "train.lr=1e30", "train.grad_clip=1e30")
    assert proc.returncode == 3 and "diverged at step" in proc.stderr and "Traceback" not in proc.stderr
