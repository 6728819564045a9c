"""The cross-eval table, its per-experiment aggregate, and the HTML report.

:func:`aggregate_cross_eval` concatenates the per-evaluation JSON files (one per checkpoint x protocol x split x
weights, format in ARCHITECTURE.md) into ``results/cross_eval.csv``; :func:`cross_eval_by_experiment` reduces it
to one row per experiment x weights x protocol x split (mean ± std over the seeds' last checkpoints).

:func:`write_html_report` reads the pipeline's tables (``summary.csv``, ``runs.csv``, ``cross_eval.csv``,
``findings.md``) and PNGs and writes one page that reads top-down like a paper: the verdict and the findings
(Markdown rendered as HTML), the ablation chart, the cross-evaluation per experiment (an HTML table, one colour
scale per column), the inference sweep, then the experiment and run tables (sortable and filterable with a few
lines of inline JavaScript). The per-experiment plots are embedded (base64 PNG); each run's training curves are
linked as files (a lazy image in a closed ``<details>``), so the page grows with the number of experiments, not
of runs, and needs nothing from the network. The summary table itself lives in :mod:`ired.summary`
(re-exported here).
"""

from __future__ import annotations

import base64
import math
import os
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
# Cross-eval per experiment
# --------------------------------------------------------------------------------------------------

PREFERRED_MILESTONES: tuple[str, ...] = ("last", "final", "external")
"""The checkpoint of a run that the per-experiment cross-eval uses: the first of these milestones the run has
(else all its rows). Every milestone stays in ``cross_eval.csv``."""


def cross_eval_by_experiment(cross: "pd.DataFrame", runs: "pd.DataFrame | None" = None) -> "pd.DataFrame":
    """One row per experiment x weights x protocol x split: ``metric`` (``task_mse``; ``denoise_mse`` for the
    ``denoise`` protocol), ``mean``, ``std`` (sample std over seeds, NaN for one), ``n`` and ``milestone``.

    Each run contributes its checkpoint of :data:`PREFERRED_MILESTONES`; ``runs`` (``runs.csv``) maps a run to
    its experiment, and a run it does not know (an external checkpoint) is its own experiment.
    """
    import pandas as pd

    from ired.diagnostics import cross_eval_metric
    from ired.landscape import mean_std

    cols = ["experiment", "weights", "protocol", "split", "metric", "mean", "std", "n", "milestone"]
    if cross is None or not len(cross):
        return pd.DataFrame(columns=cols)
    to_exp = {}
    if runs is not None and len(runs) and {"run", "experiment"} <= set(runs.columns):
        to_exp = dict(zip(runs["run"].astype(str), runs["experiment"].astype(str)))
    recs = [r for r in cross.to_dict("records") if cross_eval_metric(r) is not None]
    by_run: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by_run.setdefault(str(r.get("run") if isinstance(r.get("run"), str) else r.get("checkpoint")), []).append(r)
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    used: dict[tuple[str, str, str, str], set[str]] = {}
    for run, rows in by_run.items():
        have = {str(r.get("milestone")) for r in rows}
        pick = next((m for m in PREFERRED_MILESTONES if m in have), None)
        for r in rows:
            if pick is not None and str(r.get("milestone")) != pick:
                continue
            key = (to_exp.get(run, run), str(r.get("weights")), str(r.get("protocol")), str(r.get("split")))
            groups.setdefault(key, []).append(float(cross_eval_metric(r)))
            used.setdefault(key, set()).add(str(r.get("milestone")))
    from ired.plots import PROTOCOL_ORDER, SPLIT_ORDER

    order = list(dict.fromkeys([*to_exp.values(), *sorted(k[0] for k in groups)]))

    def rank(key: tuple[str, str, str, str]) -> tuple[Any, ...]:
        exp, weights, protocol, split = key
        return (order.index(exp), weights != "ema", weights,
                PROTOCOL_ORDER.index(protocol) if protocol in PROTOCOL_ORDER else 99, protocol,
                SPLIT_ORDER.index(split) if split in SPLIT_ORDER else 99, split)

    out = []
    for key in sorted(groups, key=rank):
        mean, std = mean_std(groups[key])
        out.append(dict(zip(cols, (*key, "denoise_mse" if key[2] == "denoise" else "task_mse", mean, std,
                                   len(groups[key]), " ".join(sorted(used[key]))))))
    return pd.DataFrame(out, columns=cols)


# --------------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #dee2e6;padding-bottom:.2em}
table{border-collapse:collapse;font-size:13px;margin:.6em 0}
th,td{border:1px solid #dee2e6;padding:3px 6px;vertical-align:top}
th{background:#f1f3f5;position:sticky;top:0;z-index:1}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[data-dir=asc]::after{content:" \\25B2"} table.sortable th[data-dir=desc]::after{content:" \\25BC"}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.short{max-width:28em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.wide{overflow-x:auto;max-width:100%}
img{max-width:100%;border:1px solid #eee}
.st{font-weight:600;padding:1px 6px;border-radius:9px;color:white;font-size:12px;white-space:nowrap}
.verdict{background:#f8f9fa;border-left:5px solid #1c7ed6;padding:.5em 1em;font-size:1.05em}
.findings table{display:block;overflow-x:auto;max-width:100%}
.findings td{white-space:nowrap}
.findings{font-size:14px}
.muted{color:#666;font-size:13px}
.filters{margin:.5em 0;font-size:14px} .filters input,.filters select{margin-right:1em}
details summary{cursor:pointer;color:#1c7ed6}
.nowrap,.links{white-space:nowrap} .links{font-size:12px}
code{font-size:12px}
"""

_JS = """
(function(){
  function key(td){
    var v = td.hasAttribute('data-v') ? td.getAttribute('data-v') : td.textContent.trim();
    var n = parseFloat(v);
    return (v !== '' && isFinite(n)) ? {n: n, s: ''} : {n: null, s: v.toLowerCase()};
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('thead th').forEach(function(th, i){
      th.addEventListener('click', function(){
        var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
        table.querySelectorAll('thead th').forEach(function(h){ h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir);
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function(a, b){
          var x = key(a.cells[i]), y = key(b.cells[i]), c;
          if (x.n !== null && y.n !== null) c = x.n - y.n;
          else if (x.n !== null) return -1;  /* numbers first, n/a last in both directions */
          else if (y.n !== null) return 1;
          else c = x.s.localeCompare(y.s);
          return dir === 'asc' ? c : -c;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
  var exp = document.getElementById('filter-experiment'), st = document.getElementById('filter-status');
  function filter(){
    var q = exp.value.trim().toLowerCase(), s = st.value;
    document.querySelectorAll('tr[data-experiment]').forEach(function(r){
      r.hidden = !((!q || r.getAttribute('data-experiment').toLowerCase().indexOf(q) >= 0) &&
                   (!s || r.getAttribute('data-status') === s));
    });
  }
  if (exp && st) { exp.addEventListener('input', filter); st.addEventListener('change', filter); }
})();
"""

_SHORT = 70
"""Characters of a long text cell (description, key finding) shown in the tables; the full text is on hover."""


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _img_data(png: bytes, alt: str) -> str:
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _embed(path: str | Path | None, alt: str) -> str:
    if path is None or not Path(path).is_file():
        return f'<p class="muted">{_esc(alt)}: no image ({_esc(path)} missing).</p>'
    return _img_data(Path(path).read_bytes(), alt)


def _status_badge(status: Any, detail: Any = None) -> str:
    from ired.plots import STATUS_COLOURS

    status = str(status) if _present(status) else "unknown"
    colour = STATUS_COLOURS.get(status, "#495057")
    title = f' title="{_esc(detail)}"' if _present(detail) else ""
    return f'<span class="st" style="background:{colour}"{title}>{_esc(status)}</span>'


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v) != ""


def _fnum(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _num_cell(mean: Any, std: Any = None, digits: int = 4) -> str:
    m, s = _fnum(mean), _fnum(std)
    if not math.isfinite(m):
        return '<td class="num" data-v="">n/a</td>'
    text = f"{m:.{digits}g}" + (f" ± {s:.2g}" if math.isfinite(s) else "")
    return f'<td class="num" data-v="{m!r}">{_esc(text)}</td>'


def _text_cell(v: Any, short: int = _SHORT) -> str:
    text = str(v) if _present(v) else ""
    shown = text if len(text) <= short else text[: short - 1].rstrip() + "…"
    return f'<td class="short" title="{_esc(text)}">{_esc(shown)}</td>'


def _sortable(table_id: str, head: Sequence[str], rows: Sequence[str], titles: Mapping[str, str] | None = None) -> str:
    """A sortable table in a horizontally scrolling box; a header's spaces become line breaks (narrow columns)."""
    def label(h: str) -> str:  # long column names may wrap after an underscore
        return "<br>".join(_esc(w).replace("_", "_<wbr>") for w in h.split(" "))

    ths = "".join(f'<th title="{_esc((titles or {}).get(h, "click to sort"))}">{label(h)}</th>' for h in head)
    return (f'<div class="wide"><table class="sortable" id="{table_id}"><thead><tr>{ths}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _findings_html(findings_md: str | Path | None) -> tuple[str, str]:
    """(verdict, findings) rendered from ``findings.md`` (the block markers dropped); empty strings without it."""
    from markdown_it import MarkdownIt

    if findings_md is None or not Path(findings_md).is_file():
        return "", ""
    lines = [line for line in Path(findings_md).read_text().splitlines()
             if not (line.startswith("<!--") and line.rstrip().endswith("-->"))]
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    verdict = next((line for line in lines if line.lstrip("- ").startswith("**Verdict**")), "")
    return (md.render(verdict.lstrip("- ")) if verdict else ""), md.render("\n".join(lines))


def _colour(v: float, lo: float, hi: float) -> str:
    """A light background on a log scale from ``lo`` (green, better) to ``hi`` (red, worse)."""
    if not (math.isfinite(v) and v > 0 and lo > 0 and hi > lo * 1.001):
        return "#ffffff"  # one value in the whole column: nothing to compare
    f = min(1.0, max(0.0, math.log(v / lo) / math.log(hi / lo)))
    hue = 120 * (1 - f)
    return f"hsl({hue:.0f},60%,85%)"


def _cross_eval_table(agg: "pd.DataFrame") -> str:
    """Experiment x weights rows, protocol x split columns; one log colour scale per column."""
    if not len(agg):
        return "<p>No cross-evaluation results.</p>"
    cols = list(dict.fromkeys(zip(agg["protocol"], agg["split"], agg["metric"])))
    cells: dict[tuple[str, str], dict[tuple[str, str, str], Mapping[str, Any]]] = {}
    for r in agg.to_dict("records"):
        cells.setdefault((r["experiment"], r["weights"]), {})[(r["protocol"], r["split"], r["metric"])] = r
    scale = {}
    for c in cols:
        vals = [_fnum(r["mean"]) for row in cells.values() if (r := row.get(c)) is not None]
        vals = [v for v in vals if math.isfinite(v) and v > 0]
        scale[c] = (min(vals), max(vals)) if vals else (math.nan, math.nan)
    head = ["experiment", "weights", *(f"{p} {s}" + (" (denoise_mse)" if m != "task_mse" else "") for p, s, m in cols)]
    rows = []
    for (exp, weights), row in cells.items():
        tds = [f"<td><code>{_esc(exp)}</code></td>", f"<td>{_esc(weights)}</td>"]
        for c in cols:
            r = row.get(c)
            if r is None:
                tds.append('<td class="num" data-v="">-</td>')
                continue
            m, s = _fnum(r["mean"]), _fnum(r["std"])
            text = f"{m:.3g}" + (f" ± {s:.1g}" if math.isfinite(s) else "")
            tip = f"{c[2]} on {c[1]} under protocol {c[0]}: mean ± std over {r['n']} checkpoint(s) ({r['milestone']})"
            tds.append(f'<td class="num" data-v="{m!r}" style="background:{_colour(m, *scale[c])}" '
                       f'title="{_esc(tip)}">{_esc(text)}</td>')
        rows.append(f'<tr data-experiment="{_esc(exp)}" data-status="">{"".join(tds)}</tr>')
    return _sortable("cross-eval", head, rows)


def _raw_title(r: Mapping[str, Any], metric: str) -> str:
    m, sd = _fnum(r.get(f"{metric}_raw_mean")), _fnum(r.get(f"{metric}_raw_std"))
    if not math.isfinite(m):
        return f"{metric}: EMA weights, mean ± std over seeds"
    return f"{metric}: EMA weights; raw weights {m:.4g}" + (f" ± {sd:.2g}" if math.isfinite(sd) else "")


def _summary_rows(summary: "pd.DataFrame") -> str:
    """The experiment table: EMA task MSEs (raw weights on hover), status badge, shortened texts."""
    metrics = [c for c in ("val_task_mse", "val_harder_task_mse") if f"{c}_mean" in summary.columns]
    head = ["experiment", "description", "status", "key finding", *metrics, "seeds", "steps", "wall (s)",
            "attempts"]
    titles = {m: f"{m}: EMA weights, mean ± std over seeds (hover a cell for the raw weights)" for m in metrics}
    rows = []
    for r in summary.to_dict("records"):
        nums = []
        for m in metrics:
            cell = _num_cell(r.get(f"{m}_mean"), r.get(f"{m}_std"))
            nums.append(cell.replace("<td ", f'<td title="{_esc(_raw_title(r, m))}" ', 1))
        tds = [f"<td><code>{_esc(r.get('experiment'))}</code></td>", _text_cell(r.get("description"), 28),
               f'<td data-v="{_esc(r.get("status"))}">{_status_badge(r.get("status"), r.get("status_detail"))}</td>',
               _text_cell(r.get("key_finding"), 44), *nums,
               f'<td class="num" data-v="{_fnum(r.get("n_seeds"))!r}" title="seeds {_esc(r.get("seeds"))}">'
               f'{_esc(r.get("n_seeds"))}</td>',
               _num_cell(r.get("steps"), digits=6), _num_cell(r.get("wall_time_s"), digits=3),
               _num_cell(r.get("attempts"), digits=6)]
        rows.append(f'<tr data-experiment="{_esc(r.get("experiment"))}" data-status="{_esc(r.get("status"))}">'
                    + "".join(tds) + "</tr>")
    return _sortable("summary", head, rows, titles)


def _sweep_rows(summary: "pd.DataFrame") -> str:
    """The inference-sweep headline numbers per experiment (``<split>_<metric>@K=<k>``, mean ± std)."""
    from ired.landscape import SWEEP_DEFINITIONS, headline_columns

    cols = headline_columns(summary.columns) if len(summary) else []
    if not cols:
        return ""
    titles = {c: next((f"{m}: {d}" for m, d in SWEEP_DEFINITIONS.items() if m in c), c) for c in cols}
    rows = [f'<tr data-experiment="{_esc(r.get("experiment"))}" data-status="{_esc(r.get("status"))}">'
            f"<td><code>{_esc(r.get('experiment'))}</code></td>"
            + "".join(_num_cell(r.get(f"{c}_mean"), r.get(f"{c}_std")) for c in cols) + "</tr>"
            for r in summary.to_dict("records")]
    return _sortable("sweep-table", ["experiment", *cols], rows, titles)


def _rel(path: str | Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path).absolute(), base.absolute())).as_posix()


def _runs_rows(runs: "pd.DataFrame", curves: Mapping[str, str | Path], base: Path) -> str:
    head = ["run", "seed", "status", "key finding", "val_task_mse", "val_harder_task_mse", "steps",
            "wall time (s)", "attempts", "files"]
    rows = []
    for r in runs.to_dict("records"):
        run = str(r.get("run"))
        links = []
        png = curves.get(run)
        if png is not None:
            src = _esc(_rel(png, base))
            links.append(f'<details><summary>curves</summary><a href="{src}"><img loading="lazy" src="{src}" '
                         f'alt="training curves of {_esc(run)}" width="750"></a></details>')
        if _present(r.get("run_dir")):
            d = _rel(str(r["run_dir"]), base)
            links.append('<span class="links">' + " · ".join(
                f'<a href="{_esc(d)}/{f}" title="{_esc(d)}/{f}">{label}</a>'
                for f, label in (("resolved_config.yaml", "config"), ("metrics.jsonl", "metrics"),
                                 ("status.json", "status"))) + "</span>")
        findings = f" (findings: {r['findings']})" if _present(r.get("findings")) else ""
        tds = [f'<td class="nowrap"><code>{_esc(run)}</code></td>', _num_cell(r.get("seed"), digits=6),
               f'<td data-v="{_esc(r.get("status"))}">{_status_badge(r.get("status"))}</td>',
               _text_cell(f"{r.get('key_finding') or ''}{findings}", 60),
               _num_cell(r.get("val_task_mse")), _num_cell(r.get("val_harder_task_mse")),
               _num_cell(r.get("steps"), digits=6), _num_cell(r.get("wall_time_s"), digits=3),
               _num_cell(r.get("attempts"), digits=6), f"<td>{''.join(links)}</td>"]
        rows.append(f'<tr data-experiment="{_esc(r.get("experiment"))}" data-status="{_esc(r.get("status"))}">'
                    + "".join(tds) + "</tr>")
    return _sortable("runs", head, rows)


def _baselines_line(summary: "pd.DataFrame") -> str:
    if not len(summary):
        return ""
    r = summary.iloc[0].to_dict()
    parts = []
    for split in ("val", "val_harder"):
        z, m = _fnum(r.get(f"{split}_predict_zero_mse")), _fnum(r.get(f"{split}_predict_mean_mse"))
        if math.isfinite(z) or math.isfinite(m):
            parts.append(f"{split}: predict zero {z:.4g}, predict the mean {m:.4g}")
    return f"Trivial baselines ({'; '.join(parts)})." if parts else ""


def write_html_report(
    out_html: str | Path,
    summary_csv: str | Path,
    runs_csv: str | Path,
    cross_eval_csv: str | Path | None = None,
    findings_md: str | Path | None = None,
    ablation_png: str | Path | None = None,
    sweep_png: str | Path | None = None,
    curves: Iterable[str | Path] | Mapping[str, str | Path] = (),
    title: str = "ired experiment report",
) -> Path:
    """Write the HTML report from the pipeline's files (reads tables and images, diagnoses nothing).

    ``summary_csv`` / ``runs_csv``: :func:`ired.summary.write_summary`'s tables; ``cross_eval_csv``: the cross-eval
    table (aggregated per experiment here); ``findings_md``: :mod:`ired.findings`' block, rendered as HTML with
    its verdict first; ``ablation_png`` / ``sweep_png``: embedded; ``curves``: per-run training-curve PNGs, named
    ``<run>.png`` (or a mapping run -> PNG), linked relative to the page, never embedded.
    """
    import pandas as pd

    from ired.plots import STATUS_COLOURS

    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = _read_csv(summary_csv)
    runs = _read_csv(runs_csv)
    cross = read_cross_eval(cross_eval_csv)
    curve_map = dict(curves) if isinstance(curves, Mapping) else {Path(p).stem: p for p in curves}
    verdict, findings = _findings_html(findings_md)
    statuses = [s for s in STATUS_COLOURS if s in set(summary.get("status", pd.Series(dtype=str)))
                or s in set(runs.get("status", pd.Series(dtype=str)))]
    n_runs, n_exp = len(runs), len(summary)
    body = [
        f"<h1>{_esc(title)}</h1>",
        f'<p class="muted">Generated {_dt.datetime.now().isoformat(timespec="seconds")} by ired.report from '
        + ", ".join(f"<code>{_esc(_rel(p, out.parent))}</code>" for p in (summary_csv, runs_csv, cross_eval_csv)
                    if p is not None)
        + f": {n_exp} experiment(s), {n_runs} run(s). "
        "Unsuffixed evaluation columns are EMA weights, <code>_raw</code> the raw weights; mean ± std over seeds. "
        "Sections: <a href=\"#findings\">findings</a> · <a href=\"#ablation\">ablation</a> · "
        "<a href=\"#cross-evaluation\">cross-evaluation</a> · <a href=\"#sweep\">inference sweep</a> · "
        "<a href=\"#experiments\">experiments</a> · <a href=\"#runs\">runs</a>.</p>",
        f'<div class="verdict">{verdict}</div>' if verdict else "",
        '<h2 id="findings">Findings</h2>',
        f'<div class="findings">{findings}</div>' if findings else "<p>No findings file.</p>",
        '<h2 id="ablation">Ablation</h2>',
        _embed(ablation_png, "ablation bar chart"),
        f'<p class="muted">{_esc(_baselines_line(summary))}</p>',
        '<h2 id="cross-evaluation">Cross-evaluation per experiment</h2>',
        '<p class="muted">Each cell: mean ± std over the seeds of the experiment, each seed\'s '
        f"{' / '.join(PREFERRED_MILESTONES)} checkpoint (hover for the count); task_mse, except the denoise "
        "protocol's denoise_mse. Colour: log scale per column, green = lowest of the column, red = highest. Every "
        "checkpoint and milestone is in cross_eval.csv.</p>",
        _cross_eval_table(cross_eval_by_experiment(cross, runs)),
        '<h2 id="sweep">Inference-steps sweep</h2>',
        _embed(sweep_png, "inference sweep") if sweep_png is not None else "<p>No inference sweep plot.</p>",
        _sweep_rows(summary),
        '<h2 id="experiments">Experiments</h2>',
        '<p class="filters">Filter: <label>experiment <input id="filter-experiment" type="search" '
        'placeholder="e.g. q20"></label> <label>status <select id="filter-status"><option value="">any</option>'
        + "".join(f'<option value="{_esc(s)}">{_esc(s)}</option>' for s in statuses)
        + '</select></label> <span class="muted">(applies to every table; click a column header to sort; hover '
        "a shortened cell for its full text)</span></p>",
        _summary_rows(summary) if n_exp else "<p>No experiments.</p>",
        '<h2 id="runs">Runs</h2>',
        _runs_rows(runs, curve_map, out.parent) if n_runs else "<p>No runs.</p>",
    ]
    doc = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>\n'
        + "\n".join(b for b in body if b) + f"\n<script>{_JS}</script>\n</body></html>\n"
    )
    out.write_text(doc)
    return out


def _read_csv(path: str | Path | None) -> "pd.DataFrame":
    import pandas as pd

    if path is None or not Path(path).is_file() or not Path(path).stat().st_size:
        return pd.DataFrame()
    return pd.read_csv(path)


def build_report(
    runs: Iterable[RunSpec | Mapping[str, Any]],
    cross_eval_csv: str | Path | None,
    out_dir: str | Path = "results",
    sweep_csv: str | Path | None = None,
) -> dict[str, Path]:
    """Everything from existing run folders, no training: summary.csv/.md, runs.csv, findings.md, the plots
    (ablation, cross-eval, each run's curves, the sweep when given) and report.html under ``out_dir``. Returns
    the written paths by name."""
    from ired import plots
    from ired.findings import write_findings

    runs = list(runs)
    out = Path(out_dir)
    paths = {
        "summary_csv": out / "summary.csv",
        "summary_md": out / "summary.md",
        "runs_csv": out / "runs.csv",
        "findings_md": out / "findings.md",
        "ablation_png": out / "plots" / "ablation.png",
        "cross_eval_png": out / "plots" / "cross_eval.png",
        "report_html": out / "report.html",
    }
    summary = write_summary(runs, cross_eval_csv, paths["summary_csv"], paths["summary_md"], paths["runs_csv"],
                            sweep_csv=sweep_csv)
    write_findings(paths["summary_csv"], paths["findings_md"])
    plots.plot_ablation(summary, paths["ablation_png"], paths["runs_csv"])
    plots.plot_cross_eval_heatmap(read_cross_eval(cross_eval_csv), paths["cross_eval_png"], paths["runs_csv"])
    curves = []
    for spec in load_runs(runs, cross_eval_csv):
        png = out / "plots" / "curves" / f"{spec.spec.run_id}.png"
        plots.plot_training_curves(spec.rows, png, f"{spec.spec.run_id}: {spec.run_status}", spec.findings,
                                   spec.baselines)
        curves.append(png)
    if sweep_csv is not None:
        paths["sweep_png"] = plots.plot_inference_sweep(sweep_csv, out / "plots" / "inference_sweep.png")
    write_html_report(paths["report_html"], paths["summary_csv"], paths["runs_csv"], cross_eval_csv,
                      paths["findings_md"], paths["ablation_png"], paths.get("sweep_png"), curves)
    return paths
