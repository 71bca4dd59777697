"""The leader lease against a real Redis: one holder, compare-and-set renewal, takeover after expiry."""

from __future__ import annotations

import redis

from scheduler.leader import Lease
from tests.support.procs import wait_for


def test_only_one_scheduler_holds_the_lease(redis_client: redis.Redis, namespace: str) -> None:
    key = f"{namespace}:lock:scheduler"
    first, second = Lease(redis_client, key, 5.0, holder="a"), Lease(redis_client, key, 5.0, holder="b")
    assert first.refresh() and first.held()
    assert not second.refresh() and not second.held()
    assert first.refresh(), "the holder renews its own lease"
    assert redis_client.get(key) == b"a"
    assert 4000 < redis_client.pttl(key) <= 5000


def test_a_dead_holder_is_replaced_once_its_lease_expires(redis_client: redis.Redis, namespace: str) -> None:
    key = f"{namespace}:lock:scheduler"
    dead, alive = Lease(redis_client, key, 0.3, holder="dead"), Lease(redis_client, key, 0.3, holder="alive")
    assert dead.refresh()
    assert not alive.refresh()
    # The dead one stops renewing; it also stops trusting its lease before Redis lets it go.
    wait_for(lambda: not dead.held(), timeout=2, message="the old holder to distrust its lease")
    assert wait_for(alive.refresh, timeout=2, message="takeover")
    assert not dead.refresh(), "compare-and-set: a late renewal cannot steal the lease back"
    assert redis_client.get(key) == b"alive"


def test_release_hands_over_at_once_and_only_releases_its_own(redis_client: redis.Redis, namespace: str) -> None:
    key = f"{namespace}:lock:scheduler"
    first, second = Lease(redis_client, key, 60.0, holder="a"), Lease(redis_client, key, 60.0, holder="b")
    assert first.refresh()
    second.release()  # not the holder: nothing happens
    assert redis_client.get(key) == b"a"
    first.release()
    assert not first.held()
    assert second.refresh() and redis_client.get(key) == b"b"


def test_a_leader_that_paused_past_its_lease_says_it_lost_the_lead_once_and_its_successor_leads(
    redis_client: redis.Redis, namespace: str, caplog
) -> None:
    """A paused process (SIGSTOP, a long GC) wakes with its trust window gone: the change is still said, once."""
    key = f"{namespace}:lock:scheduler"
    now = [0.0]
    paused = Lease(redis_client, key, 5.0, holder="paused", monotonic=lambda: now[0])
    other = Lease(redis_client, key, 5.0, holder="other")
    with caplog.at_level("INFO", logger="backburner.scheduler"):
        assert paused.refresh()
        now[0] += 60.0  # the pause: its window lapsed, and its key expired (deleted here, as Redis would)
        redis_client.delete(key)
        assert other.refresh()
        assert not paused.refresh() and not paused.refresh()
        assert paused.refresh() is False
    said = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
    assert said == ["scheduler paused is now the leader", "scheduler paused lost the lead"]
