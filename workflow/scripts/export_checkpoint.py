"""Copy one milestone (or an external checkpoint) to its declared file (rules export_checkpoint, import_checkpoint).

A plain copy of the trainer's own files. An external checkpoint is opened and its embedded run config validated
first (ired.inputs.check_checkpoint): a bad one stops here, in one line, and is never handed to the cross-eval jobs.
"""

import shutil
import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

if snakemake.rule == "import_checkpoint":
    from ired.errors import IredError
    from ired.inputs import check_checkpoint

    try:
        check_checkpoint(snakemake.params.source, f"external_checkpoints.{snakemake.wildcards.run}.path")
    except IredError as exc:
        for stream in (sys.stderr, sys.__stderr__):
            print(f"ired: error: {exc}", file=stream)
        sys.exit(2)
shutil.copyfile(snakemake.params.source, snakemake.output.checkpoint)
print(f"{snakemake.params.source} -> {snakemake.output.checkpoint}")
