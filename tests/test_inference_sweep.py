"""ired.reporting.inference_sweep: the inference-steps sweep of a real tiny checkpoint, the aggregation over runs and
seeds, the summary columns, the summary table's landscape section, and the sweep plot."""

from __future__ import annotations

import json
import math

import matplotlib.image as mpimg
import pandas as pd
import pytest
from conftest import tiny_config
from synthetic_runs import write_run

from ired.evaluation.evaluate import write_run_sweep
from ired.reporting import evaluation_figures, plots
from ired.reporting.inference_sweep import (
    SWEEP_COLUMNS,
    aggregate_sweeps,
    headline_columns,
    read_sweep,
    sweep_by_experiment,
    sweep_column,
    sweep_summary_columns,
)
from ired.reporting.summary import write_summary
from ired.training.trainer import train

STEPS = (1, 5, 10, 20)


def fake_sweep(path, experiment: str, seed: int, base: float) -> str:
    """A per-run sweep JSON as write_run_sweep writes it; task_mse falls with K, offset by the seed."""
    rows = [
        {"checkpoint": f"results/{experiment}-s{seed}/milestones/last.pt", "run": f"{experiment}-s{seed}",
         "step": 2000, "split": split, "weights": "ema", "steps_per_level": k, "n_problems": 512,
         "task_mse": (base if split == "val" else 10 * base) * (1 + 0.1 * seed) / math.sqrt(k),
         "rejected_frac": 0.01 * k, "energy_monotone_frac": 1.0 - 0.001 * seed,
         "experiment": experiment, "seed": seed, "milestone": "last"}
        for split in ("val", "val_harder") for k in STEPS
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return str(path)


@pytest.fixture
def sweep_files(tmp_path):
    return [fake_sweep(tmp_path / f"{e}-s{s}.json", e, s, b)
            for e, b in (("q207", 0.014), ("study_x", 0.012)) for s in (0, 1, 2)]


def test_sweep_of_a_tiny_checkpoint(tmp_path):
    train(tiny_config("train.steps=20", "model.head=scalar"), tmp_path / "run", echo=False)
    rows = write_run_sweep(tmp_path / "run" / "final.pt", tmp_path / "sweep.json", (1, 3), ("val", "val_harder"),
                           extra={"experiment": "tiny", "seed": 0}, device="cpu")
    assert [(r["split"], r["steps_per_level"]) for r in rows] == [("val", 1), ("val", 3), ("val_harder", 1),
                                                                   ("val_harder", 3)]
    for r in rows:
        assert r["experiment"] == "tiny" and r["weights"] == "ema" and r["task_mse"] > 0
        assert 0 <= r["rejected_frac"] <= 1 and 0 <= r["energy_monotone_frac"] <= 1
    assert json.loads((tmp_path / "sweep.json").read_text()) == rows
    table = aggregate_sweeps([tmp_path / "sweep.json"])
    assert list(table.columns) == list(SWEEP_COLUMNS) and len(table) == 4


def test_aggregation_over_runs_and_seeds(sweep_files, tmp_path):
    out = tmp_path / "results" / "inference_sweep.csv"
    table = aggregate_sweeps(reversed(sweep_files), out)
    assert len(table) == 6 * 2 * len(STEPS)
    assert table[["experiment", "seed"]].drop_duplicates().values.tolist() == [
        ["q207", 0], ["q207", 1], ["q207", 2], ["study_x", 0], ["study_x", 1], ["study_x", 2]]
    assert read_sweep(out).equals(pd.read_csv(out)) and len(read_sweep(tmp_path / "missing.csv")) == 0

    long = sweep_by_experiment(read_sweep(out))
    one = long[(long.experiment == "q207") & (long.split == "val") & (long.steps_per_level == 1)].iloc[0]
    values = [0.014 * (1 + 0.1 * s) for s in (0, 1, 2)]
    assert one["task_mse_mean"] == pytest.approx(sum(values) / 3)
    assert one["task_mse_std"] == pytest.approx(pd.Series(values).std())
    assert one["n_seeds"] == 3 and one["rejected_frac_mean"] == pytest.approx(0.01)

    wide = sweep_summary_columns(read_sweep(out))
    assert wide["experiment"].tolist() == ["q207", "study_x"]
    assert sweep_column("val", "task_mse", 20) == "val_task_mse@K=20"
    assert wide.loc[0, "val_task_mse@K=20_mean"] == pytest.approx(sum(values) / 3 / math.sqrt(20))
    assert headline_columns(wide.columns) == [
        "val_task_mse@K=1", "val_task_mse@K=20", "val_rejected_frac@K=5", "val_energy_monotone_frac@K=5",
        "val_harder_task_mse@K=1", "val_harder_task_mse@K=20", "val_harder_rejected_frac@K=5",
        "val_harder_energy_monotone_frac@K=5"]


def test_summary_gets_the_sweep_columns(sweep_files, tmp_path):
    specs = []
    for exp in ("q207", "study_x"):
        for seed in (0, 1, 2):
            d = write_run(tmp_path / "runs", f"{exp}-s{seed}", "healthy", seed=seed)
            specs.append({"experiment": exp, "seed": seed, "run_dir": d})
    sweep_csv = tmp_path / "inference_sweep.csv"
    aggregate_sweeps(sweep_files, sweep_csv)
    summary = write_summary(specs, None, tmp_path / "summary.csv", tmp_path / "summary.md", sweep_csv=sweep_csv)
    assert "val_task_mse@K=1_mean" in summary.columns and "val_harder_energy_monotone_frac@K=20_std" in summary.columns
    back = pd.read_csv(tmp_path / "summary.csv")
    assert back["val_task_mse@K=1_mean"].tolist() == pytest.approx(summary["val_task_mse@K=1_mean"].tolist())
    md = (tmp_path / "summary.md").read_text()
    assert "## Inference-side measurements" in md and "| experiment | val_task_mse@K=1 | val_task_mse@K=20 |" in md
    plain = write_summary(specs, None, tmp_path / "plain.csv", tmp_path / "plain.md")  # no sweep: as before
    assert not any("@K=" in c for c in plain.columns) and "Inference-side" not in (tmp_path / "plain.md").read_text()


def test_sweep_plot(sweep_files, tmp_path):
    sweep_csv = tmp_path / "inference_sweep.csv"
    aggregate_sweeps(sweep_files, sweep_csv)
    out = plots.render("inference_sweep", tmp_path / "sweep.png", {"inference_sweep": sweep_csv},
                       experiments=["study_x", "q207", "not_run"])
    img = mpimg.imread(out)
    assert img.shape[:2] == (840, 1500) and img[..., :3].std() > 0.05  # two splits x three panels, not blank
    fig = evaluation_figures.inference_sweep_figure(read_sweep(sweep_csv), ["q207"])
    assert [ax.get_ylabel() for ax in fig.axes][:3] == ["val_task_mse@K", "val_rejected_frac@K",
                                                         "val_energy_monotone_frac@K"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["q207 (3 seeds)"]
    empty = evaluation_figures.inference_sweep_figure(read_sweep(tmp_path / "missing.csv"))
    assert "no inference sweep rows" in " ".join(t.get_text() for ax in empty.axes for t in ax.texts)


def test_html_report_shows_findings_and_sweep(sweep_files, tmp_path):
    from ired.reporting.html_report import write_html_report

    specs = [{"experiment": e, "seed": 0, "run_dir": write_run(tmp_path / "runs", f"{e}-s0", "healthy")}
             for e in ("q207", "study_x")]
    sweep_csv = tmp_path / "inference_sweep.csv"
    aggregate_sweeps(sweep_files, sweep_csv)
    write_summary(specs, None, tmp_path / "summary.csv", tmp_path / "summary.md", tmp_path / "runs.csv",
                  sweep_csv=sweep_csv)
    findings = tmp_path / "findings.md"
    findings.write_text("- **Verdict**: a <generated> sentence.\n")
    sweep_png = plots.render("inference_sweep", tmp_path / "plots" / "inference_sweep.png",
                             {"inference_sweep": sweep_csv})
    out = write_html_report(tmp_path / "report.html", tmp_path / "summary.csv", tmp_path / "runs.csv",
                            findings_md=findings, plots=[sweep_png])
    html = out.read_text()
    assert 'id="findings">Findings</h2>' in html and "a &lt;generated&gt; sentence" in html
    assert 'id="sweep">Inference-steps sweep</h2>' in html and ">val_<wbr>task_<wbr>mse@K=1</th>" in html
