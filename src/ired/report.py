"""The cross-eval table and the standalone HTML report.

:func:`aggregate_cross_eval` concatenates the per-evaluation JSON files (one per checkpoint x protocol x split x
weights, format in ARCHITECTURE.md) into ``results/cross_eval.csv``. :func:`write_html_report` gathers the
summary table, the plots, each run's findings with their evidence and its resolved config into one
self-contained HTML file (plots embedded as base64 PNG, no external assets), readable offline and mailable.
The summary table itself lives in :mod:`ired.summary` (re-exported here).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.summary import (  # noqa: F401  (re-exported: the report's public entry points)
    RunRecord,
    RunSpec,
    load_runs,
    read_cross_eval,
    runs_table,
    summary_markdown,
    summary_table,
    write_diagnostics,
    write_summary,
)

if TYPE_CHECKING:
    import pandas as pd

CROSS_EVAL_COLUMNS: tuple[str, ...] = (
    "checkpoint",
    "run",
    "milestone",
    "protocol",
    "protocol_version",
    "split",
    "weights",
    "task_mse",
    "denoise_mse",
    "n_problems",
    "predict_zero_mse",
    "predict_mean_mse",
)
"""Leading columns of ``cross_eval.csv``; protocol-specific extras follow, sorted by name."""
HTML_CURVES_DPI = 72
"""Resolution of the per-run training curves embedded in the HTML report (1080 x 612 px: readable, and the
report of a few dozen runs stays a few MB)."""
_REQUIRED = ("checkpoint", "protocol", "split", "weights")
_KEY = ("checkpoint", "weights", "protocol", "split")


# --------------------------------------------------------------------------------------------------
# Cross-eval aggregation
# --------------------------------------------------------------------------------------------------


def aggregate_cross_eval(json_paths: Iterable[str | Path], out_csv: str | Path | None = None) -> "pd.DataFrame":
    """Concatenate evaluation result JSONs into one table, one row per checkpoint x weights x protocol x split.

    A file missing a key column, or with neither ``task_mse`` nor ``denoise_mse``, is an error naming the file;
    so is the same (checkpoint, weights, protocol, split) twice. Nested extras are stored as JSON text. Rows are
    sorted by the key so the CSV is stable. Writes ``out_csv`` when given (header only when there is no file).
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], str] = {}
    for p in json_paths:
        p = Path(p)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: cannot read evaluation result ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{p}: evaluation result must be a JSON object, got {type(d).__name__}")
        absent = [k for k in _REQUIRED if k not in d]
        if absent:
            raise ValueError(f"{p}: evaluation result lacks {absent}")
        if d.get("task_mse") is None and d.get("denoise_mse") is None:
            raise ValueError(f"{p}: evaluation result has neither task_mse nor denoise_mse")
        key = tuple(str(d[k]) for k in _KEY)
        if key in seen:
            raise ValueError(f"{p}: duplicate evaluation {dict(zip(_KEY, key))} (also in {seen[key]})")
        seen[key] = str(p)
        row = {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v) for k, v in d.items()}
        row["source"] = str(p)
        rows.append(row)
    extras = sorted({k for r in rows for k in r} - set(CROSS_EVAL_COLUMNS) - {"source"})
    df = pd.DataFrame(rows, columns=[*CROSS_EVAL_COLUMNS, *extras, "source"])
    if len(df):
        df = df.sort_values(list(_KEY), key=lambda s: s.astype(str), kind="stable").reset_index(drop=True)
    if out_csv is not None:
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out_csv, index=False)
    return df


# --------------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1600px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f1f3f5;position:sticky;top:0}
img{max-width:100%;border:1px solid #eee}
pre{background:#f8f9fa;padding:8px;overflow-x:auto;font-size:12px}
.st{font-weight:600;padding:1px 5px;border-radius:3px;color:white}
details{margin:.4em 0}
summary{cursor:pointer}
.finding{border-left:4px solid #c92a2a;padding-left:8px;margin:.6em 0}
.muted{color:#666}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _status_badge(status: str) -> str:
    from ired.plots import STATUS_COLOURS

    colour = STATUS_COLOURS.get(status, "#495057")
    return f'<span class="st" style="background:{colour}">{html.escape(status)}</span>'


def _table(df: "pd.DataFrame", badge_col: str | None = "status") -> str:
    import math

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for rec in df.to_dict("records"):
        cells = []
        for c, v in rec.items():
            if c == badge_col and isinstance(v, str):
                cells.append(f"<td>{_status_badge(v)}</td>")
            elif isinstance(v, float):
                cells.append(f"<td>{'n/a' if math.isnan(v) else f'{v:.4g}'}</td>")
            else:
                cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _run_section(rec: RunRecord, curves_png: bytes | None) -> str:
    parts = [
        f'<h3 id="run-{html.escape(str(rec.spec.run_id))}">{html.escape(str(rec.spec.run_id))} '
        f"(experiment {html.escape(rec.spec.experiment)}, seed {rec.spec.seed}) {_status_badge(rec.run_status)}</h3>",
        f"<p>{html.escape(rec.key_finding)}</p>",
        f'<p class="muted">folder: {html.escape(str(rec.spec.run_dir))}'
        + (f"; missing files: {html.escape(', '.join(rec.missing))}" if rec.missing else "")
        + f"; steps {rec.steps}; attempts {rec.n_attempts}</p>",
    ]
    if not rec.findings:
        parts.append("<p>No finding: the log shows none of the pathologies the diagnostics look for.</p>")
    for f in rec.findings:
        ev = json.dumps(f.to_dict()["evidence"], indent=2)
        rows = "\n".join(json.dumps(r) for r in f.to_dict()["rows"])
        parts.append(
            f'<div class="finding"><b>{html.escape(f.kind)}</b> (step {f.step}): {html.escape(f.message)}'
            f"<details><summary>evidence</summary><pre>{html.escape(ev)}</pre></details>"
            f"<details><summary>raw metrics.jsonl rows</summary><pre>{html.escape(rows)}</pre></details></div>"
        )
    if curves_png is not None:
        parts.append(_img(curves_png, f"training curves of {rec.spec.run_id}"))
    if rec.attempts:
        parts.append(
            "<details><summary>attempts.jsonl</summary><pre>"
            + html.escape("\n".join(json.dumps(a) for a in rec.attempts))
            + "</pre></details>"
        )
    parts.append(
        "<details><summary>resolved_config.yaml</summary><pre>"
        + html.escape(rec.config_text or "(resolved_config.yaml missing)")
        + "</pre></details>"
    )
    return "\n".join(parts)


def write_html_report(
    runs: Iterable[RunSpec | Mapping[str, Any]],
    cross_eval_csv: str | Path | None,
    out_html: str | Path,
    title: str = "ired experiment report",
    curves: Mapping[str, str | Path] | None = None,
    sweep_csv: str | Path | None = None,
    findings_md: str | Path | None = None,
    sweep_experiments: Sequence[str] | None = None,
) -> Path:
    """Write one self-contained HTML report: findings, summary table, ablation chart, cross-eval heatmap, the
    inference sweep, then per run its findings with evidence (raw log rows included), training curves, attempts
    and resolved config.

    Plots are rendered here from the data; ``curves`` may map a run id to an already written training-curves
    PNG to embed instead of re-rendering it. ``sweep_csv`` (``results/inference_sweep.csv``) adds the sweep's
    summary columns and its plot (``sweep_experiments``: the experiments drawn); ``findings_md``
    (``results/findings.md``) is shown first, as text.
    """
    from ired import plots
    from ired.landscape import headline_columns, read_sweep
    from ired.summary import add_sweep_columns

    records = load_runs(runs, cross_eval_csv)
    sweep = read_sweep(sweep_csv) if sweep_csv is not None else None
    summary = add_sweep_columns(summary_table(records), sweep)
    per_run = runs_table(records)
    cross = read_cross_eval(cross_eval_csv)
    shown = [
        c
        for c in (
            "experiment", "description", "head", "objective", "negatives", "status", "status_detail", "key_finding",
            "val_task_mse_mean", "val_task_mse_std", "val_harder_task_mse_mean", "val_harder_task_mse_std",
            "val_task_mse_raw_mean", "val_harder_task_mse_raw_mean", "val_predict_zero_mse", "val_predict_mean_mse",
            "val_harder_predict_zero_mse", "val_harder_predict_mean_mse", "steps", "wall_time_s", "attempts",
            "n_seeds",
            *(f"{c}_{stat}" for c in headline_columns(summary.columns) for stat in ("mean", "std")),
        )
        if c in summary.columns
    ]
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">Generated {_dt.datetime.now().isoformat(timespec="seconds")} by ired.report from '
        f"{len(records)} run folder(s) and {html.escape(str(cross_eval_csv))}. Unsuffixed evaluation columns are "
        "EMA weights, <code>_raw</code> the raw weights; mean and std over seeds.</p>",
        *(["<h2>Findings</h2>", f"<pre>{html.escape(Path(findings_md).read_text())}</pre>"]
          if findings_md is not None and Path(findings_md).is_file() else []),
        "<h2>Summary</h2>",
        _table(summary[shown]) if len(summary) else "<p>No runs.</p>",
        "<h2>Ablation</h2>",
        _img(plots.png_bytes(plots.ablation_figure(summary, per_run)), "ablation bar chart"),
        "<h2>Cross-evaluation</h2>",
        _img(plots.png_bytes(plots.cross_eval_figure(cross)), "cross-eval heatmap"),
    ]
    if sweep is not None:
        body += ["<h2>Inference-steps sweep</h2>",
                 _img(plots.png_bytes(plots.inference_sweep_figure(sweep, sweep_experiments)), "inference sweep")]
    body.append("<h2>Runs</h2>")
    for rec in records:
        given = (curves or {}).get(str(rec.spec.run_id))
        if given is not None and Path(given).is_file():
            png = Path(given).read_bytes()
        else:
            fig = plots.training_curves_figure(
                rec.rows, f"{rec.spec.run_id}: {rec.run_status}", rec.findings, rec.baselines
            )
            png = plots.png_bytes(fig, dpi=HTML_CURVES_DPI)
        body.append(_run_section(rec, png))
    doc = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc)
    return out


def build_report(
    runs: Iterable[RunSpec | Mapping[str, Any]],
    cross_eval_csv: str | Path | None,
    out_dir: str | Path = "results",
) -> dict[str, Path]:
    """Everything from existing files, no training: summary.csv/.md, runs.csv, ablation.png, cross_eval.png,
    report.html under ``out_dir``. Returns the written paths by name."""
    from ired import plots

    runs = list(runs)
    out = Path(out_dir)
    paths = {
        "summary_csv": out / "summary.csv",
        "summary_md": out / "summary.md",
        "runs_csv": out / "runs.csv",
        "ablation_png": out / "plots" / "ablation.png",
        "cross_eval_png": out / "plots" / "cross_eval.png",
        "report_html": out / "report.html",
    }
    summary = write_summary(runs, cross_eval_csv, paths["summary_csv"], paths["summary_md"], paths["runs_csv"])
    plots.plot_ablation(summary, paths["ablation_png"], paths["runs_csv"])
    plots.plot_cross_eval_heatmap(read_cross_eval(cross_eval_csv), paths["cross_eval_png"])
    write_html_report(runs, cross_eval_csv, paths["report_html"])
    return paths
