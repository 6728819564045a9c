"""Slurm accounting (``sacct``) as data: parse its ``-P`` output with pure functions, then query it carefully.

Why pure parsers: the scheduler's text is the evidence the failure classifier works from, and its quirks
(``FAILED 120:0``, ``CANCELLED by 0``, steps ``ID.batch`` / ``ID.0`` whose state differs from the job's,
exit codes of 128 and above reported minus 128, ``node[1-3]`` host lists) are tested on literal text.

Why read twice: sacct can lag a finished job by about a second and once briefly showed ``FAILED 0:0`` for a
failing job; :func:`read_final` only returns once two consecutive reads of a finished job agree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Set
from dataclasses import dataclass

#: Fields requested from sacct, in this order (``-o``); :func:`parse_sacct` expects them.
SACCT_FIELDS: tuple[str, ...] = ("JobID", "JobName", "State", "ExitCode", "NodeList", "Elapsed", "SubmitLine")

#: Job states after which nothing more will happen to the job (Slurm's job_state_string values).
TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
        "REVOKED",
    }
)


@dataclass(frozen=True)
class SacctRow:
    """One line of ``sacct -P``: the job itself (``123``) or one of its steps (``123.batch``, ``123.0``)."""

    job_id: str
    name: str
    state: str  # first word only: "CANCELLED by 0" -> "CANCELLED"
    state_text: str  # as printed
    exit_code: int
    signal: int
    nodes: tuple[str, ...]
    elapsed_s: int | None
    submit_line: str

    @property
    def is_step(self) -> bool:
        return "." in self.job_id


def parse_exit_code(text: str) -> tuple[int, int]:
    """``"120:0"`` -> ``(120, 0)`` (exit code, signal); empty or malformed -> ``(0, 0)``."""
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def parse_elapsed(text: str) -> int | None:
    """Slurm duration ``[D-]HH:MM:SS`` or ``MM:SS`` -> seconds; ``None`` when empty or malformed."""
    m = re.fullmatch(r"\s*(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.\d+)?\s*", text or "")
    if not m:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def expand_nodelist(text: str) -> tuple[str, ...]:
    """Expand a Slurm host list: ``"node[1-3,7],gpu02"`` -> ``("node1", "node2", "node3", "node7", "gpu02")``.

    ``"None assigned"`` and ``""`` (a job that never started) give ``()``. Zero padding is kept (``n[01-02]``).
    """
    text = (text or "").strip()
    if not text or text.lower().startswith("none"):
        return ()
    names: list[str] = []
    for m in re.finditer(r"([^,\[]+)(?:\[([^\]]*)\])?([^,\[]*)", text):
        prefix, ranges, suffix = m.group(1), m.group(2), m.group(3)
        if ranges is None:
            names.append(prefix + suffix)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            hi = hi or lo
            width = len(lo)
            for i in range(int(lo), int(hi) + 1):
                names.append(f"{prefix}{i:0{width}d}{suffix}")
    return tuple(n.strip() for n in names if n.strip())


def parse_sacct(text: str, fields: tuple[str, ...] = SACCT_FIELDS) -> list[SacctRow]:
    """Parse ``sacct -P -n -o <fields>`` output (one ``|``-separated line per job or step).

    SubmitLine is last because it may itself contain ``|``: everything after the other fields belongs to it.
    """
    rows: list[SacctRow] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", len(fields) - 1)
        parts += [""] * (len(fields) - len(parts))
        rec = dict(zip(fields, parts, strict=True))
        state_text = rec.get("State", "").strip()
        code, sig = parse_exit_code(rec.get("ExitCode", ""))
        rows.append(
            SacctRow(
                job_id=rec.get("JobID", "").strip(),
                name=rec.get("JobName", "").strip(),
                state=(state_text.split() or [""])[0].rstrip("+"),
                state_text=state_text,
                exit_code=code,
                signal=sig,
                nodes=expand_nodelist(rec.get("NodeList", "")),
                elapsed_s=parse_elapsed(rec.get("Elapsed", "")),
                submit_line=rec.get("SubmitLine", "").strip(),
            )
        )
    return rows


def job_row(rows: list[SacctRow], job_id: str) -> SacctRow | None:
    """The row of the job itself (not a step); with requeues sacct may print several, the last one wins."""
    found = [r for r in rows if r.job_id == str(job_id)]
    return found[-1] if found else None


def segments(rows: list[SacctRow], job_id: str) -> list[list[SacctRow]]:
    """A job's rows split by run: ``sacct -D`` prints one job row per time Slurm started it (a job it requeued by
    itself, after a node failure or ``scontrol requeue``, keeps its id), each followed by its steps. Oldest first;
    step rows seen before any job row go with the first segment."""
    found: list[list[SacctRow]] = []
    for row in rows:
        if row.job_id.split(".")[0] != str(job_id):
            continue
        if not row.is_step or not found:
            found.append([row])
        else:
            found[-1].append(row)
    return found


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


#: Fields requested from squeue (``-o``), in this order: job id (``123`` or an array task ``123_4``), state, nodes.
SQUEUE_FORMAT = "%i|%T|%N"


@dataclass(frozen=True)
class QueueEntry:
    """One line of ``squeue -h -r -o '%i|%T|%N'``: a job still known to the controller."""

    job_id: str
    state: str  # PENDING, RUNNING, COMPLETING, CONFIGURING, ...
    nodes: tuple[str, ...]


def parse_squeue(text: str) -> dict[str, QueueEntry]:
    """``squeue -h -r -o '%i|%T|%N'`` output -> job id -> entry (lines that do not parse are skipped)."""
    found: dict[str, QueueEntry] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or not parts[0]:
            continue
        found[parts[0]] = QueueEntry(parts[0], parts[1].strip(), expand_nodelist(parts[2]))
    return found


# --------------------------------------------------------------------------------------------------
# Queries (the only functions here that run commands)
# --------------------------------------------------------------------------------------------------


def available() -> bool:
    """True when the Slurm client commands are on PATH (does not say a cluster answers)."""
    return all(shutil.which(c) for c in ("sbatch", "sacct", "squeue"))


def query(job_id: str) -> list[SacctRow]:
    """Rows of one job and its steps; ``[]`` when sacct does not know the job yet or fails."""
    cmd = ["sacct", "-j", str(job_id), "-P", "-n", "-D", "-o", ",".join(SACCT_FIELDS)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [r for r in parse_sacct(out) if r.job_id.split(".")[0] == str(job_id)]


def count_queued(prefix: str) -> int | None:
    """This user's jobs in the queue (pending or running) whose name starts with ``<prefix>-``, array tasks counted
    one by one (``squeue -r``), as Slurm counts them against a submit limit; None when squeue does not answer."""
    import getpass

    try:
        out = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%j"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(1 for name in out.split() if name.startswith(f"{prefix}-"))


def squeue_state(job_id: str) -> str | None:
    """The controller's live state of a job (``PENDING``, ``RUNNING`` ...), ``None`` once it has left the queue."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True, text=True, timeout=60
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None
    return out.split()[0] if out else None


def find_job(name: str, comment: str, days: int = 7, index: int | None = None) -> str | None:
    """Newest job id with this name and comment (queued or running: ``squeue``; ended within ``days``: sacct's
    SubmitLine, where the dispatcher puts ``--comment`` because sacct stores comments only on request). With
    ``index``, the job is an array and the answer is its task ``<array id>_<index>``."""
    try:
        out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i|%k"], capture_output=True, text=True,
                             timeout=60).stdout
    except (subprocess.SubprocessError, OSError):
        out = ""
    ids = [job for job, _, text in (line.partition("|") for line in out.splitlines()) if text.strip() == comment]
    if not ids:
        try:
            out = subprocess.run(["sacct", "-n", "-X", "-P", "--name", name, "-S", f"now-{days}days",
                                  "-o", "JobID,SubmitLine"], capture_output=True, text=True, timeout=60).stdout
        except (subprocess.SubprocessError, OSError):
            out = ""
        ids = [job for job, _, line in (row.partition("|") for row in out.splitlines())
               if f"--comment={comment}" in line.split()]
    bases = [i.split("_")[0] for i in ids if i.split("_")[0].isdigit()]  # array tasks: 12_3, 12_[4-7]
    if not bases:
        return None
    newest = max(bases, key=int)
    return newest if index is None else f"{newest}_{index}"


def queue(job_ids: list[str], chunk: int = 2000) -> dict[str, QueueEntry] | None:
    """The controller's view of these jobs, one ``squeue`` call per ``chunk`` ids (one for a sweep of 2,000 runs in
    flight); a job that has left the queue is absent. None when squeue cannot be asked (not installed, no answer)."""
    found: dict[str, QueueEntry] = {}
    for start in range(0, len(job_ids), chunk):
        ids = ",".join(job_ids[start:start + chunk])
        try:
            out = subprocess.run(["squeue", "-h", "-r", "-j", ids, "-o", SQUEUE_FORMAT], capture_output=True,
                                 text=True, timeout=60)
        except (subprocess.SubprocessError, OSError):
            return None
        if out.returncode != 0 and "Invalid job id" not in out.stderr:
            return None  # squeue refuses a list whose jobs have all left the queue ("Invalid job id specified")
        found.update(parse_squeue(out.stdout))
    return found


def final_rows(job_ids: list[str], chunk: int = 2000) -> list[SacctRow]:
    """sacct's rows of these jobs (no steps), one call per ``chunk`` ids; ``[]`` when sacct cannot be asked."""
    rows: list[SacctRow] = []
    for start in range(0, len(job_ids), chunk):
        cmd = ["sacct", "-X", "-P", "-n", "-j", ",".join(job_ids[start:start + chunk]), "-o", ",".join(SACCT_FIELDS)]
        try:
            rows += parse_sacct(subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout)
        except (subprocess.SubprocessError, OSError):
            return []
    return rows


def scancel(job_ids: list[str]) -> bool:
    """Cancel these jobs in one ``scancel`` call; True when Slurm accepted it (ids already gone are no error)."""
    if not job_ids:
        return True
    try:
        return subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60).returncode == 0
    except (subprocess.SubprocessError, OSError):
        return False


def read_final(
    job_id: str,
    interval_s: float = 1.0,
    max_reads: int = 10,
    reader: Callable[[str], list[SacctRow]] = query,
) -> list[SacctRow]:
    """Rows of a job that has left the queue, once two consecutive reads ``interval_s`` apart agree.

    Returns the last rows read even when they never settle (after ``max_reads``); the caller classifies them.
    ``reader`` is :func:`query`; tests pass recorded answers.
    """
    previous: list[SacctRow] | None = None
    rows: list[SacctRow] = []
    for _ in range(max_reads):
        rows = reader(job_id)
        main = job_row(rows, job_id)
        if main is not None and is_terminal(main.state) and rows == previous:
            return rows
        previous = rows if main is not None and is_terminal(main.state) else None
        time.sleep(interval_s)
    return rows


def read_final_many(job_ids: list[str], lingering: Set[str] = frozenset(), interval_s: float = 1.0,
                    max_reads: int = 10) -> dict[str, str]:
    """:func:`read_final` for many jobs in one ``sacct -D`` call per read: job id -> its raw ``-P`` lines, once two
    consecutive reads agree for every job that has left the queue (``lingering`` jobs, which wrote their result
    but are still listed, are taken as first read)."""
    def read() -> dict[str, str]:
        cmd = ["sacct", "-P", "-n", "-D", "-j", ",".join(job_ids), "-o", ",".join(SACCT_FIELDS)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
        except (subprocess.SubprocessError, OSError):
            return {}
        found: dict[str, list[str]] = {j: [] for j in job_ids}
        for line in out.splitlines():
            owner = line.split("|", 1)[0].split(".")[0]
            if owner in found:
                found[owner].append(line)
        return {j: "".join(f"{line}\n" for line in lines) for j, lines in found.items()}

    def settled(job_id: str, texts: dict[str, str], previous: dict[str, str]) -> bool:
        if job_id in lingering:
            return bool(texts.get(job_id))
        main = job_row(parse_sacct(texts.get(job_id, "")), job_id)
        return main is not None and is_terminal(main.state) and texts.get(job_id) == previous.get(job_id)

    previous: dict[str, str] = {}
    texts: dict[str, str] = {}
    for _ in range(max_reads):
        texts = read()
        if texts and all(settled(j, texts, previous) for j in job_ids):
            return texts
        previous = texts
        time.sleep(interval_s)
    return texts


def wait_until_left_queue(job_id: str, poll_s: float = 1.0, max_poll_s: float = 30.0,
                          done: Callable[[], bool] | None = None) -> None:
    """Block while the job is queued or running, polling ``squeue`` with a gently growing interval.

    ``done`` (e.g. "the job's result file exists") ends the wait at once, checked between polls every ``poll_s``:
    once the job has written its result, nothing the queue says any more changes it.
    """
    delay = poll_s
    while True:
        state = squeue_state(job_id)
        if state is None:
            rows = query(job_id)
            main = job_row(rows, job_id)
            # squeue forgets a job MinJobAge after it ends; sacct may still lag: both must say "done"
            if main is None or is_terminal(main.state):
                return
        slept = 0.0
        while slept < delay:
            if done is not None and done():
                return
            time.sleep(min(poll_s, delay - slept))
            slept += poll_s
        delay = min(max_poll_s, delay * 1.5)
