"""The client core without a server: retry schedule on a fake clock, batch planning, the too-large decision."""

from __future__ import annotations

import random

import grpc
import pytest

from vswin import contract
from vswin.client import DeadlineExceeded, InvalidInput, ServerError, ServerUnavailable
from vswin.client.channel import RetryPolicy
from vswin.client.core import Attempts, BatchPlan, ClientCore, smaller_batch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _unavailable() -> ServerUnavailable:
    return ServerUnavailable("injected", code=grpc.StatusCode.UNAVAILABLE, details="injected")


def test_attempts_retry_retryable_codes_with_the_policys_backoff_until_attempts_run_out():
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=4, initial_backoff=1.0, max_backoff=3.0, rng=random.Random(0))
    attempts = Attempts("/Predict", "host:1", 100.0, policy, clock)
    delays = []
    for cap in (1.0, 2.0, 3.0):
        assert attempts.remaining() == pytest.approx(100.0 - (clock.now - 100.0))
        delays.append(attempts.failed(_unavailable()))
        assert cap / 2 <= delays[-1] <= cap
        clock.now += delays[-1]
    with pytest.raises(ServerUnavailable):
        attempts.failed(_unavailable())  # the fourth failure is the last attempt


def test_attempts_never_wait_past_the_deadline():
    clock = FakeClock()
    attempts = Attempts("/Predict", "host:1", 1.0, RetryPolicy(max_attempts=100, initial_backoff=0.4, max_backoff=0.4,
                                                                rng=random.Random(1)), clock)  # fmt: skip
    waited = 0.0
    with pytest.raises(ServerUnavailable):
        while True:
            delay = attempts.failed(_unavailable())
            clock.now += delay
            waited += delay
    assert waited < 1.0 and attempts.attempt < 100
    clock.now = attempts.deadline
    with pytest.raises(DeadlineExceeded, match="deadline passed after"):
        attempts.remaining()


def test_attempts_raise_other_codes_at_once():
    attempts = Attempts("/Predict", "host:1", 10.0, RetryPolicy(), FakeClock())
    for code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
        with pytest.raises(ServerError) as err:
            attempts.failed(ServerError("x", code=code))
        assert err.value.code == code


@pytest.mark.parametrize("message, sent, expected", [
    (contract.batch_too_large(12, 8), 12, 8),  # vswin serve's batcher
    ("Task size 7 is larger than maximum input batch size 3", 7, 3),  # TF Serving's shared_batch_scheduler
    ("Invalid argument: Task size 5 is larger than maximum input batch size 5", 5, 2),  # a limit not smaller: halve
    ("Task size 2 is larger than maximum input batch size 1", 1, None),  # nothing smaller than one row
    ("the request has batch size 12, more than max_batch_size 8", 12, None),  # no structured detail
    ("Expects arg[0] to be uint8 but float is provided", 4, None),
])  # fmt: skip
def test_smaller_batch_reads_the_limit_from_the_batchers_message(message, sent, expected):
    assert smaller_batch(InvalidInput("x", code=grpc.StatusCode.INVALID_ARGUMENT, details=message), sent) == expected


def test_smaller_batch_needs_invalid_argument():
    refusal = ServerError("x", code=grpc.StatusCode.INTERNAL, details=contract.batch_too_large(8, 4))
    assert smaller_batch(refusal, 8) is None


def test_batch_plan_cuts_at_the_limit_and_cuts_a_refused_part_again_smaller():
    plan = BatchPlan(11, 4)
    assert plan.take() == [slice(0, 4), slice(4, 8), slice(8, 11)]
    plan.done(slice(8, 11), "c")
    plan.again(slice(0, 4), 2)
    plan.again(slice(4, 8), 2)
    assert plan.take(1) == [slice(0, 2)]
    assert plan.take() == [slice(2, 4), slice(4, 6), slice(6, 8)]
    for part, result in ((slice(6, 8), "b2"), (slice(0, 2), "a1"), (slice(4, 6), "b1"), (slice(2, 4), "a2")):
        plan.done(part, result)
    assert not plan.pending and plan.results() == ["a1", "a2", "b1", "b2", "c"]


def test_refused_part_shrinks_the_clients_limit_or_raises():
    core = ClientCore("host:1", "m", max_batch=8)
    plan = core.plan(8)
    (part,) = plan.take()
    core.refused(plan, part, InvalidInput("x", code=grpc.StatusCode.INVALID_ARGUMENT,
                                          details=contract.batch_too_large(8, 3)))  # fmt: skip
    assert core.max_batch == 3 and plan.take() == [slice(0, 3), slice(3, 6), slice(6, 8)]
    other = InvalidInput("x", code=grpc.StatusCode.INVALID_ARGUMENT, details="bad input")
    with pytest.raises(InvalidInput, match="x"):
        core.refused(plan, slice(0, 3), other)
