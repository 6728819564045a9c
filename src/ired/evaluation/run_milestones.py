"""The evaluation of one run, as one job: its milestones exported, each cross-evaluated, the last one swept.

The pipeline's rule `evaluate` does all the evaluation of a finished run in one job (one job per run keeps a
1,000-run sweep plannable in seconds): :func:`export_milestones` copies the milestones into the run's
``milestones/`` on the pipeline's head (file copies, no torch); :func:`evaluate_run`, a plain picklable function
that the dispatcher runs as one job (locally or on Slurm), evaluates every exported checkpoint under the
cross-evaluation grid (:func:`ired.evaluation.evaluate.evaluate_grid`: one JSON per protocol x split x weights, in
``eval/<milestone>/``) and runs the inference-steps sweep of the last checkpoint
(:func:`ired.evaluation.evaluate.write_run_sweep`); :func:`write_missing` writes again, from the job's returned
rows, any file that the pipeline removed while the job ran without a head watching it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ired.runs.atomic import write_text_atomic
from ired.runs.paths import RunPaths


def export_milestones(run_dir: str | Path, milestones: Sequence[str], out_dir: str | Path) -> list[str]:
    """Copy each milestone of a finished run to ``out_dir/<milestone>.pt``; one line per copy.

    A run that diverged before reaching a milestone (best.pt never written, a step after the divergence) exports
    its result, final.pt (its newest checkpoint before the divergence), in its place, and says so.
    """
    paths, out_dir = RunPaths(Path(run_dir)), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for milestone in milestones:
        source = paths.milestone_source(milestone)
        if not source.exists():
            status_file = paths.status
            status = json.loads(status_file.read_text()) if status_file.exists() else {}
            if status.get("status") == "diverged":
                lines.append(f"{source} does not exist: the run diverged at step {status.get('diverged_at')} before "
                             f"this milestone; exporting its result {paths.final} instead")
                source = paths.final
        dest = out_dir / f"{milestone}.pt"
        shutil.copyfile(source, dest)
        lines.append(f"{source} -> {dest}")
    return lines


def evaluation_file(eval_dir: str | Path, milestone: str, protocol: str, split: str, weights: str) -> Path:
    """``<run>/eval/<milestone>/<protocol>.<split>.<weights>.json``: one evaluation row."""
    return Path(eval_dir) / milestone / f"{protocol}.{split}.{weights}.json"


def evaluate_run(
    checkpoints: Sequence[tuple[str, str]],
    grid: Sequence[tuple[str, str, str]],
    eval_dir: str,
    run: str,
    sweep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate each ``(milestone, checkpoint file)`` under every (protocol, split, weights) of ``grid``, then, when
    ``sweep`` is given (``checkpoint``, ``out``, ``steps``, ``splits``, ``weights``, ``extra``), the inference-steps
    sweep of its checkpoint. Every file is written atomically; returns what was written: ``{"evaluations":
    {path: row}, "sweep": {"out": path, "rows": [...]} or None}``."""
    from ired.evaluation.evaluate import evaluate_grid, write_run_sweep

    evaluations: dict[str, Any] = {}
    for milestone, checkpoint in checkpoints:
        paths = [str(evaluation_file(eval_dir, milestone, *entry)) for entry in grid]
        triples = [(protocol, split, weights) for protocol, split, weights in grid]
        rows = evaluate_grid(checkpoint, triples, paths, {"run": run, "milestone": milestone})
        evaluations.update(zip(paths, rows, strict=True))
    swept = None
    if sweep is not None:
        rows = write_run_sweep(sweep["checkpoint"], sweep["out"], sweep["steps"], sweep["splits"], sweep["weights"],
                               extra=sweep.get("extra"))
        swept = {"out": sweep["out"], "rows": rows}
    return {"evaluations": evaluations, "sweep": swept}


def write_missing(result: dict[str, Any]) -> list[Path]:
    """Write again each file of an :func:`evaluate_run` result that no longer exists (the pipeline removes a job's
    outputs before it runs the job again, also when the job had finished while no head watched it)."""
    # the texts ired.evaluation.evaluate.evaluate_grid and ired.evaluation.evaluate.write_run_sweep write
    # (no torch here)
    written = []
    files = {path: json.dumps(row, indent=1, allow_nan=False) + "\n" for path, row in result["evaluations"].items()}
    if result.get("sweep"):
        files[result["sweep"]["out"]] = json.dumps(result["sweep"]["rows"], indent=1) + "\n"
    for path, text in files.items():
        if not Path(path).exists():
            write_text_atomic(path, text)
            written.append(Path(path))
    return written
