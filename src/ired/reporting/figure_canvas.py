"""What every figure of the pipeline shares: the Agg canvas (:class:`matplotlib.figure.Figure`, no pyplot global
state, no display), PNG output, the status colours, and small drawing helpers (a panel that says why it is empty,
axis labels from metric column names, a colour map with a colour for missing cells, an order for labels).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
STATUS_COLOURS = {
    "stable": "#2b8a3e",
    "ambiguous": "#e8a33d",
    "plateau-saturated": "#d9730d",
    "collapsed": "#c92a2a",
    "diverged": "#862e9c",
    "failed-infrastructure": "#868e96",
}


def new_figure(width: float, height: float, constrained: bool = True) -> Figure:
    """A figure on the Agg canvas; ``constrained=False`` for fixed grids (constrained layout halves the speed)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None)


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write a figure as PNG (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """A figure as PNG bytes (for embedding in the HTML report; a lower ``dpi`` keeps the file small)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def say(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize=10, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def axis_label(columns: Sequence[str]) -> str:
    """Axis label = the metric column names, two per line so that a shared axis stays readable."""
    return "\n".join(", ".join(columns[i : i + 2]) for i in range(0, len(columns), 2))


def all_positive(values: Iterable[float]) -> bool:
    vals = list(values)
    return bool(vals) and all(v > 0 for v in vals)


def ordered_labels(values: Iterable[Any], order: Sequence[str]) -> list[str]:
    vals = {str(v) for v in values}
    return [o for o in order if o in vals] + sorted(vals - set(order))



def colour_map() -> Any:
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
