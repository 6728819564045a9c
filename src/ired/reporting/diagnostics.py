"""Pathology detectors over one run's metrics log, each finding carrying the evidence that triggered it.

The research notes (``../shared/seed/``) spent days recognising by eye five patterns in training logs; this
module recognises them from ``metrics.jsonl`` rows (the columns of the metrics contract, ARCHITECTURE.md):

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

Everything here is pure: rows in, :class:`Finding` objects out. Reading run folders lives in
:mod:`ired.reporting.run_record`. Thresholds are fields of :class:`Thresholds`, each documented with its reason.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ired.reporting.cross_eval import baselines_from_cross_eval, records

if TYPE_CHECKING:  # pandas is only needed when a caller hands us a DataFrame
    import pandas as pd

KINDS: tuple[str, ...] = ("divergence", "collapse", "saturation", "metric_mismatch", "worse_than_trivial")
"""Every finding kind, most severe first."""

Rows = list[dict[str, Any]]


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
        return _jsonable(asdict(self))


# --------------------------------------------------------------------------------------------------
# Row helpers
# --------------------------------------------------------------------------------------------------


def as_rows(metrics: "pd.DataFrame | Iterable[Mapping[str, Any]]") -> Rows:
    """Metrics rows (list of dicts or DataFrame) as a list of dicts sorted by step, one row per step.

    A step logged twice (a resumed run whose log was not truncated) keeps its last row.
    """
    if hasattr(metrics, "to_dict") and hasattr(metrics, "columns"):
        records = metrics.to_dict("records")  # type: ignore[union-attr]
    else:
        records = [dict(r) for r in metrics]  # type: ignore[union-attr]
    by_step: dict[Any, dict[str, Any]] = {}
    loose: Rows = []
    for rec in records:
        step = rec.get("step")
        if _is_number(step):
            by_step[int(step)] = rec
        else:
            loose.append(rec)
    return [by_step[s] for s in sorted(by_step)] + loose


def value(row: Mapping[str, Any], column: str) -> float | None:
    """A finite number from a row, or None when the column is absent, null, NaN or infinite."""
    v = row.get(column)
    if not _is_number(v):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def series(rows: Rows, column: str) -> list[tuple[int, float, dict[str, Any]]]:
    """(step, value, row) for every row where ``column`` has a finite value."""
    out = []
    for row in rows:
        v = value(row, column)
        if v is not None and _is_number(row.get("step")):
            out.append((int(row["step"]), v, row))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def _raw_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A log row quoted as evidence: JSON-ready, null columns dropped to keep it readable."""
    return {k: _jsonable(v) for k, v in row.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}


def _ratio(a: float, b: float) -> float:
    """a / b, inf when b is 0 and a is not."""
    if b == 0:
        return math.inf if a else 1.0
    return a / b


def _fold(a: float, b: float) -> float:
    """How many times larger the larger of two positive numbers is (>= 1)."""
    lo, hi = sorted((abs(a), abs(b)))
    return _ratio(hi, lo)


def _windows(points: list[tuple[int, float, dict[str, Any]]], th: Thresholds) -> tuple[list, list]:
    n = len(points)
    k_early = max(1, math.ceil(th.early_frac * n))
    k_late = max(1, math.ceil(th.late_frac * n))
    return points[:k_early], points[-k_late:]


# --------------------------------------------------------------------------------------------------
# Detectors
# --------------------------------------------------------------------------------------------------


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
    g_ratio, p_ratio = _ratio(g1, g0[1]), _ratio(p1, p0[1])
    if not (g_ratio < th.collapse_ratio and p_ratio < th.collapse_ratio and m1 >= th.collapse_denoise_mse):
        return None
    # Onset: first row after both early peaks where both columns are below the collapse ratio.
    onset_row: dict[str, Any] | None = None
    for row in rows:
        s, g, p = row.get("step"), value(row, "gradE_norm"), value(row, "pred_std")
        if g is None or p is None or not _is_number(s) or s < max(g0[0], p0[0]):
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
    return Finding("collapse", onset, message, evidence, _unique_rows(quoted))


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
    return Finding("saturation", int(hits[0][0]), message, evidence, _unique_rows(quoted))


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
        if not _is_number(step) or not _is_number(raw):
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
        step = int(at) if _is_number(at) else (int(rows[-1]["step"]) if rows else 0)
        idx = _nearest_index(rows, step)
        evidence["reason"] = "status"
        how = f"status.json says diverged ({status.get('detail') or 'no detail'})"  # type: ignore[union-attr]
    evidence["step"] = step
    window = _around(rows, idx, 5) if idx is not None else []
    evidence["rows_steps"] = [r.get("step") for r in window]
    message = f"divergence at step {step}: {how}"
    if said and hit is not None:
        message += "; status.json says diverged"
    return Finding("divergence", step, message, evidence, [_raw_row(r) for r in window])


_MISMATCH_PAIRS: tuple[tuple[str, str, bool, str], ...] = (
    # (a, b, same definition?, what differs)
    ("train_denoise_mse", "val_task_mse", False, "different definitions: noise-space denoising MSE vs task MSE"),
    ("train_task_mse", "val_task_mse", True, "same definition, training-distribution subset vs validation set"),
    ("train_denoise_mse", "val_denoise_mse", True, "same definition, training batches vs held-out data"),
    ("val_task_mse", "val_task_mse_raw", True, "same definition, EMA vs raw weights"),
)


def ema_horizon(config: Mapping[str, Any] | None) -> float | None:
    """Steps the EMA weights average over, ``ema_every / (1 - ema_decay)``, from a resolved run config."""
    train = (config or {}).get("train") or {}
    decay, every = train.get("ema_decay"), train.get("ema_every")
    if not (_is_number(decay) and _is_number(every)) or decay >= 1:
        return None
    return float(every) / (1.0 - float(decay))


def detect_metric_mismatch(
    rows: Rows,
    contract: Mapping[str, str] | None = None,
    cross_eval: "pd.DataFrame | Sequence[Mapping[str, Any]] | None" = None,
    th: Thresholds = DEFAULT_THRESHOLDS,
    config: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Pairs of MSEs in the last evaluation row that differ by orders of magnitude, one finding per pair.

    Each finding names both definitions (from ``metrics_contract.json``) and, when cross-eval rows of this run
    are given, what evaluating the same checkpoint under every protocol and split says. For EMA vs raw, the
    run's config (when given) says how many steps the EMA averages over: a run shorter than a few EMA
    horizons is still evaluated with weights close to the early ones (REFERENCE.md: the release's EMA sits
    around step ~1,000 after 2,000 steps).
    """
    findings = []
    contract = contract or {}
    cross_note, cross_detail, cross_rows = _cross_eval_note(cross_eval, th)
    for a, b, same, what in _MISMATCH_PAIRS:
        both = [r for r in rows if value(r, a) is not None and value(r, b) is not None]
        if not both:
            continue
        last = both[-1]
        va, vb = value(last, a), value(last, b)
        assert va is not None and vb is not None
        if va <= 0 or vb <= 0:
            continue
        fold = _fold(va, vb)
        limit = th.mismatch_same_definition if same else th.mismatch_cross_definition
        if fold <= limit:
            continue
        n_over = sum(1 for r in both if _fold(value(r, a) or 0.0, value(r, b) or 0.0) > limit)
        step = int(last["step"])
        evidence = {
            "compared": [a, b],
            a: va,
            b: vb,
            "fold": fold,
            "orders_of_magnitude": math.log10(fold),
            "same_definition": same,
            "what_differs": what,
            "definitions": {c: contract.get(c, "(not in metrics_contract.json)") for c in (a, b)},
            "eval_rows_over_limit": n_over,
            "eval_rows": len(both),
            "threshold": limit,
            "cross_eval": cross_note,
            "cross_eval_detail": cross_detail,
            "cross_eval_rows": cross_rows,
        }
        message = (
            f"metric mismatch at step {step}: {a} {va:.3g} vs {b} {vb:.3g} ({fold:.0f}x, "
            f"{math.log10(fold):.1f} orders of magnitude; {what})"
        )
        horizon = ema_horizon(config)
        if a == "val_task_mse" and b == "val_task_mse_raw" and horizon is not None:
            evidence["ema_horizon_steps"] = horizon
            if step < 3 * horizon:
                message += (
                    f"; the EMA averages over ~{horizon:.0f} steps and the run is at step {step}: the EMA weights "
                    f"still carry the early parameters"
                )
        if cross_note:
            message += f"; cross-eval: {cross_note}"
        findings.append(Finding("metric_mismatch", step, message, evidence, [_raw_row(last)]))
    return findings


def detect_worse_than_trivial(
    rows: Rows, baselines: Mapping[str, Mapping[str, float]] | None, th: Thresholds = DEFAULT_THRESHOLDS
) -> Finding | None:
    """The last val_task_mse (EMA weights) above the predict-mean baseline of the ``val`` split.

    ``baselines`` maps a split to ``{"predict_zero_mse", "predict_mean_mse"}`` (see
    :func:`ired.reporting.cross_eval.baselines_from_cross_eval`); without a ``val`` baseline there is nothing to compare, no finding.
    """
    base = (baselines or {}).get("val", {})
    mean_mse = base.get("predict_mean_mse")
    evals = series(rows, "val_task_mse")
    if mean_mse is None or not evals or not math.isfinite(mean_mse):
        return None
    step, v, row = evals[-1]
    if v <= mean_mse * (1 + th.trivial_margin):
        return None
    evidence: dict[str, Any] = {
        "val_task_mse": v,
        "val_predict_mean_mse": mean_mse,
        "val_predict_zero_mse": base.get("predict_zero_mse"),
        "fold_over_predict_mean": _ratio(v, mean_mse),
        "val_task_mse_raw": value(row, "val_task_mse_raw"),
        "best_val_task_mse": min(x for _, x, _ in evals),
        "best_val_task_mse_step": min(evals, key=lambda p: p[1])[0],
    }
    harder = (baselines or {}).get("val_harder", {})
    if value(row, "val_harder_task_mse") is not None:
        evidence["val_harder_task_mse"] = value(row, "val_harder_task_mse")
        evidence["val_harder_predict_mean_mse"] = harder.get("predict_mean_mse")
    message = (
        f"worse than trivial at step {step}: val_task_mse {v:.4g} (EMA weights) is above the predict-mean "
        f"baseline {mean_mse:.4g} ({_ratio(v, mean_mse):.2f}x)"
    )
    return Finding("worse_than_trivial", step, message, evidence, [_raw_row(row)])


def diagnose(
    metrics: "pd.DataFrame | Iterable[Mapping[str, Any]]",
    *,
    status: Mapping[str, Any] | None = None,
    contract: Mapping[str, str] | None = None,
    cross_eval: "pd.DataFrame | Sequence[Mapping[str, Any]] | None" = None,
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


# --------------------------------------------------------------------------------------------------
# What the cross-evaluation says (the table itself: ired.reporting.cross_eval)
# --------------------------------------------------------------------------------------------------


def _cross_eval_note(
    cross_eval: "pd.DataFrame | Sequence[Mapping[str, Any]] | None", th: Thresholds
) -> tuple[str, dict[str, Any], Rows]:
    """What the cross-evaluation of this run's last checkpoint says: a short verdict, the numbers, the rows used.

    Two checks with one definition (task MSE): ``train_subset`` vs ``val`` under the same protocol and weights
    (is there a generalisation gap?), and ``val`` under every protocol (do the evaluation codes agree?). The
    verdict quotes the EMA weights (raw when there is no EMA row); the details cover both.
    """
    recs = [r for r in records(cross_eval) if value(r, "task_mse") is not None]
    if not recs:
        return "", {}, []

    def rank(r: Mapping[str, Any]) -> tuple[int, float, str]:  # the last checkpoint: final/last, then by step
        m = str(r.get("milestone") or "")
        return (1 if m in ("final", "last") else 0, value(r, "step") or -1.0, str(r.get("checkpoint") or ""))

    ckpt = max(recs, key=rank).get("checkpoint")
    mine = [r for r in recs if r.get("checkpoint") == ckpt]
    detail: dict[str, Any] = {"checkpoint": ckpt, "train_vs_val": [], "protocols_on_val": []}
    used: Rows = []
    for weights in ("ema", "raw"):
        by = {(str(r.get("protocol")), str(r.get("split"))): r for r in mine if r.get("weights") == weights}
        for protocol in sorted({p for p, _ in by}, key=lambda p: (p != "current", p)):
            tr, va = by.get((protocol, "train_subset")), by.get((protocol, "val"))
            if tr is None or va is None:
                continue
            a, b = value(tr, "task_mse") or 0.0, value(va, "task_mse") or 0.0
            fold = _fold(a, b)
            detail["train_vs_val"].append(
                {"protocol": protocol, "weights": weights, "train_subset": a, "val": b, "fold": fold,
                 "agree": fold <= th.mismatch_same_definition}
            )
            used += [tr, va]
        vals = {p: value(r, "task_mse") or 0.0 for (p, s), r in by.items() if s == "val"}
        if len(vals) >= 2:
            fold = _fold(min(vals.values()), max(vals.values()))
            detail["protocols_on_val"].append(
                {"weights": weights, "task_mse": vals, "fold": fold, "agree": fold <= th.mismatch_same_definition}
            )
            used += [r for (p, s), r in by.items() if s == "val"]
    parts = []
    gen = next((g for w in ("ema", "raw") for g in detail["train_vs_val"] if g["weights"] == w), None)
    if gen is not None:
        parts.append(
            f"under the {gen['protocol']} protocol ({gen['weights']} weights) task_mse is {gen['train_subset']:.3g} "
            f"on train_subset vs {gen['val']:.3g} on val: "
            + ("no generalisation gap" if gen["agree"] else f"a generalisation gap of {gen['fold']:.0f}x")
        )
    pro = next((g for w in ("ema", "raw") for g in detail["protocols_on_val"] if g["weights"] == w), None)
    if pro is not None:
        listing = ", ".join(f"{p} {v:.3g}" for p, v in sorted(pro["task_mse"].items()))
        parts.append(
            f"on val the protocols give {listing}: "
            + ("they agree" if pro["agree"] else f"they disagree ({pro['fold']:.0f}x), an evaluation mismatch")
        )
    return "; ".join(parts), detail, _unique_rows(used)


# --------------------------------------------------------------------------------------------------


def _unique_rows(rows: Iterable[Mapping[str, Any]]) -> Rows:
    out: Rows = []
    seen: set[int] = set()
    for r in rows:
        if id(r) not in seen:
            seen.add(id(r))
            out.append(_raw_row(r))
    return out


def _around(rows: Rows, idx: int, n: int) -> Rows:
    lo = max(0, min(idx - n // 2, len(rows) - n))
    return rows[lo : lo + n]


def _nearest_index(rows: Rows, step: int) -> int | None:
    steps = [(i, r.get("step")) for i, r in enumerate(rows) if _is_number(r.get("step"))]
    if not steps:
        return None
    return min(steps, key=lambda p: abs(p[1] - step))[0]
