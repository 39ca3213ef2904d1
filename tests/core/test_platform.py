"""Probes, metrics, security headers and the API's error format."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.rls import tenant
from tests.factories import UserFactory, api_token_for

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_database_redis_and_migrations(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    # Without DISCORD_BOT_TOKEN the bot is "off", which is reported and does not make the web unready.
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok", "discord_bot": "off"}


def test_readyz_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")


def test_metrics_are_exported_for_prometheus(client):
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert "django_http_requests_total_by_method_total" in body


def test_pages_carry_a_content_security_policy(client):
    response = client.get(reverse("account_login"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in response.content.decode(), "inline scripts would break the policy"


def test_htmx_requests_carry_the_csrf_token(client):
    user = UserFactory()
    client.force_login(user)
    body = client.get(reverse("dashboard")).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in body


def test_api_requires_authentication_with_a_problem_document():
    response = APIClient().get("/api/v1/accounts/me/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Authentication required"


def test_api_bad_input_is_a_400_problem_with_field_errors():
    user = UserFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    response = api.patch("/api/v1/accounts/me/", {"time_zone": "Nowhere/Land"}, format="json")
    assert response.status_code == 400
    problem = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert problem["status"] == 400 and "time_zone" in problem["errors"]
    with tenant(user.pk):
        user.refresh_from_db(fields=["time_zone"])
    assert user.time_zone == "UTC"


def test_api_updates_the_profile_with_a_token():
    user = UserFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    response = api.patch("/api/v1/accounts/me/", {"base_currency": "EUR"}, format="json")
    assert response.status_code == 200 and response.json()["base_currency"] == "EUR"


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/accounts/me/" in response.content
