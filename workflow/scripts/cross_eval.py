"""Evaluate one checkpoint under every protocol x split x weights of the grid: one JSON each (rule cross_eval_checkpoint)."""

import json
import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

import torch

from ired.evaluate import evaluate_checkpoint

torch.set_num_threads(max(1, snakemake.threads))
for (protocol, split, weights), path in zip(snakemake.params.grid, snakemake.output.evaluations):
    row = evaluate_checkpoint(snakemake.input.checkpoint, protocol, split, weights)
    row.update(run=snakemake.wildcards.run, milestone=snakemake.wildcards.milestone)
    with open(path, "w") as handle:
        json.dump(row, handle, indent=1)
    print(protocol, split, weights, {k: row.get(k) for k in ("task_mse", "denoise_mse", "predict_mean_mse")})
