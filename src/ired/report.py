"""The HTML report: one page from the pipeline's tables and PNGs that reads top-down like a paper.

:func:`write_html_report` reads ``summary.csv``, ``runs.csv`` (the diagnosis of every run, written once by the
summary), ``cross_eval.csv`` and ``findings.md`` and the PNGs its rule declares, and writes: the verdict and the
findings (Markdown rendered as HTML), then each registered plot (:data:`ired.plots.PLOTS`) in its section with its
caption (the ablation chart, the parameter sweeps, the inference sweep), the cross-evaluation per experiment (an HTML
table, one colour scale per column), and the experiment and run tables (columns from :mod:`ired.columns`,
sortable and filterable with a few lines of inline JavaScript). The per-experiment plots are embedded (base64
PNG); each run's plots (training curves) are linked as files (a lazy image in a closed ``<details>``), so the
page grows with the number of experiments, not of runs, and needs nothing from the network. It diagnoses
nothing and re-reads no run folder.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.columns import (
    MEAN_STD,
    NUMBER,
    RUN_COLUMNS,
    SEEDS,
    STATUS,
    SUMMARY_COLUMNS,
    SWEEP,
    Column,
    baseline_of,
    mean_of,
    std_of,
    sweep_keys,
)
from ired.cross_eval import PREFERRED_MILESTONES, cross_eval_by_experiment, read_cross_eval
from ired.formatting import finite, g, pm, to_float
from ired.plots import PLOTS, REPORT_SECTIONS, STATUS_COLOURS, Plot

if TYPE_CHECKING:
    import pandas as pd

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
"""Characters of a long text cell shown in a table when its column says no other length; the full text is on
hover."""


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _embed(path: str | Path, alt: str) -> str:
    if not Path(path).is_file():
        return f'<p class="muted">{_esc(alt)}: no image ({_esc(path)} missing).</p>'
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _rst_text(caption: str) -> str:
    """A plot caption (reStructuredText: ````code````) as HTML."""
    return re.sub(r"``(.+?)``", r"<code>\1</code>", _esc(caption))


def _status_badge(status: Any, detail: Any = None) -> str:
    status = str(status) if _present(status) else "unknown"
    colour = STATUS_COLOURS.get(status, "#495057")
    title = f' title="{_esc(detail)}"' if _present(detail) else ""
    return f'<span class="st" style="background:{colour}"{title}>{_esc(status)}</span>'


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v) != ""


def _num_cell(mean: Any, std: Any = None, digits: int = 4, title: str = "") -> str:
    m = to_float(mean)
    tip = f' title="{_esc(title)}"' if title else ""
    if not math.isfinite(m):
        return f'<td{tip} class="num" data-v="">n/a</td>'
    text = str(int(m)) if std is None and m.is_integer() and abs(m) < 1e15 else pm(m, to_float(std), digits)
    return f'<td{tip} class="num" data-v="{m!r}">{_esc(text)}</td>'


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
        vals = [to_float(r["mean"]) for row in cells.values() if (r := row.get(c)) is not None]
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
            m = to_float(r["mean"])
            tip = f"{c[2]} on {c[1]} under protocol {c[0]}: mean ± std over {r['n']} checkpoint(s) ({r['milestone']})"
            tds.append(f'<td class="num" data-v="{m!r}" style="background:{_colour(m, *scale[c])}" '
                       f'title="{_esc(tip)}">{_esc(pm(m, to_float(r["std"]), 3, 1))}</td>')
        rows.append(f'<tr data-experiment="{_esc(exp)}" data-status="">{"".join(tds)}</tr>')
    return _sortable("cross-eval", head, rows)


# --------------------------------------------------------------------------------------------------
# The experiment and run tables, from the column spec
# --------------------------------------------------------------------------------------------------


def _metric_title(c: Column, r: Mapping[str, Any], names: set[str]) -> str:
    """Hover text of a metric cell: what it is and, when the table has them, the raw weights' numbers."""
    raw = f"{c.name}_raw"
    if c.fmt == MEAN_STD and mean_of(raw) in names and finite(m := to_float(r.get(mean_of(raw)))):
        sd = to_float(r.get(std_of(raw)))
        return f"{c.name}: {c.weights} weights; raw weights {g(m)}" + (f" ± {sd:.2g}" if finite(sd) else "")
    return f"{c.name}: {c.weights} weights" + (", mean ± std over seeds" if c.fmt == MEAN_STD else "")


def _cell(c: Column, r: Mapping[str, Any], names: set[str], first: bool) -> str:
    """One HTML cell of a spec column."""
    v = r.get(c.name)
    if first:
        return f'<td class="nowrap"><code>{_esc(v)}</code></td>'
    if c.fmt == STATUS:
        return f'<td data-v="{_esc(v)}">{_status_badge(v, r.get("status_detail"))}</td>'
    if c.fmt == MEAN_STD:
        return _num_cell(r.get(mean_of(c.name)), r.get(std_of(c.name)), c.digits, _metric_title(c, r, names))
    if c.fmt == SEEDS:
        n = r.get("n_seeds")
        return f'<td class="num" data-v="{to_float(n)!r}" title="seeds {_esc(v)}">{_esc(n)}</td>'
    if c.fmt == NUMBER:
        return _num_cell(v, digits=c.digits, title=_metric_title(c, r, names) if c.metric else "")
    return _text_cell(v, c.short or _SHORT)


def _spec_table(table_id: str, columns: Sequence[Column], table: "pd.DataFrame",
                extra: Mapping[str, Any] | None = None) -> str:
    """The HTML table of a spec's ``html`` columns (the sweep columns after the first), one row per table row;
    ``extra``: a last column (header -> function of the row giving its ``<td>``)."""
    shown = [c for c in columns if c.html is not None]
    keys = [SWEEP, *sweep_keys(table.columns)] if SWEEP in table.columns else []
    head = [str(shown[0].html), *keys, *(str(c.html) for c in shown[1:]), *(extra or {})]
    titles = {str(c.html): _metric_title(c, {}, set()) + " (hover a cell for more)" for c in shown if c.metric}
    names = set(table.columns)
    rows = []
    for r in table.to_dict("records"):
        sweep = r.get(SWEEP) if _present(r.get(SWEEP)) else ""
        tds = [_cell(shown[0], r, names, True), *(_num_cell(r.get(k)) if finite(r.get(k)) else _text_cell(r.get(k))
                                                  for k in keys),
               *(_cell(c, r, names, False) for c in shown[1:]), *(f(r) for f in (extra or {}).values())]
        rows.append(f'<tr data-experiment="{_esc(" ".join(str(x) for x in (r.get("experiment"), sweep) if x))}" '
                    f'data-status="{_esc(r.get("status"))}">' + "".join(tds) + "</tr>")
    return _sortable(table_id, head, rows, titles)


def _sweep_rows(summary: "pd.DataFrame") -> str:
    """The inference-sweep headline numbers per experiment (``<split>_<metric>@K=<k>``, mean ± std)."""
    from ired.landscape import SWEEP_DEFINITIONS, headline_columns

    cols = headline_columns(summary.columns) if len(summary) else []
    if not cols:
        return ""
    titles = {c: next((f"{m}: {d}" for m, d in SWEEP_DEFINITIONS.items() if m in c), c) for c in cols}
    rows = [f'<tr data-experiment="{_esc(r.get("experiment"))}" data-status="{_esc(r.get("status"))}">'
            f"<td><code>{_esc(r.get('experiment'))}</code></td>"
            + "".join(_num_cell(r.get(mean_of(c)), r.get(std_of(c))) for c in cols) + "</tr>"
            for r in summary.to_dict("records")]
    return _sortable("sweep-table", ["experiment", *cols], rows, titles)


def _rel(path: str | Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path).absolute(), base.absolute())).as_posix()


def _run_files(run_plots: Mapping[str, Mapping[str, str | Path]], base: Path) -> Any:
    """The run table's last cell: each per-run plot (a lazy image in a closed ``<details>``) and the run's files."""
    def cell(r: Mapping[str, Any]) -> str:
        run = str(r.get("run"))
        links = []
        for name, pngs in run_plots.items():
            png = pngs.get(run)
            if png is not None:
                src = _esc(_rel(png, base))
                links.append(f'<details><summary>{_esc(name)}</summary><a href="{src}"><img loading="lazy" '
                             f'src="{src}" alt="{_esc(name)} of {_esc(run)}" width="750"></a></details>')
        if _present(r.get("run_dir")):
            d = _rel(str(r["run_dir"]), base)
            links.append('<span class="links">' + " · ".join(
                f'<a href="{_esc(d)}/{f}" title="{_esc(d)}/{f}">{label}</a>'
                for f, label in (("resolved_config.yaml", "config"), ("metrics.jsonl", "metrics"),
                                 ("status.json", "status"))) + "</span>")
        return f"<td>{''.join(links)}</td>"

    return cell


def _runs_table(runs: "pd.DataFrame", run_plots: Mapping[str, Mapping[str, str | Path]], base: Path) -> str:
    """The run table; a run's key finding is followed by its finding kinds."""
    runs = runs.copy()
    if "findings" in runs.columns and "key_finding" in runs.columns:
        kinds = runs["findings"].map(lambda k: f" (findings: {k})" if _present(k) else "")
        runs["key_finding"] = runs["key_finding"].fillna("").astype(str) + kinds
    return _spec_table("runs", RUN_COLUMNS, runs, {"files": _run_files(run_plots, base)})


def _baselines_line(summary: "pd.DataFrame") -> str:
    if not len(summary):
        return ""
    r = summary.iloc[0].to_dict()
    parts = []
    for split in dict.fromkeys(c.split for c in SUMMARY_COLUMNS if c.fmt == "baselines"):
        z = to_float(r.get(baseline_of(str(split), "predict_zero_mse")))
        m = to_float(r.get(baseline_of(str(split), "predict_mean_mse")))
        if math.isfinite(z) or math.isfinite(m):
            parts.append(f"{split}: predict zero {g(z)}, predict the mean {g(m)}")
    return f"Trivial baselines ({'; '.join(parts)})." if parts else ""


# --------------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------------


def _plots_by_section(plots: Iterable[str | Path] | Mapping[str, str | Path]) -> dict[str, list[tuple[Plot, Path]]]:
    """The declared per-experiment PNGs (``plots/<name>.png``, or a mapping name -> PNG) by report section."""
    given = dict(plots) if isinstance(plots, Mapping) else {Path(p).stem: p for p in plots}
    registry = {p.name: p for p in PLOTS}
    out: dict[str, list[tuple[Plot, Path]]] = {}
    for name, path in given.items():
        plot = registry.get(name)
        if plot is None or plot.per_run:
            raise ValueError(f"{path}: not a registered per-experiment plot (ired.plots.PLOTS: "
                             f"{', '.join(p.name for p in PLOTS if not p.per_run)})")
        if plot.section is not None:
            out.setdefault(plot.section, []).append((plot, Path(path)))
    return out


def _run_plots(run_plots: Iterable[str | Path]) -> dict[str, dict[str, Path]]:
    """Per-run PNGs ``plots/<name>/<run>.png`` as ``{name: {run: path}}`` (registry order)."""
    registry = {p.name: p for p in PLOTS}
    out: dict[str, dict[str, Path]] = {p.name: {} for p in PLOTS if p.per_run}
    for path in map(Path, run_plots):
        plot = registry.get(path.parent.name)
        if plot is None or not plot.per_run:
            raise ValueError(f"{path}: not a registered per-run plot (plots/<name>/<run>.png, name one of "
                             f"{', '.join(out)})")
        out[plot.name][path.stem] = path
    return {name: pngs for name, pngs in out.items() if pngs}


def _figures(section: str, by_section: Mapping[str, list[tuple[Plot, Path]]]) -> str:
    return "".join(f'<figure id="plot-{_esc(plot.name)}">{_embed(path, plot.name)}'
                   f'<figcaption class="muted">{_rst_text(plot.caption)}</figcaption></figure>'
                   for plot, path in by_section.get(section, []))


def write_html_report(
    out_html: str | Path,
    summary_csv: str | Path,
    runs_csv: str | Path,
    cross_eval_csv: str | Path | None = None,
    findings_md: str | Path | None = None,
    plots: Iterable[str | Path] | Mapping[str, str | Path] = (),
    run_plots: Iterable[str | Path] = (),
    title: str = "ired experiment report",
) -> Path:
    """Write the HTML report from the pipeline's files (reads tables and images, diagnoses nothing).

    ``summary_csv`` / ``runs_csv``: :func:`ired.summary.write_summary`'s tables; ``cross_eval_csv``: the cross-eval
    table (aggregated per experiment here); ``findings_md``: :mod:`ired.findings`' block, rendered as HTML with
    its verdict first; ``plots``: the per-experiment PNGs of :data:`ired.plots.PLOTS` (``plots/<name>.png``),
    each embedded in its section with its caption; ``run_plots``: the per-run PNGs (``plots/<name>/<run>.png``),
    linked relative to the page from the run table, never embedded.
    """
    import pandas as pd

    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = _read_csv(summary_csv)
    runs = _read_csv(runs_csv)
    cross = read_cross_eval(cross_eval_csv)
    by_section = _plots_by_section(plots)
    per_run = _run_plots(run_plots)
    verdict, findings = _findings_html(findings_md)
    statuses = [s for s in STATUS_COLOURS if s in set(summary.get("status", pd.Series(dtype=str)))
                or s in set(runs.get("status", pd.Series(dtype=str)))]
    has_sweeps = SWEEP in summary.columns and summary[SWEEP].notna().any()
    n_runs, n_exp = len(runs), len(summary)
    sections = {
        "ablation": ('<h2 id="ablation">Ablation</h2>',
                     _figures("ablation", by_section) or "<p>No ablation plot.</p>",
                     f'<p class="muted">{_esc(_baselines_line(summary))}</p>'),
        "sweeps": ('<h2 id="sweeps">Parameter sweeps</h2>', _figures("sweeps", by_section)) if has_sweeps else (),
        "cross-evaluation": (
            '<h2 id="cross-evaluation">Cross-evaluation per experiment</h2>',
            '<p class="muted">Each cell: mean ± std over the seeds of the experiment, each seed\'s '
            f"{' / '.join(PREFERRED_MILESTONES)} checkpoint (hover for the count); task_mse, except the denoise "
            "protocol's denoise_mse. Colour: log scale per column, green = lowest of the column, red = highest. "
            "Every checkpoint and milestone is in cross_eval.csv.</p>",
            _cross_eval_table(cross_eval_by_experiment(cross, runs)),
            _figures("cross-evaluation", by_section)),
        "inference-sweep": ('<h2 id="sweep">Inference-steps sweep</h2>',
                            _figures("inference-sweep", by_section) or "<p>No inference sweep plot.</p>",
                            _sweep_rows(summary)),
    }
    assert list(sections) == list(REPORT_SECTIONS)
    links = [("findings", "findings"), ("ablation", "ablation"), *([("sweeps", "sweeps")] if has_sweeps else []),
             ("cross-evaluation", "cross-evaluation"), ("sweep", "inference sweep"), ("experiments", "experiments"),
             ("runs", "runs")]
    body = [
        f"<h1>{_esc(title)}</h1>",
        f'<p class="muted">Generated {_dt.datetime.now().isoformat(timespec="seconds")} by ired.report from '
        + ", ".join(f"<code>{_esc(_rel(p, out.parent))}</code>" for p in (summary_csv, runs_csv, cross_eval_csv)
                    if p is not None)
        + f": {n_exp} experiment(s), {n_runs} run(s). "
        "Unsuffixed evaluation columns are EMA weights, <code>_raw</code> the raw weights; mean ± std over seeds. "
        "Sections: " + " · ".join(f'<a href="#{a}">{t}</a>' for a, t in links) + ".</p>",
        f'<div class="verdict">{verdict}</div>' if verdict else "",
        '<h2 id="findings">Findings</h2>',
        f'<div class="findings">{findings}</div>' if findings else "<p>No findings file.</p>",
        *(part for section in sections.values() for part in section),
        '<h2 id="experiments">Experiments</h2>',
        '<p class="filters">Filter: <label>experiment <input id="filter-experiment" type="search" '
        'placeholder="e.g. q20"></label> <label>status <select id="filter-status"><option value="">any</option>'
        + "".join(f'<option value="{_esc(s)}">{_esc(s)}</option>' for s in statuses)
        + '</select></label> <span class="muted">(applies to every table; click a column header to sort; hover '
        "a shortened cell for its full text)</span></p>",
        _spec_table("summary", SUMMARY_COLUMNS, summary) if n_exp else "<p>No experiments.</p>",
        '<h2 id="runs">Runs</h2>',
        _runs_table(runs, per_run, out.parent) if n_runs else "<p>No runs.</p>",
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
