"""API authentication and token scopes: read for safe methods, trade for the rest; sessions have all."""

from __future__ import annotations

import importlib

import pytest
from rest_framework.test import APIClient

from accounts.choices import api_scopes_all
from core.api import TokenScopePermission, required_scope
from core.rls import tenant
from portfolios.selectors import portfolio_list
from tests.api.conftest import token_client
from tests.factories import api_token_for

pytestmark = pytest.mark.django_db

PORTFOLIOS = "/api/v1/portfolios/"
NEW_PORTFOLIO = {"name": "Scoped", "base_currency": "USD"}


def _names(user) -> list[str]:
    with tenant(user.pk):
        return [p.name for p in portfolio_list(user=user)]


def test_no_credentials_is_a_401_problem(db):
    response = APIClient().get(PORTFOLIOS)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Authentication required"


def test_a_read_token_reads_but_cannot_write(user_a):
    api = token_client(api_token_for(user_a, scopes=["read"]))
    assert api.get(PORTFOLIOS).status_code == 200
    refused = api.post(PORTFOLIOS, NEW_PORTFOLIO, format="json")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"
    assert "“trade” scope" in refused.json()["detail"]
    assert "Scoped" not in _names(user_a)


def test_a_trade_only_token_writes_but_cannot_read(user_a):
    api = token_client(api_token_for(user_a, scopes=["trade"]))
    assert api.post(PORTFOLIOS, NEW_PORTFOLIO, format="json").status_code == 201
    refused = api.get(PORTFOLIOS)
    assert refused.status_code == 403 and "“read” scope" in refused.json()["detail"]


def test_a_token_with_both_scopes_does_both_and_a_session_has_every_scope(client, user_a):
    api = token_client(api_token_for(user_a))
    assert api.post(PORTFOLIOS, NEW_PORTFOLIO, format="json").status_code == 201
    assert api.get(PORTFOLIOS).status_code == 200
    client.force_login(user_a)
    assert (
        client.post(
            PORTFOLIOS, {"name": "By session", "base_currency": "EUR"}, content_type="application/json"
        ).status_code
        == 201
    )
    assert sorted(_names(user_a)) == ["By session", "Scoped"]


class _Request:
    def __init__(self, method: str) -> None:
        self.method = method


class _View:
    required_scopes = {"POST": "read"}


def test_a_view_may_declare_the_scope_each_method_needs():
    assert required_scope(_Request("POST"), _View()) == "read"
    assert required_scope(_Request("GET"), _View()) == "read"
    assert required_scope(_Request("DELETE"), _View()) == "trade"
    assert required_scope(_Request("HEAD"), object()) == "read"


def test_the_scope_permission_is_the_default_of_every_api_view():
    from rest_framework.settings import api_settings

    assert [TokenScopePermission] == api_settings.DEFAULT_PERMISSION_CLASSES


def test_tokens_made_before_scopes_existed_get_both():
    migration = importlib.import_module("accounts.migrations.0006_apitoken_scopes").Migration
    (add_field,) = migration.operations
    assert add_field.name == "scopes" and add_field.field.default() == api_scopes_all() == ["read", "trade"]
