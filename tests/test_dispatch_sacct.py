"""sacct output as data: parsing, host lists, exit codes, and reading the final state twice."""

from __future__ import annotations

from ired.dispatch import sacct
from ired.dispatch.sacct import SacctRow, expand_nodelist, job_row, parse_elapsed, parse_exit_code, parse_sacct


def test_parse_rows_of_a_job_and_its_steps() -> None:
    text = (
        "7|hog|FAILED|1:0|node2|00:00:04|sbatch --job-name=hog --exclude=node1 /x/s.sh\n"
        "7.batch|batch|FAILED|1:0|node2|00:00:04|\n"
        "7.0|python3|OUT_OF_MEMORY|0:125|node2|00:00:03|srun --unbuffered a|b\n"
    )
    rows = parse_sacct(text)
    assert [r.job_id for r in rows] == ["7", "7.batch", "7.0"]
    job = job_row(rows, "7")
    assert job is not None and not job.is_step
    assert (job.state, job.exit_code, job.signal, job.nodes, job.elapsed_s) == ("FAILED", 1, 0, ("node2",), 4)
    assert "--exclude=node1" in job.submit_line
    assert rows[2].state == "OUT_OF_MEMORY" and rows[2].signal == 125 and rows[2].is_step
    assert rows[2].submit_line == "srun --unbuffered a|b"  # a | inside the last field survives


def test_states_with_suffixes() -> None:
    rows = parse_sacct("40|x|CANCELLED by 0|0:0|node1|00:00:10|\n41|y|RUNNING|0:0|None assigned||\n")
    assert rows[0].state == "CANCELLED" and rows[0].state_text == "CANCELLED by 0"
    assert rows[1].nodes == () and rows[1].elapsed_s is None
    assert sacct.is_terminal("CANCELLED") and not sacct.is_terminal("RUNNING") and not sacct.is_terminal("PENDING")


def test_exit_codes_and_durations() -> None:
    assert parse_exit_code("120:0") == (120, 0)
    assert parse_exit_code("0:9") == (0, 9)
    assert parse_exit_code("") == (0, 0)
    assert parse_elapsed("00:01:31") == 91
    assert parse_elapsed("1-02:00:00") == 93600
    assert parse_elapsed("05:07") == 307
    assert parse_elapsed("") is None


def test_expand_nodelist() -> None:
    assert expand_nodelist("node[1-3,7],gpu02") == ("node1", "node2", "node3", "node7", "gpu02")
    assert expand_nodelist("n[08-10]") == ("n08", "n09", "n10")
    assert expand_nodelist("node1") == ("node1",)
    assert expand_nodelist("None assigned") == ()


def test_read_final_waits_for_two_agreeing_reads() -> None:
    """sacct once briefly showed FAILED 0:0 for a failing job; the state acted on must be read twice."""
    answers = [
        [],  # not in the database yet
        parse_sacct("5|x|FAILED|0:0|node1|00:00:02|\n"),  # transient
        parse_sacct("5|x|FAILED|120:0|node1|00:00:03|\n"),
        parse_sacct("5|x|FAILED|120:0|node1|00:00:03|\n"),
        parse_sacct("5|x|FAILED|99:0|node1|00:00:03|\n"),  # never read
    ]
    calls: list[str] = []

    def reader(job_id: str) -> list[SacctRow]:
        calls.append(job_id)
        return answers[len(calls) - 1]

    rows = sacct.read_final("5", interval_s=0.0, reader=reader)
    assert len(calls) == 4
    assert job_row(rows, "5").exit_code == 120


def test_read_final_gives_up_after_max_reads() -> None:
    rows = sacct.read_final("5", interval_s=0.0, max_reads=3,
                            reader=lambda _id: parse_sacct("5|x|RUNNING|0:0|node1||\n"))
    assert job_row(rows, "5").state == "RUNNING"


def test_a_job_requeued_by_slurm_splits_into_one_segment_per_run() -> None:
    """`sacct -D` after `scontrol requeue` (recorded on the local cluster): one job row per run, each followed by
    its steps; the job keeps its id."""
    text = (
        "1|drill|REQUEUED|0:0|node1|00:00:04|sbatch --job-name=drill s.sh\n"
        "1.batch|batch|CANCELLED|0:15|node1|00:00:04|\n"
        "1|drill|COMPLETED|0:0|node2|00:00:09|sbatch --job-name=drill s.sh\n"
        "1.batch|batch|COMPLETED|0:0|node2|00:00:09|\n"
        "12|other|COMPLETED|0:0|node2|00:00:01|\n"
    )
    runs = sacct.segments(parse_sacct(text), "1")
    assert [[r.job_id for r in run] for run in runs] == [["1", "1.batch"], ["1", "1.batch"]]
    assert [(run[0].state, run[0].nodes, run[0].elapsed_s) for run in runs] == [
        ("REQUEUED", ("node1",), 4), ("COMPLETED", ("node2",), 9)]
    assert sacct.segments(parse_sacct(text), "12")[0][0].name == "other"
