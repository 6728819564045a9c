"""Copy one milestone (or an external checkpoint) to its declared file (rules export_checkpoint, import_checkpoint).

A plain copy: the cross-eval stage loads every exported file and names it if it is not a checkpoint. A run that
diverged before reaching a milestone (best.pt never written, a step after the divergence) exports its result,
final.pt (its newest checkpoint before the divergence), in its place, and says so.
"""

import json
import shutil
import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)

source = Path(snakemake.params.source)
final = snakemake.input.get("final")
if not source.exists() and final is not None:
    status_file = Path(final).parent / "status.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    if status.get("status") == "diverged":
        print(f"{source} does not exist: the run diverged at step {status.get('diverged_at')} before this milestone; "
              f"exporting its result {final} instead")
        source = Path(final)
shutil.copyfile(source, snakemake.output.checkpoint)
print(f"{source} -> {snakemake.output.checkpoint}")
