"""What to do after a failed attempt: a pure function of the failure kind, the attempt's plan and the history.

Defaults (all configurable in :class:`RetryPolicy`):

- ``node_failure``: resubmit with the failed node(s) added to an accumulating ``--exclude`` list, up to
  ``node_failure_retries`` times;
- ``oom_host`` / ``oom_device``: walk the fallback ladder of the cause, first rung that still applies wins. A host
  OOM (the job's cgroup memory limit, Slurm ``OUT_OF_MEMORY``) walks ``host_oom_ladder``: ``host_memory`` doubles
  the job's memory, up to ``max_mem_gb``, before anything about the run changes. A device OOM (CUDA's allocator)
  walks ``device_oom_ladder``, which has no memory rung (more host memory buys no device memory): ``micro_batch``
  halves the micro-batch and so doubles gradient accumulation (effective batch, hence the experiment, unchanged;
  repeated down to ``min_micro_batch``), ``negative_steps`` halves the negative-sampling steps, ``replay_buffer``
  halves the replay buffer (``replay`` negatives only). These last two change the experiment, which the attempt
  log records. The runner keeps the ladder's position in the run folder (:mod:`ired.dispatch.ladder`);
- ``timeout`` / ``preempted``: a *slice* of the run ended (the trainer checkpointed on the time-limit warning or on
  SIGTERM): resubmit unchanged, and the next slice resumes from that checkpoint. Slices spend no failure retry and do
  not count towards ``max_attempts``: a run goes on while each slice advances its step, and stops after
  ``stalled_slices`` slices in a row without progress (a time limit too short for the run to move);
- ``diverged`` / ``config_error`` / ``cancelled``: no retry: rerunning gives the same answer (or undoes a
  person's decision);
- ``unknown``: ``unknown_retries`` plain retries;
- ``interrupted`` / ``requeued`` (the kinds the dispatcher writes itself): not resubmitted by the head that
  logs them (a person stopped the attempt; Slurm runs the same job again).

Every retry of a failure is bounded by ``max_attempts`` (slices not counted). Every kind has its place here:
:data:`NO_RETRY`, :data:`SLICE_KINDS` or :data:`BUDGETED_KINDS` with its own branch of :func:`decide`; a
kind in none of them (a new one) is refused by :func:`decide` in one line, never retried as an unknown cause.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ired.core import exit_codes
from ired.dispatch.failures import FailureKind

Rung = Literal["micro_batch", "negative_steps", "replay_buffer", "host_memory"]
DeviceRung = Literal["micro_batch", "negative_steps", "replay_buffer"]
_HOST_OOM_LADDER: tuple[Rung, ...] = ("host_memory", "micro_batch", "negative_steps", "replay_buffer")
_DEVICE_OOM_LADDER: tuple[DeviceRung, ...] = ("micro_batch", "negative_steps", "replay_buffer")

#: Failure kinds that are never retried, with why (the give-up message says it).
NO_RETRY: dict[FailureKind, str] = {
    FailureKind.diverged: "diverged runs are deterministic: fix the config (lr, objective, energy_reg) and rerun",
    FailureKind.config_error: "config errors need a config fix",
    FailureKind.cancelled: "the job was cancelled (scancel): not resubmitting over a person's decision",
    FailureKind.interrupted: "stopped on purpose (Ctrl-C of its head, ired cancel): the next command resumes "
                             "the run",
    FailureKind.requeued: "Slurm requeued the job itself (same job id): it runs again without a new "
                          "submission",
}


class RetryPolicy(BaseModel):
    """How many times, and how, each kind of failure is retried."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=8, ge=1, description="Attempts in total, first one included.")
    node_failure_retries: int = Field(
        default=3, ge=0, description="Resubmissions after node failures (each excludes the node).")
    stalled_slices: int = Field(
        default=2, ge=1, description="Slices (time limits, preemptions) in a row without progress (no newer "
        "checkpoint) before the run stops. Slices that advance the run are never limited.")
    unknown_retries: int = Field(default=2, ge=0, description="Resubmissions after failures of unknown cause.")
    host_oom_ladder: list[Rung] = Field(
        default_factory=lambda: list(_HOST_OOM_LADDER),
        description="Fallbacks after a host OOM (the job's memory limit), in this order; a rung that no longer "
        "applies is skipped (host_memory once max_mem_gb is reached).",
    )
    device_oom_ladder: list[DeviceRung] = Field(
        default_factory=lambda: list(_DEVICE_OOM_LADDER),
        description="Fallbacks after a device (CUDA) OOM, in this order; never host memory.",
    )
    min_micro_batch: int = Field(default=8, ge=1, description="The micro_batch rung stops halving below this.")
    min_negative_steps: int = Field(default=1, ge=0, description="The negative_steps rung stops halving below this.")
    min_buffer_size: int = Field(default=256, ge=1, description="The replay_buffer rung stops halving below this.")
    max_mem_gb: float = Field(
        default=256.0, gt=0, description="The host_memory rung doubles the memory up to this cap (GB).")
    node_failure_exit_codes: list[int] = Field(
        default_factory=lambda: [exit_codes.NODE_FAILURE],
        description="Exit codes that mean 'this node is broken' (Python exits 120 when it cannot flush stdio, "
        "e.g. a failed log filesystem).",
    )


    @model_validator(mode="before")
    @classmethod
    def _split_ladder(cls, data: Any) -> Any:
        if isinstance(data, dict) and "requeue_retries" in data:
            raise ValueError("requeue_retries is gone: time limits and preemptions are slices, resubmitted while "
                             "each advances the run; stalled_slices (default 2) stops a run that no longer moves")
        if isinstance(data, dict) and "oom_ladder" in data:
            raise ValueError("oom_ladder is split by cause: host_oom_ladder (default host_memory, micro_batch, "
                             "negative_steps, replay_buffer) and device_oom_ladder (default micro_batch, "
                             "negative_steps, replay_buffer)")
        return data


@dataclass(frozen=True)
class Plan:
    """The knobs one attempt runs with. ``None``: not a training job (or the config has no such knob)."""

    mem_gb: float
    exclude: tuple[str, ...] = ()
    micro_batch: int | None = None
    batch_size: int | None = None
    negatives_steps: int | None = None  # None: the objective draws no negatives
    buffer_size: int | None = None  # None: no replay buffer

    @property
    def accumulation(self) -> int | None:
        if self.micro_batch is None or self.batch_size is None:
            return None
        return self.batch_size // self.micro_batch


@dataclass(frozen=True)
class Decision:
    retry: bool
    action: str  # one line for the attempt log and the user
    plan: Plan  # the next attempt's plan (unchanged when not retrying)


def _oom_rung(kind: FailureKind, plan: Plan, policy: RetryPolicy) -> Decision | None:
    ladder = policy.host_oom_ladder if kind is FailureKind.oom_host else policy.device_oom_ladder
    for rung in ladder:
        if rung == "micro_batch" and plan.micro_batch is not None and plan.batch_size is not None:
            new = plan.micro_batch // 2
            if plan.micro_batch % 2 == 0 and new >= policy.min_micro_batch and plan.batch_size % new == 0:
                nxt = replace(plan, micro_batch=new)
                return Decision(
                    True,
                    f"oom ladder micro_batch: micro_batch {plan.micro_batch}->{new}, accumulation "
                    f"{plan.accumulation}->{nxt.accumulation} (effective batch {plan.batch_size} unchanged)",
                    nxt,
                )
        elif rung == "negative_steps" and plan.negatives_steps is not None:
            new = max(policy.min_negative_steps, plan.negatives_steps // 2)
            if new < plan.negatives_steps:
                return Decision(
                    True,
                    f"oom ladder negative_steps: negatives.steps {plan.negatives_steps}->{new} "
                    "(changes the experiment)",
                    replace(plan, negatives_steps=new),
                )
        elif rung == "replay_buffer" and plan.buffer_size is not None:
            new = plan.buffer_size // 2
            if new >= policy.min_buffer_size:
                return Decision(
                    True,
                    f"oom ladder replay_buffer: negatives.buffer_size {plan.buffer_size}->{new} "
                    "(changes the experiment)",
                    replace(plan, buffer_size=new),
                )
        elif rung == "host_memory" and kind is FailureKind.oom_host:
            new_mem = min(plan.mem_gb * 2, policy.max_mem_gb)
            if new_mem > plan.mem_gb:
                cap = " (the cap, retry.max_mem_gb)" if new_mem == policy.max_mem_gb else ""
                return Decision(True, f"oom ladder host_memory: mem_gb {plan.mem_gb:g}->{new_mem:g}{cap}",
                                replace(plan, mem_gb=new_mem))
    return None


#: Failure kinds that end a slice of a run rather than fail it.
SLICE_KINDS = frozenset({FailureKind.timeout, FailureKind.preempted})
#: Failure kinds retried within the failure budgets (max_attempts, their own), each by its branch of decide.
BUDGETED_KINDS = frozenset({FailureKind.node_failure, FailureKind.oom_host, FailureKind.oom_device,
                            FailureKind.unknown})


class NoPolicy(ValueError):
    """A failure kind that :func:`decide` has no branch for (a kind added to the enum, not to the policy)."""


def decide(
    kind: FailureKind,
    plan: Plan,
    previous_kinds: list[FailureKind],
    failed_nodes: tuple[str, ...],
    policy: RetryPolicy,
    stalled: int = 0,
) -> Decision:
    """The next step after an attempt that failed with ``kind``.

    ``previous_kinds`` are the kinds of all earlier failed attempts (not this one); ``failed_nodes`` the nodes
    this attempt ran on (from sacct's NodeList); ``stalled``, for a slice (:data:`SLICE_KINDS`), how many slices in a
    row, this one included, ended without a newer checkpoint (0: this one advanced the run).
    """
    if kind not in NO_RETRY and kind not in SLICE_KINDS and kind not in BUDGETED_KINDS:
        raise NoPolicy(_no_policy(kind))
    give_up = Decision(False, "", plan)
    if kind in NO_RETRY:
        return replace(give_up, action=f"no retry: {kind.value}: {NO_RETRY[kind]}")
    if kind in SLICE_KINDS:
        if stalled >= policy.stalled_slices:
            return replace(give_up, action=f"give up: {stalled} slices in a row ended ({kind.value}) without a newer "
                           f"checkpoint (stalled_slices={policy.stalled_slices}): raise the runtime resource so that "
                           "a slice reaches the next checkpoint")
        what = "no newer checkpoint" if stalled else "the run advanced"
        return Decision(True, f"next slice ({kind.value}, {what}): resumes from the newest checkpoint; a slice is "
                        "not a failure", plan)
    failures = [k for k in previous_kinds if k not in SLICE_KINDS]
    attempts_so_far = len(failures) + 1
    if attempts_so_far >= policy.max_attempts:
        return replace(give_up, action=f"give up: {attempts_so_far} failed attempts reached "
                                       f"max_attempts={policy.max_attempts}")
    same = sum(k is kind for k in failures)
    if kind is FailureKind.node_failure:
        if same >= policy.node_failure_retries:
            return replace(give_up, action=f"give up: {same + 1} node failures "
                                           f"(node_failure_retries={policy.node_failure_retries})")
        exclude = tuple(dict.fromkeys(plan.exclude + failed_nodes))
        new = [n for n in failed_nodes if n not in plan.exclude]
        what = f"excluding {','.join(new)}" if new else "node unknown, nothing new to exclude"
        return Decision(True, f"resubmit {what} (exclude={','.join(exclude) or '-'})", replace(plan, exclude=exclude))
    if kind in (FailureKind.oom_host, FailureKind.oom_device):
        rung = _oom_rung(kind, plan, policy)
        ladder = policy.host_oom_ladder if kind is FailureKind.oom_host else policy.device_oom_ladder
        return rung or replace(give_up, action=f"give up: {kind.value} and no rung of its oom ladder {ladder} applies "
                               "any more")
    if kind is FailureKind.unknown:
        if same >= policy.unknown_retries:
            return replace(give_up, action=f"give up: {same + 1} failures of unknown cause "
                           f"(unknown_retries={policy.unknown_retries})")
        return Decision(True, "retry (unknown cause; resumes from the latest checkpoint)", plan)
    raise NoPolicy(_no_policy(kind))


def _no_policy(kind: FailureKind) -> str:
    return (f"failure kind {str(kind)!r} has no policy: add it to NO_RETRY, SLICE_KINDS or BUDGETED_KINDS "
            "with a branch of decide in ired.dispatch.policy")
