"""Newsletter API shapes; services validate what an issue may contain."""

from __future__ import annotations

from rest_framework import serializers

from billing.choices import PlanCode
from core.api import StrictCharField
from newsletter.choices import Audience, DiscordStatus, IssueStatus


class IssueInput(serializers.Serializer):
    title = StrictCharField(max_length=200)
    body = StrictCharField(max_length=50_000, help_text="Markdown with data blocks (docs/newsletter.md).")
    audience = serializers.ChoiceField(choices=Audience.choices, default=Audience.ALL)
    audience_plans = serializers.ListField(
        child=serializers.ChoiceField(choices=PlanCode.choices), required=False, default=list, max_length=3
    )
    post_to_discord = serializers.BooleanField(required=False, default=False)


class IssueOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()
    audience = serializers.ChoiceField(choices=Audience.choices)
    audience_plans = serializers.ListField(child=serializers.CharField())
    post_to_discord = serializers.BooleanField()
    status = serializers.ChoiceField(choices=IssueStatus.choices)
    scheduled_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    problem = serializers.CharField(help_text="Why a scheduled send did not start, if it did not.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ScheduleInput(serializers.Serializer):
    scheduled_at = serializers.DateTimeField(help_text="When to send, in the future (ISO 8601 with offset).")


class PreviewOutput(serializers.Serializer):
    html = serializers.CharField(help_text="The email's HTML as a recipient gets it (CSS inlined).")
    text = serializers.CharField(help_text="The plain-text alternative.")
    blocks = serializers.ListField(
        child=serializers.DictField(), help_text="Each data block and the figures it was filled with."
    )


class StatsOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=IssueStatus.choices)
    recipients = serializers.IntegerField()
    pending = serializers.IntegerField()
    sending = serializers.IntegerField()
    sent = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Recipients who unsubscribed.")
    suppressed = serializers.IntegerField(help_text="Addresses the email provider reported bounced or complaining.")
    failed = serializers.IntegerField()
    discord_status = serializers.ChoiceField(choices=DiscordStatus.choices)
    discord_detail = serializers.CharField()


class DraftOutput(IssueOutput):
    source = serializers.CharField(help_text="offline, or model (a language model wrote it, grounded).")
