"""The Discord audience: the issue is posted to the configured channel through bot/discord/notify.py's REST
sender (here a fake Discord HTTP server); without a bot token it is recorded as skipped, and a refusal
is recorded as failed. Email recipients are unaffected either way."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.core import mail

from newsletter.choices import Audience, DiscordStatus
from newsletter.selectors import issue_get
from newsletter.services import issue_create, issue_deliver, issue_send_now
from tests.bot.discord_fake import CHANNEL_ID, FakeDiscord


@pytest.fixture
def fake_discord(settings):
    fake = FakeDiscord()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    settings.DISCORD_API_BASE = fake.base
    settings.DISCORD_BOT_TOKEN = "bot-token-123"
    settings.NEWSLETTER_DISCORD_CHANNEL_ID = CHANNEL_ID
    yield fake
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _send(author, **kwargs):
    issue = issue_create(user=author, title="Community notes", body="Hello **traders**.", **kwargs)
    issue_send_now(user=author, issue_id=issue.pk, start_worker=False)
    issue_deliver(issue_id=issue.pk)
    return issue_get(user=author, issue_id=issue.pk)


def test_the_issue_is_posted_to_the_channel(staff_author, fake_discord):
    issue = _send(staff_author, audience=Audience.NONE, post_to_discord=True)

    posts = [c for c in fake_discord.calls if c.path == f"/channels/{CHANNEL_ID}/messages"]
    assert len(posts) == 1
    embed = posts[0].json["embeds"][0]
    assert embed["title"] == "Community notes"
    assert embed["url"].endswith(f"/newsletter/archive/{issue.pk}-community-notes/")
    assert "Hello **traders**." in embed["description"]
    assert issue.discord_status == DiscordStatus.POSTED
    assert mail.outbox == []


def test_offline_the_post_is_recorded_as_skipped(staff_author, settings):
    settings.DISCORD_BOT_TOKEN = ""
    settings.NEWSLETTER_DISCORD_CHANNEL_ID = CHANNEL_ID
    issue = _send(staff_author, post_to_discord=True)
    assert issue.discord_status == DiscordStatus.SKIPPED
    assert "DISCORD_BOT_TOKEN" in issue.discord_detail
    assert [m.to for m in mail.outbox] == [[staff_author.email]]


def test_a_refused_post_is_recorded_as_failed(staff_author, fake_discord, settings):
    settings.DISCORD_API_BASE = f"{fake_discord.base}/unknown"  # the fake answers 404 there
    issue = _send(staff_author, post_to_discord=True)
    assert issue.discord_status == DiscordStatus.FAILED
    assert "Discord refused the message (404" in issue.discord_detail
    assert [m.to for m in mail.outbox] == [[staff_author.email]]
