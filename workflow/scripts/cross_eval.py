"""Evaluate one checkpoint under every protocol x split x weights of the grid: one JSON each (rule cross_eval_checkpoint)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

import torch

from ired.evaluate import evaluate_grid

torch.set_num_threads(max(1, snakemake.threads))
rows = evaluate_grid(
    snakemake.input.checkpoint,
    [tuple(entry) for entry in snakemake.params.grid],
    list(snakemake.output.evaluations),
    extra={"run": snakemake.wildcards.run, "milestone": snakemake.wildcards.milestone},
)
for row in rows:
    print(row["protocol"], row["split"], row["weights"], {k: row.get(k) for k in ("task_mse", "denoise_mse", "predict_mean_mse")})
