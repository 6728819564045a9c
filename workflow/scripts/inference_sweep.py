"""The inference-steps sweep of one run's last checkpoint on each configured split (rule inference_sweep)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.errors import one_line_errors

with one_line_errors("inference_sweep"):  # a corrupt run-folder file: one line, exit 2
    import torch

    from ired.evaluate import write_run_sweep

    torch.set_num_threads(max(1, snakemake.threads))
    rows = write_run_sweep(
        snakemake.input.checkpoint,
        snakemake.output.sweep,
        snakemake.params.steps,
        snakemake.params.splits,
        snakemake.params.weights,
        extra={**snakemake.params.run, "milestone": "last"},
    )
    for row in rows:
        print({k: row.get(k) for k in ("split", "steps_per_level", "task_mse", "rejected_frac", "energy_monotone_frac")})
