"""Detectors of what a run's evaluations say: ``metric_mismatch`` (two MSEs of the same run orders of magnitude
apart, with what the cross-evaluation of its last checkpoint says) and ``worse_than_trivial`` (``val_task_mse``
above the predict-mean baseline). Pure: rows in, findings out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ired.reporting.cross_eval import records
from ired.reporting.diagnosis_types import DEFAULT_THRESHOLDS, Finding, Thresholds
from ired.reporting.log_rows import (
    Rows,
    fold_change,
    is_number,
    ratio,
    raw_row,
    series,
    unique_rows,
    value,
)

if TYPE_CHECKING:
    import pandas as pd


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
    if not (is_number(decay) and is_number(every)) or decay >= 1:
        return None
    return float(every) / (1.0 - float(decay))


def detect_metric_mismatch(
    rows: Rows,
    contract: Mapping[str, str] | None = None,
    cross_eval: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    th: Thresholds = DEFAULT_THRESHOLDS,
    config: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Pairs of MSEs in the last evaluation row that differ by orders of magnitude, one finding per pair.

    Each finding names both definitions (from ``metrics_contract.json``) and, when cross-eval rows of this run
    are given, what evaluating the same checkpoint under every protocol and split says. For EMA vs raw, the
    run's config (when given) says how many steps the EMA averages over: a run shorter than a few EMA
    horizons is still evaluated with weights close to the early ones (the IRED release: its EMA sits
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
        fold = fold_change(va, vb)
        limit = th.mismatch_same_definition if same else th.mismatch_cross_definition
        if fold <= limit:
            continue
        n_over = sum(1 for r in both if fold_change(value(r, a) or 0.0, value(r, b) or 0.0) > limit)
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
        findings.append(Finding("metric_mismatch", step, message, evidence, [raw_row(last)]))
    return findings


def detect_worse_than_trivial(
    rows: Rows, baselines: Mapping[str, Mapping[str, float]] | None, th: Thresholds = DEFAULT_THRESHOLDS
) -> Finding | None:
    """The last val_task_mse (EMA weights) above the predict-mean baseline of the ``val`` split.

    ``baselines`` maps a split to ``{"predict_zero_mse", "predict_mean_mse"}`` (see
    :func:`ired.reporting.cross_eval.baselines_from_cross_eval`); without a ``val`` baseline there is nothing to
    compare, no finding.
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
        "fold_over_predict_mean": ratio(v, mean_mse),
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
        f"baseline {mean_mse:.4g} ({ratio(v, mean_mse):.2f}x)"
    )
    return Finding("worse_than_trivial", step, message, evidence, [raw_row(row)])

# --------------------------------------------------------------------------------------------------
# What the cross-evaluation says (the table itself: ired.reporting.cross_eval)
# --------------------------------------------------------------------------------------------------


def _cross_eval_note(
    cross_eval: pd.DataFrame | Sequence[Mapping[str, Any]] | None, th: Thresholds
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
            fold = fold_change(a, b)
            detail["train_vs_val"].append(
                {"protocol": protocol, "weights": weights, "train_subset": a, "val": b, "fold": fold,
                 "agree": fold <= th.mismatch_same_definition}
            )
            used += [tr, va]
        vals = {p: value(r, "task_mse") or 0.0 for (p, s), r in by.items() if s == "val"}
        if len(vals) >= 2:
            fold = fold_change(min(vals.values()), max(vals.values()))
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
    return "; ".join(parts), detail, unique_rows(used)
