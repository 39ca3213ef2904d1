"""Linking a Discord account to a Nexus account: the one-time code from /settings/ (hashed, short-lived,
single use), one Discord account per user, unlinking from the page, and the audit trail."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django.utils import timezone

from accounts.models import DiscordLinkCode
from accounts.selectors import discord_link_get, discord_user_resolve
from accounts.services import discord_link_code_issue, discord_link_redeem, discord_unlink
from core.errors import DomainError
from core.models import AuditLog
from core.rls import auth_context, system_context, tenant

DISCORD_ID = "80351110224678912"


def _audit_actions(user) -> list[str]:
    with tenant(user.pk):
        return list(AuditLog.objects.order_by("id").values_list("action", flat=True))


def test_a_code_links_once_and_only_its_hash_is_stored(user_a):
    _, code = discord_link_code_issue(user=user_a)
    assert re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", code)
    with auth_context(reason="tests"):
        stored = DiscordLinkCode.objects.get(user=user_a)
    assert stored.digest == hashlib.sha256(code.replace("-", "").encode()).hexdigest()
    assert code.replace("-", "") not in stored.digest

    linked = discord_link_redeem(discord_user_id=DISCORD_ID, code=code.lower(), username="nelly")
    assert linked.pk == user_a.pk
    assert discord_user_resolve(discord_user_id=DISCORD_ID).pk == user_a.pk
    assert discord_link_get(user=user_a).username == "nelly"
    assert "account.discord_linked" in _audit_actions(user_a)

    with pytest.raises(DomainError, match="already used"):
        discord_link_redeem(discord_user_id=DISCORD_ID, code=code)


def test_an_expired_code_is_refused(user_a):
    _, code = discord_link_code_issue(user=user_a)
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=11)),
        pytest.raises(DomainError, match="expired"),
    ):
        discord_link_redeem(discord_user_id=DISCORD_ID, code=code)
    assert discord_user_resolve(discord_user_id=DISCORD_ID) is None


def test_garbage_and_unknown_codes_say_what_is_wrong(user_a):
    with pytest.raises(DomainError, match="not a link code"):
        discord_link_redeem(discord_user_id=DISCORD_ID, code="hello")
    with pytest.raises(DomainError, match="not valid"):
        discord_link_redeem(discord_user_id=DISCORD_ID, code="ABCDE-FGHJK")


def test_a_discord_account_links_to_one_user_only(user_a, user_b):
    _, code_a = discord_link_code_issue(user=user_a)
    discord_link_redeem(discord_user_id=DISCORD_ID, code=code_a)
    _, code_b = discord_link_code_issue(user=user_b)
    with pytest.raises(DomainError, match="already linked to another Nexus account"):
        discord_link_redeem(discord_user_id=DISCORD_ID, code=code_b)
    assert discord_user_resolve(discord_user_id=DISCORD_ID).pk == user_a.pk
    with system_context(reason="tests"):
        assert SocialAccount.objects.filter(provider="discord").count() == 1


def test_a_new_code_retires_the_previous_one(user_a):
    _, first = discord_link_code_issue(user=user_a)
    _, second = discord_link_code_issue(user=user_a)
    with pytest.raises(DomainError, match="not valid"):
        discord_link_redeem(discord_user_id=DISCORD_ID, code=first)
    discord_link_redeem(discord_user_id=DISCORD_ID, code=second)


def test_the_runtime_role_cannot_read_link_codes(user_a):
    discord_link_code_issue(user=user_a)
    from django.db import ProgrammingError

    with tenant(user_a.pk), pytest.raises(ProgrammingError, match="permission denied"):
        list(DiscordLinkCode.objects.all())


@pytest.fixture
def client_a(user_a) -> Client:
    client = Client()
    client.force_login(user_a)
    return client


def test_settings_page_gives_a_code_then_shows_the_link_and_unlinks(client_a, user_a, settings):
    page = client_a.get("/settings/").content.decode()
    assert 'id="discord"' in page and "Get a link code" in page
    # The section is in the page's body once, not in its <title>.
    assert page.count('id="discord"') == 1
    assert "Discord" not in re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "Connect with Discord" not in page  # the OAuth app is not configured in tests

    page = client_a.post("/settings/discord/code/").content.decode()
    code = re.search(r"/link ([A-Z2-9]{5}-[A-Z2-9]{5})", page).group(1)
    discord_link_redeem(discord_user_id=DISCORD_ID, code=code, username="nelly")

    page = client_a.get("/settings/").content.decode()
    assert "nelly" in page and "Unlink Discord" in page and "Get a link code" not in page
    response = client_a.post("/settings/discord/unlink/")
    assert response.status_code == 302
    assert discord_user_resolve(discord_user_id=DISCORD_ID) is None
    assert _audit_actions(user_a)[-2:] == ["account.discord_linked", "account.discord_unlinked"]


def test_connect_with_discord_shows_when_the_oauth_app_is_configured(client_a, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        **settings.SOCIALACCOUNT_PROVIDERS,
        "discord": {"APPS": [{"client_id": "123", "secret": "s", "key": ""}], "SCOPE": ["identify"]},
    }
    page = client_a.get("/settings/").content.decode()
    assert "Connect with Discord" in page
    assert re.search(r'action="/accounts/discord/login/\?process=connect"', page)


def test_unlink_without_a_link_changes_nothing(user_a):
    assert discord_unlink(user=user_a) is False
    assert "account.discord_unlinked" not in _audit_actions(user_a)


def test_a_discord_account_that_keeps_sending_wrong_codes_must_wait(user_a):
    for _ in range(10):
        with pytest.raises(DomainError, match="not valid"):
            discord_link_redeem(discord_user_id=DISCORD_ID, code="ABCDE-FGHJK")
    _, code = discord_link_code_issue(user=user_a)
    with pytest.raises(DomainError, match="Too many wrong link codes"):
        discord_link_redeem(discord_user_id=DISCORD_ID, code=code)
    assert discord_user_resolve(discord_user_id=DISCORD_ID) is None
    discord_link_redeem(discord_user_id="80351110224678913", code=code)  # another account is not held back


def test_discord_never_opens_a_new_nexus_account(rf):
    from allauth.socialaccount.models import SocialLogin

    from accounts.adapters import SocialAccountAdapter

    adapter = SocialAccountAdapter()
    discord = SocialLogin(account=SocialAccount(provider="discord", uid=DISCORD_ID))
    google = SocialLogin(account=SocialAccount(provider="google", uid="1"))
    assert adapter.is_open_for_signup(rf.get("/"), discord) is False
    assert adapter.is_open_for_signup(rf.get("/"), google) is True


def test_connect_with_discord_starts_allauths_connect_flow(client_a, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        **settings.SOCIALACCOUNT_PROVIDERS,
        "discord": {"APPS": [{"client_id": "123456", "secret": "s", "key": ""}], "SCOPE": ["identify"]},
    }
    response = client_a.post("/accounts/discord/login/?process=connect")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("https://discord.com/") and "oauth2/authorize" in location
    assert "client_id=123456" in location and "scope=identify" in location
