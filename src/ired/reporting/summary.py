"""The summary tables: ``results/<scale>/summary.csv`` (one row per experiment), ``summary.md`` (people) and
``runs.csv`` (one row per run), their columns and formats from :mod:`ired.reporting.columns`.

:func:`write_summary` is the pipeline's entry point: it reads and diagnoses every run once
(:func:`ired.reporting.run_record.load_runs`), aggregates each experiment's seeds (mean ± std, the most severe status, a
generated key finding, the trivial baselines, steps, wall time and attempts) and writes the three tables. The
diagnosis of each run (status, key finding, the findings and their steps) is in ``runs.csv``: the plots and the
report read it instead of diagnosing again. A study with parameter sweeps gets the columns ``sweep`` and one per
swept key (``train.lr``) right after ``experiment``, the experiments of a sweep side by side. Every number comes
from the run folders and the cross-eval CSV, never from hand.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.core.errors import IredError
from ired.reporting.columns import (
    MEAN_STD,
    RUN_COLUMNS,
    SUMMARY_COLUMNS,
    SWEEP,
    Column,
    markdown_cell,
    markdown_columns,
    mean_of,
    n_of,
    std_of,
    sweep_keys,
)
from ired.reporting.cross_eval import baselines_from_cross_eval
from ired.reporting.diagnosis_types import DEFAULT_THRESHOLDS, Thresholds
from ired.reporting.formatting import num, pm
from ired.reporting.inference_sweep import mean_std
from ired.reporting.run_record import STATUSES, RunRecord, RunSpec, SweepPoint, load_runs
from ired.runs.atomic import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_METRICS: tuple[str, ...] = tuple(c.metric for c in SUMMARY_COLUMNS if c.fmt == MEAN_STD and c.metric)
"""Evaluation columns summarised as mean +- std over seeds (EMA weights unsuffixed, raw weights ``_raw``)."""

# --------------------------------------------------------------------------------------------------
# The values of each column
# --------------------------------------------------------------------------------------------------


def _run_values(rec: RunRecord) -> dict[str, Any]:
    """Every column of :data:`ired.reporting.columns.RUN_COLUMNS` that is not a metric, for one run."""
    values: dict[str, Any] = {
        "experiment": rec.spec.experiment,
        "run": rec.spec.run_id,
        "seed": rec.spec.seed,
        "run_dir": str(rec.spec.run_dir),
        "status": rec.run_status,
        "key_finding": rec.key_finding,
        "findings": ";".join(f.kind for f in rec.findings),
        "finding_steps": ";".join(f.kind if f.step is None else f"{f.kind}@{f.step}" for f in rec.findings),
        "eval_step": rec.final("val_task_mse")[0],
        "steps": rec.steps,
        "wall_time_s": rec.wall_time_s,
        "attempts": rec.n_attempts,
    }
    for split, base in rec.baselines.items():
        for kind, v in base.items():
            values[f"{split}_{kind}"] = v
    return values


def _experiment_values(recs: list[RunRecord]) -> dict[str, Any]:
    """Every column of :data:`ired.reporting.columns.SUMMARY_COLUMNS` that is not a metric, for the seeds of one
    experiment (sorted by seed)."""
    status = min((r.run_status for r in recs), key=STATUSES.index)
    counts = {s: sum(r.run_status == s for r in recs) for s in STATUSES}
    detail = ", ".join(f"{s} x{c}" for s, c in counts.items() if c) if len({r.run_status for r in recs}) > 1 else ""
    values: dict[str, Any] = {
        "experiment": recs[0].spec.experiment,
        "description": recs[0].meta("description"),
        "head": recs[0].meta("head"),
        "objective": recs[0].meta("objective"),
        "negatives": recs[0].meta("negatives"),
        "status": status,
        "status_detail": detail,
        "key_finding": _experiment_key_finding(recs, status),
        "weights": "ema",
    }
    base = baselines_from_cross_eval([b for r in recs for b in r.cross_eval]) or next(
        (r.baselines for r in recs if r.baselines), {}
    )
    for split, by_kind in base.items():
        for kind, v in by_kind.items():
            values[f"{split}_{kind}"] = v
    steps = [r.steps for r in recs if r.steps is not None]
    walls = [r.wall_time_s for r in recs if r.wall_time_s is not None]
    values.update(
        steps=min(steps) if steps else None,
        wall_time_s=statistics.fmean(walls) if walls else math.nan,
        attempts=sum(r.n_attempts for r in recs),
        n_seeds=len(recs),
        seeds=" ".join(str(r.spec.seed) for r in recs),
        findings=";".join(sorted({f.kind for r in recs for f in r.findings})),
    )
    return values


def _row(
    columns: Sequence[Column],
    values: Mapping[str, Any],
    metric: Callable[[str], Mapping[str, Any]],
    missing: Any,
    sweep: dict[str, Any] | None,
) -> dict[str, Any]:
    """One table row in the order of ``columns``: metric columns from ``metric(name)``, the others from
    ``values`` (``missing`` for a trivial baseline that is not known); the sweep columns after ``experiment``."""
    row: dict[str, Any] = {}
    for c in columns:
        if c.metric is not None:
            row.update(metric(c.metric))
        elif c.name in values:
            row[c.name] = values[c.name]
        elif c.split is not None:  # a trivial baseline this run or experiment has no value for
            row[c.name] = missing
        else:
            raise KeyError(f"column {c.name!r} of the spec has no value (ired.reporting.summary._run_values / "
                           "_experiment_values compute the columns that are not metrics)")
        if c.name == "experiment" and sweep is not None:
            row.update(sweep)
    return row


def _sweep_cells(records: Sequence[RunRecord]) -> Callable[[SweepPoint | None], dict[str, Any] | None]:
    """The sweep columns of a row (``sweep`` and one per swept key of the study, in order of appearance); None
    for every row when no run is in a sweep."""
    keys = list(dict.fromkeys(k for r in records if r.sweep is not None for k in r.sweep.point))
    if not any(r.sweep is not None for r in records):
        return lambda point: None
    return lambda point: {SWEEP: point.name if point else None,
                          **{k: (point.point.get(k) if point else None) for k in keys}}


def _experiment_sweep(exp: str, recs: Sequence[RunRecord]) -> SweepPoint | None:
    points = {(r.sweep.name, tuple(sorted(r.sweep.point.items(), key=str))) if r.sweep else None for r in recs}
    if len(points) > 1:
        runs = ", ".join(f"{r.spec.run_id} ({r.sweep.name if r.sweep else 'no sweep'}: "
                         f"{r.sweep.point if r.sweep else {}})" for r in recs)
        raise IredError(f"experiment {exp}: its runs are at different sweep points ({runs}); the runs of one "
                        "experiment must share one sweep point (key sweep of config.yaml)")
    return recs[0].sweep


# --------------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------------


def runs_table(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run (:data:`ired.reporting.columns.RUN_COLUMNS`): ids, the diagnosis (status, key finding, findings
    and their steps), final evaluation values, baselines, steps, wall time, attempts."""
    import pandas as pd

    sweep = _sweep_cells(records)

    def final(rec: RunRecord) -> Callable[[str], dict[str, Any]]:
        return lambda name: {name: rec.final(name)[1]}

    rows = [_row(RUN_COLUMNS, _run_values(rec), final(rec), None, sweep(rec.sweep)) for rec in records]
    return pd.DataFrame(rows)


def summary_table(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per experiment (:data:`ired.reporting.columns.SUMMARY_COLUMNS`, in order of first appearance; the
    experiments of a sweep side by side), aggregating its seeds.

    ``*_mean`` / ``*_std`` are over seeds of the last evaluation row of each run's metrics.jsonl (std is the
    sample std, NaN for one seed); ``weights`` says the unsuffixed columns are the EMA weights. ``status`` is
    the most severe seed status; ``status_detail`` lists the seed statuses when they differ. ``steps`` is the
    smallest step reached by a seed, ``wall_time_s`` the mean over seeds, ``attempts`` the total.
    """
    import pandas as pd

    groups: dict[str, list[RunRecord]] = {}
    for rec in records:
        groups.setdefault(rec.spec.experiment, []).append(rec)
    points = {exp: _experiment_sweep(exp, recs) for exp, recs in groups.items()}
    blocks: dict[str, list[str]] = {}  # a sweep's experiments together, where its first one appears
    for exp in groups:
        point = points[exp]
        blocks.setdefault(f"{SWEEP}:{point.name}" if point else exp, []).append(exp)
    sweep = _sweep_cells(records)

    def metric(recs: list[RunRecord]) -> Callable[[str], dict[str, Any]]:
        def of(name: str) -> dict[str, Any]:
            vals = [v for r in recs if (v := r.final(name)[1]) is not None]
            mean, std = mean_std(vals)
            return {mean_of(name): mean, std_of(name): std, n_of(name): len(vals)}

        return of

    out = []
    for exp in (e for block in blocks.values() for e in block):
        recs = sorted(groups[exp], key=lambda r: r.spec.seed)
        out.append(_row(SUMMARY_COLUMNS, _experiment_values(recs), metric(recs), math.nan, sweep(points[exp])))
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
        text = f"No pathology in {n} seed{'s' if n > 1 else ''}; val_task_mse {pm(mean, std)} (EMA weights)"
        if base:
            rel = (base - mean) / base
            text += f", {abs(rel):.0%} {'below' if rel >= 0 else 'above'} the predict-mean baseline {base:.4g}"
        return text
    sentence = worst[0].key_finding
    if n == 1:
        return sentence
    return f"{len(worst)}/{n} seeds {status}; seed {worst[0].spec.seed}: {sentence[:1].lower()}{sentence[1:]}"


def add_sweep_columns(summary: pd.DataFrame, sweep: pd.DataFrame | None) -> pd.DataFrame:
    """The summary with the inference-sweep columns ``<split>_<metric>@K=<k>_mean`` / ``_std`` appended
    (:func:`ired.reporting.inference_sweep.sweep_summary_columns`); unchanged when there is no sweep, NaN for an
    experiment without one."""
    from ired.reporting.inference_sweep import sweep_summary_columns

    if sweep is None or not len(sweep) or not len(summary):
        return summary
    wide = sweep_summary_columns(sweep)
    return summary.merge(wide, on="experiment", how="left")


def _sweep_markdown(summary: pd.DataFrame) -> list[str]:
    from ired.reporting.inference_sweep import PATH_K, SWEEP_DEFINITIONS, headline_columns

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
        cells = [r["experiment"], *(pm(r.get(mean_of(c)), r.get(std_of(c))) for c in shown)]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return lines


def summary_markdown(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> str:
    """The summary table for people: mean ± std over seeds, statuses, key findings, the inference-side
    measurements when the summary has them, then one line per run."""
    lines = [
        "# Summary of experiments",
        "",
        "Generated by `ired.reporting.summary.write_summary` from each run's `metrics.jsonl`, `status.json`, "
        "`attempts.jsonl` and `results/cross_eval.csv`; never edited by hand.",
        "`val_task_mse` / `val_harder_task_mse`: last evaluation row of `metrics.jsonl`, **EMA weights**, "
        "mean ± std over seeds (sample std; a single seed shows its value); `_raw`: the same for the raw weights. "
        "Baselines: predict zero / predict the mean matrix, on the same fixed split.",
        "",
    ]
    lines += _markdown_table(SUMMARY_COLUMNS, summary)
    lines += _sweep_markdown(summary)
    if runs is not None and len(runs):
        lines += ["", "## Runs", "", *_markdown_table(RUN_COLUMNS, runs)]
    return "\n".join(lines) + "\n"


def _md_cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _markdown_table(columns: Sequence[Column], table: pd.DataFrame) -> list[str]:
    """A Markdown table of the spec's columns with a header; a study's sweep columns (``sweep`` and the swept
    keys) follow the first column."""
    shown = markdown_columns(columns)
    keys = [SWEEP, *sweep_keys(table.columns)] if SWEEP in table.columns else []
    head = [shown[0].header or "", *keys, *(c.header or "" for c in shown[1:])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        cells = [markdown_cell(shown[0], r), *(num(r.get(k)) for k in keys),
                 *(markdown_cell(c, r) for c in shown[1:])]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return lines


def write_summary(
    runs: Iterable[RunSpec | Mapping[str, Any]],
    cross_eval_csv: str | Path | None,
    out_csv: str | Path,
    out_md: str | Path,
    runs_csv: str | Path | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    sweep_csv: str | Path | None = None,
) -> pd.DataFrame:
    """Write ``summary.csv`` (machines) and ``summary.md`` (people), optionally the per-run table; return the summary.

    ``runs``: one descriptor per training run (:class:`RunSpec` or a mapping with its fields: ``experiment``,
    ``seed``, ``run_dir`` and optional ``description``, ``head``, ``objective``, ``negatives``, ``run_id``,
    ``sweep``).
    ``cross_eval_csv``: ``results/cross_eval.csv`` (the trivial baselines and the cross-eval evidence come from
    it); None or a missing file leaves the baselines n/a. ``sweep_csv``: ``results/inference_sweep.csv``
    (:mod:`ired.reporting.inference_sweep`); when given, its per-experiment columns ``<split>_<metric>@K=<k>_mean`` /
    ``_std`` are appended and summary.md gets an "Inference-side measurements" table.
    """
    from ired.reporting.inference_sweep import read_sweep

    records = load_runs(runs, cross_eval_csv, thresholds)
    summary = add_sweep_columns(summary_table(records), read_sweep(sweep_csv) if sweep_csv is not None else None)
    per_run = runs_table(records)
    for p in (out_csv, out_md, runs_csv):
        if p is not None:
            Path(p).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_csv, index=False)
    write_text_atomic(out_md, summary_markdown(summary, per_run))
    if runs_csv is not None:
        per_run.to_csv(runs_csv, index=False)
    return summary
