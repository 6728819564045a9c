"""Copy one milestone (or an external checkpoint) to its declared file, checking that it loads as a checkpoint."""

import shutil
import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.checkpoint import load_checkpoint

state = load_checkpoint(snakemake.params.source)  # a missing or foreign file fails here, naming it
shutil.copyfile(snakemake.params.source, snakemake.output.checkpoint)
print(f"{snakemake.params.source} (step {state['step']}) -> {snakemake.output.checkpoint}")
