"""The API tokens page at /settings/api/: scopes chosen at creation, listed, and enforced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import ApiToken
from core.models import AuditLog
from core.rls import tenant
from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db

PAGE = "/settings/api/"


def _in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def test_a_read_only_token_is_created_shown_once_listed_with_its_scope_and_audited(client, user_a):
    client.force_login(user_a)
    page = client.get(PAGE)
    assert page.status_code == 200 and b'name="scopes"' in page.content and b'value="trade"' in page.content
    created = client.post(PAGE, {"name": "reports", "expires_on": _in_days(30), "scopes": ["read"]})
    assert created.status_code == 200
    secret = created.context["secret"]
    listed = client.get(PAGE).content.decode()
    assert secret not in listed and "reports" in listed and '<td data-label="Scopes">read</td>' in listed
    with tenant(user_a.pk):
        token = ApiToken.objects.get()
        audit = AuditLog.objects.get(action="account.api_token_created")
    assert token.scopes == ["read"] and audit.after["scopes"] == ["read"]

    api = token_client(secret)
    assert api.get("/api/v1/portfolios/").status_code == 200
    assert (
        api.post("/api/v1/portfolios/", {"name": "X", "base_currency": "USD"}, format="json").status_code
        == 403
    )


def test_a_token_needs_a_scope(client, user_a):
    client.force_login(user_a)
    response = client.post(PAGE, {"name": "nothing", "expires_on": _in_days(30)})
    assert response.status_code == 422
    assert "at least one scope" in " ".join(response.context["form"].errors["scopes"])
    with tenant(user_a.pk):
        assert not ApiToken.objects.exists()


def test_the_old_address_redirects_to_the_new_page(client, user_a):
    client.force_login(user_a)
    response = client.get("/settings/tokens/")
    assert response.status_code == 301 and response["Location"] == PAGE


def test_revoking_from_the_page_stops_the_token_and_is_audited(client, user_a):
    client.force_login(user_a)
    secret = client.post(
        PAGE, {"name": "ci", "expires_on": _in_days(7), "scopes": ["read", "trade"]}
    ).context["secret"]
    with tenant(user_a.pk):
        token = ApiToken.objects.get()
    assert sorted(token.scopes) == ["read", "trade"]
    assert client.post(f"/settings/api/{token.pk}/revoke/").status_code == 302
    assert token_client(secret).get("/api/v1/portfolios/").status_code == 401
    with tenant(user_a.pk):
        assert AuditLog.objects.filter(action="account.api_token_revoked").count() == 1
