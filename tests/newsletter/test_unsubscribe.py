"""One-click unsubscribe: the signed link in the headers works without signing in (GET confirms, POST
unsubscribes), a tampered link is refused, and the preferences page changes the same setting."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core import mail
from django.test import Client

from newsletter.selectors import preference_subscribed
from newsletter.services import issue_create, issue_deliver, issue_send_now, unsubscribe_url


def _sent_to(author, member):
    issue = issue_create(user=author, title="Notes", body="Hello.")
    issue_send_now(user=author, issue_id=issue.pk, start_worker=False)
    issue_deliver(issue_id=issue.pk)
    return next(m for m in mail.outbox if m.to == [member.email])


def test_the_emails_link_unsubscribes_with_one_click(staff_author, user_a):
    message = _sent_to(staff_author, user_a)
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith(f"<{settings.SITE_URL}/newsletter/unsubscribe/") and header.endswith("/>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = urlsplit(header.strip("<>")).path
    anonymous = Client(enforce_csrf_checks=True)

    page = anonymous.get(path)
    assert page.status_code == 200
    assert "Stop sending the Nexus newsletter to" in page.content.decode()
    assert preference_subscribed(user=user_a)  # a GET (a link scanner) changes nothing

    # What a mailbox provider sends for RFC 8058 one-click: no cookie, no CSRF token.
    done = anonymous.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200
    assert "will not receive the Nexus newsletter" in done.content.decode()
    assert not preference_subscribed(user=user_a)


def test_a_tampered_link_is_refused(user_a):
    url = unsubscribe_url(user_id=user_a.pk, email=user_a.email)
    path = urlsplit(url).path
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = path.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    response = Client().post(forged)
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert preference_subscribed(user=user_a)


def test_unsubscribed_members_are_skipped_and_can_resubscribe(staff_author, user_a):
    client = Client()
    client.force_login(user_a)
    client.post("/newsletter/preferences/", {})  # the box unticked
    assert not preference_subscribed(user=user_a)
    issue = issue_create(user=staff_author, title="Notes", body="Hello.")
    issue_send_now(user=staff_author, issue_id=issue.pk, start_worker=False)
    report = issue_deliver(issue_id=issue.pk)
    assert report.skipped == 1 and [m.to for m in mail.outbox] == [[staff_author.email]]

    client.post("/newsletter/preferences/", {"subscribed": "on"})
    assert preference_subscribed(user=user_a)
    assert "checked" in client.get("/newsletter/preferences/").content.decode()


def test_a_link_of_a_deleted_account_changes_nothing(user_a):
    from core.rls import system_context

    path = urlsplit(unsubscribe_url(user_id=user_a.pk, email=user_a.email)).path
    with system_context(reason="tests: the member deleted the account"):
        user_a.delete()
    response = Client().post(path)
    assert response.status_code == 200
    assert "will not receive the Nexus newsletter" in response.content.decode()
