"""Train one run (rule train) through ired's dispatcher, with the settings file named by the `dispatch` resource.

That resource is profiles/default/dispatch.yaml (local subprocesses) unless a profile sets another (Slurm). The
dispatcher owns the run-folder policy: an attempt in flight is re-attached to (a rerun after the head died), a
finished run that is run again (forced, or its config changed) trains afresh, an interrupted one resumes, and a
diverged run is kept as a result (its newest checkpoint becomes final.pt; status.json says diverged).
"""

import logging
import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

from ired.dispatch import DispatchError, load_settings, run_training  # imports no torch: this process only waits

run_dir = Path(snakemake.params.run_dir)
settings = load_settings(snakemake.resources.get("dispatch"))
logging.info("training %s in %s (dispatch: %s); progress in %s", snakemake.input.config, run_dir,
             settings.cluster, run_dir / "train.log")
try:
    result = run_training(snakemake.input.config, run_dir, settings, restart_finished=True, keep_diverged=True)
except DispatchError as exc:  # the dispatcher's one line (cause, attempts, logs), not a traceback
    for stream in (sys.stderr, sys.__stderr__):
        print(f"ired dispatch: error: {exc}", file=stream)
    sys.exit(1)
logging.info("%s: %s; attempts: %s", run_dir, "diverged (kept as a result)" if result.diverged else "completed",
             run_dir / "attempts.jsonl")
