"""The ired command line: train, evaluate, plot, dispatch, status, logs, cancel, findings, print configs and the schema.

User errors (bad config, bad argument, missing checkpoint, a file that cannot be read or written) print one line
on stderr and exit 2, without a traceback; a diverged run exits 3; output into a closed pipe (``ired schema | head``)
ends quietly with 0; a failed write (disk full, quota, read-only file system) prints one line naming the file and
exits 4 (the run folder keeps its previous state and the same command resumes). ``--debug`` (or ``IRED_DEBUG=1``)
shows the traceback of any error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from ired.core import exit_codes
from ired.core.errors import ConfigError, DivergedError, IredError, SliceEnd, StorageError

DEVICES = ("auto", "cpu", "cuda")
PROTOCOLS = ("current", "reference", "denoise")
SPLITS = ("train_subset", "val", "val_harder")
WEIGHTS = ("ema", "raw")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (allowed: an integer >= 1)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} not allowed (allowed: an integer >= 1)")
    return value


def _check_out(path: str | None) -> None:
    """Fail before any work when ``--out`` cannot become a file: it is a folder, or a parent is a file."""
    if path is None:
        return
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"--out {path}: is a folder (allowed: a file path)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {path}: {parent} is a file, not a folder")
            break


def _cmd_train(args: argparse.Namespace) -> int:
    from ired.core.config_io import load_config
    from ired.training.trainer import train

    cfg = load_config(args.config, args.set)
    try:
        train(cfg, Path(args.out), progress_bar=True)  # drawn only while stderr is a terminal
    except ConfigError as exc:  # found once the run starts (e.g. no CUDA on this node): name the config too
        raise ConfigError(f"{args.config}: {exc}") from None
    except DivergedError as exc:
        print(f"ired train: {exc} (status.json in {args.out}; not retried)", file=sys.stderr)
        return exit_codes.DIVERGED
    except SliceEnd as exc:
        print(f"ired train: {exc}", file=sys.stderr)
        return exit_codes.SLICE_END
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from ired.core.config_io import dump_config, load_config

    print(dump_config(load_config(args.config, args.set)), end="")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    if args.experiment:
        from ired.registry.experiments import ExperimentEntry

        print(json.dumps(ExperimentEntry.model_json_schema(), indent=1))
        return 0
    from ired.core.config_io import json_schema

    print(json.dumps(json_schema(), indent=1))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ired.core.progress import progress
    from ired.evaluation.evaluate import evaluate_checkpoint

    _check_out(args.out)
    grid = [(p, s, w) for p in args.protocol for s in args.split for w in args.weights]
    rows = []
    with progress(len(grid), f"evaluate {Path(args.checkpoint).name}", unit="evaluation") as bar:  # a terminal only
        for protocol, split, weights in grid:
            rows.append(evaluate_checkpoint(args.checkpoint, protocol, split, weights, args.size, args.device))
            bar.update(1)
    text = json.dumps(rows if len(rows) > 1 else rows[0], indent=1, allow_nan=False)
    if args.out:
        from ired.runs.atomic import write_text_atomic

        write_text_atomic(args.out, text + "\n")
    print(text)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from ired.reporting.curve_figures import live_curves_figure
    from ired.reporting.figure_canvas import save_png
    from ired.runs.paths import RunPaths

    run_dir = Path(args.run_dir)
    if not RunPaths(run_dir).metrics.is_file():
        raise ConfigError(f"{run_dir}: no metrics.jsonl (allowed: a run folder, results/<scale>/<run>, once its "
                          "trainer has logged a row)")
    out = Path(args.out) if args.out else run_dir / "curves.png"
    _check_out(str(out))
    print(save_png(live_curves_figure(run_dir), out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="ired", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of any error, anywhere on the "
                        "command line (also IRED_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train (or resume) one run")
    p.add_argument("config", help="run config YAML (only differences from the defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.steps=100")
    p.add_argument("--out", required=True, help="run folder (resumes from its checkpoints)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("config", help="print the resolved config (every effective default)")
    p.add_argument("config", nargs="?", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("schema", help="print the JSON schema of a run config (or of a registry entry)")
    p.add_argument("--experiment", action="store_true", help="the schema of one experiment of config/experiments/")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint under protocols x splits x weights")
    p.add_argument("checkpoint")
    p.add_argument("--protocol", action="append", default=None, choices=PROTOCOLS, help="(repeatable; default current)")
    p.add_argument("--split", action="append", default=None, choices=SPLITS, help="(repeatable; default val)")
    p.add_argument("--weights", action="append", default=None, choices=WEIGHTS, help="(repeatable; default ema)")
    p.add_argument("--size", type=positive_int, default=None, help="evaluate only the first SIZE problems of the split")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("plot", help="draw one run's training curves from its folder, while it trains or after "
                       "(no summary table needed)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder, results/<scale>/<run>")
    p.add_argument("--out", default=None, help="the PNG to write (default RUN_DIR/curves.png)")
    p.set_defaults(func=_cmd_plot)

    from ired.dispatch.cli import add_dispatch_commands, add_run_commands  # dispatch-train; cancel
    from ired.reporting.findings_readme import add_findings_command  # `ired findings`: findings.md, README check

    add_dispatch_commands(sub)
    add_run_commands(sub)
    add_findings_command(sub)
    return parser


def _run(args: argparse.Namespace, debug: bool) -> int:
    name = f"ired {args.command}"
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the reader went away (`ired schema | head`): not an error; keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exit_codes.OK
    except StorageError as exc:
        if debug:
            raise
        print(f"{name}: error: {exc}", file=sys.stderr)
        return exit_codes.STORAGE
    except IredError as exc:
        if debug:
            raise
        print(f"{name}: error: {exc}", file=sys.stderr)
        return exit_codes.USER_ERROR
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{name}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return exit_codes.USER_ERROR
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except Exception as exc:  # a bug, not a user error: one line, the traceback on request
        if debug:
            raise
        print(f"{name}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:500]} "
              "(rerun with --debug or IRED_DEBUG=1 for the traceback)", file=sys.stderr)
        return exit_codes.INTERNAL_ERROR


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("IRED_DEBUG", "") not in ("", "0")
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    if args.command == "evaluate":
        args.protocol = args.protocol or ["current"]
        args.split = args.split or ["val"]
        args.weights = args.weights or ["ema"]
    return _run(args, debug)


if __name__ == "__main__":
    sys.exit(main())
