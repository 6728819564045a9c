"""The diffusion process: cosine noise schedule, forward noising and the conversions the sampler needs.

Cosine schedule of Nichol & Dhariwal (2021), "Improved Denoising Diffusion Probabilistic Models", eq. 17,
with offset s and betas clipped at 0.999. With T = 10 and s = 0.008, sqrt(alphabar) runs from .9859 (t=0)
to .0049 (t=9), as in the IRED reference.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def cosine_betas(steps: int, s: float = 0.008) -> torch.Tensor:
    """beta_t for t = 0..steps-1 (float64)."""
    x = torch.linspace(0, steps, steps + 1, dtype=torch.float64)
    f = torch.cos(((x / steps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphabar = f / f[0]
    return (1 - alphabar[1:] / alphabar[:-1]).clamp(0, 0.999)


class Schedule(nn.Module):
    """Schedule constants as buffers (they follow the module to its device), indexed by integer t of shape (B,)."""

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    step_size: torch.Tensor

    def __init__(self, steps: int, s: float = 0.008) -> None:
        super().__init__()
        betas = cosine_betas(steps, s)
        alphas_cumprod = torch.cumprod(1 - betas, 0)
        self.steps = steps
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alphas_cumprod", alphas_cumprod.float(), persistent=False)
        self.register_buffer("sqrt_alphas_cumprod", alphas_cumprod.sqrt().float(), persistent=False)
        self.register_buffer("sqrt_one_minus_alphas_cumprod", (1 - alphas_cumprod).sqrt().float(), persistent=False)
        # IRED's gradient-descent step size lambda_t = beta_t * sqrt(1 / (1 - alphabar_t)): 0.167 .. 0.999 at T=10.
        self.register_buffer("step_size", (betas * (1 / (1 - alphas_cumprod)).sqrt()).float(), persistent=False)

    @staticmethod
    def at(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """values[t] shaped (B, 1) to broadcast over the flattened problem."""
        return values[t].unsqueeze(-1)

    def q_sample(self, y0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """y_t = sqrt(ab_t) y0 + sqrt(1 - ab_t) eps."""
        return self.at(self.sqrt_alphas_cumprod, t) * y0 + self.at(self.sqrt_one_minus_alphas_cumprod, t) * eps

    def predict_x0(self, y_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert q_sample given a noise estimate: y0 = (y_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)."""
        return (y_t - self.at(self.sqrt_one_minus_alphas_cumprod, t) * eps) / self.at(self.sqrt_alphas_cumprod, t)

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        """sqrt(ab_t), shape (B, 1): the factor between x0 space and level t (noise-free part)."""
        return self.at(self.sqrt_alphas_cumprod, t)
