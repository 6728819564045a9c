"""Plots open, are non-empty, have the expected size, and say so when data is missing instead of crashing; the
registry draws each from its tables; the curves take the diagnosis from runs.csv; the sweep plot draws a line per
combination of the other swept keys."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from synthetic_runs import BASELINES, make_log, write_eval_jsons, write_run

from ired.reporting import curve_figures, evaluation_figures, figure_canvas, plots, summary_figures
from ired.reporting.columns import ABLATION_COLUMNS
from ired.reporting.cross_eval import aggregate_cross_eval
from ired.reporting.diagnostics import diagnose
from ired.reporting.summary import write_summary


def _read(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    # non-empty: many distinct colours, not a blank canvas
    assert img[..., :3].std() > 0.05
    assert len(np.unique(img[..., :3].reshape(-1, 3).round(2), axis=0)) > 20
    return img


def _texts(fig):
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_training_curves(tmp_path):
    rows = make_log("denoise_only")
    out = figure_canvas.save_png(curve_figures.training_curves_figure(rows, "denoise only", diagnose(rows), BASELINES),
                         tmp_path / "denoise_only.png")
    img = _read(out)
    assert img.shape[:2] == (850, 1500)


def test_training_curves_axes_are_contract_names_and_nulls_are_said():
    fig = curve_figures.training_curves_figure(make_log("denoise_only"), "denoise only")
    labels = " ".join(ax.get_ylabel() for ax in fig.axes)
    for col in ("train_denoise_mse", "val_task_mse", "val_task_mse_raw", "gradE_norm", "pred_std", "loss_total"):
        assert col in labels
    said = _texts(fig)
    assert "frac_sat" in said and "null in every row" in said and "denoise-only" in said
    empty = curve_figures.training_curves_figure([], "nothing logged")
    assert "metrics.jsonl has no rows" in _texts(empty)


def test_training_curves_from_dataframe_with_nan_columns():
    df = pd.DataFrame(make_log("denoise_only"))  # null columns become NaN / None in pandas
    fig = curve_figures.training_curves_figure(df, "from a DataFrame")
    assert "null in every row" in _texts(fig)
    assert sum(len(ax.lines) for ax in fig.axes) >= 8


def test_run_curves_from_folder_mark_the_collapse_found_by_the_summary(tmp_path):
    d = write_run(tmp_path, "q206_s0", "collapse")
    write_summary([{"experiment": "q206", "seed": 0, "run_dir": d}], None, tmp_path / "summary.csv",
                  tmp_path / "summary.md", tmp_path / "runs.csv")
    fig = curve_figures.run_curves_figure(d, pd.read_csv(tmp_path / "runs.csv"))
    assert _read(figure_canvas.save_png(fig, tmp_path / "plots" / "q206_s0.png")).shape[:2] == (850, 1500)
    assert fig._suptitle.get_text() == "q206_s0: collapsed"  # the status of runs.csv, not diagnosed again
    assert "collapse @ 400" in fig.get_supxlabel()
    assert any(line.get_xdata()[0] == 400 for ax in fig.axes for line in ax.lines if len(line.get_xdata()) == 2)
    unknown = curve_figures.run_curves_figure(d, pd.DataFrame())  # a folder runs.csv does not know: drawn, unmarked
    assert unknown._suptitle.get_text() == "q206_s0: not in runs.csv" and not unknown.get_supxlabel()


def test_ablation_and_heatmap(tmp_path):
    specs, jsons = [], []
    for exp, kind, seeds in (("q101", "healthy", (0, 1, 2)), ("q206", "collapse", (0,)),
                             ("q302", "denoise_only", (0,))):
        for seed in seeds:
            d = write_run(tmp_path / "runs", f"{exp}_s{seed}", kind, seed=seed, final_val=0.01 + 0.001 * seed)
            specs.append({"experiment": exp, "seed": seed, "run_dir": d})
            if exp != "q302":
                jsons += write_eval_jsons(tmp_path / "ev", f"{exp}_s{seed}", d,
                                          {"train_subset": 0.01, "val": 0.011, "val_harder": 0.21})
    ce = tmp_path / "cross_eval.csv"
    aggregate_cross_eval(jsons, ce)
    write_summary(specs, ce, tmp_path / "summary.csv", tmp_path / "summary.md", tmp_path / "runs.csv")

    tables = {"summary": tmp_path / "summary.csv", "runs": tmp_path / "runs.csv", "cross_eval": ce}
    out = plots.render("ablation", tmp_path / "ablation.png", tables)
    img = _read(out)
    assert img.shape[1] == 1000 and img.shape[0] == 650
    fig = summary_figures.ablation_figure(pd.read_csv(tmp_path / "summary.csv"))
    assert [ax.get_ylabel() for ax in fig.axes] == [c.name for c in ABLATION_COLUMNS] == ["val_task_mse",
                                                                                        "val_harder_task_mse"]
    legend = " ".join(t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts())
    assert "predict zero" in legend and "predict mean" in legend

    heat = plots.render("cross_eval", tmp_path / "heat.png", tables)
    img = _read(heat)
    n_rows = 2 * 2  # experiments (q101: 3 seeds, q206: 1) x weights: one row per experiment, not per checkpoint
    assert img.shape[0] == int(round((2.0 + 0.32 * n_rows) * figure_canvas.DPI))
    fig = evaluation_figures.cross_eval_figure(pd.read_csv(ce), pd.read_csv(tmp_path / "runs.csv"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["q101 [ema]", "q101 [raw]", "q206 [ema]", "q206 [raw]"]
    assert len(ax.get_xticklabels()) == 7  # current, reference x 3 splits + denoise on val
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == n_rows * 7 and "-" not in texts  # every cell annotated
    assert sum("±" in t for t in texts) == 7 * 2  # q101's 3 seeds have a spread, q206's single seed none
    # one colour scale per column: the denoise column (0.2 everywhere) is mid-scale, not the brightest block
    shade = ax.images[0].get_array()
    assert shade.shape == (n_rows, 7) and float(shade.max()) <= 1.0


def test_empty_inputs_say_so(tmp_path):
    fig = evaluation_figures.cross_eval_figure(pd.DataFrame())
    assert "no cross-eval results" in _texts(fig)
    _read(plots.render("cross_eval", tmp_path / "h.png", {"cross_eval": tmp_path / "missing.csv",
                                                          "runs": tmp_path / "missing.csv"}))
    summary = pd.DataFrame([{"experiment": "x", "status": "failed-infrastructure", "val_task_mse_mean": np.nan,
                             "val_harder_task_mse_mean": np.nan}])
    fig = summary_figures.ablation_figure(summary)
    assert "no evaluated run" in _texts(fig)


def _sweep_study(tmp_path):
    """A 2 x 3 grid (objective.temperature x train.lr), 3 seeds each, plus an ordinary experiment: the summary."""
    specs = []
    for t in (0.5, 1.0):
        for i, lr in enumerate((1e-4, 1e-3, 1e-2)):
            exp = f"grid_t{t}_lr{i}"
            for seed in range(3):
                d = write_run(tmp_path / "runs", f"{exp}-s{seed}", "healthy", seed=seed,
                              final_val=0.01 * (1 + i) * (2 if t == 1.0 else 1) + 0.001 * seed)
                (d / "config.yaml").write_text(f"name: {exp}-s{seed}\nsweep:\n  name: grid\n  point:\n"
                                               f"    objective.temperature: {t}\n    train.lr: {lr}\n")
                specs.append({"experiment": exp, "seed": seed, "run_dir": d})
    specs.append({"experiment": "q207", "seed": 0, "run_dir": write_run(tmp_path / "runs", "q207-s0", "healthy")})
    write_summary(specs, None, tmp_path / "summary.csv", tmp_path / "summary.md", tmp_path / "runs.csv")
    return pd.read_csv(tmp_path / "summary.csv")


def test_sweep_plot_a_line_per_combination_with_seed_error_bars(tmp_path):
    summary = _sweep_study(tmp_path)
    assert list(summary.columns[:4]) == ["experiment", "sweep", "objective.temperature", "train.lr"]
    assert (summary["val_task_mse_n"][:6] == 3).all()
    fig = summary_figures.sweeps_figure(summary)
    by_x = {ax.get_xlabel(): ax for ax in fig.axes if ax.get_visible()}
    assert set(by_x) == {"objective.temperature", "train.lr"}  # one panel per swept key, one row for the sweep
    lr = by_x["train.lr"]
    assert lr.get_xscale() == "log" and by_x["objective.temperature"].get_xscale() == "linear"  # 100x vs 2x
    assert lr.get_ylabel() == "val_task_mse"
    assert len(lr.containers) == 2  # a line per temperature, not a bar per run
    legend = [t.get_text() for t in lr.get_legend().get_texts()]
    assert legend == ["objective.temperature=0.5 (3 seeds)", "objective.temperature=1 (3 seeds)"]
    line, caps, (bars,) = lr.containers[0]
    assert list(line.get_xdata()) == [1e-4, 1e-3, 1e-2]
    want = summary[summary["objective.temperature"] == 0.5].sort_values("train.lr")
    assert list(line.get_ydata()) == pytest.approx(list(want["val_task_mse_mean"]))
    segs = bars.get_segments()  # the error bars: mean ± one std over the 3 seeds
    assert [s[1][1] - s[0][1] for s in segs] == pytest.approx([2 * v for v in want["val_task_mse_std"]])
    assert len(by_x["objective.temperature"].containers) == 3  # a line per learning rate
    png = plots.render("sweeps", tmp_path / "plots" / "sweeps.png", {"summary": tmp_path / "summary.csv"})
    assert _read(png).shape[1] == 1200
    # the report shows it in its own section, and the experiment table has the sweep's columns
    from ired.reporting.html_report import write_html_report

    text = write_html_report(tmp_path / "report.html", tmp_path / "summary.csv", tmp_path / "runs.csv",
                             plots=[png]).read_text()
    section = text.split('id="sweeps">Parameter sweeps</h2>')[1].split("<h2")[0]
    assert '<figure id="plot-sweeps"><img alt="sweeps" src="data:image/png;base64,' in section
    table = text.split('id="summary"')[1].split("</thead>")[0]
    assert ">sweep</th>" in table and ">train.lr</th>" in table
    assert 'data-experiment="grid_t0.5_lr0 grid"' in text  # the experiment filter also matches the sweep name
    raw = summary_figures.sweeps_figure(summary, metric="val_task_mse_raw")
    assert "raw weights" in raw._suptitle.get_text()
    with pytest.raises(ValueError, match="metric 'nope' is not a column of the summary"):
        summary_figures.sweeps_figure(summary, metric="nope")


def test_sweep_plot_without_sweeps_says_so():
    fig = summary_figures.sweeps_figure(pd.DataFrame([{"experiment": "q207", "val_task_mse_mean": 0.01}]))
    assert "no parameter sweep" in _texts(fig)


def test_ired_plot_draws_a_run_still_training(tmp_path):
    """`ired plot RUN_DIR` on a trainer held in flight at step 20 (faults.hold_at_step): the PNG has the rows
    logged so far and its title says the run is running at step 20 of 40; no table is read."""
    import json
    import subprocess
    import sys
    import threading
    import time

    from conftest import tiny_config

    from ired.training.trainer import train

    run_dir = tmp_path / "results" / "tiny" / "held-s0"
    trainer = threading.Thread(target=train, args=(tiny_config("train.steps=40", "train.log_every=10",
                                                               "faults.hold_at_step=20"), run_dir),
                               kwargs={"echo": False})
    trainer.start()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run_dir / "faults_fired.json").exists():
            time.sleep(0.05)
        out = subprocess.run([sys.executable, "-m", "ired", "plot", str(run_dir)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == str(run_dir / "curves.png")
        assert _read(run_dir / "curves.png").shape[:2] == (850, 1500)
        title = curve_figures.live_curves_figure(run_dir)._suptitle.get_text()
        assert title == "held-s0: running at step 20 of 40 (2 metrics rows)", title
        assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [10, 20]
    finally:
        (run_dir / "release").touch()
        trainer.join()
    done = curve_figures.live_curves_figure(run_dir)._suptitle.get_text()
    assert done == "held-s0: completed at step 40 of 40 (4 metrics rows)", done
    missing = subprocess.run([sys.executable, "-m", "ired", "plot", str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and "no metrics.jsonl" in missing.stderr
