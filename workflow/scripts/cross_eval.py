"""Evaluate one checkpoint under every protocol x split x weights of the grid: one JSON each (rule cross_eval_checkpoint).

The evaluation (ired.evaluate.evaluate_grid: the checkpoint is loaded once) runs as a job of ired's dispatcher with
the settings file named by the `dispatch` resource, so it gets the same retries and re-attach as training; this
process only waits and imports no torch. A job that finished while no head watched it (the head was killed) is
collected on the rerun, and any JSON that Snakemake removed meanwhile is written again from the job's result.
"""

import json
import logging
import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

from ired.atomic import write_text_atomic
from ired.dispatch import DispatchError, dispatch, load_settings
from ired.dispatch.jobs import call_target
from ired.dispatch.runner import stop_on_signals

stop_on_signals()  # SIGTERM like Ctrl-C: cancel the job in flight, record it, exit

run, milestone = snakemake.wildcards.run, snakemake.wildcards.milestone
settings = load_settings(snakemake.resources.get("dispatch"))
outputs = [Path(p).resolve() for p in snakemake.output.evaluations]
records = Path(snakemake.input.checkpoint).parent.parent / "dispatch" / f"eval-{milestone}"  # <run folder>/dispatch/
# torch threads: the cores Snakemake reserved for the job locally, the CPUs the job asked for on Slurm
threads = settings.cpus if settings.cluster == "slurm" else max(1, snakemake.threads)
logging.info("evaluating %s (dispatch: %s; records in %s)", snakemake.input.checkpoint, settings.cluster, records)
try:
    rows = dispatch(
        call_target, "ired.evaluate:evaluate_grid", threads,
        str(Path(snakemake.input.checkpoint).resolve()),
        [tuple(entry) for entry in snakemake.params.grid],
        [str(p) for p in outputs],
        {"run": run, "milestone": milestone},
        settings=settings, run_dir=records, name=f"eval-{run}-{milestone}",
    )
except DispatchError as exc:  # the dispatcher's one line (cause, attempts, logs), not a traceback
    for stream in (sys.stderr, sys.__stderr__):
        print(f"ired dispatch: error: {exc}", file=stream)
    sys.exit(1)
for row, path in zip(rows, outputs):
    if not path.exists():  # removed by Snakemake before this rerun, after the job had written it
        write_text_atomic(path, json.dumps(row, indent=1) + "\n")
        logging.info("%s: written again from the job's result", path)
    print(row["protocol"], row["split"], row["weights"],
          {k: row.get(k) for k in ("task_mse", "denoise_mse", "predict_mean_mse")})
