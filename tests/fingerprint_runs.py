"""Fingerprint of the numbers a few tiny runs produce, to check that a refactor changes no number.

    python tests/fingerprint_runs.py record OUT.json [--work DIR]   # train + evaluate the variants, write OUT.json
    python tests/fingerprint_runs.py compare OLD.json NEW.json      # exit 1 (naming each difference) unless equal

Each variant trains at the `tiny` scale (config/scales/tiny.yaml) with a fixed seed, then its final checkpoint is
evaluated under every protocol x split x weights and swept over inference steps. The fingerprint holds every
logged metric (except the wall-clock ``sec_per_step``), the SHA-256 of every tensor of the milestone and final
checkpoints (model, EMA, optimiser, RNG, data stream, sampler) with their other fields, every evaluation row and
every sweep row: comparing two fingerprints is a bit-for-bit comparison. One variant is SIGKILLed mid-run by fault
injection and resumed by the same command. Runs in about a minute on one core; not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCALE = ROOT / "config" / "scales" / "tiny.yaml"
COMMON = ["train.milestones=[10]", "seed=3"]

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


def _cli(args: list[str], env: dict[str, str]) -> int:
    cmd = [sys.executable, "-c", "import sys; from ired.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False).returncode


def record(out: Path, work: Path) -> None:
    import torch

    from ired.core.config import load_config
    from ired.training.trainer import train

    torch.set_num_threads(1)
    result: dict[str, Any] = {"torch": torch.__version__}
    for name, overrides in VARIANTS.items():
        cfg = load_config(SCALE, [f"name={name}", *COMMON, *overrides])
        train(cfg, work / name, echo=False)
        result[name] = _run_fingerprint(work / name)
        print(f"recorded {name}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sets = [f"name={RESUMED}", *COMMON, *VARIANTS["softplus_replay_curriculum"]]
    args = ["train", str(SCALE), "--out", str(work / RESUMED)]
    for s in sets:
        args += ["--set", s]
    killed = _cli([*args, "--set", "faults.kill_at_step=13"], env)
    resumed = _cli([*args, "--set", "faults.kill_at_step=13"], env)  # the fault fires once: this run resumes
    if killed != -9 or resumed != 0:
        raise SystemExit(f"{RESUMED}: expected a SIGKILL then a clean resume, got exit codes {killed}, {resumed}")
    result[RESUMED] = _run_fingerprint(work / RESUMED)
    print(f"recorded {RESUMED}", flush=True)
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
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if a == b or (a != a and b != b) else [f"{where}: {a!r} != {b!r}"]


def compare(old: Path, new: Path) -> int:
    diffs = _differences(json.loads(old.read_text()), json.loads(new.read_text()), "")
    for line in diffs[:50]:
        print(line)
    print(f"{len(diffs)} differences" if diffs else "identical: every metric, checkpoint tensor, evaluation and sweep row")
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
