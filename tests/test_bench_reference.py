"""benchmarks.bench_reference: its parsing, schedule and formatting (no timing is run or asserted here)."""

from __future__ import annotations

import json

import pytest

from benchmarks.bench_reference import (
    BenchError,
    format_markdown,
    format_table,
    parse_loadavg,
    parse_ready,
    parse_reply,
    schedule,
    summarize,
)


def test_summarize_gives_median_quartiles_and_range():
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median, s.q1, s.q3, s.low, s.high) == (5, 3.0, 2.0, 4.0, 1.0, 5.0)
    one = summarize([0.25])
    assert (one.median, one.q1, one.q3, one.low, one.high) == (0.25, 0.25, 0.25, 0.25, 0.25)
    with pytest.raises(ValueError):
        summarize([])


def test_parse_loadavg_reads_the_three_averages_and_tasks():
    load = parse_loadavg("6.64 4.80 2.91 5/176 1289\n")
    assert (load.one, load.five, load.fifteen, load.tasks) == (6.64, 4.80, 2.91, "5/176")
    assert str(load) == "6.64 4.80 2.91 (runnable/tasks 5/176)"
    with pytest.raises(ValueError, match="loadavg"):
        parse_loadavg("garbage")


def test_schedule_alternates_and_gives_each_implementation_all_its_steps():
    blocks = schedule(12, 5)
    assert [name for name, _ in blocks] == ["ired", "release"] * 3
    assert [size for _, size in blocks] == [5, 5, 5, 5, 2, 2]
    for name in ("ired", "release"):
        assert sum(size for n, size in blocks if n == name) == 12
    with pytest.raises(ValueError):
        schedule(0, 5)


def test_parse_reply_accepts_one_number_per_step_and_per_series():
    line = json.dumps({"wall": [0.1, 0.2], "cpu": [0.15, 0.3], "data": [0.01, 0]})
    assert parse_reply(line, 2) == {"wall": [0.1, 0.2], "cpu": [0.15, 0.3], "data": [0.01, 0.0]}


@pytest.mark.parametrize(
    "line, match",
    [
        ("Traceback (most recent call last):", "expected a JSON line"),
        (json.dumps({"wall": [0.1, 0.2], "cpu": [0.1, 0.2]}), "expected an object with lists"),
        (json.dumps({"wall": [0.1], "cpu": [0.1], "data": [0.1]}), "'wall' must hold 2"),
        (json.dumps({"wall": [0.1, -1], "cpu": [0.1, 0.1], "data": [0.1, 0.1]}), "non-negative"),
    ],
)
def test_parse_reply_names_what_is_wrong(line, match):
    with pytest.raises(BenchError, match=match):
        parse_reply(line, 2)


def test_parse_ready_requires_the_ready_line_with_threads():
    ready = parse_ready(json.dumps({"ready": True, "torch": "2.13.0+cpu", "threads": 2}))
    assert ready["threads"] == 2 and ready["torch"] == "2.13.0+cpu"
    for bad in ("Warning: MKL not initialized.", json.dumps({"ready": True}), json.dumps([1])):
        with pytest.raises(BenchError, match="ready line"):
            parse_ready(bad)


RESULTS = {
    ("denoise", "ired"): {"wall": [0.2, 0.1, 0.3], "cpu": [0.4, 0.2, 0.6], "data": [0.01, 0.01, 0.02]},
    ("denoise", "release"): {"wall": [0.4, 0.5, 0.6], "cpu": [0.8, 1.0, 1.2], "data": [0.05, 0.06, 0.07]},
    ("contrastive", "ired"): {"wall": [0.9], "cpu": [1.8], "data": [0.01]},
}


def test_format_table_has_one_row_per_implementation_and_the_ratio_of_medians():
    lines = format_table(RESULTS)
    assert lines[0].split() == ["objective", "implementation", "steps", "median_s", "q1_s", "q3_s", "min_s", "max_s",
                                "cpu_median_s", "data_median_s"]
    rows = [line.split() for line in lines[1:4]]
    assert rows[0][:4] == ["denoise", "ired", "3", "0.2000"] and rows[0][8:] == ["0.4000", "0.0100"]
    assert rows[1][:4] == ["denoise", "release", "3", "0.5000"] and rows[1][6:8] == ["0.4000", "0.6000"]
    assert rows[2][:4] == ["contrastive", "ired", "1", "0.9000"]
    assert lines[4] == "denoise: ired/release median seconds per step = 0.40"
    assert len(lines) == 5  # no ratio for contrastive: the release's row is missing
    assert lines[1].index("ired") == lines[0].index("implementation")  # aligned columns
    assert lines[1].index("3") == lines[0].index("steps")


def test_format_markdown_is_a_table_with_the_ratio_on_ireds_row():
    lines = format_markdown(RESULTS)
    assert lines[0].startswith("| objective | implementation | median s/step |") and lines[1].startswith("|---|")
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert lines[2] == "| denoise | ired | 0.200 | 0.150-0.250 | 0.100-0.300 | 0.400 | 0.010 | 0.40 |"
    assert lines[3] == "| denoise | release | 0.500 | 0.450-0.550 | 0.400-0.600 | 1.000 | 0.060 |  |"
    assert lines[4].startswith("| contrastive | ired | 0.900 |") and lines[4].endswith("|  |")
