"""The HTML report: one page from the pipeline's tables and PNGs that reads top-down like a paper.

:func:`write_html_report` reads ``summary.csv``, ``runs.csv`` (the diagnosis of every run, written once by the summary),
``cross_eval.csv`` and ``findings.md`` and the PNGs its rule declares, and writes: the verdict and the findings
(Markdown rendered as HTML), then each registered plot (:data:`ired.reporting.plots.PLOTS`) in its section with its
caption (the ablation chart, the parameter sweeps, the inference sweep), the cross-evaluation per experiment (an HTML
table, one colour scale per column), and the experiment and run tables (columns from :mod:`ired.reporting.columns`,
sortable and filterable with a few lines of inline JavaScript). The page is the jinja2 template
``ired/reporting/templates/report.html.j2`` (its CSS and script, ``report.css`` and ``report.js``, included inline);
this module builds the tables and hands them to it. The per-experiment plots are embedded (base64 PNG); each run's plots
(training curves) are linked as files (a lazy image in a closed ``<details>``), so the page grows with the number of
experiments, not of runs, and needs nothing from the network. It diagnoses nothing and re-reads no run folder.
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

from ired.reporting.columns import (
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
from ired.reporting.cross_eval import PREFERRED_MILESTONES, cross_eval_by_experiment, read_cross_eval
from ired.reporting.figure_canvas import STATUS_COLOURS
from ired.reporting.formatting import finite, g, pm, to_float
from ired.reporting.plots import PLOTS, REPORT_SECTIONS, Plot
from ired.runs.atomic import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

TEMPLATE = "report.html.j2"
"""The page's template in ``ired/reporting/templates/`` (with ``report.css`` and ``report.js``, included inline)."""


_SHORT = 70
"""Characters of a long text cell shown in a table when its column says no other length; the full text is on
hover."""


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


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


def _cross_eval_table(agg: pd.DataFrame) -> str:
    """Experiment x weights rows, protocol x split columns; one log colour scale per column."""
    if not len(agg):
        return "<p>No cross-evaluation results.</p>"
    cols = list(dict.fromkeys(zip(agg["protocol"], agg["split"], agg["metric"], strict=True)))
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


def _spec_table(table_id: str, columns: Sequence[Column], table: pd.DataFrame,
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


def _sweep_rows(summary: pd.DataFrame) -> str:
    """The inference-sweep headline numbers per experiment (``<split>_<metric>@K=<k>``, mean ± std)."""
    from ired.reporting.inference_sweep import SWEEP_DEFINITIONS, headline_columns

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
    """The run table's last cell: each per-run plot (a lazy image in a closed ``<details>``) and the run's files:
    config, metrics, status, its train.log and its job logs (the dispatcher's folder; ``ired logs RUN`` lists
    every log of a run, the pipeline's included)."""
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
                                 ("status.json", "status"), ("train.log", "train log"),
                                 ("dispatch/", "job logs"))) + "</span>")
        return f"<td>{''.join(links)}</td>"

    return cell


def _runs_table(runs: pd.DataFrame, run_plots: Mapping[str, Mapping[str, str | Path]], base: Path) -> str:
    """The run table; a run's key finding is followed by its finding kinds."""
    runs = runs.copy()
    if "findings" in runs.columns and "key_finding" in runs.columns:
        kinds = runs["findings"].map(lambda k: f" (findings: {k})" if _present(k) else "")
        runs["key_finding"] = runs["key_finding"].fillna("").astype(str) + kinds
    return _spec_table("runs", RUN_COLUMNS, runs, {"files": _run_files(run_plots, base)})


def _baselines_line(summary: pd.DataFrame) -> str:
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
            raise ValueError(f"{path}: not a registered per-experiment plot (ired.reporting.plots.PLOTS: "
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


def _figures(section: str, by_section: Mapping[str, list[tuple[Plot, Path]]]) -> list[dict[str, str]]:
    """The template's figures of a section: name, the PNG as base64 (empty when the file is missing), caption."""
    return [{"name": plot.name, "path": str(path), "caption": _rst_text(plot.caption),
             "data": base64.b64encode(path.read_bytes()).decode() if path.is_file() else ""}
            for plot, path in by_section.get(section, [])]


def _template() -> Any:
    """The report's jinja2 template (package data of ``ired``); variables escaped unless marked ``|safe``."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("ired.reporting", "templates"), autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    return env.get_template(TEMPLATE)


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

    ``summary_csv`` / ``runs_csv``: :func:`ired.reporting.summary.write_summary`'s tables; ``cross_eval_csv``: the
    cross-eval table (aggregated per experiment here); ``findings_md``: :mod:`ired.reporting.findings`' block, rendered
    as HTML with its verdict first; ``plots``: the per-experiment PNGs of :data:`ired.reporting.plots.PLOTS`
    (``plots/<name>.png``), each embedded in its section with its caption; ``run_plots``: the per-run PNGs
    (``plots/<name>/<run>.png``), linked relative to the page from the run table, never embedded.
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
    links = [("findings", "findings"), ("ablation", "ablation"), *([("sweeps", "sweeps")] if has_sweeps else []),
             ("cross-evaluation", "cross-evaluation"), ("sweep", "inference sweep"), ("experiments", "experiments"),
             ("runs", "runs")]
    page = _template().render(
        title=title,
        generated=_dt.datetime.now().isoformat(timespec="seconds"),
        sources=[_rel(p, out.parent) for p in (summary_csv, runs_csv, cross_eval_csv) if p is not None],
        n_experiments=n_exp,
        n_runs=n_runs,
        links=links,
        verdict=verdict,
        findings=findings,
        plots={section: _figures(section, by_section) for section in REPORT_SECTIONS},
        baselines=_baselines_line(summary),
        has_sweeps=has_sweeps,
        milestones=" / ".join(PREFERRED_MILESTONES),
        cross_eval_table=_cross_eval_table(cross_eval_by_experiment(cross, runs)),
        sweep_table=_sweep_rows(summary),
        statuses=statuses,
        summary_table=_spec_table("summary", SUMMARY_COLUMNS, summary) if n_exp else "",
        runs_table=_runs_table(runs, per_run, out.parent) if n_runs else "",
    )
    write_text_atomic(out, page)
    return out


def _read_csv(path: str | Path | None) -> pd.DataFrame:
    import pandas as pd

    if path is None or not Path(path).is_file() or not Path(path).stat().st_size:
        return pd.DataFrame()
    return pd.read_csv(path)
