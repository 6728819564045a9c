"""Train one run (rule train) through ired's dispatcher, with the settings file named by the `dispatch` resource.

That resource is profiles/default/dispatch.yaml (local subprocesses) unless a profile sets another (Slurm). The
dispatcher owns the run-folder policy (ired.dispatch.runner.run_training): an attempt in flight is re-attached to
(a rerun after the head died), a finished run is collected (its final.pt restored from its own checkpoint, no job)
unless this command forces it (`fresh` resource) or its config changed, an unfinished one resumes from its newest
checkpoint, and a diverged run is kept as a result. Stopping the head (Ctrl-C, SIGTERM) cancels the job it waits
on and says so; the next command resumes it.
"""

import logging
import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

# the dispatcher imports no torch: this process only waits
from ired.core.exit_codes import INTERRUPTED  # noqa: E402 (after the log redirect)
from ired.dispatch import DispatchError, load_settings, run_training  # noqa: E402 (after the log redirect)
from ired.dispatch.executor import HeadDetached  # noqa: E402 (after the log redirect)
from ired.dispatch.settings import resources_from_snakemake  # noqa: E402 (after the log redirect)
from ired.dispatch.stopping import say, stop_on_signals  # noqa: E402 (after the log redirect)
from ired.runs.paths import RunPaths  # noqa: E402 (after the log redirect)

stop_on_signals()  # Ctrl-C cancels the job in flight (recorded); SIGHUP/SIGTERM leave it running
run_dir = Path(snakemake.params.run_dir)
settings = load_settings(snakemake.resources.get("dispatch"), resources=resources_from_snakemake(snakemake.resources))
fresh = bool(int(snakemake.resources.get("fresh", 0)))
logging.info("training %s in %s (dispatch: %s%s); progress in %s", snakemake.input.config, run_dir,
             settings.cluster, ", forced: trains afresh" if fresh else "", RunPaths(run_dir).train_log)
try:
    result = run_training(snakemake.input.config, run_dir, settings, force=fresh, retrain_changed=True,
                          keep_diverged=True)
except HeadDetached:  # the job runs on; the runner said so
    sys.exit(INTERRUPTED)
except DispatchError as exc:  # the dispatcher's one line (cause, attempts, logs), not a traceback
    print(f"ired dispatch: error: {exc}", file=sys.stderr)  # the rule's log
    say(f"ired dispatch: error: {exc}")  # the terminal, if it is still there
    sys.exit(1)
state = "diverged (kept as a result)" if result.diverged else "completed"
if result.skipped:
    state += ", collected: finished earlier, nothing trained"
logging.info("%s: %s; attempts: %s", run_dir, state, run_dir / "attempts.jsonl")
