"""Fingerprint of the numbers a few tiny runs and the pipeline's tables of them produce, to check that a refactor
changes no number.

    python tests/fingerprint_runs.py record OUT.json [--work DIR]   # train, evaluate, tabulate; write OUT.json
    python tests/fingerprint_runs.py compare OLD.json NEW.json      # exit 1 (naming each difference) unless equal

Record on the old code, record on the new (same machine, same torch), compare. With ``src/`` on PYTHONPATH when
the package is not installed. Not part of the test suite; CPU only, one thread.

The runs: each variant of VARIANTS trains at the `tiny` scale (config/scales/tiny.yaml) with seed 3, four of them
(MORE_SEEDS) also with seed 4, in a pipeline-shaped folder (``results/tiny/<experiment>-s<seed>/`` under the
working folder). One more run, the curriculum variant, is SIGKILLed mid-run by fault injection and resumed by the
same `ired train` command. Per run (keyed by the variant's name for seed 3, ``<variant>-s4`` for seed 4) the
fingerprint holds every logged metric (except the wall-clock ``sec_per_step``), the SHA-256 of every tensor of
the milestone and final checkpoints (model, EMA, optimiser, RNG, data stream, sampler) with their other fields,
the evaluation of the final checkpoint under every protocol x split x weights and its inference sweep.

The tables (key ``tables``), built from those run folders by the library entry points the workflow's rules call,
from the working folder as the pipeline runs: rule ``evaluate`` (each run's milestones exported and evaluated over
the cross-eval grid of config/config.yaml, the last one swept over its inference steps), rule ``cross_eval``
(``cross_eval.csv``), ``inference_sweep_table`` (``inference_sweep.csv``), ``summary_table`` (``summary.csv``
and ``runs.csv``), ``findings`` (``ired findings ... --baseline denoise``: ``findings.md``), and the
per-experiment cross-eval table of the report and plots. The CSV tables are kept as the text of each cell (pandas
writes every float with all its digits), less the wall-clock ``wall_time_s`` and the checkpoint's
``code_version`` (the commit); ``summary.md`` is not kept (summary.csv and runs.csv with wall times, for
people). The findings compare the three experiments that have seeds 3 and 4 with ``denoise`` (Welch's test, Holm
over the 6 comparisons); ``findings_tests`` holds those comparisons with every float whole. Comparing two
fingerprints is a bit-for-bit comparison of all of it.

Takes about 30 s on one core of a 2-core machine shared with other work (12 trainings, 648 evaluations).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCALE = ROOT / "config" / "scales" / "tiny.yaml"
PIPELINE_CONFIG = ROOT / "config" / "config.yaml"  # the cross-eval grid, exported milestones, inference sweep
MILESTONES = (10,)
SEED = 3
COMMON = [f"train.milestones=[{','.join(map(str, MILESTONES))}]"]

VARIANTS: dict[str, list[str]] = {
    "denoise": ["objective.name=denoise"],
    "denoise_reg_accum": ["objective.name=denoise", "objective.energy_reg=0.1", "train.micro_batch=8"],
    "softplus_mined": ["objective.name=softplus", "negatives.name=mined"],
    "softplus_mined_scalar": ["objective.name=softplus", "negatives.name=mined", "model.head=scalar"],
    "hinge_langevin_shared": [
        "objective.name=hinge", "negatives.name=langevin", "objective.contrastive_noise=shared",
        "objective.margin_final=2.0", "objective.margin_ramp_steps=10", "objective.energy_reg=0.05",
        "objective.t_min=1", "train.micro_batch=8",
    ],
    "cd_mined_fixed": ["objective.name=cd", "negatives.name=mined", "negatives.mining=fixed", "objective.weight=0.1"],
    "softplus_replay_curriculum": [
        "objective.name=softplus", "negatives.name=replay", "negatives.curriculum_steps=10",
        "negatives.steps_start=0", "negatives.init_noise_start=6.0", "negatives.replay_prob_start=0.2",
        "objective.adaptive_temperature=true", "objective.start_step=3", "objective.warmup_steps=5",
        "train.micro_batch=8",
    ],
}
RESUMED = "softplus_replay_killed_resumed"  # the curriculum variant, SIGKILLed at step 13 and resumed
MORE_SEEDS: dict[str, tuple[int, ...]] = {  # a second seed, so that the findings have tests to make
    "denoise": (4,), "denoise_reg_accum": (4,), "softplus_mined": (4,), "hinge_langevin_shared": (4,),
}
BASELINE = "denoise"  # the findings compare the experiments with this one's seeds (3, 4) against it
RESULTS = Path("results") / "tiny"  # the pipeline's results folder of the scale, relative to the working folder
CSV_TABLES = ("cross_eval.csv", "inference_sweep.csv", "summary.csv", "runs.csv")  # written by the rules
UNREPEATABLE = ("wall_time_s", "code_version")  # table columns that are no numbers of the maths (clock, git)


def _tensor_digest(value: Any) -> Any:
    """Tensors as (dtype, shape, sha256); containers recursively; other values as they are."""
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        return {"dtype": str(t.dtype), "shape": list(value.shape),
                "sha256": hashlib.sha256(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"").hexdigest()}
    if isinstance(value, dict):
        return {str(k): _tensor_digest(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tensor_digest(v) for v in value]
    return value


def _checkpoint(path: Path) -> dict[str, Any]:
    from ired.runs.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    state = {k: v for k, v in state.items() if k not in ("code_version", "created")}
    interval = state.get("interval")
    if isinstance(interval, dict):  # wall-clock sums are not numbers of the maths
        state["interval"] = {part: {k: v for k, v in values.items() if k != "sec_per_step"}
                             for part, values in interval.items()}
    return _tensor_digest(state)


def _run_fingerprint(run_dir: Path) -> dict[str, Any]:
    from ired.evaluation.evaluate import evaluate_grid, inference_sweep

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    final = run_dir / "final.pt"
    grid = [(p, s, w) for p in ("current", "reference", "denoise") for s in ("train_subset", "val", "val_harder")
            for w in ("ema", "raw")]
    with tempfile.TemporaryDirectory() as tmp:
        evals = evaluate_grid(final, grid, [Path(tmp) / f"{i}.json" for i in range(len(grid))], device="cpu")
    sweep = inference_sweep(final, (1, 3), "val", "ema", device="cpu")
    drop = {"checkpoint", "code_version"}
    return {
        "metrics": [{k: v for k, v in r.items() if k != "sec_per_step"} for r in rows],
        "checkpoints": {p.name: _checkpoint(p) for p in sorted((run_dir / "checkpoints").glob("step_*.pt"))}
        | {"best.pt": _checkpoint(run_dir / "checkpoints" / "best.pt"), "final.pt": _checkpoint(final)},
        "evaluations": [{k: v for k, v in r.items() if k not in drop} for r in evals],
        "sweep": [{k: v for k, v in r.items() if k not in drop} for r in sweep],
        "resolved_config": (run_dir / "resolved_config.yaml").read_text(),
        "contract": json.loads((run_dir / "metrics_contract.json").read_text()),
    }


def _cli(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "import sys; from ired.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)


def _run(experiment: str, seed: int, overrides: list[str]) -> dict[str, Any]:
    """A run as the pipeline names it (``<experiment>-s<seed>`` in ``results/<scale>/``), with its descriptor for
    the summary (:func:`ired.reporting.summary.write_summary`); the description is its overrides."""
    run = f"{experiment}-s{seed}"
    return {"experiment": experiment, "seed": seed, "run_id": run, "run_dir": str(RESULTS / run),
            "description": " ".join(overrides)}


def _table(text: str) -> list[dict[str, str]]:
    """A CSV table as rows of its cells' text (exact: pandas writes every float with all its digits), less the
    wall-clock and code-version columns."""
    return [{k: v for k, v in row.items() if k not in UNREPEATABLE} for row in csv.DictReader(io.StringIO(text))]


def _evaluate(runs: list[dict[str, Any]]) -> list[str]:
    """What the rule ``evaluate`` does for each run (workflow/scripts/evaluate.py, without the dispatcher): its
    milestones exported to ``milestones/``, each evaluated over the cross-eval grid of config/config.yaml into
    ``eval/``, the last one swept over the inference steps into ``inference_sweep.json``. Paths are relative to
    the working folder, so that the tables' path columns are the same in every record. Returns the evaluation
    files, run x milestone x grid (the rule ``cross_eval``'s list)."""
    from ired.evaluation.run_milestones import evaluate_run, export_milestones

    pipeline = yaml.safe_load(PIPELINE_CONFIG.read_text())
    grid = list(itertools.product(*(pipeline["cross_eval"][k] for k in ("protocols", "splits", "weights"))))
    sweep = pipeline["inference_sweep"]
    milestones = [f"step_{s:07d}" for s in MILESTONES] + pipeline["export"]
    files: list[str] = []
    for r in runs:
        run_dir = Path(r["run_dir"])
        export_milestones(run_dir, milestones, run_dir / "milestones")
        last = str(run_dir / "milestones" / "last.pt")
        done = evaluate_run(
            [(m, str(run_dir / "milestones" / f"{m}.pt")) for m in milestones], grid, str(run_dir / "eval"),
            r["run_id"],
            {"checkpoint": last, "out": str(run_dir / "inference_sweep.json"), "steps": sweep["steps"],
             "splits": sweep["splits"], "weights": sweep["weights"],
             "extra": {"experiment": r["experiment"], "seed": r["seed"], "run": r["run_id"], "milestone": "last",
                       "checkpoint": last}},
        )
        files += done["evaluations"]
    return files


def _findings_tests(summary_csv: Path) -> dict[str, Any]:
    """What ``ired findings`` computes from the summary, every float whole: the experiments it compares or leaves
    out, and each comparison with the baseline (Welch's test, its interval, the Holm-adjusted p, the verdict)."""
    import dataclasses

    import pandas as pd

    from ired.reporting.comparisons import comparable, compare_family

    summary = pd.read_csv(summary_csv)
    compared, budgets, other_seeds = comparable(summary, BASELINE)
    family = compare_family(summary, BASELINE, compared)
    return {
        "compared": compared, "other_budgets": budgets, "other_seeds": other_seeds,
        "comparisons": {split: {exp: {**dataclasses.asdict(c), "p": c.p, "verdict": c.verdict,
                                      "test": dataclasses.asdict(c.test)}
                                for exp, c in by_exp.items()}
                        for split, by_exp in family.items()},
    }


def _tables(runs: list[dict[str, Any]], evaluations: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The pipeline's tables of these runs (run from the working folder), built by the entry points its rules
    call: cross_eval (``cross_eval.csv``), inference_sweep_table (``inference_sweep.csv``), summary_table
    (``summary.csv``, ``runs.csv``) and findings (``ired findings``: ``findings.md``); with the per-experiment
    cross-eval table of the report and plots, and the findings' tests at full precision."""
    import pandas as pd

    from ired.reporting.cross_eval import aggregate_cross_eval, cross_eval_by_experiment, read_cross_eval
    from ired.reporting.inference_sweep import aggregate_sweeps
    from ired.reporting.summary import write_summary

    files = {name: RESULTS / name for name in (*CSV_TABLES, "summary.md", "findings.md")}
    aggregate_cross_eval(evaluations, files["cross_eval.csv"])
    aggregate_sweeps([Path(r["run_dir"], "inference_sweep.json") for r in runs], files["inference_sweep.csv"])
    write_summary(runs, files["cross_eval.csv"], files["summary.csv"], files["summary.md"], files["runs.csv"],
                  sweep_csv=files["inference_sweep.csv"])
    findings = ["findings", str(files["summary.csv"]), "--baseline", BASELINE, "--out", str(files["findings.md"])]
    done = _cli(findings, env)
    if done.returncode != 0:
        raise SystemExit(f"ired findings: exit code {done.returncode}: {done.stderr.strip()}")
    runs_table = pd.read_csv(files["runs.csv"])
    by_experiment = cross_eval_by_experiment(read_cross_eval(files["cross_eval.csv"]), runs_table)
    return {
        **{name: _table(files[name].read_text()) for name in CSV_TABLES},
        "cross_eval_by_experiment": _table(by_experiment.to_csv(index=False)),
        "findings.md": files["findings.md"].read_text().splitlines(),  # line by line: a difference names its line
        "findings_tests": _findings_tests(files["summary.csv"]),
    }


def record(out: Path, work: Path) -> None:
    import torch

    from ired.core.config_io import load_config
    from ired.training.trainer import train

    torch.set_num_threads(1)
    result: dict[str, Any] = {"torch": torch.__version__}
    runs = []
    for name, overrides in VARIANTS.items():
        for seed in (SEED, *MORE_SEEDS.get(name, ())):
            run = _run(name, seed, overrides)
            cfg = load_config(SCALE, [f"name={name}", *COMMON, f"seed={seed}", *overrides])
            train(cfg, work / run["run_dir"], echo=False)
            key = name if seed == SEED else run["run_id"]
            result[key] = _run_fingerprint(work / run["run_dir"])
            runs.append(run)
            print(f"recorded {key}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = _run(RESUMED, SEED, VARIANTS["softplus_replay_curriculum"])
    args = ["train", str(SCALE), "--out", str(work / run["run_dir"])]
    for s in [f"name={RESUMED}", *COMMON, f"seed={SEED}", *VARIANTS["softplus_replay_curriculum"]]:
        args += ["--set", s]
    killed = _cli([*args, "--set", "faults.kill_at_step=13"], env).returncode
    resumed = _cli([*args, "--set", "faults.kill_at_step=13"], env).returncode  # the fault fires once: resumes
    if killed != -9 or resumed != 0:
        raise SystemExit(f"{RESUMED}: expected a SIGKILL then a clean resume, got exit codes {killed}, {resumed}")
    result[RESUMED] = _run_fingerprint(work / run["run_dir"])
    runs.append(run)
    print(f"recorded {RESUMED}", flush=True)
    with contextlib.chdir(work):  # as the pipeline runs: results/<scale>/... relative to the working folder
        result["tables"] = _tables(runs, _evaluate(runs), env)
    print("recorded the tables", flush=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


def _differences(a: Any, b: Any, where: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in one" for k in sorted(set(a) ^ set(b), key=str)]
        for k in sorted(set(a) & set(b), key=str):
            out += _differences(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if a == b or (a != a and b != b) else [f"{where}: {a!r} != {b!r}"]


def compare(old: Path, new: Path) -> int:
    diffs = _differences(json.loads(old.read_text()), json.loads(new.read_text()), "")
    for line in diffs[:50]:
        print(line)
    print(f"{len(diffs)} differences" if diffs
          else "identical: every metric, checkpoint tensor, evaluation, sweep row and table cell")
    return 1 if diffs else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--work", type=Path, default=None, help="run folders (default: a temporary folder)")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("old", type=Path)
    cmp_.add_argument("new", type=Path)
    args = parser.parse_args()
    if args.command == "compare":
        return compare(args.old, args.new)
    if args.work is not None:
        record(args.out, args.work)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            record(args.out, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
