"""ired.reporting.learning_curves: the evaluation rows of several run folders, their speed, the predict-mean baseline
from each run's own config, a CSV, a PNG and one line per run; a folder that is not a run folder is one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ired.core.config_io import dump_config, load_config
from ired.reporting.learning_curves import main, read_curve
from ired.science.data import trivial_baselines


def _run(folder, lr: float, val: list[float], every: int = 10):
    cfg = load_config(None, ["data.n=3", "data.val_size=32", f"train.lr={lr}", "model.head=scalar"])
    folder.mkdir(parents=True)
    (folder / "resolved_config.yaml").write_text(dump_config(cfg))
    rows = []
    for i, v in enumerate(val, start=1):
        rows.append({"step": i * every - every // 2, "train_denoise_mse": 0.5, "sec_per_step": 0.01 * i})
        rows.append({"step": i * every, "train_denoise_mse": 0.4, "sec_per_step": 0.02 * i, "val_task_mse": v,
                     "val_task_mse_raw": 2 * v, "val_harder_task_mse": 3 * v, "val_harder_task_mse_raw": None})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_curves_csv_png_and_lines(tmp_path, capsys):
    a = _run(tmp_path / "a", 3e-4, [0.5, 0.05, 0.06])
    b = _run(tmp_path / "b", 1e-3, [0.4, 0.2])
    curve = read_curve(a)
    baseline = trivial_baselines("val", 3, 32, load_config(None).data.eval_seed)["predict_mean_mse"]
    assert curve.baseline == pytest.approx(baseline) and curve.steps_done == 30
    assert curve.sec_per_step == pytest.approx(0.025)  # median of the 6 log rows
    assert [r["step"] for r in curve.rows] == [10, 20, 30]
    assert main([str(a), str(b), "--csv", str(tmp_path / "c.csv"), "--png", str(tmp_path / "c.png")]) == 0
    table = pd.read_csv(tmp_path / "c.csv")
    assert list(table["run"]) == ["a", "a", "a", "b", "b"] and list(table["lr"]) == [3e-4] * 3 + [1e-3] * 2
    assert table["val_task_mse_raw"].tolist()[:3] == pytest.approx([1.0, 0.1, 0.12])
    assert set(table["head"]) == {"scalar"} and set(table["objective"]) == {"denoise"}
    assert (tmp_path / "c.png").stat().st_size > 10_000
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("a: 30 steps, 0.025 s/step (median of the log rows); val_task_mse (EMA) lowest 0.05 at "
                             "step 20, last 0.06 at step 30; predict the mean ")


def test_not_a_run_folder_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is not a run folder (no metrics.jsonl or resolved_config.yaml)" in err
