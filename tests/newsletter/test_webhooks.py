"""Resend's tracking webhooks (through django-anymail, Svix-signed as Resend signs them): a bounce or a
complaint suppresses the address, and the next send counts it as suppressed instead of emailing it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.conf import settings
from django.core import mail
from django.test import Client
from svix.webhooks import Webhook

from newsletter.selectors import address_suppressed
from newsletter.services import issue_create, issue_deliver, issue_send_now

URL = "/anymail/resend/tracking/"


def _event(kind: str, to: str, **extra) -> dict:
    return {
        "type": kind,
        "created_at": "2026-11-30T18:41:12.126Z",
        "data": {
            "created_at": "2026-11-30 18:41:11.894719+00",
            "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
            "from": "Nexus <no-reply@nexus.local>",
            "to": [to],
            "subject": "Weekly notes",
            **extra,
        },
    }


def _post(payload: dict, *, secret: str | None = None, msg_id: str = "msg_2p5dgCXlgVHXjWuMDHVLrn1UXxY"):
    body = json.dumps(payload)
    signer = Webhook(secret or settings.ANYMAIL["RESEND_SIGNING_SECRET"])
    now = datetime.now(UTC)
    signature = signer.sign(msg_id, now, body)
    return Client().post(
        URL,
        data=body,
        content_type="application/json",
        headers={"svix-id": msg_id, "svix-timestamp": str(int(now.timestamp())), "svix-signature": signature},
    )


def test_a_hard_bounce_suppresses_the_address(staff_author, user_a):
    bounce = {
        "bounce": {
            "message": "The recipient's email provider sent a hard bounce message, and there's nothing to "
            "change.",
            "subType": "General",
            "type": "Permanent",
        }
    }
    assert _post(_event("email.bounced", "Alice <alice@example.com>", **bounce)).status_code == 200
    suppression = address_suppressed(email="ALICE@example.com")
    assert suppression is not None and suppression.reason == "bounced"

    issue = issue_create(user=staff_author, title="Notes", body="Hello.")
    issue_send_now(user=staff_author, issue_id=issue.pk, start_worker=False)
    report = issue_deliver(issue_id=issue.pk)
    assert report.suppressed == 1
    assert [m.to for m in mail.outbox] == [[staff_author.email]]


def test_a_complaint_suppresses_the_address(user_a):
    assert _post(_event("email.complained", "alice@example.com"), msg_id="msg_complaint").status_code == 200
    assert address_suppressed(email="alice@example.com").reason == "complained"


def test_deliveries_and_opens_suppress_nothing(user_a):
    assert _post(_event("email.delivered", "alice@example.com"), msg_id="msg_delivered").status_code == 200
    assert address_suppressed(email="alice@example.com") is None


def test_a_wrongly_signed_event_is_refused(user_a):
    response = _post(_event("email.bounced", "alice@example.com"), secret="whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")
    assert response.status_code == 400
    assert address_suppressed(email="alice@example.com") is None
