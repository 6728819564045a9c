"""train_batch_task_mse is the task metric on problems the model trained on (the last training batch)."""

import torch
from conftest import tiny_config

from ired.evaluation.protocols import current_settings, run_inference
from ired.science.data import TrainStream
from ired.training.trainer import Trainer


def test_train_batch_task_mse_is_measured_on_the_batch_just_trained_on(tmp_path):
    cfg = tiny_config("train.steps=20", "train.batch_size=16", "data.train_subset_size=8")
    trainer = Trainer(cfg, tmp_path, echo=False)
    for _ in range(20):
        trainer.train_step()
    row = trainer.evaluate()
    # the 20th batch of the run's training stream, redrawn independently: its first train_subset_size problems
    stream = TrainStream(cfg.data.n, cfg.seed + 1_000_003)
    for _ in range(20):
        batch = stream.next(16)
    trained_on = batch.slice(0, 8)
    for weights, model in (("", trainer.ema), ("_raw", trainer.model)):
        expected = run_inference(model, trainer.schedule, trained_on, current_settings(cfg), cfg.inference.seed, 64,
                                 torch.device("cpu"))["task_mse"]
        assert row[f"train_batch_task_mse{weights}"] == expected
    # a different set of problems than the fresh-draw train_subset split, so a different number
    assert row["train_batch_task_mse_raw"] != row["train_task_mse_raw"]


def test_contrastive_noise_fresh_changes_only_the_contrastive_term(tmp_path):
    """`fresh` (the reference) draws the contrastive positives/negatives from their own noise; `shared` reuses the
    denoising term's. The first step's denoising loss is the same, the contrastive statistics are not."""
    stats = {}
    for mode in ("fresh", "shared"):
        cfg = tiny_config("objective.name=softplus", f"objective.contrastive_noise={mode}", "train.batch_size=32")
        stats[mode] = Trainer(cfg, tmp_path / mode, echo=False).train_step()
    assert stats["fresh"]["train_denoise_mse"] == stats["shared"]["train_denoise_mse"]
    assert stats["fresh"]["E_pos"] != stats["shared"]["E_pos"]
    assert stats["fresh"]["loss_contrastive"] != stats["shared"]["loss_contrastive"]
