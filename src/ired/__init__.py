"""ired: IRED-style diffusion energy-based models for matrix inversion, from a laptop to a Slurm cluster."""

__version__ = "0.1.0"
