"""The ired command line: train, evaluate, dispatch, findings, print configs and the schema.

User errors (bad config, missing or corrupt checkpoint, corrupt metrics.jsonl, a run folder another trainer holds)
print one line on stderr and exit 2, without a traceback; a diverged run exits 3; a failed write (disk full, quota,
read-only file system) prints one line naming the file and exits 4 (the run folder keeps its previous state and the
same command resumes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ired.errors import DivergedError, IredError, StorageError

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3
EXIT_STORAGE = 4


def _cmd_train(args: argparse.Namespace) -> int:
    from ired.config import load_config
    from ired.train import train

    cfg = load_config(args.config, args.set)
    try:
        train(cfg, Path(args.out))
    except DivergedError as exc:
        print(f"ired train: {exc} (status.json in {args.out}; not retried)", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from ired.config import dump_config, load_config

    print(dump_config(load_config(args.config, args.set)), end="")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from ired.config import json_schema

    print(json.dumps(json_schema(), indent=1))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ired.evaluate import evaluate_checkpoint

    rows = []
    for protocol in args.protocol:
        for split in args.split:
            for weights in args.weights:
                rows.append(evaluate_checkpoint(args.checkpoint, protocol, split, weights, args.size, args.device))
    text = json.dumps(rows if len(rows) > 1 else rows[0], indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ired", description=__doc__.splitlines()[0])
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

    p = sub.add_parser("schema", help="print the JSON schema of a run config")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint under protocols x splits x weights")
    p.add_argument("checkpoint")
    p.add_argument("--protocol", action="append", default=None, help="current | reference | denoise (repeatable)")
    p.add_argument("--split", action="append", default=None, help="train_subset | val | val_harder (repeatable)")
    p.add_argument("--weights", action="append", default=None, help="ema | raw (repeatable)")
    p.add_argument("--size", type=int, default=None, help="evaluate only the first SIZE problems of the split")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.set_defaults(func=_cmd_evaluate)

    from ired.dispatch.cli import add_dispatch_commands  # `ired dispatch-train`: submitit, retries, re-attach
    from ired.findings import add_findings_command  # `ired findings`: results/findings.md, README check

    add_dispatch_commands(sub)
    add_findings_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "evaluate":
        args.protocol = args.protocol or ["current"]
        args.split = args.split or ["val"]
        args.weights = args.weights or ["ema"]
    try:
        return int(args.func(args) or 0)
    except StorageError as exc:
        print(f"ired {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    except IredError as exc:
        print(f"ired {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # an unconverted write or read failure: still one line naming the file
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"ired {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_STORAGE
    except KeyboardInterrupt:
        print(f"ired {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
