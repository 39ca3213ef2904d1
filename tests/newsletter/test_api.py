"""/api/v1/newsletter/: an author creates, previews, sends and reads the stats of an issue with an API
token; a Free member is refused; bad input is a problem+json 400."""

from __future__ import annotations

from django.core import mail
from rest_framework.test import APIClient

from newsletter.services import issue_deliver
from tests.factories import api_token_for


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    return client


def test_create_preview_send_and_stats(enterprise_author, members, market):
    api = _client(enterprise_author)
    created = api.post(
        "/api/v1/newsletter/issues/",
        {"title": "Desk notes", "body": "## Now\n\n[[regime BTC/USDT]]\n"},
        format="json",
    )
    assert created.status_code == 201, created.content
    issue_id = created.json()["id"]
    assert created.json()["status"] == "draft"

    preview = api.post(f"/api/v1/newsletter/issues/{issue_id}/preview/")
    assert preview.status_code == 200
    assert "BTC/USDT regime: Bullish" in preview.json()["html"]
    assert preview.json()["blocks"][0]["data"]["regime"] == "Bullish"
    assert "/newsletter/unsubscribe/" in preview.json()["text"]

    listed = api.get("/api/v1/newsletter/issues/").json()["results"]
    assert [row["title"] for row in listed] == ["Desk notes"]

    sent = api.post(f"/api/v1/newsletter/issues/{issue_id}/send/")
    assert sent.status_code == 202 and sent.json()["status"] == "sending"
    issue_deliver(issue_id=issue_id)  # what the Celery task runs

    stats = api.get(f"/api/v1/newsletter/issues/{issue_id}/stats/").json()
    assert (stats["status"], stats["recipients"], stats["sent"], stats["skipped"]) == ("sent", 6, 6, 0)
    assert len(mail.outbox) == 6

    again = api.put(f"/api/v1/newsletter/issues/{issue_id}/", {"title": "Changed", "body": "x"}, format="json")
    assert again.status_code == 400
    assert again["Content-Type"].startswith("application/problem+json")


def test_a_bad_block_is_a_problem_400(enterprise_author, market):
    response = _client(enterprise_author).post(
        "/api/v1/newsletter/issues/", {"title": "Bad", "body": "[[weather]]"}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert "no data block [[weather]]" in response.content.decode()


def test_a_free_member_cannot_author(user_a):
    api = _client(user_a)
    assert api.get("/api/v1/newsletter/issues/").status_code == 403
    response = api.post("/api/v1/newsletter/issues/", {"title": "Hi", "body": "Hello"}, format="json")
    assert response.status_code == 403
    assert "Enterprise" in response.content.decode()


def test_another_authors_issue_is_a_404(enterprise_author, staff_author):
    created = _client(staff_author).post(
        "/api/v1/newsletter/issues/", {"title": "Staff", "body": "Hello"}, format="json"
    ).json()
    assert _client(enterprise_author).get(f"/api/v1/newsletter/issues/{created['id']}/").status_code == 404
