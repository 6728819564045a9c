"""Matrix-inversion problems: a seeded batch generator and fixed evaluation splits.

In-distribution: R ~ U(-1, 1)^{n x n}, A = 2 R R^T + 0.5 I (SPD, lambda_min >= 0.5).
Harder (out of distribution): A = 2 R R^T + 0.1 I. The target is A^-1. Both are flattened to n*n values and
not normalised (the IRED release). Unlike the reference, evaluation sets are fixed and seeded, so that numbers are
comparable run to run.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from functools import lru_cache

import torch

RIDGE = {"in_dist": 0.5, "harder": 0.1}
SPLITS: tuple[str, ...] = ("train_subset", "val", "val_harder")
SPLIT_RIDGE = {"train_subset": RIDGE["in_dist"], "val": RIDGE["in_dist"], "val_harder": RIDGE["harder"]}
# Each split draws from its own stream: eval_seed + offset.
_SPLIT_SEED_OFFSET = {"train_subset": 1, "val": 2, "val_harder": 3}
_MEAN_INVERSE_SEED_OFFSET = 99
_MEAN_INVERSE_SAMPLES = 8192


@dataclass(frozen=True)
class Problems:
    """A batch of problems: inputs ``A`` and targets ``A_inv``, each (B, n*n), float32."""

    A: torch.Tensor
    A_inv: torch.Tensor

    def __len__(self) -> int:
        return self.A.shape[0]

    def slice(self, start: int, stop: int) -> Problems:
        return Problems(self.A[start:stop], self.A_inv[start:stop])

    def to(self, device: torch.device | str) -> Problems:
        return Problems(self.A.to(device), self.A_inv.to(device))


def sample_problems(
    batch: int, n: int, ridge: float, generator: torch.Generator, helper: Executor | None = None
) -> Problems:
    """Draw ``batch`` problems A = 2 R R^T + ridge I in one batched call (no per-sample loop).

    The inverse is computed in float64 through the Cholesky factor (A is SPD) and stored as float32, so targets
    carry no solver noise. With ``helper`` (a thread) the second half of the inverses is computed there at the same
    time (:func:`spd_inverse`): the same numbers.
    """
    R = torch.rand(batch, n, n, generator=generator, dtype=torch.float64).mul_(2).sub_(1)  # (B, n, n), U(-1, 1)
    # 2 R R^T + ridge I, in place: doubling is exact, so (R R^T) * 2 has the bits of (2 R) R^T, and adding the ridge
    # to the diagonal alone those of adding ridge * I
    A = torch.bmm(R, R.transpose(1, 2)).mul_(2)
    A.diagonal(dim1=1, dim2=2).add_(ridge)
    A_inv = spd_inverse(A, helper)
    return Problems(A.reshape(batch, n * n).float(), A_inv.reshape(batch, n * n).float())


def spd_inverse(A: torch.Tensor, helper: Executor | None = None) -> torch.Tensor:
    """Inverses (B, n, n) of symmetric positive definite matrices A (B, n, n), through their Cholesky factors.

    The batched factorisation and inverse run one matrix at a time (LAPACK's potrf and potri on each), on one
    core; with ``helper`` the second half of the batch runs there while this thread does the first: each matrix's
    numbers are its own, so the result is the same bit for bit.
    """
    if helper is None or A.shape[0] < 2:
        return torch.cholesky_inverse(torch.linalg.cholesky(A))
    out = torch.empty_like(A)
    half = A.shape[0] // 2

    def invert(part: slice) -> None:
        torch.cholesky_inverse(torch.linalg.cholesky(A[part]), out=out[part])

    second = helper.submit(invert, slice(half, None))
    invert(slice(0, half))
    second.result()
    return out


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@lru_cache(maxsize=32)
def make_split(split: str, n: int, size: int, eval_seed: int) -> Problems:
    """The fixed evaluation set ``split`` (one of SPLITS): same arguments, same problems, on every machine run."""
    if split not in SPLIT_RIDGE:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    return sample_problems(size, n, SPLIT_RIDGE[split], _generator(eval_seed + _SPLIT_SEED_OFFSET[split]))


@lru_cache(maxsize=32)
def mean_inverse(n: int, eval_seed: int) -> torch.Tensor:
    """Mean in-distribution A^-1 (about 0.36 I at n=20), estimated on a fixed sample; shape (n*n,)."""
    probs = sample_problems(
        _MEAN_INVERSE_SAMPLES, n, RIDGE["in_dist"], _generator(eval_seed + _MEAN_INVERSE_SEED_OFFSET)
    )
    return probs.A_inv.mean(0)


def baseline_mses(targets: torch.Tensor, n: int, eval_seed: int) -> dict[str, float]:
    """Task MSE of the two trivial predictors (zero, the mean in-distribution inverse) on ``targets`` (B, n*n)."""
    mean = mean_inverse(n, eval_seed)
    return {
        "predict_zero_mse": float(targets.pow(2).mean()),
        "predict_mean_mse": float((targets - mean).pow(2).mean()),
    }


def trivial_baselines(split: str, n: int, size: int, eval_seed: int) -> dict[str, float]:
    """Task MSE of the two trivial predictors on a split: every learned number must be read against these."""
    return baseline_mses(make_split(split, n, size, eval_seed).A_inv, n, eval_seed)


class TrainStream:
    """Online training problems from a seeded generator whose state is checkpointed (exact resume)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.generator = _generator(seed)

    def next(self, batch: int, helper: Executor | None = None) -> Problems:
        return sample_problems(batch, self.n, RIDGE["in_dist"], self.generator, helper)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
