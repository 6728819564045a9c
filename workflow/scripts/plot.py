"""One registered plot (ired.reporting.plots.PLOTS) from the tables its rule declares (the rules plot_<name>,
plots.smk)."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.core.errors import one_line_errors  # noqa: E402 (after the log redirect)

with one_line_errors(f"plot_{snakemake.params.plot}"):  # a corrupt run-folder file: one line, exit 2
    from ired.reporting.plots import plot_named, render

    plot = plot_named(snakemake.params.plot)
    render(
        plot.name,
        snakemake.output.png,
        {table: getattr(snakemake.input, table) for table in plot.inputs},
        run_dir=snakemake.params.run_dir or None,
        **snakemake.params.options,
    )
