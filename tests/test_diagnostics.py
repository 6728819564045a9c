"""Each synthetic pathology gets exactly its diagnosis, with the evidence that triggered it; healthy logs none."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from synthetic_runs import BASELINES, CONTRACT, make_log

from ired.reporting.cross_eval import baselines_from_cross_eval
from ired.reporting.diagnosis_types import Thresholds
from ired.reporting.diagnostics import diagnose
from ired.reporting.run_record import derive_status
from ired.reporting.training_detectors import detect_divergence


def kinds(findings):
    return sorted(f.kind for f in findings)


@pytest.mark.parametrize("kind", ["healthy", "denoise_only"])
def test_healthy_logs_have_no_finding(kind):
    rows = make_log(kind)
    assert diagnose(rows, status={"status": "completed"}, contract=CONTRACT, baselines=BASELINES) == []
    assert derive_status([], {"status": "completed"}) == "stable"


def test_dataframe_input_equals_row_input():
    rows = make_log("collapse")
    assert kinds(diagnose(pd.DataFrame(rows))) == kinds(diagnose(rows)) == ["collapse"]
    assert diagnose(pd.DataFrame(make_log("healthy")), baselines=BASELINES) == []


def test_collapse_with_evidence():
    found = diagnose(make_log("collapse"), contract=CONTRACT)
    assert kinds(found) == ["collapse"]
    f = found[0]
    ev = f.evidence
    assert ev["gradE_norm_ratio"] < 0.1 and ev["pred_std_ratio"] < 0.1
    assert ev["train_denoise_mse_late"] >= 0.8
    assert ev["gradE_norm_early"] == pytest.approx(max(r["gradE_norm"] for r in make_log("collapse")[:9]))
    assert 0 < f.step <= 1000  # onset: both below 10% of their early peak
    assert "gradE_norm" in f.message and "pred_std" in f.message and "train_denoise_mse" in f.message
    assert f.rows and all("step" in r for r in f.rows)
    assert derive_status(found, {"status": "completed"}) == "collapsed"


def test_collapse_also_worse_than_trivial_but_status_collapsed():
    found = diagnose(make_log("collapse"), baselines=BASELINES)
    assert kinds(found) == ["collapse", "worse_than_trivial"]
    assert derive_status(found, {"status": "completed"}) == "collapsed"


def test_learning_run_that_shrinks_pred_std_is_not_collapse():
    # pred_std falls 20x from a large init, but the model learns (denoising MSE well below 1): no collapse.
    rows = make_log("healthy")
    for i, r in enumerate(rows):
        r["pred_std"] = 20.0 if i < 3 else 0.9
        r["gradE_norm"] = 30.0 if i < 3 else 1.0
    assert diagnose(rows) == []


def test_saturation_with_evidence_and_none_without_frac_sat():
    found = diagnose(make_log("saturation"), baselines=BASELINES)
    assert kinds(found) == ["saturation"]
    ev = found[0].evidence
    assert ev["share_saturated"] > 0.9 and ev["frac_sat_median"] == pytest.approx(0.997)
    assert ev["plateau_start_step"] == 150
    assert derive_status(found, {"status": "completed"}) == "plateau-saturated"
    rows = make_log("saturation")
    for r in rows:
        r["frac_sat"] = None  # a denoise-only run logs null
    assert diagnose(rows, baselines=BASELINES) == []


def test_divergence_quotes_five_rows_around_the_jump():
    rows = make_log("divergence")
    status = {"status": "diverged", "step": 1350, "diverged_at": 1200, "detail": "loss_total is inf"}
    found = diagnose(rows, status=status, contract=CONTRACT, baselines=BASELINES)
    assert kinds(found) == ["divergence"]
    f = found[0]
    assert f.step == 1200 and f.evidence["reason"] == "jump"
    assert [r["step"] for r in f.rows] == [1100, 1150, 1200, 1250, 1300]
    assert f.rows[2]["loss_total"] == pytest.approx(50.0)
    assert f.evidence["running_min"] < 0.5 and f.evidence["column"] == "loss_total"
    assert "status.json says diverged" in f.message
    assert derive_status(found, status) == "diverged"


def test_divergence_from_non_finite_loss_and_from_status_alone():
    rows = make_log("healthy")[:20]
    rows[12]["loss_total"] = math.nan
    f = detect_divergence(rows)
    assert f is not None and f.step == rows[12]["step"] and f.evidence["reason"] == "non-finite"
    assert len(f.rows) == 5
    rows = make_log("healthy")[:20]
    f = detect_divergence(rows, {"status": "diverged", "diverged_at": 500, "detail": "NaN in grad"})
    assert f is not None and f.step == 500 and f.evidence["reason"] == "status"
    assert 500 in [r["step"] for r in f.rows] and len(f.rows) == 5


def test_divergence_hidden_by_a_falling_contrastive_loss():
    # objective=cd: loss_total keeps falling (E_neg - E_pos grows without bound) while the denoiser blows up
    # (numbers shaped after a real tiny vector-head cd run)
    rows = make_log("healthy")
    for r in rows:
        f = r["step"] / 2000
        r["train_denoise_mse"] = 0.9 if r["step"] < 400 else 0.9 * 100 ** (f * 3)
        r["loss_total"] = r["train_denoise_mse"] - 1000 * f**2
    f = detect_divergence(rows)
    assert f is not None and f.evidence["column"] == "train_denoise_mse"
    assert f.step == next(r["step"] for r in rows if r["train_denoise_mse"] > 0.9 * 11)


def test_divergence_threshold_is_relative_to_running_min():
    rows = make_log("healthy")
    rows[20]["loss_total"] *= 3  # a noisy spike of 3x is not divergence
    assert detect_divergence(rows) is None
    assert detect_divergence(rows, th=Thresholds(div_jump=1.0)) is not None


def test_q209_mismatch_names_definitions_and_cross_eval():
    rows = make_log("mismatch")
    cross = [
        {"checkpoint": "q209/final.pt", "milestone": "final", "protocol": p, "split": s, "weights": "ema",
         "task_mse": v, **BASELINES[s]}
        for p, s, v in [("current", "train_subset", 2.4), ("current", "val", 2.5), ("reference", "val", 0.0095),
                        ("reference", "train_subset", 0.0093)]
    ]
    found = diagnose(rows, contract=CONTRACT, cross_eval=cross)
    # the baselines come from the cross-eval rows: 2.5 is also worse than trivial
    assert kinds(found) == ["metric_mismatch", "worse_than_trivial"]
    f = next(f for f in found if f.kind == "metric_mismatch")
    ev = f.evidence
    assert ev["compared"] == ["train_denoise_mse", "val_task_mse"]
    assert ev["same_definition"] is False and ev["orders_of_magnitude"] > 2
    assert ev["definitions"]["train_denoise_mse"] == CONTRACT["train_denoise_mse"]
    assert ev["definitions"]["val_task_mse"] == CONTRACT["val_task_mse"]
    assert "no generalisation gap" in ev["cross_eval"]  # task MSE is as bad on train data: not overfitting
    assert "they disagree" in ev["cross_eval"] and "evaluation mismatch" in ev["cross_eval"]
    assert ev["cross_eval_detail"]["protocols_on_val"][0]["task_mse"] == {"current": 2.5, "reference": 0.0095}
    assert ev["cross_eval_rows"]
    assert "cross-eval" in f.message
    assert derive_status(found, {"status": "completed"}) == "ambiguous"
    # without baselines, only the mismatch
    assert kinds(diagnose(rows, contract=CONTRACT)) == ["metric_mismatch"]


def test_ema_vs_raw_mismatch():
    found = diagnose(make_log("ema_raw"), contract=CONTRACT)
    assert kinds(found) == ["metric_mismatch"]
    assert found[0].evidence["compared"] == ["val_task_mse", "val_task_mse_raw"]
    assert found[0].evidence["same_definition"] is True
    # with the run's config, the finding explains an EMA that still lags (horizon 10 / 0.005 = 2000 steps)
    found = diagnose(make_log("ema_raw"), config={"train": {"ema_decay": 0.995, "ema_every": 10}})
    assert found[0].evidence["ema_horizon_steps"] == pytest.approx(2000)
    assert "EMA averages over ~2000 steps" in found[0].message


def test_worse_than_trivial_only_with_a_baseline():
    rows = make_log("trivial")
    found = diagnose(rows, baselines=BASELINES)
    assert kinds(found) == ["worse_than_trivial"]
    ev = found[0].evidence
    assert ev["val_task_mse"] > ev["val_predict_mean_mse"] == 0.0141
    assert found[0].rows[0]["val_task_mse"] == ev["val_task_mse"]
    assert diagnose(rows) == []


def test_baselines_from_cross_eval_and_json_ready_findings():
    cross = [{"split": "val", "predict_zero_mse": 0.02, "predict_mean_mse": 0.014, "task_mse": 0.01}] * 3
    assert baselines_from_cross_eval(pd.DataFrame(cross)) == {
        "val": {"predict_zero_mse": 0.02, "predict_mean_mse": 0.014}}
    import json

    rows = make_log("healthy")[:20]
    rows[12]["loss_total"] = math.inf
    f = detect_divergence(rows)
    json.dumps(f.to_dict(), allow_nan=False)  # NaN/inf become null


def test_failed_infrastructure_status():
    attempts = [{"attempt": 1, "failure_kind": "node_failure", "exit_code": 120}]
    assert derive_status([], {"status": "running"}, attempts) == "failed-infrastructure"
    assert derive_status([], None, attempts, has_metrics=False) == "failed-infrastructure"
    assert derive_status([], {"status": "running"}, [{"failure_kind": "diverged"}]) == "diverged"
    # a failed attempt that was retried to completion does not make the run failed
    assert derive_status([], {"status": "completed"}, attempts + [{"attempt": 2, "state": "COMPLETED"}]) == "stable"


def test_loss_total_rising_when_shaping_switches_on_is_not_divergence():
    """start_step / warm-up change what loss_total measures; only train_denoise_mse can show a blow-up then."""
    rows = make_log("healthy", steps=2000)
    for row in rows:
        on = row["step"] >= 1000
        row["contrastive_weight"] = 0.5 if on else 0.0
        row["loss_total"] = row["train_denoise_mse"] + (5.0 if on else 0.0)
    assert detect_divergence(rows) is None
    rows[-1]["train_denoise_mse"] = 50.0
    assert detect_divergence(rows).evidence["column"] == "train_denoise_mse"
