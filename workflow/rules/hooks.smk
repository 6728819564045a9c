# What a pipeline run leaves besides its outputs: the scale it used (results/.last_scale, the scale of the next
# command without --config scale=), and, when a job failed, one line per failed run with its failure class and the
# command that reruns it, plus a provisional summary that shows the failed runs as rows (docs/PIPELINE.md, "What is
# never lost"). Hooks run only for real executions: a dry run, --lint or a refused head writes nothing.

import os
import sys


def rerun_command():
    """`snakemake` with this command's profile, `{target}` and this scale: the command that reruns one target."""
    argv = sys.argv[1:]
    profile = [f"--profile {argv[i + 1]}" for i, a in enumerate(argv[:-1]) if a == "--profile"]
    return " ".join(["snakemake", *profile, "{target}", f"--config scale={config['scale']}"])


def provisional_summary():
    """The summary table with the failed runs as rows, written when the summary rule could not run; its mtime is
    set to the epoch so that the next run that can build it (the failed runs fixed) replaces it."""
    from ired.reporting.summary import write_summary

    paths = [Path(OUT, name) for name in ("summary.csv", "summary.md", "runs.csv")]
    cross_eval = Path(OUT, "cross_eval.csv")
    sweep = Path(OUT, "inference_sweep.csv")
    write_summary(get_run_specs(), cross_eval if cross_eval.exists() else None, *paths,
                  sweep_csv=sweep if sweep.exists() else None)
    for path in paths:
        os.utime(path, (0, 0))
    return paths[1]


onstart:
    from ired.dispatch.stopping import detach_on_signals

    layout.remember_scale(config["scale"])
    # SIGTERM or SIGHUP (a logout, a head that is a Slurm job at its limit): the rule scripts let go of their jobs,
    # which run on, then Snakemake stops as on SIGTERM (releasing its lock); the same command re-attaches. Ctrl-C
    # (SIGINT) still cancels the jobs.
    detach_on_signals(b".snakemake/scripts/")


onerror:
    from ired.dispatch.outcomes import failed_runs, failure_report, running_runs

    # a failed evaluation is rerun by its experiment's target, or, for a sweep's run, by its own eval/ folder
    targets = {run: str(SCALE.run(run).evaluations) if r["sweep"] else r["experiment"]
               for run, r in KNOWN_RUNS.items()}
    failed = failed_runs({run: SCALE.run(run).folder for run in KNOWN_RUNS}, targets)
    running = running_runs({run: SCALE.run(run).folder for run in KNOWN_RUNS})
    try:  # the terminal may be gone (a logout): the rule logs and the run folders keep everything said here
        if running:
            print(f"ired: {len(running)} training job(s) still running with no head watching them "
                  f"({', '.join(running[:5])}{' ...' if len(running) > 5 else ''}): the same command re-attaches "
                  "to them; `ired status` shows them meanwhile", file=sys.stderr)
        if failed or not running:
            print(failure_report(failed, rerun_command()), file=sys.stderr)
    except OSError:
        pass
    if failed:
        try:
            print(f"ired: provisional summary with the failed runs as rows: {provisional_summary()}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - the report above matters more than this table
            print(f"ired: no provisional summary ({type(exc).__name__}: {exc})", file=sys.stderr)
