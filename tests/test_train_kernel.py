"""train.kernel and train.precision: the fused step and bf16 compute the default step's maths within rounding; the
fused step compiles only for long runs at large batches."""

from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from ired.core.config_io import load_config
from ired.core.errors import ConfigError
from ired.science.compiled import CompiledEnergy, CompiledGraphFree
from ired.science.models import EXACT, graph_energy
from ired.training.kernel import FusedEnergyGrad, batch_helper, compiles, update_ema
from ired.training.trainer import Trainer

SCALES = Path(__file__).resolve().parents[1] / "config" / "scales"


def _steps(tmp_path, name, overrides, steps=6):
    trainer = Trainer(tiny_config("train.ema_every=1", "train.ema_start=2", *overrides), tmp_path / name, echo=False)
    losses = [trainer.train_step()["loss_total"] for _ in range(steps)]
    return trainer, losses


@pytest.mark.parametrize("objective", [["objective.name=denoise"],
                                       ["objective.name=softplus", "negatives.name=mined", "model.head=scalar"]])
def test_fused_kernel_trains_like_autograd_within_float32_rounding(tmp_path, objective):
    reference, ref_losses = _steps(tmp_path, "autograd", objective)
    fused, losses = _steps(tmp_path, "fused", [*objective, "train.kernel=fused"])
    kernel = fused.diffusion.kernel
    assert isinstance(kernel.energy_grad, FusedEnergyGrad) and not kernel.energy_grad.compiled
    assert kernel.graph_free is EXACT and kernel.energy is graph_energy  # compiled only where compiling pays
    assert fused.optimizer.defaults["fused"] and not reference.optimizer.defaults["fused"]
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    for model in ("model", "ema"):
        for a, b in zip(getattr(fused, model).parameters(), getattr(reference, model).parameters(), strict=True):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_compiled_kernel_trains_like_autograd_within_float32_rounding(tmp_path):
    """A run long enough to compile (train.steps x batch_size): grad_y E, the contrastive terms' E and mining's
    descent all go through torch.compile, and the first steps are the reference's within rounding."""
    long = ["objective.name=softplus", "negatives.name=mined", "negatives.steps=2", "train.steps=1000000"]  # auto
    reference, ref_losses = _steps(tmp_path, "autograd", long, steps=3)
    fused, losses = _steps(tmp_path, "compiled", [*long, "train.kernel=fused"], steps=3)
    kernel = fused.diffusion.kernel
    assert isinstance(kernel.energy_grad, FusedEnergyGrad) and kernel.energy_grad.compiled
    assert isinstance(kernel.energy, CompiledEnergy) and isinstance(kernel.graph_free, CompiledGraphFree)
    assert fused.diffusion.sampler.graph_free is kernel.graph_free  # mining's descent is the compiled one
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    for a, b in zip(fused.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bf16_changes_the_numbers_by_its_rounding_only(tmp_path):
    _, fp32 = _steps(tmp_path, "fp32", [], steps=3)
    _, bf16 = _steps(tmp_path, "bf16", ["train.precision=bf16"], steps=3)
    assert bf16 != fp32
    assert bf16 == pytest.approx(fp32, rel=5e-2)


def test_tf32_is_for_cuda_only(tmp_path):
    with pytest.raises(ConfigError, match="train.precision=tf32 needs a CUDA device"):
        Trainer(tiny_config("train.precision=tf32", "device=cpu"), tmp_path, echo=False)


def test_only_long_runs_at_large_batches_compile():
    for scale in ("tiny", "laptop", "reference_laptop"):
        assert not compiles(load_config(f"{SCALES}/{scale}.yaml", ["train.kernel=fused"]).train), scale
    assert compiles(load_config(f"{SCALES}/paper.yaml", ["train.kernel=fused"]).train)
    assert not compiles(load_config(f"{SCALES}/paper.yaml", []).train)
    assert not compiles(load_config(f"{SCALES}/paper.yaml", ["train.kernel=fused", "train.compile=never"]).train)
    assert compiles(load_config(f"{SCALES}/laptop.yaml", ["train.kernel=fused", "train.compile=always"]).train)
    assert not compiles(load_config(f"{SCALES}/laptop.yaml", ["train.compile=always"]).train)  # autograd: nothing


def test_the_for_each_ema_is_the_per_parameter_ema():
    raw = [torch.randn(5, 3), torch.randn(7)]
    ema = [torch.randn(5, 3), torch.randn(7)]
    one_by_one = [e.clone() for e in ema]
    update_ema(one_by_one, raw, 0.9, "autograd")
    update_ema(ema, raw, 0.9, "fused")
    assert all(torch.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(ema, one_by_one, strict=True))
    assert not torch.allclose(one_by_one[0], raw[0])


@pytest.mark.parametrize("objective", [["objective.name=denoise"],
                                       ["objective.name=softplus", "negatives.name=mined"]])
def test_the_batch_helper_thread_changes_no_number(tmp_path, objective):
    """At two threads a step's levels, noises and half of its targets' inverses are prepared in a helper thread:
    the weights after a few steps are those of the same steps prepared in one thread, bit for bit."""
    previous = torch.get_num_threads()
    try:
        runs = []
        for name, helped in (("helped", True), ("alone", False)):
            trainer = Trainer(tiny_config(*objective, "train.threads=2", "train.batch_size=64"), tmp_path / name,
                              echo=False)
            assert trainer.batch_helper is not None  # train.threads=2: the helper this test is about
            if not helped:
                trainer.batch_helper = None
            stats = [trainer.train_step() for _ in range(4)]
            runs.append((stats, [p.detach().clone() for p in trainer.model.parameters()],
                         trainer._last_problems))
        (helped_stats, helped_params, helped_last), (stats, params, last) = runs
        assert helped_stats == stats
        assert all(torch.equal(a, b) for a, b in zip(helped_params, params, strict=True))
        assert torch.equal(helped_last.A_inv, last.A_inv)
    finally:
        torch.set_num_threads(previous)


def test_batch_helper_only_when_torch_may_use_two_threads():
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert batch_helper() is None
        torch.set_num_threads(2)
        helper = batch_helper()
        assert helper is not None
        helper.shutdown()
    finally:
        torch.set_num_threads(previous)
