"""The columns of the summary tables, in one place: name, header, format and the metric each one summarises.

:data:`SUMMARY_COLUMNS` (one row per experiment: ``summary.csv``, the table of ``summary.md``, the HTML report's
experiment table and the axes of the ablation plot) and :data:`RUN_COLUMNS` (one row per run: ``runs.csv``, the
"Runs" table of ``summary.md``, the HTML run table) are read in order by every writer:

- the CSV columns of a :class:`Column` are :attr:`Column.csv` (a ``mean_std`` column fills ``<name>_mean``,
  ``<name>_std`` and ``<name>_n``);
- ``summary.md`` shows the columns with a ``header``, each cell written by :func:`markdown_cell`;
- the HTML report shows the columns with an ``html`` header;
- the ablation plot draws one panel per column with ``ablation=True``.

A column that summarises a logged metric names it in ``metric`` (checked against :mod:`ired.core.metrics`), so that
the summary computes it without more code (docs/ARCHITECTURE.md, "Adding a summary column").

A study with parameter sweeps has, right after ``experiment``, the columns ``sweep`` (the sweep's name) and one
per swept key (the dotted config key, e.g. ``train.lr``): :func:`sweep_keys` finds them in a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ired.core.metrics import DEFINITIONS
from ired.reporting.formatting import num, pm

TEXT = "text"
"""A word or a sentence, written as it is."""
NUMBER = "number"
"""A number (:func:`ired.reporting.formatting.num`: an int as it is, a float with ``digits`` significant digits)."""
MEAN_STD = "mean_std"
"""A metric over seeds: ``<name>_mean``, ``<name>_std`` (sample std, NaN for one seed), ``<name>_n``; shown as
``mean ± std``."""
STATUS = "status"
"""A status (shown with its ``status_detail`` in the Markdown, as a coloured badge in the HTML)."""
BASELINES = "baselines"
"""The predict-mean baseline of a split, shown beside its predict-zero one: ``zero / mean``."""
SEEDS = "seeds"
"""The seeds of an experiment, shown with their number: ``3 (0 1 2)``."""
KINDS = "kinds"
"""Finding kinds joined by ``;`` (``-`` when there is none)."""
FORMATS: tuple[str, ...] = (TEXT, NUMBER, MEAN_STD, STATUS, BASELINES, SEEDS, KINDS)

SWEEP = "sweep"
"""The column naming a run's (or an experiment's) parameter sweep; its swept keys follow it."""


@dataclass(frozen=True)
class Column:
    """One column of a summary table."""

    name: str
    """The column's name in the CSV (``mean_std``: the stem of its three columns)."""
    header: str | None = None
    """Its header in ``summary.md``; None: in the CSV only."""
    fmt: str = TEXT
    """How a cell is written: one of :data:`FORMATS`."""
    metric: str | None = None
    """The logged metric it summarises (a column of :mod:`ired.core.metrics`): the last evaluated value of each run."""
    html: str | None = None
    """Its header in the HTML report's table; None: not shown there."""
    digits: int = 4
    """Significant digits of a number (the std of ``mean ± std`` has 2)."""
    short: int | None = None
    """HTML only: a longer text is shortened to this many characters (full text on hover)."""
    split: str | None = None
    """The evaluation split it belongs to: whose trivial baselines go with it (``baselines``, ablation panels)."""
    ablation: bool = False
    """A panel of the ablation plot (a ``mean_std`` column)."""

    @property
    def csv(self) -> tuple[str, ...]:
        """The CSV columns this column fills, in order."""
        if self.fmt == MEAN_STD:
            return (mean_of(self.name), std_of(self.name), n_of(self.name))
        return (self.name,)

    @property
    def weights(self) -> str:
        """``raw`` for a metric of the raw weights (``_raw``), else ``EMA``."""
        return "raw" if (self.metric or self.name).endswith("_raw") else "EMA"


def mean_of(name: str) -> str:
    """The CSV column of a metric's mean over seeds: ``val_task_mse_mean``."""
    return f"{name}_mean"


def std_of(name: str) -> str:
    """The CSV column of a metric's sample std over seeds: ``val_task_mse_std``."""
    return f"{name}_std"


def n_of(name: str) -> str:
    """The CSV column of a metric's number of seeds with a value: ``val_task_mse_n``."""
    return f"{name}_n"


def baseline_of(split: str, kind: str) -> str:
    """The CSV column of a trivial baseline: ``val_predict_mean_mse`` (``kind``: ``predict_zero_mse`` or
    ``predict_mean_mse``)."""
    return f"{split}_{kind}"


def _baselines(split: str, shown: bool) -> tuple[Column, Column]:
    """The two trivial baselines of a split; ``shown``: one ``zero / mean`` cell in ``summary.md``."""
    return (Column(baseline_of(split, "predict_zero_mse"), fmt=NUMBER, split=split),
            Column(baseline_of(split, "predict_mean_mse"), f"{split}: predict 0 / mean" if shown else None,
                   BASELINES, split=split))


SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("experiment", "experiment", html="experiment"),
    Column("description", "description", html="description", short=28),
    Column("head", "head"),
    Column("objective", "objective"),
    Column("negatives", "negatives"),
    Column("status", "status", STATUS, html="status"),
    Column("status_detail"),
    Column("key_finding", "key finding", html="key finding", short=44),
    Column("weights"),
    Column("val_task_mse", "val_task_mse (EMA)", MEAN_STD, metric="val_task_mse", html="val_task_mse",
           split="val", ablation=True),
    Column("val_harder_task_mse", "val_harder_task_mse (EMA)", MEAN_STD, metric="val_harder_task_mse",
           html="val_harder_task_mse", split="val_harder", ablation=True),
    Column("val_task_mse_raw", "val_task_mse_raw", MEAN_STD, metric="val_task_mse_raw", split="val"),
    Column("val_harder_task_mse_raw", "val_harder_task_mse_raw", MEAN_STD, metric="val_harder_task_mse_raw",
           split="val_harder"),
    *_baselines("val", shown=True),
    *_baselines("val_harder", shown=True),
    Column("steps", "steps", NUMBER, html="steps"),
    Column("wall_time_s", "wall time (s)", NUMBER, html="wall (s)", digits=3),
    Column("attempts", "attempts", NUMBER, html="attempts"),
    Column("n_seeds", fmt=NUMBER),
    Column("seeds", "seeds", SEEDS, html="seeds"),
    Column("findings", fmt=KINDS),
)
"""The summary table (``summary.csv``, ``summary.md``, the HTML experiment table, the ablation plot), one row per
experiment; the inference-sweep columns ``<split>_<metric>@K=<k>_mean`` / ``_std``
(:mod:`ired.reporting.inference_sweep`) follow when the study has them."""

RUN_COLUMNS: tuple[Column, ...] = (
    Column("experiment"),
    Column("run", "run", html="run"),
    Column("seed", "seed", NUMBER, html="seed"),
    Column("run_dir"),
    Column("status", "status", STATUS, html="status"),
    Column("key_finding", html="key finding", short=60),
    Column("findings", "findings", KINDS),
    Column("finding_steps"),
    Column("val_task_mse", "val_task_mse", NUMBER, metric="val_task_mse", html="val_task_mse", split="val"),
    Column("val_harder_task_mse", fmt=NUMBER, metric="val_harder_task_mse", html="val_harder_task_mse",
           split="val_harder"),
    Column("val_task_mse_raw", "val_task_mse_raw", NUMBER, metric="val_task_mse_raw", split="val"),
    Column("val_harder_task_mse_raw", fmt=NUMBER, metric="val_harder_task_mse_raw", split="val_harder"),
    Column("eval_step", fmt=NUMBER),
    *_baselines("val", shown=False),
    *_baselines("val_harder", shown=False),
    Column("steps", "steps", NUMBER, html="steps"),
    Column("wall_time_s", fmt=NUMBER, html="wall time (s)", digits=3),
    Column("attempts", "attempts", NUMBER, html="attempts"),
)
"""The per-run table (``runs.csv``, the "Runs" table of ``summary.md``, the HTML run table), one row per run: the
run's diagnosis (``status``, ``key_finding``, ``findings`` and ``finding_steps``: ``kind@step`` of each finding,
what the training-curve plot marks) and its last evaluated metrics. Plots and the report read it; nothing
diagnoses a run twice."""

ABLATION_COLUMNS: tuple[Column, ...] = tuple(c for c in SUMMARY_COLUMNS if c.ablation)
"""The panels of the ablation plot, in order."""


def _check(table: str, columns: Sequence[Column]) -> None:
    """A spec that cannot be written is a programming error: fail at import, naming the column."""
    seen: set[str] = set()
    for c in columns:
        where = f"ired.reporting.columns.{table}: column {c.name!r}"
        if c.fmt not in FORMATS:
            raise ValueError(f"{where}: format {c.fmt!r} is not one of {', '.join(FORMATS)}")
        if c.metric is not None and c.metric not in DEFINITIONS:
            raise ValueError(f"{where}: metric {c.metric!r} is not a column of ired.core.metrics")
        if c.fmt == MEAN_STD and c.metric is None:
            raise ValueError(f"{where}: a {MEAN_STD} column needs the metric it summarises")
        if (c.fmt == BASELINES or c.ablation) and c.split is None:
            raise ValueError(f"{where}: a {c.fmt} or ablation column needs its split")
        if seen & set(c.csv):
            raise ValueError(f"{where}: CSV column(s) {sorted(seen & set(c.csv))} twice")
        seen |= set(c.csv)


_check("SUMMARY_COLUMNS", SUMMARY_COLUMNS)
_check("RUN_COLUMNS", RUN_COLUMNS)


def csv_columns(columns: Iterable[Column]) -> list[str]:
    """Every CSV column of a spec, in order."""
    return [name for c in columns for name in c.csv]


def markdown_columns(columns: Iterable[Column]) -> list[Column]:
    """The columns ``summary.md`` shows, in order."""
    return [c for c in columns if c.header is not None]


def markdown_cell(c: Column, row: Mapping[str, Any]) -> str:
    """One cell of ``summary.md`` (before Markdown escaping) from a row holding the CSV columns."""
    if c.fmt == MEAN_STD:
        return pm(row[mean_of(c.name)], row[std_of(c.name)], c.digits)
    if c.fmt == NUMBER:
        return num(row[c.name], c.digits)
    if c.fmt == STATUS:
        detail = row.get("status_detail")
        return str(row[c.name]) + (f" ({detail})" if isinstance(detail, str) and detail else "")
    if c.fmt == BASELINES:
        assert c.split is not None
        zero, mean = (row[baseline_of(c.split, k)] for k in ("predict_zero_mse", "predict_mean_mse"))
        return f"{num(zero, c.digits)} / {num(mean, c.digits)}"
    if c.fmt == SEEDS:
        return f"{row['n_seeds']} ({row[c.name]})"
    if c.fmt == KINDS:
        return str(row[c.name] or "-")
    return str(row[c.name])


def sweep_keys(columns: Sequence[str]) -> list[str]:
    """The swept keys of a summary or per-run table: the columns between :data:`SWEEP` and the next column of
    the spec (``[]`` when the table has no sweep)."""
    columns = list(columns)
    if SWEEP not in columns:
        return []
    known = set(csv_columns(SUMMARY_COLUMNS)) | set(csv_columns(RUN_COLUMNS))
    keys = []
    for name in columns[columns.index(SWEEP) + 1:]:
        if name in known:
            break
        keys.append(name)
    return keys
