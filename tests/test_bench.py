"""The speed commands' own machinery at a toy size: the FLOP counter and matmul timer, the names ired.bench.speed
prints, and the GPU measurement's refusal without CUDA and its writer (a CPU dry run)."""

import csv
import re

import torch

from benchmarks import bench_gpu
from ired.bench import speed as bench
from ired.bench.floor import count_gemms, gemm_throughput


def test_count_gemms_counts_flops_and_records_each_product():
    x, w, b = torch.randn(8, 5), torch.randn(3, 5), torch.randn(3)
    count = count_gemms(lambda: (torch.nn.functional.linear(x, w, b), x @ w.T, x @ w.T))
    assert count.flops == 3 * 2 * 8 * 5 * 3
    assert sorted(count.gemms.values()) == [1, 2]  # one addmm, the same mm twice
    assert all(g.flops == 2 * 8 * 5 * 3 for g in count.gemms)
    assert gemm_throughput(count, torch.device("cpu"), repeats=1) > 0


def test_bench_prints_every_figure_beside_its_floor_for_both_paths(capsys):
    bench.main(["--tiny", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    sections = [i for i, line in enumerate(lines) if line.startswith("# path ")]
    assert [lines[i].split(":")[0] for i in sections] == ["# path default", "# path fused"]
    for start in sections:
        after = [line for line in lines[start + 1:] if not line.startswith("# ")]  # not the CPU-seconds comments
        names = [line.split(":")[0] for line in after[:6]]
        assert names == [n for figure in bench.FIGURES for n in (figure, f"{figure}_floor_ratio")]
    for figure in bench.FIGURES:
        assert any(line.startswith(f"{figure}_gflop: ") for line in lines)
        assert any(line.startswith(f"{figure}_matmul_gflops: ") for line in lines)


def test_bench_gpu_stops_in_one_line_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_gpu.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA device" in err and "--device cpu --tiny" in err


def test_bench_gpu_dry_run_writes_its_csv_and_table(tmp_path):
    args = ["--device", "cpu", "--tiny", "--out", str(tmp_path), "--repeats", "1", "--paths", "default",
            "--run-steps", "2", "--eval-every", "1", "--eval-size", "8"]
    assert bench_gpu.main(args) == 0
    rows = list(csv.DictReader((tmp_path / "gpu.csv").open()))
    assert [(r["kind"], r["name"], r["path"]) for r in rows] == [
        ("step", "train_step_denoise", "default"), ("step", "train_step_contrastive", "default"),
        ("step", "inference_2048", "default"),
        ("run", "denoise_to_predict_mean", "default"), ("run", "contrastive_to_predict_mean", "default")]
    assert all(float(r["seconds"]) > 0 for r in rows)
    assert all(float(r["floor_ratio"]) > 0 for r in rows if r["kind"] == "step")
    assert all(1 <= int(r["steps"]) <= 2 for r in rows if r["kind"] == "run")
    table = (tmp_path / "gpu.md").read_text()
    assert "`python -m benchmarks.bench_gpu --device cpu --tiny`" in table and "measure nothing" in table
    assert table.count("| step |") == 3 and table.count("| run |") == 2


def test_set_and_train_only_time_another_size_with_its_cpu_seconds(capsys):
    """--set changes every timing's config after the bench's own keys; --train-only leaves out the inference; each
    timing line is followed by the median floor of its rounds, its process CPU seconds and its ratios' quartiles."""
    bench.main(["--tiny", "--train-only", "--repeats", "1", "--paths", "default", "--set", "model.width=16",
                "--set", "train.threads=1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("--set model.width=16 train.threads=1")
    timed = [line.split(":")[0] for line in lines if not line.startswith("#") and "_" in line.split(":")[0]]
    assert not any(name.startswith("inference_2048") for name in timed), timed
    for figure in bench.STEPS:
        assert any(line.startswith(f"# {figure}: floor ") and " s in the same rounds; cpu " in line
                   and re.search(r" s; floor ratio quartiles \d+\.\d\d-\d+\.\d\d$", line) for line in lines), lines


def test_quartiles_of_the_rounds_ratios():
    assert bench.quartiles([1.2]) == (1.2, 1.2)
    low, high = bench.quartiles([1.0, 1.1, 1.2, 1.3, 5.0])  # one slow round moves neither
    assert (round(low, 6), round(high, 6)) == (1.1, 1.3)
