"""Copy one milestone (or an external checkpoint) to its declared file (rules export_checkpoint, import_checkpoint).

A plain copy of the trainer's own files. An external checkpoint is opened and its embedded run config validated
first (ired.inputs.check_checkpoint): a bad one stops here, in one line, and is never handed to the cross-eval jobs.
A run that diverged before reaching a milestone (best.pt never written, a step after the divergence) exports its
result, final.pt (its newest checkpoint before the divergence), in its place, and says so.
"""

import json
import shutil
import sys
from pathlib import Path

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
