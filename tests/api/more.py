"""Fixtures and helpers of the portfolios-extras, alerts, notifications, billing and companion API tests.

Import the fixtures by name in a test module (`from tests.api.more import api_a, api_b, instruments`).
"""

from __future__ import annotations

import inspect

import pytest
from django.test import Client

from marketdata.services import instruments_seed
from tests.factories import api_token_for


def token_client(user, **token_kwargs) -> Client:
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {api_token_for(user, **token_kwargs)}"
    return client


def scoped_tokens() -> bool:
    """Whether tokens carry scopes yet (the API foundation adds `scopes=` to api_token_for)."""
    return "scopes" in inspect.signature(api_token_for).parameters


@pytest.fixture
def instruments(db):
    return {i.symbol: i for i in instruments_seed()}


@pytest.fixture
def api_a(user_a) -> Client:
    return token_client(user_a)


@pytest.fixture
def api_b(user_b) -> Client:
    return token_client(user_b)


@pytest.fixture
def read_only_a(user_a) -> Client:
    if not scoped_tokens():
        pytest.skip("tokens have no scopes yet")
    return token_client(user_a, scopes=["read"])


def post(client: Client, url: str, data=None, **headers):
    return client.post(
        url, data if data is not None else {}, content_type="application/json", headers=headers
    )


def patch(client: Client, url: str, data):
    return client.patch(url, data, content_type="application/json")


def problem(response, status: int, *fields: str) -> dict:
    """The response is an application/problem+json `status` naming each of `fields` in its errors."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert body["status"] == status
    for name in fields:
        assert name in body.get("errors", {}), body
    return body


def results(response) -> list:
    """The rows of a list response, paginated or not."""
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    return body["results"] if isinstance(body, dict) else body
