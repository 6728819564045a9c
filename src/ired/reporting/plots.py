"""Plots of the pipeline, and their registry :data:`PLOTS`: per-run training curves, the ablation bar chart, the
parameter sweeps, the per-experiment cross-eval heatmap and the inference-steps sweep.

Each plot is one figure function plus one :class:`Plot` entry in :data:`PLOTS`: its name (the file
``results/<scale>/plots/<name>.png``, or ``plots/<name>/<run>.png`` for a per-run plot), the pipeline tables it
reads (:data:`TABLES`, passed to the function by name), its caption, its category in Snakemake's report and the
section of the HTML report that shows it. ``workflow/rules/plots.smk`` makes one rule per entry (``plot_<name>``)
and the report rule declares and embeds them; :func:`render` is what every rule calls (docs/ARCHITECTURE.md,
"Adding a plot"). Plots read tables and run folders; they diagnose nothing (the diagnosis is in ``runs.csv``).

The figure functions live by family: :mod:`ired.reporting.curve_figures` (per run),
:mod:`ired.reporting.summary_figures` (ablation, sweeps), :mod:`ired.reporting.evaluation_figures` (cross-eval
heatmap, inference-steps sweep), on the canvas of :mod:`ired.reporting.figure_canvas`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.reporting.curve_figures import run_curves_figure
from ired.reporting.evaluation_figures import cross_eval_figure, inference_sweep_figure
from ired.reporting.figure_canvas import save_png
from ired.reporting.summary_figures import ablation_figure, sweeps_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# --------------------------------------------------------------------------------------------------
# The registry: one entry per plot
# --------------------------------------------------------------------------------------------------

TABLES: dict[str, str] = {
    "summary": "summary.csv",
    "runs": "runs.csv",
    "cross_eval": "cross_eval.csv",
    "inference_sweep": "inference_sweep.csv",
}
"""The pipeline tables a plot can read (under ``results/<scale>/``), by the name its figure function takes."""

REPORT_SECTIONS: tuple[str, ...] = ("ablation", "sweeps", "cross-evaluation", "inference-sweep")
"""The sections of the HTML report that can show a plot, in the order of the page."""


@dataclass(frozen=True)
class Plot:
    """One plot of the pipeline (an entry of :data:`PLOTS`)."""

    name: str
    """The file: ``plots/<name>.png`` (per run: ``plots/<name>/<run>.png``); the rule: ``plot_<name>``."""
    draw: Callable[..., Figure]
    """The figure function; it takes the tables of ``inputs`` as DataFrames by name (a per-run plot takes the run
    folder first), and the plot's options (``workflow/rules/plots.smk``, ``PLOT_OPTIONS``)."""
    inputs: tuple[str, ...]
    """The tables it reads (keys of :data:`TABLES`)."""
    caption: str
    """What it shows, in reStructuredText (Snakemake's report; the HTML report under the image). ``{run}``: the
    run of a per-run plot."""
    category: str
    """Its category in Snakemake's report."""
    section: str | None = None
    """The section of the HTML report that embeds it (:data:`REPORT_SECTIONS`); None: not embedded. A per-run
    plot is linked from the run table instead."""
    per_run: bool = False
    """One PNG per training run (it reads the run folder, e.g. ``metrics.jsonl``)."""

    def path(self, run: str | None = None, suffix: str = ".png") -> str:
        """Where it is written, relative to ``results/<scale>/`` (its log: the same under ``logs/<scale>/``, with
        ``suffix=".log"``)."""
        return f"plots/{self.name}/{run}{suffix}" if self.per_run else f"plots/{self.name}{suffix}"

    def caption_for(self, run: str | None = None) -> str:
        """The caption, with the run of a per-run plot filled in."""
        return self.caption.replace("{run}", run) if run is not None else self.caption


PLOTS: tuple[Plot, ...] = (
    Plot("curves", run_curves_figure, ("runs",), per_run=True, category="Training curves",
         caption="Training curves of run ``{run}``: denoising MSE (noise space), task MSE at the evaluation steps "
         "(EMA weights; ``_raw``: raw weights) against the ``val`` predict-mean baseline, the losses, the energies "
         "of positives and negatives, the contrastive saturation ``frac_sat`` and the gradient field. Dashed "
         "vertical lines mark a divergence or collapse found by the summary's diagnosis (``runs.csv``). Axis "
         "labels are the column names of ``metrics.jsonl``."),
    Plot("ablation", ablation_figure, ("summary", "runs"), section="ablation", category="Ablations",
         caption="Ablation: ``val_task_mse`` and ``val_harder_task_mse`` (EMA weights, last evaluation) per "
         "experiment, mean ± one std over seeds, one dot per seed; bar colour is the experiment's status. The "
         "trivial baselines of each split (predict zero, predict the mean inverse) are horizontal lines. Which "
         "differences are significant is in the findings (Welch's t-test, Holm-Bonferroni over the family of "
         "comparisons)."),
    Plot("sweeps", sweeps_figure, ("summary",), section="sweeps", category="Ablations",
         caption="Parameter sweeps: ``val_task_mse`` (EMA weights, last evaluation; mean ± one std over seeds) "
         "against each swept key of each sweep, one line per combination of the other swept keys; a log axis "
         "when the swept values span more than 10x."),
    Plot("cross_eval", cross_eval_figure, ("cross_eval", "runs"), category="Cross-evaluation",
         caption="Cross-evaluation per experiment: every experiment (rows, EMA and raw weights) under every "
         "evaluation protocol and split (columns); each cell is the mean ± std over the experiment's seeds of "
         "each seed's last checkpoint (``task_mse``; ``denoise_mse`` for the ``denoise`` protocol). The colour is "
         "a log scale per column. Every checkpoint and milestone is in ``cross_eval.csv``."),
    Plot("inference_sweep", inference_sweep_figure, ("inference_sweep",), section="inference-sweep",
         category="Landscape",
         caption="Inference-steps sweep of each run's last checkpoint (EMA weights): task MSE, the share of "
         "rejected gradient steps and the share of energy-monotone paths against K, the inference gradient steps "
         "per diffusion level; mean ± std over seeds, one line per experiment."),
)
"""Every plot of the pipeline. Adding one: its figure function (in the module of its family), and one entry here."""


def _check_registry(plots: Sequence[Plot]) -> None:
    names = [p.name for p in plots]
    for p in plots:
        where = f"ired.reporting.plots.PLOTS: plot {p.name!r}"
        if names.count(p.name) > 1:
            raise ValueError(f"{where}: the name is used twice")
        unknown = [t for t in p.inputs if t not in TABLES]
        if unknown:
            raise ValueError(f"{where}: unknown input table(s) {unknown} (allowed: {', '.join(TABLES)})")
        if p.section is not None and (p.section not in REPORT_SECTIONS or p.per_run):
            raise ValueError(f"{where}: section {p.section!r} is not one of {', '.join(REPORT_SECTIONS)} "
                             "(a per-run plot has none: the run table links it)")


_check_registry(PLOTS)


def plot_files(out: str | Path, runs: Iterable[str], per_run: bool | None = None) -> list[str]:
    """The PNGs of every registered plot under ``out`` (``results/<scale>``): one per plot, one per run of a
    per-run plot; ``per_run``: only the per-run (True) or per-experiment (False) plots."""
    runs = list(runs)
    return [f"{out}/{p.path(run)}" for p in PLOTS if per_run in (None, p.per_run)
            for run in (runs if p.per_run else [None])]


def plot_named(name: str) -> Plot:
    """The registered plot ``name``; a one-line error listing the registered names otherwise."""
    for p in PLOTS:
        if p.name == name:
            return p
    raise ValueError(f"no plot {name!r} in ired.reporting.plots.PLOTS (plots: {', '.join(p.name for p in PLOTS)})")


def render(
    name: str,
    out_png: str | Path,
    tables: Mapping[str, pd.DataFrame | str | Path],
    run_dir: str | Path | None = None,
    **options: Any,
) -> Path:
    """Draw the registered plot ``name`` from its tables (paths or DataFrames, by the names of :data:`TABLES`;
    a missing or empty file is an empty table) and write it as PNG; a per-run plot also takes its run folder."""
    plot = plot_named(name)
    absent = [t for t in plot.inputs if t not in tables]
    if absent:
        raise ValueError(f"plot {name!r}: input table(s) {absent} not given (it reads {', '.join(plot.inputs)})")
    frames = {t: _frame(tables[t]) for t in plot.inputs}
    if plot.per_run:
        if run_dir is None:
            raise ValueError(f"plot {name!r} is drawn per run: give its run folder")
        return save_png(plot.draw(run_dir, **frames, **options), out_png)
    return save_png(plot.draw(**frames, **options), out_png)


# --------------------------------------------------------------------------------------------------


def _frame(data: pd.DataFrame | str | Path) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, (str, Path)):
        p = Path(data)
        return pd.read_csv(p) if p.is_file() and p.stat().st_size else pd.DataFrame()
    return data
