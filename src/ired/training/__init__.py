"""Training: the trainer (denoising plus contrastive shaping, EMA, accumulation, checkpoints, exact resume), how
its step is computed (kernel, precision), its run-folder outputs and fault injection for drills."""
