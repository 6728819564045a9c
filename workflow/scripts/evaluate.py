"""Evaluate one run in one job (rules evaluate, evaluate_external): export its milestones, cross-evaluate each, and
run the inference-steps sweep of its last checkpoint (ired.evaluation.run_milestones).

The milestones are copied here (file copies; an external checkpoint is opened and its embedded run config validated
first, so a bad one stops here in one line). The evaluation runs as one job of ired's dispatcher with the settings
file named by the `dispatch` resource (local by default, Slurm with --profile slurm), so it gets the same retries
and re-attach as training; this process only waits and imports no torch. Its records are in
<run folder>/dispatch/eval-all/. A job that finished while no head watched it (the head was killed) is collected on
the rerun, and any file that Snakemake removed meanwhile is written again from the job's result.
"""

import logging
import shutil
import sys
from pathlib import Path

sys.stdout = sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

from ired.core.errors import IredError  # noqa: E402 (after the log redirect)
from ired.core.exit_codes import INTERRUPTED  # noqa: E402 (after the log redirect)
from ired.dispatch import DispatchError, dispatch, load_settings  # noqa: E402 (after the log redirect)
from ired.dispatch.executor import HeadDetached  # noqa: E402 (after the log redirect)
from ired.dispatch.jobs import call_target  # noqa: E402 (after the log redirect)
from ired.dispatch.settings import resources_from_snakemake  # noqa: E402 (after the log redirect)
from ired.dispatch.stopping import say, stop_on_signals  # noqa: E402 (after the log redirect)
from ired.evaluation.run_milestones import export_milestones, write_missing  # noqa: E402 (after the log redirect)
from ired.runs.paths import RunPaths  # noqa: E402 (after the log redirect)

stop_on_signals()  # Ctrl-C cancels the job in flight (recorded); SIGHUP/SIGTERM leave it running

run = snakemake.wildcards.run
milestones_dir = Path(snakemake.output.milestones).resolve()
eval_dir = Path(snakemake.output.evaluations).resolve()
run_dir = milestones_dir.parent  # results/<scale>/<run> (ired.runs.paths.RunPaths)
if snakemake.rule == "evaluate_external":
    from ired.runs.inputs import check_checkpoint

    try:
        check_checkpoint(snakemake.input.source, f"external_checkpoints.{run}.path")
    except IredError as exc:
        for stream in (sys.stderr, sys.__stderr__):
            print(f"ired: error: {exc}", file=stream)
        sys.exit(2)
    milestones_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(snakemake.input.source, milestones_dir / "external.pt")
    print(f"{snakemake.input.source} -> {milestones_dir / 'external.pt'}")
    milestones, sweep = ["external"], None
else:
    milestones = snakemake.params.run["milestones"]
    for line in export_milestones(run_dir, milestones, milestones_dir):
        print(line)
    sweep = {
        "checkpoint": str(milestones_dir / "last.pt"),
        "out": str(Path(snakemake.output.inference_sweep).resolve()),
        "steps": snakemake.params.sweep_steps,
        "splits": snakemake.params.sweep_splits,
        "weights": snakemake.params.sweep_weights,
        # rows name the checkpoint as the pipeline does (relative to the working directory); the job opens it
        "extra": {**{k: snakemake.params.run[k] for k in ("experiment", "seed", "run")}, "milestone": "last",
                  "checkpoint": str(Path(snakemake.output.milestones, "last.pt"))},
    }
checkpoints = [(m, str(milestones_dir / f"{m}.pt")) for m in milestones]
settings = load_settings(snakemake.resources.get("dispatch"), resources=resources_from_snakemake(snakemake.resources))
records = RunPaths(run_dir).eval_record("all")
# torch threads: the cores Snakemake reserved for the job locally, the CPUs the job asked for on Slurm
threads = settings.cpus_per_task if settings.cluster == "slurm" else max(1, snakemake.threads)
logging.info("evaluating %s: %s (dispatch: %s; records in %s)", run, ", ".join(milestones), settings.cluster, records)
try:
    result = dispatch(
        call_target, "ired.evaluation.run_milestones:evaluate_run", threads,
        checkpoints, [tuple(entry) for entry in snakemake.params.grid], str(eval_dir), run, sweep,
        settings=settings, run_dir=records, name=f"eval-{run}",
    )
except HeadDetached:  # the job runs on; the runner said so
    sys.exit(INTERRUPTED)
except DispatchError as exc:  # the dispatcher's one line (cause, attempts, logs), not a traceback
    print(f"ired dispatch: error: {exc}", file=sys.stderr)  # the rule's log
    say(f"ired dispatch: error: {exc}")  # the terminal, if it is still there
    sys.exit(1)
for path in write_missing(result):  # removed by Snakemake before this rerun, after the job had written it
    logging.info("%s: written again from the job's result", path)
for path, row in result["evaluations"].items():
    print(Path(path).relative_to(eval_dir), {k: row.get(k) for k in ("task_mse", "denoise_mse", "predict_mean_mse")})
for row in (result["sweep"] or {}).get("rows", []):
    print({k: row.get(k) for k in ("split", "steps_per_level", "task_mse", "rejected_frac", "energy_monotone_frac")})
