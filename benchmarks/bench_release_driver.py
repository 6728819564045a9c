"""Drive the IRED release's own training loop for ``python -m benchmarks.bench_reference``; run with the release's Python.

``python bench_release_driver.py --release PATH --rank 5 --batch-size 256 --threads 2``. The release (github
yilundu/ired_code_release) is imported from PATH, not copied: its ``models.EBM`` and ``models.DiffusionWrapper``,
``dataset.Inverse`` and ``diffusion_lib.denoising_diffusion_pytorch_1d``'s ``GaussianDiffusion1D`` and
``Trainer1D``, built with the arguments the release's ``train.py`` passes for ``--dataset inverse --model mlp``
(``denoise``: ``--supervise-energy-landscape False``; ``contrastive``: ``True``; both with
``--use-innerloop-opt True``, which only changes inference). Steps are run by the release's own
``Trainer1D.train()`` loop (data loading, forward, backward, clipping, Adam, EMA, progress bar); each call runs
it for the steps asked. Only this file's glue differs from the release's command line:

- ``torch.set_num_threads(--threads)``: ``train.py`` sets ``MKL_NUM_THREADS=1``, i.e. one thread on a CPU
  build; this benchmark gives both implementations the same count;
- ``data_workers=0``: the batches are drawn in the training process (``train.py``'s default is one worker
  process per core, which on a small machine competes with the training threads);
- checkpoints and evaluations are never due (``save_and_sample_every`` is beyond the run);
- a step is timed between consecutive calls of the trainer's EMA update (the last statement of a step) by
  wrapping that method; the time ``next()`` spends in its data loader is timed the same way;
- the training quantities of each step are read, not changed: the losses the release's ``p_losses`` returns
  (``loss_denoise``, ``loss_energy``) and, for ``contrastive``, the mean margin ``E_neg - E_pos`` of the energies
  it feeds to its contrastive loss (its one ``return_energy`` call on the 2 x batch concatenation of positives and
  negatives), by wrapping the two forward methods;
- if ``torchvision`` is not installed (the release's ``dataset`` module imports it for image data sets that
  matrix inversion does not use; PyPI has no CPU build of it for every torch), an empty stand-in is put in
  ``sys.modules``; any use of it fails.

Protocol (one JSON object a line): on start the driver prints ``{"ready": true, ...versions...}`` on stdout; for
each request ``{"objective": "denoise" | "contrastive", "steps": k}`` read on stdin it runs k more steps and prints
``{"wall": [...], "cpu": [...], "data": [...], "loss_denoise": [...], "loss_energy": [...], "margin": [...]}``: per
step, wall seconds, process CPU seconds (all threads), wall seconds drawing the batch, and the step's training
quantities (``loss_energy`` and ``margin`` are null for ``denoise``). A request with ``"record": FILE`` and
``"step_seed": s`` (only as an objective's first request) runs the steps the same way but reseeds torch's generator
to ``s + i`` right after step i's batch is drawn, and saves the weights before and after, the EMA weights after and
every batch to FILE, for ``python -m benchmarks.parity_lockstep`` to replay. Anything the release prints goes to stderr.
End of input ends the driver.
Uses only the standard library besides what the release imports.
"""  # noqa: E501 (the docstring's first line is the --help description, kept whole)

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

OBJECTIVES = ("denoise", "contrastive")


def _stand_in_torchvision() -> bool:
    """Put an empty ``torchvision`` (the names the release's dataset module imports) in sys.modules if absent."""
    if importlib.util.find_spec("torchvision") is not None:
        return False
    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.datasets")
    modules = {name: types.ModuleType(name) for name in names}
    modules["torchvision"].__path__ = []
    modules["torchvision.transforms"].__path__ = []
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    modules["torchvision"].datasets = modules["torchvision.datasets"]  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = modules["torchvision.transforms.functional"]  # type: ignore[attr-defined]

    class _Unavailable:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("torchvision is not installed (bench_release_driver's stand-in)")

    modules["torchvision.datasets"].ImageFolder = _Unavailable  # type: ignore[attr-defined]
    modules["torchvision.datasets"].CIFAR100 = _Unavailable  # type: ignore[attr-defined]
    sys.modules.update(modules)
    return True


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


class _StepClock:
    """Per-step wall/CPU seconds between calls of a wrapped method, and the wall seconds of a wrapped iterator."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.data: list[float] = []
        self._last = (0.0, 0.0)

    def start(self) -> None:
        self.wall, self.cpu, self.data = [], [], []
        self._last = (time.perf_counter(), time.process_time())

    def wrap_step_end(self, method: Callable[[], Any]) -> Callable[[], Any]:
        def timed() -> Any:
            result = method()
            now = (time.perf_counter(), time.process_time())
            self.wall.append(now[0] - self._last[0])
            self.cpu.append(now[1] - self._last[1])
            self._last = now
            return result

        return timed

    def wrap_batches(self, batches: Iterator[Any]) -> Iterator[Any]:
        while True:
            start = time.perf_counter()
            batch = next(batches)
            self.data.append(time.perf_counter() - start)
            yield batch


class _StepQuantities:
    """The losses the release's ``p_losses`` returns and the margin of its contrastive energies, per step."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.rows: list[dict[str, float | None]] = []
        self._margin: float | None = None

    def wrap_losses(self, forward: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            self._margin = None
            loss, (loss_denoise, loss_energy, _loss_opt) = out = forward(*args, **kwargs)
            contrastive = self._margin is not None
            self.rows.append({"loss_denoise": float(loss_denoise), "margin": self._margin,
                              "loss_energy": float(loss_energy) if contrastive else None})
            return out

        return recorded

    def wrap_energy(self, forward: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(inp: Any, x: Any, t: Any, *args: Any, return_energy: bool = False, **kwargs: Any) -> Any:
            out = forward(inp, x, t, *args, return_energy=return_energy, **kwargs)
            if return_energy and x.shape[0] == 2 * self.batch_size:  # [positives; negatives], p_losses' last call
                real, fake = out.detach().chunk(2, 0)
                self._margin = float((fake - real).mean())
            return out

        return recorded


class ReleaseTrainer:
    """The release's Trainer1D for one objective, stepped k steps at a time by its own train() loop."""

    def __init__(self, release: str, objective: str, rank: int, batch_size: int, lr: float, workdir: str) -> None:
        from dataset import Inverse  # the release's modules (sys.path holds --release)
        from diffusion_lib.denoising_diffusion_pytorch_1d import (
            GaussianDiffusion1D,
            Trainer1D,
        )
        from models import EBM, DiffusionWrapper

        dataset = Inverse("train", rank, False)
        model = DiffusionWrapper(EBM(inp_dim=dataset.inp_dim, out_dim=dataset.out_dim))
        diffusion = GaussianDiffusion1D(
            model, seq_length=32, objective="pred_noise", timesteps=10, sampling_timesteps=10,
            supervise_energy_landscape=objective == "contrastive", use_innerloop_opt=True,
            show_inference_tqdm=False, continuous=True,
        )
        self.trainer = Trainer1D(
            diffusion, dataset, train_batch_size=batch_size, validation_batch_size=256, train_lr=lr,
            train_num_steps=0, gradient_accumulate_every=1, ema_decay=0.995, data_workers=0, amp=False,
            metric="mse", results_folder=os.path.join(workdir, objective), cond_mask=False,
            validation_dataset=dataset, extra_validation_datasets={}, extra_validation_every_mul=10,
            save_and_sample_every=10**12, evaluate_first=False, latent=False, autoencode_model=None,
        )
        self.clock = _StepClock()
        self.trainer.ema.update = self.clock.wrap_step_end(self.trainer.ema.update)
        self.trainer.dl = self.clock.wrap_batches(self.trainer.dl)
        self.quantities = _StepQuantities(batch_size)
        diffusion.forward = self.quantities.wrap_losses(diffusion.forward)
        model.forward = self.quantities.wrap_energy(model.forward)

    def run(self, steps: int) -> dict[str, list[Any]]:
        self.trainer.train_num_steps = self.trainer.step + steps
        self.clock.start()
        self.quantities.rows = []
        self.trainer.train()
        rows = self.quantities.rows
        return {"wall": self.clock.wall, "cpu": self.clock.cpu, "data": self.clock.data,
                **{key: [r[key] for r in rows] for key in ("loss_denoise", "loss_energy", "margin")}}

    def run_recorded(self, steps: int, step_seed: int, path: str) -> dict[str, list[Any]]:
        """``run(steps)`` from a fresh trainer, with torch's generator reseeded to ``step_seed + i`` right after step
        i's batch is drawn (so its t and noise can be drawn again elsewhere), saving to ``path`` (torch.save) the
        energy network's weights before and after, the EMA's weights after, and every batch as the loop feeds it
        to the model (float32)."""
        import torch

        if self.trainer.step != 0:
            raise RuntimeError(f"a recorded run starts from a fresh trainer; this one is at step {self.trainer.step}")
        def weights(diffusion: Any) -> dict[str, Any]:  # GaussianDiffusion1D -> DiffusionWrapper -> EBM
            return {k: v.detach().clone() for k, v in diffusion.model.ebm.state_dict().items()}

        initial = weights(self.trainer.model)
        batches: list[tuple[Any, Any]] = []
        source = self.trainer.dl

        def reseeded() -> Iterator[Any]:
            i = 0
            while True:
                inp, label = next(source)
                batches.append((inp.float().clone(), label.float().clone()))
                torch.manual_seed(step_seed + i)
                i += 1
                yield inp, label

        self.trainer.dl = reseeded()
        try:
            reply = self.run(steps)
        finally:
            self.trainer.dl = source
        torch.save({
            "step_seed": step_seed, "initial": initial,
            "final": weights(self.trainer.model), "final_ema": weights(self.trainer.ema.ema_model),
            "inputs": torch.stack([b[0] for b in batches]), "targets": torch.stack([b[1] for b in batches]),
            **{key: reply[key] for key in ("loss_denoise", "loss_energy", "margin")},
        }, path)
        return reply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", required=True, help="Folder of the release's code (holds train.py).")
    parser.add_argument("--rank", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    protocol = os.fdopen(os.dup(1), "w")  # replies only; whatever the release prints goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stand_in = _stand_in_torchvision()
    sys.path.insert(0, os.path.abspath(args.release))
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    with tempfile.TemporaryDirectory() as workdir:
        trainers = {
            o: ReleaseTrainer(args.release, o, args.rank, args.batch_size, args.lr, workdir) for o in OBJECTIVES
        }
        ready = {
            "ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": sys.version.split()[0], "torchvision_stand_in": stand_in,
            "packages": {p: _version(p) for p in ("ema-pytorch", "accelerate", "einops", "numpy")},
        }
        print(json.dumps(ready), file=protocol, flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            trainer = trainers[request["objective"]]
            if "record" in request:
                reply = trainer.run_recorded(int(request["steps"]), int(request["step_seed"]), request["record"])
            else:
                reply = trainer.run(int(request["steps"]))
            print(json.dumps(reply), file=protocol, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
