"""Every mistake in a config or a command gets one line before any work starts (issue 11).

One case per mistake of the issue, through the `ired` CLI and, where it applies, the Snakemake CLI at the tiny scale
(parse only: every case fails before the DAG is built). Each asserts the exit code, exactly one error line on
stderr naming the file / key, no traceback, and nothing written under results/. The cases run in parallel in one
module fixture (about 2 s of CPU each) so the file stays cheap.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from workflow_helpers import REPO, copy_workflow

from ired.core.config_io import load_config
from ired.core.errors import ConfigError
from ired.registry.experiments import load_registry, resolve_runs

CONFIG = REPO / "config"
TRACEBACK = re.compile(r"Traceback|File \".*\", line \d+")


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "cli": `ired ...` in a scratch folder; "smk": `snakemake -n` in a shared copy of the workflow
    setup: Callable[[Path], list[str]]  # writes the case's files under its folder, returns the arguments
    fragments: tuple[str, ...]  # each must be in the one error line
    code: int = 2


# ------------------------------------------------------------------------------------------------------
# Case builders
# ------------------------------------------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def train_cli(text: str | bytes, *sets: str) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        cfg = write(d / "my.yaml", text)
        return ["train", str(cfg), "--out", str(d / "results" / "my"), *(f"--set={s}" for s in sets)]

    return setup


def registry(edit: Callable[[Path], None], *config: str) -> Callable[[Path], list[str]]:
    """A copy of config/experiments edited by ``edit``, passed with --config registry=..."""

    def setup(d: Path) -> list[str]:
        reg = d / "experiments"
        shutil.copytree(CONFIG / "experiments", reg)
        edit(reg)
        return ["--config", "scale=tiny", f"registry={reg}", *config]

    return setup


def scales(edit: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        folder = d / "scales"
        shutil.copytree(CONFIG / "scales", folder)
        edit(folder)
        return ["--config", "scale=tiny", f"scales={folder}"]

    return setup


def replace(name: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / name
        text = path.read_text()
        assert old in text, f"{name} no longer holds {old!r}: update the test"
        path.write_text(text.replace(old, new, 1))

    return edit


def append(name: str, text: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        with open(folder / name, "a") as handle:
            handle.write(text)

    return edit


def new_file(name: str, text: str | bytes) -> Callable[[Path], None]:
    return lambda folder: write(folder / name, text) and None


def external(path_text: str | None) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        ckpt = write(d / "old.pt", path_text) if path_text is not None else d / "old.pt"
        cfg = write(d / "ext.yaml", f"external_checkpoints:\n  old_run:\n    path: {ckpt}\n")
        return ["--configfile", str(cfg), "--config", "scale=tiny"]

    return setup


def evaluate(*args: str) -> Callable[[Path], list[str]]:
    return lambda d: ["evaluate", *[a.replace("{dir}", str(d)) for a in args]]


Q206 = "q206:\n  extends: q101\n"

CASES = [
    # accepted silently
    Case("empty-run-config", "cli", train_cli(""), ("my.yaml is empty",)),
    Case("empty-scale-file", "smk", scales(new_file("tiny.yaml", "# nothing\n")), ("tiny.yaml is empty",)),
    Case("empty-registry-file", "smk", registry(new_file("extra.yaml", "")), ("extra.yaml is empty",)),
    Case("duplicate-yaml-key", "cli", train_cli("train: {steps: 5}\nmodel: {head: scalar}\ntrain: {lr: 0.1}\n"),
         ("my.yaml", "line 3", "duplicate key 'train'")),
    Case("duplicate-experiment-in-file", "smk", registry(append("core.yaml", "q101:\n  description: again\n")),
         ("core.yaml", "duplicate key 'q101'")),
    Case("unknown-at-scale", "smk",
         registry(replace("core.yaml", "tiny: {train: {steps: 60", "tinny: {train: {steps: 60")),
         ("core.yaml", "q209.at_scale.tinny", "unknown scale 'tinny'", "laptop, n20, paper, reference_laptop, tiny")),
    Case("typo-in-unselected-experiment", "smk",
         registry(replace("study.yaml", "energy_reg: 0.001", "energy_rge: 0.001"), "experiments=[q101]"),
         ("study.yaml", "study_energy_reg_mild.set.objective.energy_rge", "allowed here")),
    Case("float-seed", "smk", registry(replace("core.yaml", "seeds: [0, 1, 2]", "seeds: [1.0]")),
         ("core.yaml", "q101.seeds[0]", "1.0", "an integer")),
    Case("infinite-lr", "cli", train_cli("train: {lr: .inf}\n"), ("my.yaml", "train.lr", ".inf", "a number > 0")),
    Case("negative-milestone-cli", "cli", train_cli("{}\n", "train.milestones=[-1]"),
         ("train.milestones", "[-1]", "1..train.steps")),
    # accepted, then crashes later
    Case("zero-steps", "cli", train_cli("train: {steps: 0}\n"),
         ("my.yaml", "train.steps", "value 0", "an integer >= 1")),
    Case("zero-steps-smk", "smk", scales(replace("tiny.yaml", "steps: 20", "steps: 0")),
         ("tiny.yaml", "train.steps", "value 0", ">= 1")),
    Case("negative-milestone-smk", "smk", registry(replace("core.yaml", "milestones: [20]", "milestones: [-1]")),
         ("experiment q209 at scale tiny", "train.milestones", "[-1]", "1..train.steps=60")),
    Case("external-checkpoint-is-text", "smk", external("not a checkpoint\n"),
         ("external_checkpoints.old_run.path", "old.pt", "not a checkpoint")),
    Case("cuda-without-cuda", "cli", train_cli("device: cuda\n"),
         ("my.yaml", "'device'", "'cuda'", "on node ", "auto, cpu")),
    # a stack instead of a line
    Case("unknown-parent", "smk", registry(replace("core.yaml", Q206, "q206:\n  extends: q999\n")),
         ("core.yaml", "q206.extends", "unknown experiment 'q999'", "q206 -> q999")),
    Case("self-cycle", "smk", registry(new_file("loops.yaml", "selfish:\n  description: x\n  extends: selfish\n")),
         ("loops.yaml", "selfish.extends", "cycle selfish -> selfish")),
    Case("two-cycle", "smk",
         registry(new_file("loops.yaml", "ping:\n  description: x\n  extends: pong\n"
                                         "pong:\n  description: y\n  extends: ping\n")),
         ("loops.yaml", "ping.extends", "cycle ping -> pong -> ping")),
    Case("out-under-a-file", "cli", evaluate("{dir}/ckpt.pt", "--out", "{dir}/ckpt.pt/eval.json"),
         ("--out", "ckpt.pt is a file, not a folder")),
    Case("out-is-a-folder", "cli", evaluate("{dir}/ckpt.pt", "--out", "{dir}"), ("--out", "is a folder")),
    Case("size-zero", "cli", evaluate("{dir}/ckpt.pt", "--size", "0"), ("--size", "0 not allowed", "an integer >= 1")),
    Case("size-negative", "cli", evaluate("{dir}/ckpt.pt", "--size", "-1"), ("--size", "-1 not allowed")),
    Case("device-tpu", "cli", evaluate("{dir}/ckpt.pt", "--device", "tpu"), ("--device", "'tpu'", "'cpu'")),
    Case("non-utf8-config", "cli", train_cli(b"train: {lr: 0.1}\n# caf\xe9\n"), ("my.yaml", "line 2", "not UTF-8")),
    # inconsistent
    Case("bool-for-int", "cli", train_cli("train: {steps: true}\n"),
         ("my.yaml", "train.steps", "value true", "an integer")),
    Case("string-for-int", "cli", train_cli('train: {steps: "30"}\n'),
         ("my.yaml", "train.steps", "'30'", "an integer")),
    Case("bool-for-int-smk", "smk",
         registry(new_file("extra.yaml", "x1:\n  description: x\n  set: {train: {steps: true}}\n")),
         ("extra.yaml", "x1.set.train.steps", "value true", "an integer")),
    Case("pipeline-config-typo", "smk", lambda d: ["--config", "scale=tiny", "scael=paper"], ("config.yaml", "scael")),
    Case("set-not-a-mapping", "smk", registry(new_file("extra.yaml", "x1:\n  description: x\n  set: [1]\n")),
         ("extra.yaml", "'x1.set'", "a mapping")),
    Case("yaml-syntax-error", "cli", train_cli("train: {steps: [1}\n"),
         ("my.yaml", "line 1, column", "not valid YAML")),
    Case("yaml-syntax-error-smk", "smk", registry(new_file("broken.yaml", "x1:\n  description: [a\n")),
         ("broken.yaml", "line 3, column", "not valid YAML")),
    # sweeps (ired.registry.sweeps): the same one line through the pipeline
    Case("sweep-unknown-key", "smk",
         registry(new_file("zz.yaml", "sw:\n  extends: q207\n  description: x\n  sweep: {grid: {train.lrr: [0.1]}}\n")),
         ("zz.yaml", "experiment sw", "unknown key 'train.lrr'", "allowed under train")),
    Case("sweep-unequal-zip", "smk",
         registry(new_file("zz.yaml",
                           "sw:\n  description: x\n  sweep: {zip: {train.lr: [0.1, 0.2], train.steps: [5]}}\n")),
         ("zz.yaml", "experiment sw", "unequal lengths", "train.lr: 2, train.steps: 1")),
]


# ------------------------------------------------------------------------------------------------------
# Running them (once, in parallel)
# ------------------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "IRED_DEBUG"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny trained checkpoint (a few seconds), and a copy of it whose EMA weights are NaN."""
    from conftest import tiny_config

    from ired.runs.checkpoint import load_checkpoint, save_checkpoint
    from ired.training.trainer import train

    out = tmp_path_factory.mktemp("ckpt")
    train(tiny_config("train.steps=10", "train.eval_every=10", "train.log_every=5", "train.checkpoint_every=10"),
          out / "run", echo=False)
    state = load_checkpoint(out / "run" / "final.pt")
    for tensor in state["ema"].values():
        tensor.fill_(float("nan"))
    save_checkpoint(state, out / "nan.pt")
    return out


@pytest.fixture(scope="module")
def snakemake_outcomes(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every Snakemake case, run once in parallel in one shared copy of the workflow (parse-only failures)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("wf"))
    root = tmp_path_factory.mktemp("cases")

    def run(case: Case) -> tuple[subprocess.CompletedProcess, Path]:
        d = root / case.id
        d.mkdir()
        cmd = [sys.executable, "-m", "snakemake", "--dry-run", *case.setup(d)]
        return (subprocess.run(cmd, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300),
                workdir / "results")

    smk = [c for c in CASES if c.kind == "smk"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip([c.id for c in smk], pool.map(run, smk), strict=True))


def run_cli(case: Case, d: Path, monkeypatch, capsys) -> tuple[subprocess.CompletedProcess, Path]:
    """`ired ...` in-process (its entry point, main), in the case's folder: no interpreter start per case."""
    from ired.cli import main

    args = case.setup(d)
    monkeypatch.chdir(d)
    monkeypatch.delenv("IRED_DEBUG", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # every node here is a node without CUDA
    try:
        code = main(args)
    except SystemExit as exc:  # argparse
        code = exc.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(["ired", *args], code, out.out, out.err), d / "results"


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The lines of stderr that report an error (Snakemake's own notes, e.g. 'Using profile', are not)."""
    return [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}-{c.id}" for c in CASES])
def test_one_line_before_any_work(case, checkpoint, tmp_path, monkeypatch, capsys, request):
    if case.kind == "cli":
        shutil.copyfile(checkpoint / "run" / "final.pt", tmp_path / "ckpt.pt")
        proc, results = run_cli(case, tmp_path, monkeypatch, capsys)
    else:
        proc, results = request.getfixturevalue("snakemake_outcomes")[case.id]
    text = proc.stdout + proc.stderr
    assert proc.returncode == case.code, text
    assert not TRACEBACK.search(text), text
    lines = error_lines(proc)
    assert len(lines) == 1, text
    for fragment in case.fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert not results.exists() or not any(results.iterdir()), f"written under {results}: {list(results.rglob('*'))}"


# ------------------------------------------------------------------------------------------------------
# What must be accepted, and the same everywhere
# ------------------------------------------------------------------------------------------------------


def test_yaml_12_numbers_are_numbers_on_the_cli_and_in_the_pipeline(tmp_path):
    cfg = write(tmp_path / "lr.yaml", "train: {lr: 1e-4}\n")
    assert load_config(cfg).train.lr == 1e-4
    assert load_config(None, ["train.lr=1e-4"]).train.lr == 1e-4
    reg = tmp_path / "experiments"
    write(reg / "one.yaml", "small_lr:\n  description: x\n  set: {train: {lr: 1e-4}}\n")
    runs = resolve_runs(load_registry(reg), CONFIG / "base.yaml", CONFIG / "scales", "tiny", "all", None)
    assert runs["small_lr-s0"].config.train.lr == 1e-4


@pytest.mark.parametrize("text", ["train: {steps: true}\n", 'train: {steps: "30"}\n', "train: {lr: .nan}\n",
                                  "seed: 1.0\n", "objective: {adaptive_temperature: yes}\n"])
def test_same_value_refused_by_cli_and_registry(tmp_path, text):
    """The CLI and the registry share one validator: what one refuses, the other refuses in the same words."""
    with pytest.raises(ConfigError) as cli:
        load_config(write(tmp_path / "c.yaml", text))
    reg = tmp_path / "experiments"
    body = "\n".join(f"    {line}" for line in text.strip().splitlines())
    write(reg / "one.yaml", f"x1:\n  description: x\n  set:\n{body}\n")
    with pytest.raises(ConfigError) as registry_error:
        load_registry(reg)
    def tail(message: str) -> str:
        return message[message.index(" value "):]

    assert tail(str(cli.value)) == tail(str(registry_error.value))


def test_empty_mapping_is_allowed_and_null_seeds_inherit(tmp_path):
    reg = tmp_path / "experiments"
    write(reg / "a.yaml",
          "base_exp:\n  description: x\n  seeds: [3, 4]\nchild:\n  description: y\n  extends: base_exp\n  set: {}\n")
    registry_ = load_registry(reg)
    assert registry_.experiments["child"].seeds == (3, 4)
    assert registry_.experiments["child"].chain == ("base_exp", "child")
    runs = resolve_runs(registry_, CONFIG / "base.yaml", CONFIG / "scales", "tiny", ["child"], 1)
    assert list(runs) == ["child-s3"] and runs["child-s3"].family == "a"


def test_seeds_must_be_distinct(tmp_path):
    write(tmp_path / "r" / "a.yaml", "x1:\n  description: x\n  seeds: [0, 0]\n")
    with pytest.raises(ConfigError, match=r"a\.yaml.*seeds.*repeat"):
        load_registry(tmp_path / "r")


# ------------------------------------------------------------------------------------------------------
# Evaluation never writes NaN; a closed pipe is not an error; --debug shows the traceback
# ------------------------------------------------------------------------------------------------------


def _strict_json(text: str):
    def refuse(name):  # json.loads accepts NaN/Infinity by default: the result would not be valid JSON
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_nan_weights_give_null_and_a_status(checkpoint, tmp_path):
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ired.cli", "evaluate", str(checkpoint / "nan.pt"), "--size", "8", "--out", str(out)],
        capture_output=True, text=True, env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    row = _strict_json(out.read_text())
    assert row["task_mse"] is None and row["status"] == "non_finite"
    assert "ema weights" in row["status_detail"] and "task_mse" in row["status_detail"]
    assert row["predict_zero_mse"] > 0  # the baselines do not depend on the weights
    healthy = subprocess.run(
        [sys.executable, "-m", "ired.cli", "evaluate", str(checkpoint / "run" / "final.pt"), "--size", "8"],
        capture_output=True, text=True, env=_env(),
    )
    row = _strict_json(healthy.stdout)
    assert row["status"] == "ok" and row["task_mse"] > 0


def test_closed_pipe_exits_0_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte (`ired schema | head` after head exits)
    proc = subprocess.run([sys.executable, "-m", "ired.cli", "schema"], stdout=write_end, stderr=subprocess.PIPE,
                          text=True, env=_env())
    os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == ""


def test_debug_shows_the_traceback(tmp_path):
    cfg = write(tmp_path / "bad.yaml", "train: {steps: 0}\n")
    for extra_env, argv in (({}, ["--debug"]), ({"IRED_DEBUG": "1"}, [])):
        proc = subprocess.run([sys.executable, "-m", "ired.cli", "config", str(cfg), *argv], capture_output=True,
                              text=True, env={**_env(), **extra_env})
        assert proc.returncode != 0 and "Traceback" in proc.stderr and "train.steps" in proc.stderr


def test_cuda_error_on_a_node_is_a_config_error_for_the_dispatcher():
    from ired.dispatch.failures import Evidence, FailureKind, classify
    from ired.dispatch.policy import Plan, RetryPolicy, decide

    line = ("ired train: error: results/x/config.yaml: key 'device': value 'cuda' not allowed on node node2: "
            "it has no CUDA device (allowed there: auto, cpu)")
    kind = classify(Evidence(returncode=2, stderr_tail=line)).kind
    assert kind is FailureKind.config_error
    assert not decide(kind, Plan(mem_gb=1.0), [], ("node2",), RetryPolicy()).retry


def test_checkpoint_error_in_a_job_is_not_retried():
    from ired.dispatch.failures import Evidence, FailureKind, classify

    tail = ("Traceback (most recent call last):\n"
            "ired.errors.CheckpointError: x.pt: unreadable checkpoint (UnpicklingError)")
    assert classify(Evidence(returncode=1, stderr_tail=tail)).kind is FailureKind.config_error


# ------------------------------------------------------------------------------------------------------
# The registry and the input checks, at the library level (what the Snakefile calls)
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files, fragments",
    [
        ({"a.yaml": "x1:\n  description: x\n", "b.yaml": "x1:\n  description: y\n"},
         ("b.yaml", "x1", "already defined in", "a.yaml")),
        ({"a.yaml": "c1:\n  description: x\n  extends: c3\n  seeds: [0]\nc2:\n  description: y\n  extends: c1\n"
                    "c3:\n  description: z\n  extends: c2\n"}, ("a.yaml", "c1.extends", "cycle c1 -> c3 -> c2 -> c1")),
        ({"a.yaml": b"x1:\n  description: caf\xe9\n"}, ("a.yaml", "line 2", "not UTF-8")),
        ({"a.yaml": "x1:\n  description: x\n  sets: {}\n"},
         ("a.yaml", "unknown key 'x1.sets'", "allowed here: description")),
        ({"a.yaml": "x1:\n  extends: null\n"}, ("a.yaml", "'x1.description' is required",)),
        ({"a.yaml": "train:\n  description: x\n"}, ("a.yaml", "'train' not allowed", "target names")),
        ({"a.yaml": "b:\n  description: x\n", "b.yaml": "y1:\n  description: x\n"},
         ("'b' not allowed", "name of a family")),
    ],
    ids=["duplicate-across-files", "long-cycle", "non-utf8", "unknown-entry-key", "no-description", "reserved-id",
         "id-is-a-family"],
)
def test_registry_errors(tmp_path, files, fragments):
    for name, text in files.items():
        write(tmp_path / "r" / name, text)
    with pytest.raises(ConfigError) as info:
        load_registry(tmp_path / "r", CONFIG / "scales")
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_external_checkpoint_checks(tmp_path, checkpoint):
    from ired.runs.checkpoint import load_checkpoint, save_checkpoint
    from ired.runs.inputs import check_checkpoint, check_checkpoint_file

    with pytest.raises(ConfigError, match=r"external_checkpoints\.a\.path.*no such file"):
        check_checkpoint_file(tmp_path / "missing.pt", "external_checkpoints.a.path")
    with pytest.raises(ConfigError, match="not a file"):
        check_checkpoint_file(tmp_path, "external_checkpoints.a.path")
    check_checkpoint(checkpoint / "run" / "final.pt", "external_checkpoints.a.path")
    state = load_checkpoint(checkpoint / "run" / "final.pt")
    state["config"]["train"]["steps"] = "many"
    save_checkpoint(state, tmp_path / "odd.pt")
    check_checkpoint_file(tmp_path / "odd.pt", "k")  # the cheap check cannot see inside
    with pytest.raises(ConfigError, match=r"k: .*odd\.pt \(embedded config\).*train\.steps"):
        check_checkpoint(tmp_path / "odd.pt", "k")


# ------------------------------------------------------------------------------------------------------
# A cancelled Slurm job: the dispatcher's one line, not a traceback
# ------------------------------------------------------------------------------------------------------


@pytest.mark.slurm
def test_cancelled_slurm_job_is_one_line(tmp_path):
    import time

    from _dispatch_util import slurm_nodes
    from _dispatch_util import tiny_config as dispatch_config

    slurm_nodes()  # skips with the reason (fails under IRED_REQUIRE_SLURM=1) when no cluster answers
    cfg = dispatch_config(tmp_path, "cancel_me", train={"steps": 100000, "eval_every": 100000, "log_every": 100000,
                                                        "checkpoint_every": 100000})
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ired.cli", "dispatch-train", str(cfg), "--out", str(run), "--cluster", "slurm",
           "--slurm-partition", "debug", "--slurm-account", "root", "--mem-mb", "1024", "--runtime", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    job_id = None
    try:
        deadline = time.time() + 120
        while job_id is None and time.time() < deadline and proc.poll() is None:
            record = run / "job.json"
            if record.exists():
                job_id = json.loads(record.read_text()).get("job_id")
            time.sleep(0.5)
        assert job_id, "the dispatcher never recorded its job"
        subprocess.run(["scancel", str(job_id)], check=True)  # only the job this test submitted
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            if job_id:
                subprocess.run(["scancel", str(job_id)], check=False)
    assert proc.returncode == 1, err
    assert not TRACEBACK.search(err), err
    final = [ln for ln in err.splitlines() if ln.startswith("ired dispatch-train: error:")]
    assert len(final) == 1 and "cancelled" in final[0] and "attempts" in final[0], err
