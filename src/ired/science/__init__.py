"""The maths of IRED: matrix-inversion problems, the diffusion schedule, the energy model and its denoiser, the
annealed sampler, negatives, losses, the contrastive schedules, the EMA rule and the torch device."""
