"""Does the vector-head collapse of the research notes (q206) appear when we train it for real at a tiny scale?

The notes saw E = ||fc4(h)||^2 with a contrastive term push E_pos -> 0, grad_y E -> 0 and pred -> 0 (denoising MSE
stuck near 1) at n = 20. At n = 5, width 64, 600 steps (lr 1e-3) it does not appear. Measured here (seed 0):

| vector head, softplus, mined negatives | gradE_norm step 50 -> 600 | pred_std | train_denoise_mse |
|---|---|---|---|
| weight 0.5, T = 1 (the reference's settings)  | 1.5 -> 4.9 | 0.33 -> 1.0 | 0.85 -> 0.15 |
| weight 20, T = 0.1                            | 0.56 -> 4.3 | 0.12 -> 0.89 | 0.91 -> 0.19 |
| weight 50 from step 300 (after denoising)     | 4.6 -> 5.7 | 0.93 -> 1.17 | 0.14 -> 0.23 |

(the other rows come from the same test with the listed overrides; the table was measured before ired followed
the release's activation order, training-time mining and contrastive noise; the test runs today's defaults, i.e.
the release's, and its assertions still hold). gradE_norm grows instead of collapsing, so
the collapse needs something this scale lacks; the test checks that the diagnosis agrees: no `collapse` finding
on the real log, while the detector does fire on the collapse signature (tests/test_diagnostics.py).
"""

import json

import pytest
from conftest import tiny_config

from ired.reporting.diagnostics import diagnose
from ired.reporting.training_detectors import detect_collapse
from ired.training.trainer import train


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("objective.weight=20", "objective.temperature=0.1"),
        ("objective.weight=50", "objective.start_step=300"),
    ],
    ids=["reference", "strong-cold", "late-strong"],
)
def test_tiny_vector_softplus_does_not_collapse_and_the_diagnosis_agrees(tmp_path, overrides):
    cfg = tiny_config(
        "model.head=vector", "objective.name=softplus", "negatives.name=mined", "data.n=5", "model.width=64",
        "train.steps=600", "train.lr=1e-3", "train.log_every=50", "train.eval_every=300", *overrides,
    )
    train(cfg, tmp_path, echo=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    early, late = rows[0], rows[-1]
    # the signature is absent: gradients and predictions grew, the denoising loss fell well below 1
    assert late["gradE_norm"] > early["gradE_norm"]
    assert late["pred_std"] > 0.5
    assert late["train_denoise_mse"] < 0.5
    assert detect_collapse(rows) is None
    assert "collapse" not in {f.kind for f in diagnose(rows, config=cfg.to_dict())}
