"""Submitting within a cluster's queue limits: sbatch refusals retried with back-off, and a cap on queued jobs.

A cluster refuses an ``sbatch`` for reasons that pass: a QOS or association submit limit
(``QOSMaxSubmitJobPerUserLimit``), a controller too busy to answer. :func:`submit_patiently` retries those with
back-off (5 s doubling to 5 min) and says each in the dispatcher's log; any other refusal (an unknown partition, an
impossible request) fails at once. With ``max_queued`` it first waits until this user's ired jobs in the queue (array
tasks counted one by one, as Slurm counts them against ``MaxSubmitJobsPerUser``) leave room for the new ones. Both
waits are bounded by ``submit_retry_s``: then one line names the limit, so that back-off cannot loop forever.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TypeVar

from ired.core.errors import DispatchError
from ired.dispatch import sacct
from ired.dispatch.settings import DispatchSettings

log = logging.getLogger("ired.dispatch")
T = TypeVar("T")

#: sbatch errors that pass with time (retried); anything else is final.
TRANSIENT = re.compile(
    r"QOSMax\w*|AssocMax\w*|MaxSubmit\w*|Job violates accounting/QOS policy|Socket timed out|"
    r"Unable to contact slurm controller|Resource temporarily unavailable|try again later|slurm_persist_conn",
    re.IGNORECASE)
FIRST_DELAY_S, MAX_DELAY_S = 5.0, 300.0


def submit_patiently(submit: Callable[[], T], settings: DispatchSettings, count: int, what: str,
                     sleep: Callable[[float], None] = time.sleep) -> T:
    """``submit()`` (which runs sbatch for ``count`` jobs or array tasks), within the queue cap and retried while
    the scheduler refuses it for a reason that passes (module doc)."""
    from submitit.core.utils import FailedJobError

    deadline = time.time() + settings.submit_retry_s
    delay = FIRST_DELAY_S
    while True:
        cap = settings.max_queued
        if cap is not None:
            queued = sacct.count_queued(settings.job_name_prefix)
            if queued is not None and queued + count > cap:
                if time.time() + delay > deadline:
                    raise DispatchError(
                        f"{what}: {queued} of your {settings.job_name_prefix}-* jobs are queued (array tasks counted) "
                        f"and max_queued is {cap}: no room for {count} more after waiting {settings.submit_retry_s:g} "
                        "s (submit_retry_s); the same command resumes once the queue drains")
                log.info("%s: %d jobs queued, max_queued %d: waiting %.0f s for room", what, queued, cap, delay)
                sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
                continue
        try:
            return submit()
        except FailedJobError as exc:
            text = " ".join(str(exc).split())[:300]
            if not TRANSIENT.search(text):
                raise
            if time.time() + delay > deadline:
                raise DispatchError(
                    f"{what}: sbatch refused for {settings.submit_retry_s:g} s (submit_retry_s): {text}. A queue "
                    "limit (your QOS's MaxSubmitJobsPerUser: set max_queued below it in the dispatch file) or a busy "
                    "controller; the same command resumes") from None
            log.warning("%s: sbatch refused (%s); retrying in %.0f s", what, text, delay)
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
