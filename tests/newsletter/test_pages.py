"""The studio's pages: only authors see the nav entry and the studio; a Free member gets the plan page."""

from __future__ import annotations

from django.test import Client

from newsletter.services import issue_create


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_free_member_has_no_studio(user_a):
    client = _client(user_a)
    dashboard = client.get("/markets").content.decode()
    assert 'href="/newsletter/"' not in dashboard
    response = client.get("/newsletter/")
    assert response.status_code == 403
    assert "part of the Enterprise plan" in response.content.decode()
    assert client.post("/newsletter/new/", {"title": "x", "body": "y", "audience": "all"}).status_code == 403


def test_an_author_composes_and_sees_the_preview(staff_author, market):
    client = _client(staff_author)
    assert 'href="/newsletter/"' in client.get("/markets").content.decode()
    response = client.post(
        "/newsletter/new/",
        {"title": "Morning notes", "body": "Hi\n\n[[regime BTC/USDT]]", "audience": "all"},
    )
    assert response.status_code == 302
    detail = client.get(response["Location"])
    assert "Preview as a recipient sees it" in detail.content.decode()
    email = client.get(response["Location"] + "email/")
    assert email.status_code == 200
    assert "BTC/USDT regime: Bullish" in email.content.decode()
    assert email["X-Frame-Options"] == "SAMEORIGIN"


def test_a_bad_block_is_shown_on_the_body_field(staff_author, market):
    response = _client(staff_author).post(
        "/newsletter/new/", {"title": "Morning", "body": "Hi\n[[movers 9y]]", "audience": "all"}
    )
    assert response.status_code == 422
    assert "Line 2: The period must be one of 24h, 7d, 30d." in response.content.decode()


def test_a_member_cannot_open_another_authors_issue(staff_author, enterprise_author):
    issue = issue_create(user=staff_author, title="Staff only", body="Hello")
    assert _client(enterprise_author).get(f"/newsletter/{issue.pk}/").status_code == 404
