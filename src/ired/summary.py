"""The summary table: ``results/summary.csv`` (machines) and ``results/summary.md`` (people).

:func:`summary_table` aggregates diagnosed runs (:mod:`ired.run_record`) per experiment: mean +- std over seeds,
the most severe status, a generated key finding, the trivial baselines, steps, wall time and attempts.
:func:`write_summary` is the pipeline's entry point. Every number comes from the run folders and the cross-eval
CSV, never from hand.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.diagnostics import DEFAULT_THRESHOLDS, Thresholds, baselines_from_cross_eval
from ired.landscape import mean_std
from ired.run_record import (  # noqa: F401  (re-exported for callers of the summary)
    STATUSES,
    RunRecord,
    RunSpec,
    baselines_from_config,
    derive_status,
    load_run,
    load_runs,
    read_cross_eval,
    run_key_finding,
)

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_METRICS: tuple[str, ...] = (
    "val_task_mse",
    "val_harder_task_mse",
    "val_task_mse_raw",
    "val_harder_task_mse_raw",
)
"""Evaluation columns summarised as mean +- std over seeds (EMA weights unsuffixed, raw weights ``_raw``)."""

BASELINE_COLUMNS: tuple[str, ...] = (
    "val_predict_zero_mse",
    "val_predict_mean_mse",
    "val_harder_predict_zero_mse",
    "val_harder_predict_mean_mse",
)

# --------------------------------------------------------------------------------------------------
# The summary table
# --------------------------------------------------------------------------------------------------


def runs_table(records: Sequence[RunRecord]) -> "pd.DataFrame":
    """One row per run: ids, status, key finding, final evaluation values, steps, wall time, attempts."""
    import pandas as pd

    rows = []
    for rec in records:
        row: dict[str, Any] = {
            "experiment": rec.spec.experiment,
            "seed": rec.spec.seed,
            "run": rec.spec.run_id,
            "run_dir": str(rec.spec.run_dir),
            "status": rec.run_status,
            "key_finding": rec.key_finding,
            "findings": ";".join(f.kind for f in rec.findings),
        }
        for col in SUMMARY_METRICS:
            row[col] = rec.final(col)[1]
        row["eval_step"] = rec.final("val_task_mse")[0]
        for split in ("val", "val_harder"):
            for b in ("predict_zero_mse", "predict_mean_mse"):
                row[f"{split}_{b}"] = rec.baselines.get(split, {}).get(b)
        row.update(steps=rec.steps, wall_time_s=rec.wall_time_s, attempts=rec.n_attempts)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_table(records: Sequence[RunRecord]) -> "pd.DataFrame":
    """One row per experiment (in order of first appearance), aggregating its seeds.

    ``*_mean`` / ``*_std`` are over seeds of the last evaluation row of each run's metrics.jsonl (std is the
    sample std, NaN for one seed); ``weights`` says the unsuffixed columns are the EMA weights. ``status`` is
    the most severe seed status; ``status_detail`` lists the seed statuses when they differ. ``steps`` is the
    smallest step reached by a seed, ``wall_time_s`` the mean over seeds, ``attempts`` the total.
    """
    import pandas as pd

    groups: dict[str, list[RunRecord]] = {}
    for rec in records:
        groups.setdefault(rec.spec.experiment, []).append(rec)
    out = []
    for exp, recs in groups.items():
        recs = sorted(recs, key=lambda r: r.spec.seed)
        status = min((r.run_status for r in recs), key=STATUSES.index)
        counts = {s: sum(r.run_status == s for r in recs) for s in STATUSES}
        detail = ", ".join(f"{s} x{c}" for s, c in counts.items() if c) if len({r.run_status for r in recs}) > 1 else ""
        row: dict[str, Any] = {
            "experiment": exp,
            "description": recs[0].meta("description"),
            "head": recs[0].meta("head"),
            "objective": recs[0].meta("objective"),
            "negatives": recs[0].meta("negatives"),
            "status": status,
            "status_detail": detail,
            "key_finding": _experiment_key_finding(recs, status),
            "weights": "ema",
        }
        for col in SUMMARY_METRICS:
            vals = [v for r in recs if (v := r.final(col)[1]) is not None]
            row[f"{col}_mean"], row[f"{col}_std"] = mean_std(vals)
            row[f"{col}_n"] = len(vals)
        base = baselines_from_cross_eval([b for r in recs for b in r.cross_eval]) or next(
            (r.baselines for r in recs if r.baselines), {}
        )
        for split in ("val", "val_harder"):
            for b in ("predict_zero_mse", "predict_mean_mse"):
                row[f"{split}_{b}"] = base.get(split, {}).get(b, math.nan)
        steps = [r.steps for r in recs if r.steps is not None]
        walls = [r.wall_time_s for r in recs if r.wall_time_s is not None]
        row.update(
            steps=min(steps) if steps else None,
            wall_time_s=statistics.fmean(walls) if walls else math.nan,
            attempts=sum(r.n_attempts for r in recs),
            n_seeds=len(recs),
            seeds=" ".join(str(r.spec.seed) for r in recs),
            findings=";".join(sorted({f.kind for r in recs for f in r.findings})),
        )
        out.append(row)
    df = pd.DataFrame(out)
    if len(df):
        df["steps"] = df["steps"].astype("Int64")
    return df


def _experiment_key_finding(recs: list[RunRecord], status: str) -> str:
    n = len(recs)
    worst = [r for r in recs if r.run_status == status]
    if status == "stable":
        vals = [v for r in recs if (v := r.final("val_task_mse")[1]) is not None]
        mean, std = mean_std(vals)
        base = next((r.baselines.get("val", {}).get("predict_mean_mse") for r in recs if r.baselines), None)
        text = f"No pathology in {n} seed{'s' if n > 1 else ''}; val_task_mse {_pm(mean, std)} (EMA weights)"
        if base:
            rel = (base - mean) / base
            text += f", {abs(rel):.0%} {'below' if rel >= 0 else 'above'} the predict-mean baseline {base:.4g}"
        return text
    sentence = worst[0].key_finding
    if n == 1:
        return sentence
    return f"{len(worst)}/{n} seeds {status}; seed {worst[0].spec.seed}: {sentence[:1].lower()}{sentence[1:]}"


def _pm(mean: float, std: float, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {std:.2g}"


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _md_cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def add_sweep_columns(summary: "pd.DataFrame", sweep: "pd.DataFrame | None") -> "pd.DataFrame":
    """The summary with the inference-sweep columns ``<split>_<metric>@K=<k>_mean`` / ``_std`` appended
    (:func:`ired.landscape.sweep_summary_columns`); unchanged when there is no sweep, NaN for an experiment
    without one."""
    from ired.landscape import sweep_summary_columns

    if sweep is None or not len(sweep) or not len(summary):
        return summary
    wide = sweep_summary_columns(sweep)
    return summary.merge(wide, on="experiment", how="left")


def _sweep_markdown(summary: "pd.DataFrame") -> list[str]:
    from ired.landscape import PATH_K, SWEEP_DEFINITIONS, headline_columns

    shown = headline_columns(summary.columns)
    if not shown:
        return []
    lines = [
        "", "## Inference-side measurements", "",
        "From `results/inference_sweep.csv`: each run's last checkpoint, **EMA weights**, inference with K gradient "
        f"steps per level; mean ± std over seeds. rejected_frac and energy_monotone_frac at K={PATH_K} (every K: "
        "`results/plots/inference_sweep.png`).",
        "",
        *(f"- `{m}`: {d}." for m, d in SWEEP_DEFINITIONS.items()),
        "",
        "| experiment | " + " | ".join(shown) + " |",
        "|" + "---|" * (len(shown) + 1),
    ]
    for r in summary.to_dict("records"):
        cells = [r["experiment"], *(_pm(r.get(f"{c}_mean"), r.get(f"{c}_std")) for c in shown)]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return lines


def summary_markdown(summary: "pd.DataFrame", runs: "pd.DataFrame | None" = None) -> str:
    """The summary table for people: mean ± std over seeds, statuses, key findings, the inference-side
    measurements when the summary has them, then one line per run."""
    lines = [
        "# Summary of experiments",
        "",
        "Generated by `ired.summary.write_summary` from each run's `metrics.jsonl`, `status.json`, "
        "`attempts.jsonl` and `results/cross_eval.csv`; never edited by hand.",
        "`val_task_mse` / `val_harder_task_mse`: last evaluation row of `metrics.jsonl`, **EMA weights**, "
        "mean ± std over seeds (sample std; a single seed shows its value); `_raw`: the same for the raw weights. "
        "Baselines: predict zero / predict the mean matrix, on the same fixed split.",
        "",
    ]
    head = [
        "experiment", "description", "head", "objective", "negatives", "status", "key finding",
        "val_task_mse (EMA)", "val_harder_task_mse (EMA)", "val_task_mse_raw", "val_harder_task_mse_raw",
        "val: predict 0 / mean", "val_harder: predict 0 / mean", "steps", "wall time (s)", "attempts", "seeds",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.to_dict("records"):
        status = r["status"] + (f" ({r['status_detail']})" if r.get("status_detail") else "")
        cells = [
            r["experiment"], r["description"], r["head"], r["objective"], r["negatives"], status, r["key_finding"],
            *(_pm(r[f"{c}_mean"], r[f"{c}_std"]) for c in SUMMARY_METRICS),
            f"{_num(r['val_predict_zero_mse'])} / {_num(r['val_predict_mean_mse'])}",
            f"{_num(r['val_harder_predict_zero_mse'])} / {_num(r['val_harder_predict_mean_mse'])}",
            _num(r["steps"]), _num(r["wall_time_s"], 3), _num(r["attempts"]), f"{r['n_seeds']} ({r['seeds']})",
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    lines += _sweep_markdown(summary)
    if runs is not None and len(runs):
        lines += ["", "## Runs", "", "| run | seed | status | findings | val_task_mse | val_task_mse_raw | steps | attempts |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in runs.to_dict("records"):
            cells = [r["run"], r["seed"], r["status"], r["findings"] or "-", _num(r["val_task_mse"]),
                     _num(r["val_task_mse_raw"]), _num(r["steps"]), _num(r["attempts"])]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"

def write_summary(
    runs: Iterable[RunSpec | Mapping[str, Any]],
    cross_eval_csv: str | Path | None,
    out_csv: str | Path,
    out_md: str | Path,
    runs_csv: str | Path | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    sweep_csv: str | Path | None = None,
) -> "pd.DataFrame":
    """Write ``summary.csv`` (machines) and ``summary.md`` (people), optionally the per-run table; return the summary.

    ``runs``: one descriptor per training run (:class:`RunSpec` or a mapping with its fields: ``experiment``,
    ``seed``, ``run_dir`` and optional ``description``, ``head``, ``objective``, ``negatives``, ``run_id``).
    ``cross_eval_csv``: ``results/cross_eval.csv`` (the trivial baselines and the cross-eval evidence come from
    it); None or a missing file leaves the baselines n/a. ``sweep_csv``: ``results/inference_sweep.csv``
    (:mod:`ired.landscape`); when given, its per-experiment columns ``<split>_<metric>@K=<k>_mean`` / ``_std``
    are appended and summary.md gets an "Inference-side measurements" table.
    """
    from ired.landscape import read_sweep

    records = load_runs(runs, cross_eval_csv, thresholds)
    summary = add_sweep_columns(summary_table(records), read_sweep(sweep_csv) if sweep_csv is not None else None)
    per_run = runs_table(records)
    for p in (out_csv, out_md, runs_csv):
        if p is not None:
            Path(p).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_csv, index=False)
    Path(out_md).write_text(summary_markdown(summary, per_run))
    if runs_csv is not None:
        per_run.to_csv(runs_csv, index=False)
    return summary


def write_diagnostics(
    run: RunSpec | Mapping[str, Any], out_json: str | Path, cross_eval_csv: str | Path | None = None
) -> RunRecord:
    """Diagnose one run folder and write ``{status, key_finding, findings: [...]}`` as JSON (a per-run target)."""
    rec = load_run(run, read_cross_eval(cross_eval_csv))
    payload = {
        "experiment": rec.spec.experiment,
        "seed": rec.spec.seed,
        "run": rec.spec.run_id,
        "status": rec.run_status,
        "key_finding": rec.key_finding,
        "findings": [f.to_dict() for f in rec.findings],
        "missing_files": rec.missing,
    }
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(payload, indent=2) + "\n")
    return rec
