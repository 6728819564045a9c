"""Train one run (rule train) through ired's dispatcher, with the settings file named by the `dispatch` resource.

That resource is profiles/default/dispatch.yaml (local subprocesses) unless a profile sets another (Slurm). A finished run folder whose final.pt
Snakemake removed (a forced run, a changed config) restarts from scratch; an interrupted one resumes. A diverged
run is a result, not an infrastructure failure: its newest checkpoint becomes final.pt so the summary reports it.
"""

import json
import logging
import shutil
import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

from ired.dispatch import DispatchError, FailureKind, load_settings, run_training  # imports no torch: this waits

run_dir = Path(snakemake.params.run_dir)
status_file = run_dir / "status.json"
previous = json.loads(status_file.read_text()).get("status") if status_file.exists() else None
if previous in ("completed", "diverged"):
    logging.info("%s: previous run %s; dropping its checkpoints to train afresh", run_dir, previous)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)

settings = load_settings(snakemake.resources.get("dispatch"))
logging.info("training %s in %s (dispatch: %s); progress in %s", snakemake.input.config, run_dir,
             settings.cluster, run_dir / "train.log")
try:
    run_training(snakemake.input.config, run_dir, settings)
except DispatchError as exc:
    from ired.checkpoint import latest_checkpoint

    newest = latest_checkpoint(run_dir / "checkpoints")
    if exc.kind != FailureKind.diverged or newest is None:
        raise
    logging.warning("%s; keeping %s as final.pt (status.json says diverged)", exc, newest)
    shutil.copyfile(newest, snakemake.output.final)
