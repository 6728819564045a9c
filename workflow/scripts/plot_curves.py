"""Training curves of one run folder (rule plot_curves)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.errors import one_line_errors

with one_line_errors("plot_curves"):  # a corrupt run-folder file: one line, exit 2
    from ired.plots import plot_run_curves

    plot_run_curves(snakemake.params.run_dir, snakemake.output.png, snakemake.input.cross_eval)
