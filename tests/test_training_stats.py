"""ired.reporting.training_stats: each column's mean, first and last value over a window of log rows, per run; the
CSV and the PNG; a typo'd column, a bad window and a folder that is not a run folder are one line."""

from __future__ import annotations

import csv
import json
import math

import pytest

from ired.reporting.training_stats import main, parse_window
from ired.runs.paths import experiment_of


def _run(folder, rows):
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_window_means_csv_png_and_lines(tmp_path, capsys):
    collapsing = _run(tmp_path / "q206-s0", [{"step": s, "pred_std": 1.0 / s, "gradE_norm": 4.0, "frac_sat": None}
                                             for s in (10, 20, 30, 40)])
    saturating = _run(tmp_path / "q208-s0", [{"step": s, "pred_std": 0.9, "gradE_norm": 5.0, "frac_sat": s / 40}
                                             for s in (10, 20, 30, 40)])
    out_csv, out_png = tmp_path / "stats.csv", tmp_path / "stats.png"
    assert main([str(collapsing), str(saturating), "--window", "20:40", "--columns", "pred_std,frac_sat",
                 "--csv", str(out_csv), "--png", str(out_png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "q206-s0: pred_std 0.03611 (0.05 -> 0.025), frac_sat n/a"
    assert lines[1] == "q208-s0: pred_std 0.9 (0.9 -> 0.9), frac_sat 0.75 (0.5 -> 1)"
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["run"], r["column"], r["n"]) for r in rows] == [
        ("q206-s0", "pred_std", "3"), ("q206-s0", "frac_sat", "0"), ("q208-s0", "pred_std", "3"),
        ("q208-s0", "frac_sat", "3")]
    assert float(rows[0]["mean"]) == (1 / 20 + 1 / 30 + 1 / 40) / 3 and math.isnan(float(rows[1]["mean"]))
    assert out_png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("argv", "message"), [
    (["--columns", "pred_stdd"], "--columns: pred_stdd not a training column of metrics.jsonl"),
    (["--window", "20-40"], "--window '20-40': expected FROM:TO in steps"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, argv, message):
    run = _run(tmp_path / "r-s0", [{"step": 10, "pred_std": 1.0}])
    with pytest.raises(SystemExit) as stop:
        main([str(run), *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_not_a_run_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path)])
    assert stop.value.code == 2
    assert "is not a run folder (no metrics.jsonl)" in capsys.readouterr().err


def test_window_and_experiment_names():
    assert parse_window("1501:2000") == (1501, 2000) and parse_window(":5")[0] == 0 and parse_window("4:")[0] == 4
    assert experiment_of("q208-s2") == "q208" and experiment_of("scalar-warmup-s10") == "scalar-warmup"
    assert experiment_of("my-run") == "my-run"
