"""benchmarks.parity's table and benchmarks.parity_release's window arithmetic, on made-up per-step numbers
(no training)."""

from __future__ import annotations

import math

import pytest

from benchmarks.bench_reference import BenchError, parse_reply
from benchmarks.parity import read_release_window, table
from benchmarks.parity_release import window_means


def test_window_means_cover_exactly_the_window_and_leave_absent_quantities_empty():
    steps = 2000
    per_step = {"loss_denoise": [float(i) for i in range(1, steps + 1)], "loss_energy": [None] * steps,
                "margin": [None] * steps}
    means = window_means(per_step)
    assert means == {"train_denoise_mse": (1751 + 2000) / 2, "loss_contrastive": None, "margin": None}
    with pytest.raises(BenchError, match="the window needs 2000"):
        window_means({k: v[:1999] for k, v in per_step.items()})


def test_the_drivers_training_quantities_pass_through_its_reply():
    reply = parse_reply('{"wall": [1, 2], "cpu": [1, 1], "data": [0, 0], "margin": [-0.5, null], "other": [1]}', 2)
    assert reply["margin"] == [-0.5, None] and "other" not in reply and reply["wall"] == [1.0, 2.0]


def test_the_table_puts_the_release_beside_ired_with_welchs_p(tmp_path):
    csv_file = tmp_path / "release_window.csv"
    csv_file.write_text("objective,seed,train_denoise_mse,loss_contrastive,margin\n"
                        "contrastive,0,0.061,0.85,0.02\ncontrastive,1,0.060,0.84,0.04\ncontrastive,2,0.062,0.86,0.03\n")
    release = read_release_window(csv_file)
    assert release["contrastive"]["margin[1751-2000]"] == [0.02, 0.04, 0.03]
    runs = [{"margin[1751-2000]": m, "loss_contrastive[1751-2000]": 0.85} for m in (0.011, 0.029, 0.053)]
    rows = {r["quantity"]: r for r in table({"contrastive": runs}, release)}
    margin = rows["margin[1751-2000]"]
    assert margin["result"] == "FAIL"  # the stated range (< 0) is kept whatever the release measures
    assert margin["release_here_seeds"] == 3 and math.isclose(margin["release_here_mean"], 0.03)
    assert 0.5 < margin["welch_p"] <= 1.0  # same mean within the spread
    assert rows["frac_sat[1751-2000]"]["release_here_seeds"] == 0 and math.isnan(rows["frac_sat[1751-2000]"]["welch_p"])
    assert all(math.isnan(r["welch_p"]) for r in table({"contrastive": runs}))  # no release file: no comparison


def test_the_seed_spread_verdict_uses_the_release_here_else_the_reference_file(tmp_path):
    """Parity as the issue defines it: ired's mean within the reference's mean ± 2 std, whatever the stated range."""
    csv_file = tmp_path / "release_window.csv"
    csv_file.write_text("objective,seed,train_denoise_mse,loss_contrastive,margin\n"
                        "denoise,0,0.0379,,\ndenoise,1,0.0363,,\ndenoise,2,0.0362,,\n")
    release = read_release_window(csv_file)
    close = [{"train_denoise_mse[1751-2000]": v} for v in (0.0356, 0.0360, 0.0363)]
    row = {r["quantity"]: r for r in table({"denoise": close}, release)}["train_denoise_mse[1751-2000]"]
    assert row["result"] == "FAIL" and row["within_spread"] == "pass" and row["spread_source"] == "release here"
    far = [{"train_denoise_mse[1751-2000]": v} for v in (0.030, 0.031, 0.032)]
    row = {r["quantity"]: r for r in table({"denoise": far}, release)}["train_denoise_mse[1751-2000]"]
    assert row["within_spread"] == "FAIL"
    row = {r["quantity"]: r for r in table({"denoise": close})}["train_denoise_mse[1751-2000]"]
    assert row["spread_source"] == "reference_numbers.yaml" and math.isclose(row["spread_low"], 0.0368 - 2 * 0.0009)
    assert row["within_spread"] == "pass"
    extra = {r["quantity"]: r for r in table({"denoise": close})}["train_batch_task_mse_raw"]
    assert extra["within_spread"] == "-" and extra["spread_source"] == ""
