"""Cross-eval aggregation, the summary tables from real run folders (their columns from the spec, the diagnosis in
runs.csv), and the standalone HTML report."""

from __future__ import annotations

import base64
import json
import re
import statistics

import pandas as pd
import pytest
from synthetic_runs import BASELINES, write_eval_jsons, write_run

from ired.core.errors import IredError
from ired.reporting.columns import RUN_COLUMNS, SUMMARY_COLUMNS, csv_columns, markdown_columns
from ired.reporting.cross_eval import aggregate_cross_eval, read_cross_eval
from ired.reporting.html_report import write_html_report
from ired.reporting.run_record import RunSpec, load_run
from ired.reporting.summary import write_summary

FINAL_VALS = {0: 0.010, 1: 0.012, 2: 0.011}


@pytest.fixture
def study(tmp_path):
    """Four experiments: stable (3 seeds), collapsed (2 seeds), failed on infrastructure, diverged."""
    runs_root, evals = tmp_path / "runs", tmp_path / "evals"
    specs = []
    jsons = []

    def add(exp, seed, kind, **kw):
        name = f"{exp}_s{seed}"
        d = write_run(runs_root, name, kind, seed=seed, final_val=FINAL_VALS.get(seed, 0.01), **kw)
        specs.append({"experiment": exp, "seed": seed, "run_dir": d, "description": f"{exp} synthetic"})
        return name, d

    for seed in (0, 1, 2):
        name, d = add("q101", seed, "healthy", objective="denoise")
        jsons.extend(write_eval_jsons(evals, name, d, {"train_subset": 0.01, "val": 0.011, "val_harder": 0.21}))
    for seed in (0, 1):
        name, d = add("q206", seed, "collapse")
        jsons.extend(write_eval_jsons(evals, name, d, {"train_subset": 0.02, "val": 0.0207, "val_harder": 0.25}))
    add("q300", 0, "healthy", status="running",
        attempts=[{"attempt": 1, "job_id": "11", "node": "n1", "state": "FAILED", "exit_code": 120,
                   "failure_kind": "node_failure", "action": "resubmit excluding n1", "wall_time_s": 5.0},
                  {"attempt": 2, "job_id": "12", "node": "n1", "state": "NODE_FAIL", "exit_code": 120,
                   "failure_kind": "node_failure", "action": "give up", "wall_time_s": 4.0}])
    add("q301", 0, "divergence", status="diverged")
    return tmp_path, specs, jsons


def test_aggregate_cross_eval(study, tmp_path):
    _, _, jsons = study
    out = tmp_path / "results" / "cross_eval.csv"
    df = aggregate_cross_eval(reversed(jsons), out)
    assert len(df) == len(jsons) == 5 * 14
    back = pd.read_csv(out)
    assert list(back.columns[:12]) == ["checkpoint", "run", "milestone", "protocol", "protocol_version", "split",
                                       "weights", "task_mse", "denoise_mse", "n_problems", "predict_zero_mse",
                                       "predict_mean_mse"]
    assert not back.duplicated(["checkpoint", "weights", "protocol", "split"]).any()
    assert json.loads(back["inference"].dropna().iloc[0]) == {"steps_per_level": 5}
    # the order does not depend on the order of the inputs
    assert aggregate_cross_eval(jsons).drop(columns="source").equals(df.drop(columns="source"))
    with pytest.raises(ValueError, match="duplicate"):
        aggregate_cross_eval([jsons[0], jsons[0]])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"checkpoint": "x", "protocol": "current", "split": "val", "weights": "ema"}))
    with pytest.raises(ValueError, match="bad.json.*neither"):
        aggregate_cross_eval([bad])
    assert len(aggregate_cross_eval([], tmp_path / "empty.csv")) == 0
    assert read_cross_eval(tmp_path / "empty.csv").empty


def test_summary_rows_statuses_and_mean_std(study, tmp_path):
    _, specs, jsons = study
    ce = tmp_path / "results" / "cross_eval.csv"
    aggregate_cross_eval(jsons, ce)
    summary = write_summary(specs, ce, tmp_path / "results" / "summary.csv", tmp_path / "results" / "summary.md",
                            tmp_path / "results" / "runs.csv")
    back = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert list(back["experiment"]) == ["q101", "q206", "q300", "q301"]
    by = back.set_index("experiment")
    assert dict(by["status"]) == {"q101": "stable", "q206": "collapsed", "q300": "failed-infrastructure",
                                  "q301": "diverged"}
    assert list(by["n_seeds"]) == [3, 2, 1, 1]
    # val_task_mse: mean +- sample std over seeds of the last evaluation row (EMA), raw too
    finals = [json.loads((s["run_dir"] / "metrics.jsonl").read_text().splitlines()[-1]) for s in specs[:3]]
    ema = [r["val_task_mse"] for r in finals]
    raw = [r["val_task_mse_raw"] for r in finals]
    assert by.loc["q101", "val_task_mse_mean"] == pytest.approx(statistics.fmean(ema))
    assert by.loc["q101", "val_task_mse_std"] == pytest.approx(statistics.stdev(ema))
    assert by.loc["q101", "val_task_mse_raw_mean"] == pytest.approx(statistics.fmean(raw))
    assert by.loc["q101", "val_harder_task_mse_mean"] == pytest.approx(
        statistics.fmean(r["val_harder_task_mse"] for r in finals))
    assert by.loc["q101", "weights"] == "ema"
    assert by.loc["q101", "val_predict_mean_mse"] == BASELINES["val"]["predict_mean_mse"]
    assert by.loc["q101", "val_harder_predict_zero_mse"] == BASELINES["val_harder"]["predict_zero_mse"]
    assert by.loc["q101", "negatives"] == "-" and by.loc["q206", "negatives"] == "mined"
    assert by.loc["q206", "head"] == "vector" and by.loc["q206", "objective"] == "softplus"
    assert by.loc["q101", "steps"] == 2000 and by.loc["q101", "attempts"] == 3
    assert by.loc["q300", "attempts"] == 2
    assert by.loc["q101", "wall_time_s"] == pytest.approx(101.0)
    # key findings: generated, with the numbers of the same row
    assert f"{by.loc['q101', 'val_task_mse_mean']:.4g}" in by.loc["q101", "key_finding"]
    assert "0.0141" in by.loc["q101", "key_finding"]
    assert by.loc["q206", "key_finding"].startswith("2/2 seeds collapsed")
    assert "gradE_norm" in by.loc["q206", "key_finding"]
    assert "node_failure" in by.loc["q300", "key_finding"] and "exit 120" in by.loc["q300", "key_finding"]
    assert "step 1200" in by.loc["q301", "key_finding"]
    md = (tmp_path / "results" / "summary.md").read_text()
    table = md.split("## Runs")[0]
    assert table.count("\n| q") == 4 and "±" in table and "EMA weights" in table
    assert "collapsed" in md and "## Runs" in md
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    assert len(runs) == 7 and set(runs["status"]) >= {"stable", "collapsed"}
    assert len(summary) == 4


def test_mixed_seed_statuses(tmp_path):
    specs = [
        RunSpec("mix", 0, write_run(tmp_path, "a", "healthy")),
        RunSpec("mix", 1, write_run(tmp_path, "b", "saturation", seed=1)),
    ]
    summary = write_summary(specs, None, tmp_path / "s.csv", tmp_path / "s.md")
    row = summary.iloc[0]
    assert row["status"] == "plateau-saturated"
    assert row["status_detail"] == "plateau-saturated x1, stable x1"
    assert row["key_finding"].startswith("1/2 seeds plateau-saturated; seed 1: saturation")
    # no cross-eval: the baselines are computed from the runs' data config (the same code as evaluation)
    from ired.science.data import trivial_baselines

    assert row["val_predict_mean_mse"] == pytest.approx(
        trivial_baselines("val", 20, 1024, 20240701)["predict_mean_mse"])


def test_missing_files_do_not_crash(tmp_path):
    d = tmp_path / "empty_run"
    d.mkdir()
    rec = load_run(RunSpec("x", 0, d))
    assert rec.run_status == "failed-infrastructure"
    assert "metrics.jsonl" in rec.missing
    assert "missing or empty" in rec.key_finding
    write_summary([{"experiment": "x", "seed": 0, "run_dir": d}], None, tmp_path / "s.csv", tmp_path / "s.md",
                  tmp_path / "runs.csv")
    row = pd.read_csv(tmp_path / "runs.csv", keep_default_na=False).iloc[0]
    assert row["status"] == "failed-infrastructure" and row["findings"] == "" and row["finding_steps"] == ""


def test_the_column_spec_drives_csv_and_markdown(study, tmp_path):
    """summary.csv and runs.csv have exactly the spec's columns in its order; summary.md's headers are the spec's
    headers, one cell under each."""
    _, specs, jsons = study
    res = tmp_path / "results"
    aggregate_cross_eval(jsons, res / "cross_eval.csv")
    write_summary(specs, res / "cross_eval.csv", res / "summary.csv", res / "summary.md", res / "runs.csv")
    assert list(pd.read_csv(res / "summary.csv").columns) == csv_columns(SUMMARY_COLUMNS)
    runs = pd.read_csv(res / "runs.csv")
    assert list(runs.columns) == csv_columns(RUN_COLUMNS)
    # the diagnosis of each run is in runs.csv: its findings and the steps the curves mark
    by_run = runs.set_index("run")
    assert by_run.loc["q206_s0", "findings"].split(";")[0] == "collapse"
    assert by_run.loc["q206_s0", "finding_steps"].startswith("collapse@")
    assert "divergence@1200" in by_run.loc["q301_s0", "finding_steps"]
    md = (res / "summary.md").read_text()
    experiments, run_table = md.split("## Runs")
    for columns, text in ((SUMMARY_COLUMNS, experiments), (RUN_COLUMNS, run_table)):
        lines = [line for line in text.splitlines() if line.startswith("| ")]
        headers = [c.header for c in markdown_columns(columns)]
        assert lines[0] == "| " + " | ".join(headers) + " |"
        assert all(line.count(" | ") == len(headers) - 1 for line in lines[1:])  # no cell without a header


def test_sweeps_are_grouped_in_the_summary(tmp_path):
    """Runs whose config.yaml has a `sweep` (name, point) get the columns sweep, train.lr, ... after experiment; the
    experiments of a sweep are side by side; ordinary runs leave them empty."""
    specs = []

    def add(exp, seed, sweep=None):
        d = write_run(tmp_path / "runs", f"{exp}-s{seed}", "healthy", seed=seed)
        if sweep is not None:
            (d / "config.yaml").write_text(f"name: {exp}-s{seed}\nsweep:\n  name: {sweep[0]}\n  point:\n"
                                           + "".join(f"    {k}: {v}\n" for k, v in sweep[1].items()))
        specs.append({"experiment": exp, "seed": seed, "run_dir": d})

    add("a_lr1", 0, ("lr_sweep", {"train.lr": "1e-4"}))
    add("plain", 0)
    add("a_lr2", 0, ("lr_sweep", {"train.lr": "1e-3"}))
    add("b_t", 0, ("t_sweep", {"objective.temperature": 0.5}))
    summary = write_summary(specs, None, tmp_path / "s.csv", tmp_path / "s.md", tmp_path / "runs.csv")
    back = pd.read_csv(tmp_path / "s.csv")
    assert list(back.columns[:5]) == ["experiment", "sweep", "train.lr", "objective.temperature", "description"]
    assert list(back["experiment"]) == ["a_lr1", "a_lr2", "plain", "b_t"]  # a sweep's experiments together
    assert list(back["sweep"].fillna("")) == ["lr_sweep", "lr_sweep", "", "t_sweep"]
    assert back["train.lr"].tolist()[:2] == [1e-4, 1e-3] and back["train.lr"].isna().tolist()[2:] == [True, True]
    assert list(pd.read_csv(tmp_path / "runs.csv").columns[:4]) == ["experiment", "sweep", "train.lr",
                                                                    "objective.temperature"]
    assert "| experiment | sweep | train.lr | objective.temperature | description |" in (tmp_path / "s.md").read_text()
    assert len(summary) == 4
    # the runs of one experiment must share one sweep point
    add("a_lr1", 1, ("lr_sweep", {"train.lr": "1e-2"}))
    with pytest.raises(IredError, match="a_lr1: its runs are at different sweep points"):
        write_summary(specs, None, tmp_path / "s2.csv", tmp_path / "s2.md")
    bad = write_run(tmp_path / "runs", "bad-s0", "healthy")
    (bad / "config.yaml").write_text("sweep: [1, 2]\n")
    with pytest.raises(IredError, match=r"bad-s0/config.yaml: key sweep: expected"):
        write_summary([{"experiment": "bad", "seed": 0, "run_dir": bad}], None, tmp_path / "s3.csv",
                      tmp_path / "s3.md")


def _report_inputs(study, tmp_path):
    """The pipeline's files for the study: cross_eval.csv, summary/runs tables, findings, plots, curves."""
    from ired.reporting import plots
    from ired.reporting.findings_readme import write_findings

    _, specs, jsons = study
    res = tmp_path / "results"
    ce = res / "cross_eval.csv"
    aggregate_cross_eval(jsons, ce)
    write_summary(specs, ce, res / "summary.csv", res / "summary.md", res / "runs.csv")
    write_findings(res / "summary.csv", res / "findings.md", baseline="q101")
    ablation = plots.render("ablation", res / "plots" / "ablation.png",
                            {"summary": res / "summary.csv", "runs": res / "runs.csv"})
    first = plots.render("curves", res / "plots" / "curves" / "first.png", {"runs": res / "runs.csv"},
                         run_dir=specs[0]["run_dir"])
    curves = []
    for run in pd.read_csv(res / "runs.csv")["run"]:  # one real curves PNG, copied per run (plotting is slow)
        curves.append(res / "plots" / "curves" / f"{run}.png")
        curves[-1].write_bytes(first.read_bytes())
    first.unlink()
    return res, [ablation], curves


def test_html_report_reads_top_down_and_links_the_runs(study, tmp_path):
    res, pngs, curves = _report_inputs(study, tmp_path)
    out = write_html_report(res / "report.html", res / "summary.csv", res / "runs.csv", res / "cross_eval.csv",
                            res / "findings.md", pngs, curves)
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "<link" not in text and "http://" not in text and "https://" not in text  # nothing from the network
    # top-down: verdict, findings, ablation, cross-eval, sweep, experiments, runs
    order = ['class="verdict"', 'id="findings"', 'id="ablation"', 'id="cross-evaluation"', 'id="sweep"',
             'id="experiments"', 'id="runs"']
    assert [text.index(o) for o in order] == sorted(text.index(o) for o in order)
    assert 'id="sweeps"' not in text  # no parameter sweep in this study: no section
    # the findings are rendered: no block marker, no Markdown table source
    assert "<!-- findings:" not in text and "|---|" not in text and "<strong>Verdict</strong>" in text
    assert "<table" in text.split('id="findings"')[1].split('id="ablation"')[0]
    # one embedded image (the ablation chart), with its caption from the plot registry; each run's curves are a
    # lazy, linked file
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 1 and base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<figcaption" in text and "Ablation: <code>val_task_mse</code>" in text
    lazy = re.findall(r'<img loading="lazy" src="([^"]+)"', text)
    assert len(lazy) == len(curves) == 7 and all((res / src).is_file() for src in lazy)
    assert 'href="runs/q101_s0/resolved_config.yaml"'.replace("runs/", "../runs/") in text
    assert 'href="../runs/q101_s0/train.log"' in text and 'href="../runs/q101_s0/dispatch/"' in text  # its logs
    # the tables: status badges, numbers right-aligned with their spread, full text on hover
    summary = text.split('id="summary"')[1].split("</table>")[0]
    assert summary.count("<tr data-experiment=") == 4 and 'class="st" style="background:' in summary
    assert re.search(r'<td title="val_task_mse: EMA weights; raw weights [^"]+" class="num" '
                     r'data-v="[0-9.e-]+">[0-9.e-]+ ± [0-9.e-]+</td>', summary)
    assert re.search(r'<td class="short" title="([^"]{71,})">[^<]{1,70}…</td>', summary)  # shortened key finding
    heads = re.findall(r"<th [^>]*>(.*?)</th>", summary)
    assert [h.replace("<br>", " ").replace("<wbr>", "") for h in heads] == [
        c.html for c in SUMMARY_COLUMNS if c.html is not None]  # the spec's HTML columns, in its order
    runs = text.split('id="runs"')[2]
    assert runs.count("<tr data-experiment=") == 7
    assert "(findings: collapse" in runs  # a run's key finding is followed by its finding kinds
    # cross-eval per experiment: one row per experiment x weights, not per checkpoint
    cross = text.split('id="cross-eval"')[1].split("</table>")[0]
    assert cross.count("<tr data-experiment=") == 2 * 2  # q101, q206 (evaluated) x ema, raw
    assert "<th title=\"click to sort\">current<br>val</th>" in cross and "(denoise_<wbr>mse)" in cross
    assert "function" in text and "table.sortable" in text  # the sorting / filtering script is inline


def test_report_size_grows_with_experiments_not_runs(study, tmp_path):
    res, pngs, curves = _report_inputs(study, tmp_path)
    args = (res / "summary.csv", res / "runs.csv", res / "cross_eval.csv", res / "findings.md", pngs)
    small = write_html_report(tmp_path / "a.html", *args, curves[:1]).stat().st_size
    large = write_html_report(tmp_path / "b.html", *args, curves).stat().st_size
    assert large - small < 6 * 1024  # six more runs' curves: links, a few hundred bytes each, no images
    assert sum(p.stat().st_size for p in curves[1:]) > 20 * (large - small)


def test_every_registered_plot_renders_and_the_report_places_it(study, tmp_path):
    """The pipeline's way: every entry of ired.reporting.plots.PLOTS drawn by render() from its declared tables, then
    the report from the tables and those PNGs: each plot with a section is embedded there, once."""
    from ired.reporting import plots
    from ired.reporting.inference_sweep import aggregate_sweeps

    _, specs, jsons = study
    res = tmp_path / "results"
    aggregate_cross_eval(jsons, res / "cross_eval.csv")
    aggregate_sweeps([], res / "inference_sweep.csv")
    write_summary(specs[:3], res / "cross_eval.csv", res / "summary.csv", res / "summary.md", res / "runs.csv")
    tables = {name: res / file for name, file in plots.TABLES.items()}
    pngs, run_pngs = [], []
    for plot in plots.PLOTS:
        if plot.per_run:
            run_pngs.append(plots.render(plot.name, res / plot.path("q101_s0"), tables, run_dir=specs[0]["run_dir"]))
        else:
            pngs.append(plots.render(plot.name, res / plot.path(), tables))
    assert all(p.is_file() and p.stat().st_size > 5000 for p in pngs + run_pngs)
    out = write_html_report(res / "report.html", tables["summary"], tables["runs"], tables["cross_eval"], None,
                            pngs, run_pngs)
    text = out.read_text()
    shown = [p.name for p in plots.PLOTS if p.section is not None and p.section != "sweeps"]  # no sweep here
    assert re.findall(r'<figure id="plot-([a-z_]+)">', text) == shown
    with pytest.raises(ValueError, match="not a registered per-experiment plot"):
        write_html_report(res / "x.html", tables["summary"], tables["runs"], plots=[res / "plots" / "mystery.png"])
    with pytest.raises(ValueError, match="no plot 'mystery'"):
        plots.render("mystery", res / "m.png", tables)
