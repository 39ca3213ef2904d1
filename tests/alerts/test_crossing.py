"""The crossing index against a brute-force reference (no database: thousands of random cases)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.crossing import DOWN, UP, CrossingIndex, Entry, crosses

# Prices on a coarse grid so that thresholds and prices often coincide (the boundary cases).
prices = st.integers(min_value=1, max_value=60).map(lambda n: Decimal(n) / 4)
directions = st.sampled_from([(UP,), (DOWN,), (UP, DOWN)])
alert_sets = st.lists(st.tuples(prices, directions, st.sampled_from(["A", "B"])), max_size=40)


def brute_force(alerts, series, previous, current) -> set[int]:
    return {
        alert_id
        for alert_id, (threshold, dirs, s) in enumerate(alerts)
        if s == series and any(crosses(d, threshold, previous, current) for d in dirs)
    }


def build(alerts) -> CrossingIndex:
    index = CrossingIndex()
    for alert_id, (threshold, dirs, series) in enumerate(alerts):
        index.add(Entry(alert_id=alert_id, user_id=1, series=series, threshold=threshold, directions=dirs))
    return index


@settings(max_examples=500, deadline=None)
@given(alerts=alert_sets, path=st.lists(prices, min_size=2, max_size=30))
def test_fired_set_equals_brute_force_on_random_paths(alerts, path):
    index = build(alerts)
    for previous, current in zip(path, path[1:], strict=False):
        found = [entry.alert_id for entry in index.crossed("A", previous, current)]
        assert len(found) == len(set(found)), "an alert came back twice for one move"
        assert set(found) == brute_force(alerts, "A", previous, current)


@settings(max_examples=200, deadline=None)
@given(alerts=alert_sets, removed=st.sets(st.integers(min_value=0, max_value=39)), p0=prices, p1=prices)
def test_removed_alerts_never_fire(alerts, removed, p0, p1):
    index = build(alerts)
    for alert_id in removed:
        index.remove(alert_id)
    found = {entry.alert_id for entry in index.crossed("B", p0, p1)}
    assert found == brute_force(alerts, "B", p0, p1) - removed


def test_a_jump_across_many_levels_fires_each_once_and_only_those():
    index = CrossingIndex()
    for n, level in enumerate(range(101, 201)):
        index.add(Entry(alert_id=n, user_id=1, series="p", threshold=Decimal(level), directions=(UP,)))
    fired = index.crossed("p", Decimal("100.5"), Decimal("150"))
    assert sorted(e.threshold for e in fired) == [Decimal(v) for v in range(101, 151)]
    assert index.crossed("p", Decimal("150"), Decimal("150")) == []


def test_boundaries_follow_the_half_open_rule():
    index = CrossingIndex()
    index.add(Entry(alert_id=1, user_id=1, series="p", threshold=Decimal("100"), directions=(UP,)))
    index.add(Entry(alert_id=2, user_id=1, series="p", threshold=Decimal("100"), directions=(DOWN,)))
    assert [e.alert_id for e in index.crossed("p", Decimal("99"), Decimal("100"))] == [1]  # onto the level
    assert index.crossed("p", Decimal("100"), Decimal("101")) == []  # resting on it already counted
    assert [e.alert_id for e in index.crossed("p", Decimal("101"), Decimal("100"))] == [2]
    assert index.crossed("p", Decimal("100"), Decimal("99")) == []
