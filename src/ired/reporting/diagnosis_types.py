"""What a run's diagnosis speaks in: the finding kinds (:data:`KINDS`), the numbers behind each detector
(:class:`Thresholds`, each documented with its reason) and one diagnosis with its evidence (:class:`Finding`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ired.reporting.log_rows import Rows, jsonable

KINDS: tuple[str, ...] = ("divergence", "collapse", "saturation", "metric_mismatch", "worse_than_trivial")
"""Every finding kind, most severe first."""



@dataclass(frozen=True)
class Thresholds:
    """The numbers behind each diagnosis. Defaults are chosen from the definitions, not tuned to one log.

    ``train_denoise_mse`` is the epsilon-prediction MSE, so a model that predicts zero scores exactly 1; a
    task MSE and a denoising MSE live in different units, so only a large ratio between them is suspicious.
    """

    early_frac: float = 0.2
    """Share of the first logged rows that defines a column's *early* value (their maximum: the value before
    any fall, however quickly the fall happens)."""
    late_frac: float = 0.2
    """Share of the last logged rows that defines a column's *late* value (their median: robust to one noisy row)."""
    min_rows: int = 5
    """Fewer logged rows than this: too short to speak of early and late, no collapse or saturation finding."""
    collapse_ratio: float = 0.1
    """Collapse needs late/early below this for both ``gradE_norm`` and ``pred_std`` (an order of magnitude)."""
    collapse_denoise_mse: float = 0.8
    """... while the late ``train_denoise_mse`` is at least this: within 20% of the predict-zero value 1."""
    sat_level: float = 0.99
    """A row is saturated when ``frac_sat`` exceeds this (the research notes saw ~0.997)."""
    sat_share: float = 0.5
    """Saturation needs more than this share of the rows with a ``frac_sat`` value to be saturated ("most")."""
    div_jump: float = 10.0
    """Divergence: ``loss_total - running_min > div_jump * max(|running_min|, div_floor)`` (an order of
    magnitude above the best loss so far; the absolute form also works for losses near or below zero)."""
    div_floor: float = 0.01
    """Scale floor of the divergence test, so that a loss near 0 does not turn noise into a jump."""
    mismatch_same_definition: float = 10.0
    """Ratio above which two metrics with the same definition (train vs val data, EMA vs raw) mismatch."""
    mismatch_cross_definition: float = 100.0
    """Ratio above which metrics with different definitions (``train_denoise_mse`` vs ``val_task_mse``)
    mismatch: they differ in units, so only two orders of magnitude are flagged."""
    trivial_margin: float = 0.0
    """``val_task_mse > predict_mean_mse * (1 + trivial_margin)`` is worse than trivial."""


DEFAULT_THRESHOLDS = Thresholds()


@dataclass
class Finding:
    """One diagnosis of one run: what, where, a sentence with the numbers, and the evidence behind it."""

    kind: str
    step: int | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    rows: Rows = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN/inf become null, as in the metrics log)."""
        return jsonable(asdict(self))
