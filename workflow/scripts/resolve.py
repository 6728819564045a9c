"""Write one run's resolved config (rule resolve): the text resolved when the workflow was parsed, atomically."""

import sys

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

from ired.atomic import write_text_atomic

write_text_atomic(snakemake.output.config, snakemake.params.text)
print(f"wrote {snakemake.output.config}")
