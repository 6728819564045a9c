"""Queue limits (no cluster needed): a refused sbatch that passes with time is retried with back-off, any other
refusal fails at once, max_queued waits for room, and both waits end in one line naming the limit."""

from __future__ import annotations

import pytest
from submitit.core.utils import FailedJobError

from ired.core.errors import DispatchError
from ired.dispatch import sacct, submission
from ired.dispatch.settings import DispatchSettings

REFUSED = ("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates "
           "accounting/QOS policy (job submit limit, user's size and/or time limits)")


class Refusals:
    """A submit() that sbatch refuses ``times`` times, then accepts."""

    def __init__(self, times: int, text: str = REFUSED) -> None:
        self.left, self.text, self.calls = times, text, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise FailedJobError(self.text)
        return "12345"


def test_a_passing_refusal_is_retried_with_back_off(caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    submit = Refusals(3)
    settings = DispatchSettings(cluster="slurm", submit_retry_s=600)
    assert submission.submit_patiently(submit, settings, 1, "ired-paper-q101-s0", sleep=waits.append) == "12345"
    assert waits == [5.0, 10.0, 20.0] and submit.calls == 4
    assert "sbatch refused (sbatch: error: QOSMaxSubmitJobPerUserLimit" in caplog.text


def test_another_refusal_fails_at_once() -> None:
    submit = Refusals(1, "sbatch: error: invalid partition specified: gpux")
    with pytest.raises(FailedJobError):
        submission.submit_patiently(submit, DispatchSettings(cluster="slurm"), 1, "x", sleep=lambda s: None)
    assert submit.calls == 1


def test_refusals_end_in_one_line_after_submit_retry_s() -> None:
    settings = DispatchSettings(cluster="slurm", submit_retry_s=12)
    with pytest.raises(DispatchError) as err:
        submission.submit_patiently(Refusals(100), settings, 1, "ired-paper-q101-s0", sleep=lambda s: None)
    message = str(err.value)
    assert "\n" not in message and "sbatch refused for 12 s" in message and "max_queued" in message, message


def test_max_queued_waits_for_room_counting_array_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = iter([9, 8, 5])  # ired jobs in the queue at each look (array tasks counted)
    monkeypatch.setattr(sacct, "count_queued", lambda prefix: next(queue))
    waits: list[float] = []
    settings = DispatchSettings(cluster="slurm", max_queued=10)
    assert submission.submit_patiently(Refusals(0), settings, 4, "ired-tiny-array", sleep=waits.append) == "12345"
    assert waits == [5.0, 10.0]  # 9 + 4 and 8 + 4 are over 10; 5 + 4 fits


def test_max_queued_ends_in_one_line_naming_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sacct, "count_queued", lambda prefix: 10)
    settings = DispatchSettings(cluster="slurm", max_queued=10, submit_retry_s=30)
    with pytest.raises(DispatchError) as err:
        submission.submit_patiently(Refusals(0), settings, 1, "ired-tiny-array", sleep=lambda s: None)
    message = str(err.value)
    assert "\n" not in message and "max_queued is 10" in message and "10 of your ired-* jobs" in message, message
