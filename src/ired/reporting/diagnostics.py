"""Pathology detectors over one run's metrics log, each finding carrying the evidence that triggered it.

The research notes (a team's debugging of IRED on 20x20 inversion) spent days recognising by eye five patterns in
training logs; this module recognises them from ``metrics.jsonl`` rows (the columns of the metrics contract,
ARCHITECTURE.md):

``collapse``
    The squared-norm energy trap: ``gradE_norm`` and ``pred_std`` fall to a small fraction of their early values
    while ``train_denoise_mse`` stays near 1 (the epsilon-MSE of predicting zero, since eps ~ N(0, I)).
``saturation``
    The contrastive term is "too easy": ``frac_sat`` above ~0.99 for most of training. ``frac_sat`` is null for
    denoise-only runs, which then get no finding.
``divergence``
    The first step where ``loss_total`` (or ``train_denoise_mse``) jumps far above its running minimum (or is
    NaN/inf), or the run's ``status.json`` says ``diverged``; the evidence quotes the 5 raw log rows around it.
``metric_mismatch``
    Two "MSE"s of the same run that differ by orders of magnitude (the q209 puzzle: train 0.009, val 2.5). The
    finding names the definitions compared (from ``metrics_contract.json``) and what the cross-evaluation says.
``worse_than_trivial``
    ``val_task_mse`` above the predict-the-mean-matrix baseline of the ``val`` split.

Everything here is pure: rows in, :class:`~ired.reporting.diagnosis_types.Finding` objects out. The detectors
are in :mod:`ired.reporting.training_detectors` (collapse, saturation, divergence) and
:mod:`ired.reporting.evaluation_detectors` (metric mismatch, worse than trivial); the kinds, the thresholds
(each documented with its reason) and the finding in :mod:`ired.reporting.diagnosis_types`; reading run folders
in :mod:`ired.reporting.run_record`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ired.reporting.cross_eval import baselines_from_cross_eval
from ired.reporting.diagnosis_types import DEFAULT_THRESHOLDS, Finding, Thresholds
from ired.reporting.evaluation_detectors import (
    detect_metric_mismatch,
    detect_worse_than_trivial,
)
from ired.reporting.log_rows import as_rows
from ired.reporting.training_detectors import (
    detect_collapse,
    detect_divergence,
    detect_saturation,
)

if TYPE_CHECKING:  # pandas is only needed when a caller hands us a DataFrame
    import pandas as pd


def diagnose(
    metrics: pd.DataFrame | Iterable[Mapping[str, Any]],
    *,
    status: Mapping[str, Any] | None = None,
    contract: Mapping[str, str] | None = None,
    cross_eval: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    config: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Every finding for one run, most severe first (order of :data:`KINDS`). A healthy log gives ``[]``.

    ``status`` is the run's status.json, ``contract`` its metrics_contract.json, ``cross_eval`` the cross-eval
    rows of this run's checkpoints, ``baselines`` the trivial baselines per split (when None they are taken from
    ``cross_eval``), ``config`` the resolved run config (for the EMA horizon). ``worse_than_trivial`` is only
    judged for a finished run (status absent or 'completed').
    """
    rows = as_rows(metrics)
    if baselines is None and cross_eval is not None:
        baselines = baselines_from_cross_eval(cross_eval)
    found: list[Finding] = []
    for f in (
        detect_divergence(rows, status, thresholds),
        detect_collapse(rows, thresholds),
        detect_saturation(rows, thresholds),
    ):
        if f is not None:
            found.append(f)
    found += detect_metric_mismatch(rows, contract, cross_eval, thresholds, config)
    # "Worse than trivial" judges a finished model: a run that stopped early (diverged, killed) is judged by
    # its other findings, not by an evaluation taken half-way through training.
    finished = status is None or status.get("status") == "completed"
    trivial = detect_worse_than_trivial(rows, baselines, thresholds) if finished else None
    if trivial is not None:
        found.append(trivial)
    return found
