"""The provider's rate: a token bucket in Redis shared by the send workers, driven by a fake clock."""

from __future__ import annotations

import pytest
from django.core import mail

from newsletter import services
from newsletter.services import issue_create, issue_deliver, issue_send_now
from newsletter.throttle import TokenBucket
from tests.factories import UserFactory


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_allows_a_burst_then_the_rate(db):
    bucket = TokenBucket(name="test-burst", rate=10, burst=5)
    clock = FakeClock()
    assert [bucket.take(1, now=clock()) for _ in range(5)] == [0.0] * 5
    assert bucket.take(1, now=clock()) == pytest.approx(0.1)
    clock.now += 0.1
    assert bucket.take(1, now=clock()) == 0.0
    assert bucket.take(3, now=clock()) == pytest.approx(0.3)


def test_two_buckets_of_one_provider_share_the_tokens(db):
    first = TokenBucket(name="test-shared", rate=1, burst=2)
    second = TokenBucket(name="test-shared", rate=1, burst=2)
    assert first.take(2, now=50.0) == 0.0
    assert second.take(1, now=50.0) == pytest.approx(1.0)


def test_a_send_is_paced_at_the_provider_rate(staff_author, settings, monkeypatch):
    for i in range(29):
        UserFactory(email=f"paced{i}@example.com")
    settings.NEWSLETTER_SEND_RATE = 20.0
    settings.NEWSLETTER_SEND_BURST = 10
    monkeypatch.setattr(services, "provider_bucket", lambda: TokenBucket(name="test-paced", rate=20, burst=10))
    issue = issue_create(user=staff_author, title="Paced", body="Hello.")
    issue_send_now(user=staff_author, issue_id=issue.pk, start_worker=False)
    clock = FakeClock()

    report = issue_deliver(issue_id=issue.pk, batch_size=30, clock=clock, sleep=clock.sleep)

    assert report.sent == 30 and len(mail.outbox) == 30
    # 10 at once from the full bucket, then 20 more at 20 a second: one second of waiting in all.
    assert sum(clock.slept) == pytest.approx(1.0)
    assert len(clock.slept) == 2
