"""Detectors of the training trajectory in one run's metrics log: ``collapse`` (the squared-norm energy trap),
``saturation`` (the contrastive term gives almost no gradient) and ``divergence`` (a loss jumps far above its
running minimum, becomes non-finite, or status.json says diverged). Pure: rows in, a :class:`Finding` or None out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ired.reporting.diagnosis_types import DEFAULT_THRESHOLDS, Finding, Thresholds
from ired.reporting.log_rows import (
    Rows,
    is_number,
    nearest_index,
    ratio,
    raw_row,
    rows_around,
    series,
    unique_rows,
    value,
)


def _windows(points: list[tuple[int, float, dict[str, Any]]], th: Thresholds) -> tuple[list, list]:
    n = len(points)
    k_early = max(1, math.ceil(th.early_frac * n))
    k_late = max(1, math.ceil(th.late_frac * n))
    return points[:k_early], points[-k_late:]


def detect_collapse(rows: Rows, th: Thresholds = DEFAULT_THRESHOLDS) -> Finding | None:
    """gradE_norm and pred_std fall below ``collapse_ratio`` of their early maximum while train_denoise_mse
    stays at least ``collapse_denoise_mse`` (predict-zero = 1): the null predictor of the research notes."""
    grad = series(rows, "gradE_norm")
    pred = series(rows, "pred_std")
    mse = series(rows, "train_denoise_mse")
    if min(len(grad), len(pred), len(mse)) < th.min_rows:
        return None
    g_early, g_late = _windows(grad, th)
    p_early, p_late = _windows(pred, th)
    _, m_late = _windows(mse, th)
    g0 = max(g_early, key=lambda p: p[1])
    p0 = max(p_early, key=lambda p: p[1])
    g1 = statistics.median(v for _, v, _ in g_late)
    p1 = statistics.median(v for _, v, _ in p_late)
    m1 = statistics.median(v for _, v, _ in m_late)
    g_ratio, p_ratio = ratio(g1, g0[1]), ratio(p1, p0[1])
    if not (g_ratio < th.collapse_ratio and p_ratio < th.collapse_ratio and m1 >= th.collapse_denoise_mse):
        return None
    # Onset: first row after both early peaks where both columns are below the collapse ratio.
    onset_row: dict[str, Any] | None = None
    for row in rows:
        s, g, p = row.get("step"), value(row, "gradE_norm"), value(row, "pred_std")
        if g is None or p is None or not is_number(s) or s < max(g0[0], p0[0]):
            continue
        if g < th.collapse_ratio * g0[1] and p < th.collapse_ratio * p0[1]:
            onset_row = row
            break
    onset = int(onset_row["step"]) if onset_row is not None else int(g_late[0][0])
    target = [v for _, v, _ in series(rows, "target_std")[-len(p_late):]]
    evidence = {
        "gradE_norm_early": g0[1],
        "gradE_norm_early_step": g0[0],
        "gradE_norm_late": g1,
        "gradE_norm_ratio": g_ratio,
        "pred_std_early": p0[1],
        "pred_std_early_step": p0[0],
        "pred_std_late": p1,
        "pred_std_ratio": p_ratio,
        "target_std_late": statistics.median(target) if target else None,
        "train_denoise_mse_late": m1,
        "late_steps": [int(p_late[0][0]), int(p_late[-1][0])],
        "onset_step": onset,
        "thresholds": {"collapse_ratio": th.collapse_ratio, "collapse_denoise_mse": th.collapse_denoise_mse},
    }
    quoted = [g0[2], p0[2]] + ([onset_row] if onset_row is not None else []) + [rows[-1]]
    message = (
        f"collapse from step {onset}: gradE_norm fell from {g0[1]:.3g} to {g1:.3g} ({g_ratio:.1%}) and pred_std "
        f"from {p0[1]:.3g} to {p1:.3g} ({p_ratio:.1%}) while train_denoise_mse stayed at {m1:.3g} "
        f"(predicting zero gives 1): a null predictor"
    )
    return Finding("collapse", onset, message, evidence, unique_rows(quoted))


def detect_saturation(rows: Rows, th: Thresholds = DEFAULT_THRESHOLDS) -> Finding | None:
    """frac_sat above ``sat_level`` on more than ``sat_share`` of the rows that have a frac_sat value.

    No finding when frac_sat is null throughout (denoise-only runs): there is no contrastive term to saturate.
    """
    sat = series(rows, "frac_sat")
    if len(sat) < th.min_rows:
        return None
    hits = [(s, v, r) for s, v, r in sat if v > th.sat_level]
    share = len(hits) / len(sat)
    if share <= th.sat_share:
        return None
    # First step from which frac_sat stays above the level (the start of the saturated plateau).
    start_idx = len(sat)
    while start_idx > 0 and sat[start_idx - 1][1] > th.sat_level:
        start_idx -= 1
    plateau_start = sat[start_idx][0] if start_idx < len(sat) else hits[0][0]
    median_sat = statistics.median(v for _, v, _ in sat)
    evidence = {
        "share_saturated": share,
        "n_saturated": len(hits),
        "n_rows": len(sat),
        "frac_sat_median": median_sat,
        "first_saturated_step": hits[0][0],
        "plateau_start_step": plateau_start,
        "last_step": sat[-1][0],
        "thresholds": {"sat_level": th.sat_level, "sat_share": th.sat_share},
    }
    message = (
        f"saturation: frac_sat > {th.sat_level:g} on {share:.0%} of logged steps ({len(hits)}/{len(sat)}, "
        f"median {median_sat:.4f}), continuously from step {plateau_start}: the contrastive term gives "
        f"almost no gradient"
    )
    quoted = [hits[0][2]] + ([sat[start_idx][2]] if start_idx < len(sat) else []) + [sat[-1][2]]
    return Finding("saturation", int(hits[0][0]), message, evidence, unique_rows(quoted))


DIVERGENCE_COLUMNS: tuple[str, ...] = ("loss_total", "train_denoise_mse")
"""Columns scanned for divergence. ``loss_total`` is the objective itself; ``train_denoise_mse`` has a fixed
scale (predicting zero gives 1) and catches runs whose contrastive term (e.g. ``cd``, unbounded below) keeps
``loss_total`` falling while the energy, and with it the denoiser, blows up."""


@dataclass
class _Jump:
    index: int
    step: int
    column: str
    reason: str  # "jump" | "non-finite"
    value: float
    running_min: float | None
    min_step: int | None


# loss_total is a different function whenever the contrastive weight or temperature changes (start_step,
# warm-up, adaptive temperature): its running minimum restarts then. train_denoise_mse keeps one definition.
_LOSS_DEFINITION_COLUMNS = ("contrastive_weight", "temperature")


def _first_jump(rows: Rows, column: str, th: Thresholds) -> _Jump | None:
    """First row where ``column`` is non-finite (after a finite value, or infinite) or jumps far above its
    running minimum: ``x - min > div_jump * max(|min|, div_floor)``. For ``loss_total`` the running minimum
    restarts whenever the loss's definition changes (contrastive weight or temperature differ from the last row)."""
    running_min: float | None = None
    min_step: int | None = None
    seen_finite = False
    definition: tuple[Any, ...] | None = None
    for i, row in enumerate(rows):
        raw, step = row.get(column), row.get("step")
        if not is_number(step) or not is_number(raw):
            continue
        if column == "loss_total":
            current = tuple(row.get(c) for c in _LOSS_DEFINITION_COLUMNS)
            if definition is not None and current != definition:
                running_min, min_step = None, None
            definition = current
        x = float(raw)
        if not math.isfinite(x):
            if math.isinf(x) or seen_finite:
                return _Jump(i, int(step), column, "non-finite", x, running_min, min_step)
            continue
        seen_finite = True
        if running_min is not None and x - running_min > th.div_jump * max(abs(running_min), th.div_floor):
            return _Jump(i, int(step), column, "jump", x, running_min, min_step)
        if running_min is None or x < running_min:
            running_min, min_step = x, int(step)
    return None


def detect_divergence(
    rows: Rows, status: Mapping[str, Any] | None = None, th: Thresholds = DEFAULT_THRESHOLDS
) -> Finding | None:
    """The first step where loss_total (or train_denoise_mse) is non-finite or jumps far above its running
    minimum; or, failing that, status.json saying 'diverged'.

    The evidence quotes the 5 raw log rows around the step (two before, two after, clipped at the ends).
    """
    jumps = [j for c in DIVERGENCE_COLUMNS if (j := _first_jump(rows, c, th)) is not None]
    hit = min(jumps, key=lambda j: (j.step, DIVERGENCE_COLUMNS.index(j.column))) if jumps else None
    said = status is not None and status.get("status") == "diverged"
    if hit is None and not said:
        return None
    evidence: dict[str, Any] = {"thresholds": {"div_jump": th.div_jump, "div_floor": th.div_floor}}
    if said:
        evidence["status"] = {k: status.get(k) for k in ("status", "step", "diverged_at", "detail")}  # type: ignore[union-attr]
    idx: int | None
    if hit is not None:
        idx, step = hit.index, hit.step
        evidence.update(
            reason=hit.reason, column=hit.column, value=hit.value, running_min=hit.running_min,
            running_min_step=hit.min_step,
        )
        if hit.reason == "non-finite":
            how = f"{hit.column} became {hit.value}"
        else:
            assert hit.running_min is not None
            evidence["jump_over_min"] = hit.value - hit.running_min
            how = (
                f"{hit.column} jumped to {hit.value:.4g}, {hit.value - hit.running_min:.3g} above its running "
                f"minimum {hit.running_min:.4g} (step {hit.min_step})"
            )
    else:
        at = status.get("diverged_at", status.get("step"))  # type: ignore[union-attr]
        step = int(at) if is_number(at) else (int(rows[-1]["step"]) if rows else 0)
        idx = nearest_index(rows, step)
        evidence["reason"] = "status"
        how = f"status.json says diverged ({status.get('detail') or 'no detail'})"  # type: ignore[union-attr]
    evidence["step"] = step
    window = rows_around(rows, idx, 5) if idx is not None else []
    evidence["rows_steps"] = [r.get("step") for r in window]
    message = f"divergence at step {step}: {how}"
    if said and hit is not None:
        message += "; status.json says diverged"
    return Finding("divergence", step, message, evidence, [raw_row(r) for r in window])
