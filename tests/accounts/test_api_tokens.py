"""Personal API tokens: created on the settings page, shown once, stored as a digest, used by the API."""

from __future__ import annotations

import hashlib
import importlib
from datetime import UTC, date, datetime, timedelta

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.choices import NOTIFY_ACCOUNT_SECURITY
from accounts.models import ApiToken
from core.api_auth import api_token_cache_forget, api_token_lookup
from core.models import AuditLog, Notification
from core.rls import system_context, tenant
from tests.factories import UserFactory, api_token_for

pytestmark = pytest.mark.django_db

ME = "/api/v1/accounts/me/"
NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def _api(secret: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return api


def _create(client, **data):
    return client.post(reverse("account_api_tokens"), {"scopes": ["read", "trade"], **data})


def _in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def _assert_refused(response, detail_fragment: str = "") -> None:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert detail_fragment in response.json()["detail"]


def test_a_new_token_is_shown_once_and_the_database_keeps_only_its_digest(client, user_a):
    client.force_login(user_a)
    response = _create(client, name="  tax export  ", expires_on=_in_days(30))
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("nexus_") and secret.encode() in response.content
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]

    again = client.get(reverse("account_api_tokens"))
    assert secret.encode() not in again.content, "the token is shown only in the answer to its creation"
    assert b"tax export" in again.content

    with tenant(user_a.pk), connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM accounts_apitoken t")
        (stored,) = cursor.fetchone()
        token = ApiToken.objects.get()
        created = AuditLog.objects.get(user=user_a, action="account.api_token_created")
    assert secret not in stored and secret[len("nexus_"):] not in stored
    assert token.digest == hashlib.sha512(secret.encode()).hexdigest()
    assert token.name == "tax export" and token.token_key == secret[:15]
    assert secret not in str(created.after) and created.after["name"] == "tax export"


def test_the_api_works_with_a_token_and_refuses_it_once_revoked(client, user_a):
    secret = api_token_for(user_a, name="nightly-rebalancer")
    api = _api(secret)
    response = api.get(ME)
    assert response.status_code == 200 and response.json()["email"] == user_a.email

    client.force_login(user_a)
    with tenant(user_a.pk):
        token = ApiToken.objects.get(user=user_a)
    revoked = client.post(reverse("account_api_token_revoke", args=[token.pk]))
    assert revoked.status_code == 302
    page = client.get(reverse("account_api_tokens"))
    assert list(page.context["tokens"]) == [] and "“nightly-rebalancer” revoked" in page.content.decode()

    _assert_refused(api.get(ME), "Invalid token")
    with tenant(user_a.pk):
        entry = AuditLog.objects.get(user=user_a, action="account.api_token_revoked")
        assert not ApiToken.objects.exists()
    assert entry.before["name"] == "nightly-rebalancer" and entry.actor_id == user_a.pk


def test_a_used_token_is_served_from_the_cache_and_its_users_deactivation_refuses_it_at_once(user_a):
    secret = api_token_for(user_a)
    api = _api(secret)
    assert api.get(ME).status_code == 200
    with CaptureQueriesContext(connections["auth"]) as lookups:
        assert api.get(ME).status_code == 200
    assert not [q for q in lookups if "accounts_apitoken" in q["sql"]], "the second request reads no token row"

    with system_context(reason="tests: deactivate"):
        user_a.is_active = False
        user_a.save(update_fields=["is_active"])
    _assert_refused(api.get(ME), "inactive")


def test_a_lookup_that_read_the_row_before_a_revocation_cannot_cache_it(user_a):
    secret = api_token_for(user_a)
    with tenant(user_a.pk):
        token = ApiToken.objects.get(user=user_a)
    key = f"api-token:{token.digest}"
    assert api_token_lookup(secret).pk == token.pk and cache.get(key).pk == token.pk
    # The revocation marks the row stale; a lookup racing it (it read the row just before) finds the mark
    # and cannot put the row back.
    api_token_cache_forget([token.digest])
    assert api_token_lookup(secret).pk == token.pk  # still in the database: read there, not cached
    assert cache.get(key) == "stale"
    with tenant(user_a.pk):
        ApiToken.objects.filter(pk=token.pk).delete()
    assert api_token_lookup(secret) is None


def test_a_token_works_until_the_end_of_its_expiry_day_then_is_refused(user_a, time_machine):
    time_machine.move_to(NOON, tick=False)
    secret = api_token_for(user_a, expires_on=date(2026, 6, 11))
    time_machine.move_to(datetime(2026, 6, 11, 23, 59, 59, tzinfo=UTC), tick=False)
    assert _api(secret).get(ME).status_code == 200
    time_machine.move_to(datetime(2026, 6, 12, 0, 0, 0, tzinfo=UTC), tick=False)
    _assert_refused(_api(secret).get(ME), "expired")


def test_last_use_is_recorded_at_most_once_a_minute(user_a, time_machine):
    time_machine.move_to(NOON, tick=False)
    secret = api_token_for(user_a)
    api = _api(secret)

    def last_used():
        with tenant(user_a.pk):
            return ApiToken.objects.get().last_used_at

    assert last_used() is None
    api.get(ME)
    assert last_used() == NOON

    time_machine.move_to(NOON + timedelta(seconds=40), tick=False)
    with CaptureQueriesContext(connection) as queries:
        assert api.get(ME).status_code == 200
    assert not [q for q in queries if q["sql"].startswith('UPDATE "accounts_apitoken"')]
    assert last_used() == NOON

    time_machine.move_to(NOON + timedelta(seconds=61), tick=False)
    api.get(ME)
    assert last_used() == NOON + timedelta(seconds=61)


def test_another_users_token_cannot_be_revoked_or_seen(client, user_a, user_b):
    secret = api_token_for(user_b, name="bobs-secret-integration")
    with tenant(user_b.pk):
        token = ApiToken.objects.get()
    client.force_login(user_a)
    assert client.post(reverse("account_api_token_revoke", args=[token.pk])).status_code == 404
    assert client.post(reverse("account_api_token_revoke", args=[token.pk + 1000])).status_code == 404
    assert b"bobs-secret-integration" not in client.get(reverse("account_api_tokens")).content
    assert _api(secret).get(ME).json()["email"] == user_b.email
    with tenant(user_a.pk):
        assert not ApiToken.objects.filter(pk=token.pk).exists(), "row-level security hides it from user A"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "expires_on": "+30"}, "name", "Give the token a name"),
        ({"name": "   ", "expires_on": "+30"}, "name", "Give the token a name"),
        ({"name": "old", "expires_on": "-1"}, "expires_on", "in the past"),
        ({"name": "forever", "expires_on": "+400"}, "expires_on", "a year at most"),
        ({"name": "typo", "expires_on": "next week"}, "expires_on", "valid date"),
        ({"name": "no date", "expires_on": ""}, "expires_on", "required"),
    ],
)
def test_bad_input_is_a_form_error_and_creates_nothing(client, user_a, data, field, message):
    if data["expires_on"][:1] in ("+", "-"):
        data = {**data, "expires_on": _in_days(int(data["expires_on"]))}
    client.force_login(user_a)
    response = _create(client, **data)
    assert response.status_code == 422
    assert message in " ".join(response.context["form"].errors[field])
    assert "secret" not in response.context or response.context["secret"] is None

    htmx = client.post(reverse("account_api_tokens"), {"scopes": ["read"], **data}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 200, "htmx swaps only 2xx answers"
    assert [t.name for t in htmx.templates][0] == "accounts/partials/api_tokens_panel.html"
    assert message.encode() in htmx.content
    with tenant(user_a.pk):
        assert not ApiToken.objects.exists()


def test_htmx_create_and_revoke_answer_with_the_panel(client, user_a):
    client.force_login(user_a)
    created = client.post(
        reverse("account_api_tokens"), {"name": "ci", "expires_on": _in_days(7), "scopes": ["read"]},
        HTTP_HX_REQUEST="true",
    )
    assert created.templates[0].name == "accounts/partials/api_tokens_panel.html"
    assert created.context["secret"].encode() in created.content
    token = created.context["created"]
    revoked = client.post(reverse("account_api_token_revoke", args=[token.pk]), HTTP_HX_REQUEST="true")
    assert revoked.status_code == 200
    assert revoked.templates[0].name == "accounts/partials/api_tokens_panel.html"
    assert b"No tokens yet." in revoked.content


@pytest.mark.django_db(transaction=True, databases=["default", "owner"])
def test_plain_text_drf_tokens_are_revoked_with_a_notice_and_their_table_dropped():
    user = UserFactory(email="legacy@example.com")
    migration = importlib.import_module("accounts.migrations.0003_drop_plain_text_tokens_and_db_sessions")
    owner = connections["owner"]
    try:
        with owner.cursor() as cursor:
            # The table as Django REST framework's authtoken app left it, with one plain-text token.
            cursor.execute(
                "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, "
                "user_id bigint NOT NULL UNIQUE REFERENCES accounts_user (id))"
            )
            cursor.execute(
                "INSERT INTO authtoken_token VALUES ('0123456789abcdef0123456789abcdef01234567', now(), %s)",
                [user.pk],
            )
        with owner.schema_editor() as editor:
            migration.revoke_plain_text_api_tokens(apps, editor)
        with owner.cursor() as cursor:
            cursor.execute("SELECT to_regclass('authtoken_token')")
            assert cursor.fetchone()[0] is None, "the plain-text tokens are gone"
    finally:
        with owner.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS authtoken_token")

    with tenant(user.pk):
        notice = Notification.objects.get(user=user)
        entry = AuditLog.objects.get(user=user, action="account.api_token_revoked")
    assert notice.kind == NOTIFY_ACCOUNT_SECURITY and notice.link == reverse("account_api_tokens")
    assert "01234567…" in notice.message and "revoked" in notice.message
    assert entry.before == {"kind": "plain-text token", "prefix": "01234567"} and entry.actor_label == "system"
    with system_context(reason="test: nothing else was notified"):
        assert Notification.objects.count() == 1


def test_the_openapi_schema_documents_the_token_header(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
