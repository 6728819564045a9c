"""The retry policy: exclude lists, the OOM ladder, requeues, no-retry kinds and bounds."""

from __future__ import annotations

from enum import StrEnum

import pytest

from ired.dispatch.failures import CLASSIFIED_KINDS, RECORDED_KINDS, RULES
from ired.dispatch.failures import FailureKind as K
from ired.dispatch.policy import BUDGETED_KINDS, NO_RETRY, SLICE_KINDS, NoPolicy, Plan, RetryPolicy, decide

POLICY = RetryPolicy()
TRAIN = Plan(mem_gb=4.0, micro_batch=64, batch_size=64, negatives_steps=4, buffer_size=1024)


def test_node_failure_accumulates_excludes() -> None:
    d1 = decide(K.node_failure, TRAIN, [], ("node1",), POLICY)
    assert d1.retry and d1.plan.exclude == ("node1",)
    assert "excluding node1" in d1.action
    d2 = decide(K.node_failure, d1.plan, [K.node_failure], ("node3",), POLICY)
    assert d2.retry and d2.plan.exclude == ("node1", "node3")
    d3 = decide(K.node_failure, d2.plan, [K.node_failure] * 3, ("node4",), POLICY)
    assert not d3.retry and "node_failure_retries=3" in d3.action


def _walk(kind: K, plan: Plan, policy: RetryPolicy) -> tuple[list[str], Plan]:
    history, actions = [], []
    while True:
        d = decide(kind, plan, history, ("node1",), policy)
        if not d.retry:
            return actions, plan
        if d.plan.micro_batch != plan.micro_batch:  # effective batch unchanged
            assert d.plan.micro_batch * d.plan.accumulation == plan.batch_size
            assert d.plan.accumulation == 2 * plan.accumulation
        actions.append(d.action.split(":")[0])
        plan, history = d.plan, history + [kind]


def test_host_oom_raises_memory_first_up_to_the_cap_then_shrinks_the_batch() -> None:
    policy = RetryPolicy(min_micro_batch=16, max_attempts=20, max_mem_gb=20)
    actions, plan = _walk(K.oom_host, TRAIN, policy)
    assert actions == [
        "oom ladder host_memory",  # 4 -> 8
        "oom ladder host_memory",  # 8 -> 16
        "oom ladder host_memory",  # 16 -> 20, the cap
        "oom ladder micro_batch",  # 64 -> 32, accumulation 2
        "oom ladder micro_batch",  # 32 -> 16, accumulation 4
        "oom ladder negative_steps",  # 4 -> 2
        "oom ladder negative_steps",  # 2 -> 1
        "oom ladder replay_buffer",  # 1024 -> 512
        "oom ladder replay_buffer",  # 512 -> 256
    ]
    assert (plan.micro_batch, plan.accumulation, plan.negatives_steps, plan.buffer_size, plan.mem_gb) == (
        16, 4, 1, 256, 20)
    assert plan.exclude == ()  # an OOM is the job's, not the node's
    assert "(the cap, retry.max_mem_gb)" in decide(K.oom_host, Plan(mem_gb=16.0), [], (), policy).action


def test_device_oom_lowers_the_micro_batch_and_never_buys_memory() -> None:
    actions, plan = _walk(K.oom_device, TRAIN, RetryPolicy(min_micro_batch=16, max_attempts=20))
    assert actions == (["oom ladder micro_batch"] * 2 + ["oom ladder negative_steps"] * 2
                       + ["oom ladder replay_buffer"] * 2)
    assert (plan.micro_batch, plan.mem_gb) == (16, 4.0)


def test_the_old_single_ladder_key_says_how_it_was_split() -> None:
    with pytest.raises(ValueError, match="host_oom_ladder.*device_oom_ladder"):
        RetryPolicy(oom_ladder=["host_memory"])
    with pytest.raises(ValueError, match="device_oom_ladder"):
        RetryPolicy(device_oom_ladder=["host_memory"])


def test_first_oom_rung_is_exactly_halving() -> None:
    d = decide(K.oom_device, TRAIN, [], ("node1",), POLICY)
    assert d.retry and (d.plan.micro_batch, d.plan.accumulation) == (32, 2)
    assert d.action == "oom ladder micro_batch: micro_batch 64->32, accumulation 1->2 (effective batch 64 unchanged)"


def test_device_oom_never_buys_host_memory() -> None:
    bare = Plan(mem_gb=4.0, micro_batch=8, batch_size=64)  # nothing left to shrink
    d = decide(K.oom_device, bare, [], ("node1",), POLICY)
    assert not d.retry and "no rung" in d.action
    assert decide(K.oom_host, bare, [], ("node1",), POLICY).plan.mem_gb == 8.0


def test_micro_batch_rung_needs_a_divisor() -> None:
    odd = Plan(mem_gb=4.0, micro_batch=48, batch_size=96)  # 24 divides 96
    assert decide(K.oom_device, odd, [], (), POLICY).plan.micro_batch == 24
    no = Plan(mem_gb=4.0, micro_batch=9, batch_size=27)  # 9 is odd: skip to the next rung (none)
    assert not decide(K.oom_device, no, [], (), POLICY).retry


def test_ladder_is_configurable() -> None:
    batch_first = RetryPolicy(host_oom_ladder=["micro_batch", "host_memory"])
    d = decide(K.oom_host, TRAIN, [], (), batch_first)
    assert d.plan.micro_batch == 32 and d.plan.mem_gb == 4.0


@pytest.mark.parametrize("kind", [K.timeout, K.preempted])
def test_a_slice_that_advanced_goes_on_unchanged_however_many_came_before(kind: K) -> None:
    """Time limits and preemptions are slices: never counted against max_attempts or any retry budget."""
    d = decide(kind, TRAIN, [], ("node1",), POLICY)
    assert d.retry and d.plan == TRAIN and "next slice" in d.action and "advanced" in d.action
    assert decide(kind, TRAIN, [K.timeout] * 40 + [K.preempted] * 5, (), POLICY, stalled=0).retry
    assert decide(kind, TRAIN, [K.timeout] * 40, (), POLICY, stalled=1).retry  # one slice without progress: again


@pytest.mark.parametrize("kind", [K.timeout, K.preempted])
def test_two_slices_in_a_row_without_progress_stop_in_one_line(kind: K) -> None:
    d = decide(kind, TRAIN, [K.timeout], (), POLICY, stalled=2)
    assert not d.retry and "2 slices in a row" in d.action and "runtime" in d.action and "\n" not in d.action
    assert decide(kind, TRAIN, [K.timeout], (), RetryPolicy(stalled_slices=3), stalled=2).retry


def test_the_old_requeue_budget_says_what_replaced_it() -> None:
    with pytest.raises(ValueError, match="stalled_slices"):
        RetryPolicy(requeue_retries=3)


@pytest.mark.parametrize("kind, word", [(K.diverged, "diverged"), (K.config_error, "config"),
                                        (K.cancelled, "cancelled"), (K.interrupted, "stopped on purpose"),
                                        (K.requeued, "requeued")])
def test_no_retry_kinds(kind: K, word: str) -> None:
    d = decide(kind, TRAIN, [], ("node1",), POLICY)
    assert not d.retry and word in d.action


def test_unknown_is_bounded_and_everything_by_max_attempts() -> None:
    assert decide(K.unknown, TRAIN, [], (), POLICY).retry
    assert decide(K.unknown, TRAIN, [K.unknown], (), POLICY).retry
    assert not decide(K.unknown, TRAIN, [K.unknown, K.unknown], (), POLICY).retry
    small = RetryPolicy(max_attempts=2)
    d = decide(K.node_failure, TRAIN, [K.unknown], ("node1",), small)
    assert not d.retry and "max_attempts=2" in d.action
    assert decide(K.node_failure, TRAIN, [K.timeout] * 5, ("node1",), small).retry  # slices are not failures


@pytest.mark.parametrize("kind", list(K))
def test_every_failure_kind_has_a_policy_of_its_own(kind: K) -> None:
    """Every kind of the enum, the ones the dispatcher writes itself (interrupted, requeued) included, has its
    place in the policy and its own answer: none falls through to the unknown cause's retries."""
    places = [kind in NO_RETRY, kind in SLICE_KINDS, kind in BUDGETED_KINDS]
    assert places.count(True) == 1, (kind, places)
    action = decide(kind, TRAIN, [], ("node1",), POLICY, stalled=0).action
    assert ("unknown cause" in action) == (kind is K.unknown), (kind, action)
    assert kind.value in action or kind in BUDGETED_KINDS, (kind, action)


class _NewKind(StrEnum):
    gpu_fault = "gpu_fault"


def test_a_kind_without_a_policy_is_refused_loudly_not_retried_as_unknown() -> None:
    """A kind added to the enum but not to the policy stops the dispatcher in one line naming where to add
    it."""
    for previous in ([], [K.unknown] * 7):  # before and after the max_attempts budget would answer
        with pytest.raises(NoPolicy, match="failure kind 'gpu_fault' has no policy: add it to NO_RETRY, "
                           "SLICE_KINDS or BUDGETED_KINDS"):
            decide(_NewKind.gpu_fault, TRAIN, previous, ("node1",), POLICY)  # type: ignore[arg-type]


def test_the_kinds_the_dispatcher_writes_itself_are_never_retried_and_never_classified() -> None:
    for kind in RECORDED_KINDS:
        assert not decide(kind, TRAIN, [], ("node1",), POLICY).retry
        assert kind not in CLASSIFIED_KINDS
    assert {rule.kind for rule in RULES} | {K.unknown} == CLASSIFIED_KINDS  # classify answers the others
