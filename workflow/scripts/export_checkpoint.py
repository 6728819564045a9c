"""Copy one milestone (or an external checkpoint) to its declared file (rules export_checkpoint, import_checkpoint).

A plain copy: the cross-eval stage loads every exported file and names it if it is not a checkpoint.
"""

import shutil
import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

shutil.copyfile(snakemake.params.source, snakemake.output.checkpoint)
print(f"{snakemake.params.source} -> {snakemake.output.checkpoint}")
