"""Notifications over the API: the list (all or unread), marking one or all read, and the preferences
(read, change all-or-none). Another user's notification is a 404."""

from __future__ import annotations

import pytest

from core.notifications import notify
from core.rls import tenant
from tests.api import more
from tests.api.more import patch, post, problem, results
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

# Fixtures (tests/api/more.py)
api_a = more.api_a
api_b = more.api_b
read_only_a = more.read_only_a

URL = "/api/v1/notifications/"


def _enabled(client, kind: str) -> dict[str, bool]:
    rows = client.get(f"{URL}preferences/").json()
    row = next(r for r in rows if r["kind"] == kind)
    return {c["channel"]: c["enabled"] for c in row["channels"]}


def test_list_newest_first_and_unread_filter(api_a, user_a):
    with tenant(user_a.pk):
        notify(user=user_a, kind="alert.price", message="BTC/USDT rose above 70,000.00.", link="/alerts/")
        notify(user=user_a, kind="alert.price", message="ETH/USDT rose above 4,000.00.")
    rows = results(api_a.get(URL))
    assert [(r["message"], r["read_at"]) for r in rows] == [
        ("ETH/USDT rose above 4,000.00.", None),
        ("BTC/USDT rose above 70,000.00.", None),
    ]
    assert rows[1]["link"] == "/alerts/"
    problem(api_a.get(URL, {"unread": "perhaps"}), 400, "unread")


def test_mark_one_then_all_read(api_a, user_a):
    with tenant(user_a.pk):
        first, second, third = (NotificationFactory(user=user_a) for _ in range(3))
    one = post(api_a, f"{URL}{first.pk}/read/")
    assert one.status_code == 200 and one.json() == {"marked": 1, "unread": 2}
    assert post(api_a, f"{URL}{first.pk}/read/").json() == {"marked": 0, "unread": 2}
    assert {r["id"] for r in results(api_a.get(URL, {"unread": "true"}))} == {second.pk, third.pk}
    assert [r["id"] for r in results(api_a.get(URL, {"unread": "false"}))] == [first.pk]
    every = post(api_a, f"{URL}read/")
    assert every.status_code == 200 and every.json() == {"marked": 2, "unread": 0}
    assert all(r["read_at"] for r in results(api_a.get(URL)))


def test_preferences_read_and_change(api_a):
    assert _enabled(api_a, "alert.price") == {"in_app": True, "email": True}  # no Discord link: no Discord
    changed = patch(
        api_a,
        f"{URL}preferences/",
        {"preferences": [{"kind": "alert.price", "channel": "email", "enabled": False}]},
    )
    assert changed.status_code == 200, changed.content
    assert _enabled(api_a, "alert.price") == {"in_app": True, "email": False}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "preferences"),
        ({"preferences": []}, "preferences"),
        ({"preferences": [{"kind": "alert.price", "channel": "email"}]}, "preferences"),
        ({"preferences": [{"kind": 0, "channel": "email", "enabled": False}]}, "preferences"),
        ({"preferences": [{"kind": "alert.nope", "channel": "email", "enabled": False}]}, "preferences"),
        ({"preferences": [{"kind": "alert.price", "channel": "discord", "enabled": True}]}, "preferences"),
        ({"preferences": "all"}, "preferences"),
    ],
)
def test_bad_preferences_are_field_errors(api_a, body, field):
    problem(patch(api_a, f"{URL}preferences/", body), 400, field)


def test_a_bad_change_changes_nothing(api_a):
    body = {
        "preferences": [
            {"kind": "alert.price", "channel": "email", "enabled": False},
            {"kind": "alert.price", "channel": "pigeon", "enabled": True},
        ]
    }
    problem(patch(api_a, f"{URL}preferences/", body), 400, "preferences")
    assert _enabled(api_a, "alert.price")["email"] is True


def test_another_users_notification_is_404(api_a, api_b, user_b):
    with tenant(user_b.pk):
        theirs = NotificationFactory(user=user_b)
    problem(post(api_a, f"{URL}{theirs.pk}/read/"), 404)
    assert results(api_a.get(URL)) == []
    assert post(api_a, f"{URL}read/").json()["marked"] == 0
    assert results(api_b.get(URL, {"unread": "true"}))[0]["id"] == theirs.pk


def test_a_read_token_cannot_change_preferences(read_only_a):
    body = {"preferences": [{"kind": "alert.price", "channel": "email", "enabled": False}]}
    problem(patch(read_only_a, f"{URL}preferences/", body), 403)
    assert read_only_a.get(f"{URL}preferences/").status_code == 200


def test_a_read_token_marks_notifications_read(read_only_a, user_a):
    with tenant(user_a.pk):
        notify(user=user_a, kind="alert.price", message="BTC/USDT rose above 70,000.00.")
    assert post(read_only_a, f"{URL}read/").json() == {"marked": 1, "unread": 0}
    assert results(read_only_a.get(URL, {"unread": "true"})) == []
