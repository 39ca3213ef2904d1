"""The "post to a Discord channel" action: through core's channel-post registry, which the bot fills with its
REST sender (automation never imports the bot), captured at the HTTP boundary; never repeated after a crash."""

from __future__ import annotations

import responses

from automation.models import RunAction
from automation.services import rule_create, rule_event_record, run_execute
from core.rls import tenant

API = "https://discord.test/api/v10"


def _rule(user):
    with tenant(user.pk):
        return rule_create(user=user, name="Tell the desk", trigger_kind="schedule", trigger={"cron": "0 9 * * *"},
                           actions=[{"kind": "discord_post", "channel_id": "123456789", "message": "Rule {{rule}} ran"}])


@responses.activate
def test_a_rule_posts_to_a_discord_channel_through_the_bots_sender(user_a, settings):
    settings.DISCORD_BOT_TOKEN, settings.DISCORD_API_BASE = "bot-token-123", API
    posted = responses.add(responses.POST, f"{API}/channels/123456789/messages", json={"id": "1"})
    rule = _rule(user_a)
    run = rule_event_record(rule_id=rule.pk, user_id=user_a.pk, event_id="e", event={}, execute=False)
    assert run_execute(run_id=run.pk, user_id=user_a.pk).status == "succeeded"
    assert posted.call_count == 1
    assert b'"content": "Rule Tell the desk ran"' in posted.calls[0].request.body
    assert responses.calls[0].request.headers["Authorization"] == "Bot bot-token-123"


@responses.activate
def test_a_post_cut_short_by_a_crash_is_not_sent_twice(user_a, settings):
    settings.DISCORD_BOT_TOKEN, settings.DISCORD_API_BASE = "bot-token-123", API
    posted = responses.add(responses.POST, f"{API}/channels/123456789/messages", json={"id": "1"})
    rule = _rule(user_a)
    run = rule_event_record(rule_id=rule.pk, user_id=user_a.pk, event_id="e", event={}, execute=False)
    with tenant(user_a.pk):  # what a worker killed during the call leaves behind
        RunAction.objects.create(user=user_a, run=run, position=0, kind="discord_post", status="sending",
                                 summary="Posting to Discord channel 123456789")
    finished = run_execute(run_id=run.pk, user_id=user_a.pk)
    assert posted.call_count == 0
    with tenant(user_a.pk):
        assert RunAction.objects.get(run=run).status == "interrupted"
    assert finished.status == "succeeded"


def test_without_a_bot_token_the_action_fails_with_a_reason(user_a, settings):
    settings.DISCORD_BOT_TOKEN = ""
    rule = _rule(user_a)
    run = rule_event_record(rule_id=rule.pk, user_id=user_a.pk, event_id="e", event={}, execute=False)
    assert run_execute(run_id=run.pk, user_id=user_a.pk).status == "failed"
    with tenant(user_a.pk):
        assert "DISCORD_BOT_TOKEN" in RunAction.objects.get(run=run).detail
