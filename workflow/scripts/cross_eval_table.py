"""Concatenate every evaluation JSON into results/cross_eval.csv (rule cross_eval).

The rule's inputs are the runs' eval/ folders (outputs of the rule evaluate); the JSONs expected in them are its
parameter `files`. A JSON deleted by hand inside an existing folder is named, with the command that remakes it.
"""

import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.reporting.cross_eval import aggregate_cross_eval  # noqa: E402 (after the log redirect)
from ired.runs.paths import run_of_evaluation  # noqa: E402 (after the log redirect)

missing = [path for path in snakemake.params.files if not Path(path).exists()]
if missing:
    folder = run_of_evaluation(missing[0]).evaluations
    message = (f"ired: error: {missing[0]} is missing ({len(missing)} evaluation file(s) in all); remake the "
               f"evaluations of its run with: snakemake --forcerun {folder}")
    for stream in (sys.stderr, sys.__stderr__):
        print(message, file=stream)
    sys.exit(2)
table = aggregate_cross_eval(snakemake.params.files, snakemake.output.table)
print(f"{len(table)} rows -> {snakemake.output.table}")
