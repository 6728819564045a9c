"""The dispatcher's commands (wired into ``ired.cli``): ``ired dispatch-train``, the entry point the pipeline's
train rule calls, and ``ired cancel``, which stops the jobs of selected runs.

Flags override the settings file (``--settings``, from the Snakemake profile); flag names are the settings keys.
Exit codes (:mod:`ired.core.exit_codes`) follow ``ired train``: 0 completed, 2 config error, 3 diverged (0 with
``--keep-diverged``, which keeps the newest checkpoint as ``final.pt``); 1 (``GAVE_UP``) when the dispatcher
gave up on an infrastructure failure (retries spent); 130 when stopped (Ctrl-C, ``ired cancel``). The
failure's one-line message names the cause and the log files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ired.core import exit_codes
from ired.dispatch.failures import FailureKind
from ired.dispatch.status import DEFAULT_METRIC

#: The exit code of a failure kind the dispatcher gave up on, as ``ired train`` exits for it (else GAVE_UP).
_EXIT: dict[str, int] = {FailureKind.diverged: exit_codes.DIVERGED,
                         FailureKind.config_error: exit_codes.USER_ERROR}


def add_dispatch_commands(subparsers: Any) -> None:
    """Add ``dispatch-train`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "dispatch-train",
        help="train one run as a cluster job (slurm or local) with retries, fallbacks and re-attach",
    )
    p.add_argument("config", help="resolved run config YAML")
    p.add_argument("--out", required=True, help="run folder (results/<run>); holds job.json and attempts.jsonl")
    p.add_argument("--settings", default=None, help="dispatch settings YAML (from the profile)")
    p.add_argument("--cluster", choices=["slurm", "local"], default=None)
    p.add_argument("--slurm-partition", dest="slurm_partition", default=None)
    p.add_argument("--slurm-account", dest="slurm_account", default=None)
    p.add_argument("--qos", default=None)
    p.add_argument("--mem-mb", dest="mem_mb", type=int, default=None)
    p.add_argument("--cpus-per-task", dest="cpus_per_task", type=int, default=None)
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--runtime", type=int, default=None, help="minutes per attempt (a slice)")
    p.add_argument("--max-attempts", dest="max_attempts", type=int, default=None)
    p.add_argument("--force", action="store_true",
                   help="DELETES the run folder's checkpoints/ and final.pt and trains from step 0 (a finished run is "
                   "otherwise collected, never retrained)")
    p.add_argument("--retrain-changed", action="store_true",
                   help="DELETES a run of another config found in the folder and trains this one (else: exit 2)")
    p.add_argument("--keep-diverged", action="store_true",
                   help="a diverged run is a result: its newest checkpoint becomes final.pt and the exit code is 0")
    p.set_defaults(func=_cmd_dispatch_train)


def _cmd_dispatch_train(args: argparse.Namespace) -> int:
    from ired.core.errors import DispatchError
    from ired.dispatch.runner import run_training
    from ired.dispatch.settings import load_settings
    from ired.dispatch.stopping import stop_on_signals

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    retry = {"max_attempts": args.max_attempts} if args.max_attempts is not None else None
    settings = load_settings(
        args.settings, cluster=args.cluster, slurm_partition=args.slurm_partition, slurm_account=args.slurm_account,
        qos=args.qos,
        mem_mb=args.mem_mb, cpus_per_task=args.cpus_per_task, gpu=args.gpu, runtime=args.runtime, retry=retry,
    )
    stop_on_signals()  # Ctrl-C: cancel the job in flight, log it as interrupted; SIGHUP/SIGTERM: leave it running
    try:
        res = run_training(args.config, args.out, settings, force=args.force,
                           retrain_changed=args.retrain_changed, keep_diverged=args.keep_diverged)
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED  # the runner has cancelled the job and said so
    except DispatchError as exc:
        print(f"ired dispatch-train: error: {exc}", file=sys.stderr)
        if exc.stopped:
            return exit_codes.INTERRUPTED  # stopped on purpose (ired cancel), like Ctrl-C
        return _EXIT.get(exc.kind, exit_codes.GAVE_UP) if exc.kind is not None else exit_codes.GAVE_UP
    if res.skipped:
        print(f"ired dispatch-train: {res.run_dir} already {'diverged' if res.diverged else 'completed'}; nothing "
              "submitted", file=sys.stderr)
    elif res.diverged:
        print(f"ired dispatch-train: {res.run_dir} diverged; kept {res.run_dir / 'final.pt'} as its result; "
              f"attempts: {res.run_dir / 'attempts.jsonl'}", file=sys.stderr)
    else:
        last = res.attempts[-1]
        print(f"ired dispatch-train: {res.run_dir} completed after {last['attempt']} attempt(s) "
              f"(last job {last['job_id']} on {last['node']}); attempts: {res.run_dir / 'attempts.jsonl'}",
              file=sys.stderr)
    return exit_codes.OK


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} not allowed (allowed: seconds > 0)")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} not allowed (allowed: an integer >= 1)")
    return int(text)


def _states(text: str) -> list[str]:
    from ired.dispatch.status import STATES

    states = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in states if s not in STATES]
    if bad or not states:
        raise argparse.ArgumentTypeError(f"state {', '.join(bad) or repr(text)} not allowed (allowed: "
                                         f"{', '.join(STATES)}; several: queued,running)")
    return states


def _add_selection(p: Any) -> None:
    p.add_argument("runs", nargs="*", metavar="RUN", help="run names or globs (q208-s1, 'q208-*'); default: every run")
    p.add_argument("-e", "--experiment", action="append", default=[], metavar="GLOB",
                   help="only runs of these experiments or sweeps (globs: 'lr_sweep*'; repeatable)")
    p.add_argument("-s", "--state", action="append", type=_states, default=[], metavar="STATE[,STATE]",
                   help="only runs in these states (pending, queued, running, completed, diverged, failed, "
                   "interrupted; repeatable)")
    p.add_argument("--scale", default=None, help="the runs of results/SCALE (default: the scale last run here)")
    p.add_argument("--results", default=None, metavar="DIR", help="the runs of this folder instead of results/SCALE")


def add_run_commands(subparsers: Any) -> None:
    """Add ``status`` and ``cancel`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser("status", help="one line per run: state, step/steps, ETA, latest metric, attempts, "
                              "node, last failure class (reads files and one squeue; never Snakemake's lock)")
    _add_selection(p)
    p.add_argument("--metric", default=DEFAULT_METRIC, metavar="NAME",
                   help=f"the metrics.jsonl column shown beside the step: its latest value (default {DEFAULT_METRIC})")
    p.add_argument("--json", action="store_true", help="one JSON object: every run's fields and the paths of its logs")
    p.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C (or --count refreshes)")
    p.add_argument("--interval", type=_seconds, default=5.0, metavar="S", help="seconds between refreshes (default 5)")
    p.add_argument("--count", type=_count, default=None, metavar="N", help="with --watch: stop after N refreshes")
    p.set_defaults(func=_cmd_status)

    p = subparsers.add_parser("logs", help="the paths of a run's logs, one a line: its train.log, the pipeline's job "
                              "logs, then each job's log (stderr, stdout) of its training and its evaluation, "
                              "oldest first")
    p.add_argument("run", metavar="RUN", help="a run name (q208-s1)")
    p.add_argument("--scale", default=None, help="the runs of results/SCALE (default: the scale last run here)")
    p.add_argument("--results", default=None, metavar="DIR", help="the runs of this folder instead of results/SCALE")
    p.add_argument("--all", action="store_true", help="also the logs not written yet (where they will be)")
    p.set_defaults(func=_cmd_logs)

    p = subparsers.add_parser("cancel", help="cancel the jobs of the selected runs (Slurm or local) and mark them "
                              "interrupted; the next pipeline command resumes them")
    _add_selection(p)
    p.add_argument("--wait", type=float, default=60.0, metavar="S",
                   help="seconds to wait for the heads waiting on the jobs to log them (default 60)")
    p.set_defaults(func=_cmd_cancel)


def _selected(args: argparse.Namespace) -> tuple[Any, list[Any], list[Any], str]:
    """The results folder, the selected runs, their statuses (all of them when no state is asked for) and the
    note on the queue's view; a selection that names runs and matches none is a one-line error."""
    from ired.core.errors import ConfigError
    from ired.dispatch.runs import find_runs, results_folder, select
    from ired.dispatch.status import collect

    folder = results_folder(args.results, args.scale)
    runs = find_runs(folder)
    chosen = select(runs, args.runs, args.experiment)
    if not chosen and (args.runs or args.experiment):
        wanted = " ".join([*args.runs, *(f"-e {e}" for e in args.experiment)])
        raise ConfigError(f"no run of {folder} matches {wanted} ({len(runs)} runs there, e.g. "
                          f"{', '.join(r.name for r in runs[:5]) or 'none'})")
    found, note = collect(chosen, metric=getattr(args, "metric", DEFAULT_METRIC), logs=getattr(args, "json", False))
    states = {s for group in args.state for s in group}
    if states:
        found = [s for s in found if s.state in states]
        names = {s.run for s in found}
        chosen = [r for r in chosen if r.name in names]
    return folder, chosen, found, note


def _cmd_status(args: argparse.Namespace) -> int:
    import time

    from ired.core.errors import ConfigError
    from ired.dispatch.status import as_json, summary, table

    if args.count is not None and not args.watch:
        raise ConfigError("--count N counts the refreshes of --watch (add --watch)")
    if args.watch and args.json:
        raise ConfigError("--watch and --json do not go together (a script polls --json itself)")
    in_place = args.watch and sys.stdout.isatty()
    shown = 0
    try:
        while True:
            folder, _, found, note = _selected(args)
            if args.json:
                print(as_json(found, folder, note))
                return exit_codes.OK
            lines = [*table(found, args.metric), summary(found, folder, note)]
            if args.watch:
                lines.append(f"every {args.interval:g} s, at {time.strftime('%H:%M:%S')}"
                             + (f" ({shown + 1} of {args.count})" if args.count else "; Ctrl-C stops"))
            # in place on a terminal: home, clear to the end, then the new table; elsewhere, one table after another
            print(("\x1b[H\x1b[J" if in_place else "") + "\n".join(lines), flush=True)
            shown += 1
            if not args.watch or (args.count is not None and shown >= args.count):
                return exit_codes.OK
            if not in_place:
                print(flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:  # how a watch ends
        return exit_codes.OK


def _cmd_logs(args: argparse.Namespace) -> int:
    from ired.core.errors import ConfigError
    from ired.dispatch.runs import find_runs, results_folder
    from ired.runs.logs import run_logs

    folder = results_folder(args.results, args.scale)
    runs = {r.name: r for r in find_runs(folder)}
    if args.run not in runs:
        raise ConfigError(f"no run {args.run} in {folder} ({len(runs)} runs there, e.g. "
                          f"{', '.join(list(runs)[:5]) or 'none'})")
    for log in run_logs(runs[args.run].run_dir, existing=not args.all):
        print(log.path)
    return exit_codes.OK


def _cmd_cancel(args: argparse.Namespace) -> int:
    from ired.dispatch.cancel import cancel_runs

    folder, runs, _, _ = _selected(args)
    done = cancel_runs(runs, wait_s=args.wait)
    if not done:
        print(f"ired cancel: no job in flight among the {len(runs)} selected run(s) of {folder}")
        return exit_codes.OK
    for c in done:
        where = f"{'Slurm' if c.record.cluster == 'slurm' else 'local'} job {c.job_id or '(id not recorded)'}"
        said = {FailureKind.interrupted.value: "marked interrupted", None: "its head has not logged it yet"}
        state = said.get(c.outcome, c.outcome)
        print(f"ired cancel: {c.run} {c.what}: cancelled {where} (attempt {c.record.attempt}); {state}")
    runs_hit = len({c.run for c in done})
    print(f"ired cancel: {len(done)} job(s) of {runs_hit} run(s) cancelled; the same pipeline command resumes them "
          "from their newest checkpoints")
    return exit_codes.OK
