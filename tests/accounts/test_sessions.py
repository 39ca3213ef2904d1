"""Sessions live in Redis only; "log out everywhere" and a password change end the other sessions."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.urls import reverse

from config.asgi import application
from core.consumers import CLOSE_RECONNECT
from core.models import AuditLog
from core.rls import tenant
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-pass-2026"


def _logged_in_client(email: str, password: str = DEFAULT_PASSWORD) -> Client:
    client = Client()
    response = client.post(reverse("account_login"), {"login": email, "password": password})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    return client


def _signed_in(client: Client) -> bool:
    response = client.get(reverse("account_settings"))
    if response.status_code == 302:
        assert response.url.startswith(reverse("account_login"))
        return False
    assert response.status_code == 200
    return True


def test_the_session_is_kept_in_redis_and_not_in_the_database():
    user = UserFactory(email="redis@example.com")
    client = _logged_in_client(user.email)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    stored = caches[settings.SESSION_CACHE_ALIAS].get(f"django.contrib.sessions.cache{key}")
    assert stored["_auth_user_id"] == str(user.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('django_session')")
        assert cursor.fetchone()[0] is None, "no session table the runtime role could read"


def test_log_out_everywhere_ends_every_session_and_the_user_can_log_in_again():
    user = UserFactory(email="lost-phone@example.com")
    laptop, phone = _logged_in_client(user.email), _logged_in_client(user.email)
    assert _signed_in(laptop) and _signed_in(phone)
    assert b"Log out everywhere" in laptop.get(reverse("account_settings")).content

    response = laptop.post(reverse("account_log_out_everywhere"))
    assert response.status_code == 302 and response.url == reverse("account_login")
    assert not _signed_in(phone), "the other device is logged out"
    assert not _signed_in(laptop)
    with tenant(user.pk):
        assert AuditLog.objects.filter(user=user, action="account.logged_out_everywhere").count() == 1

    assert _signed_in(_logged_in_client(user.email)), "logging in again works"


def test_log_out_everywhere_needs_a_post():
    user = UserFactory(email="get@example.com")
    client = _logged_in_client(user.email)
    assert client.get(reverse("account_log_out_everywhere")).status_code == 405
    assert _signed_in(client)


def test_a_password_change_logs_out_the_other_sessions_but_not_this_one():
    user = UserFactory(email="rotate@example.com")
    laptop, phone = _logged_in_client(user.email), _logged_in_client(user.email)
    response = laptop.post(
        reverse("account_change_password"),
        {"oldpassword": DEFAULT_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert _signed_in(laptop), "the session that changed the password stays logged in"
    assert not _signed_in(phone)
    assert _signed_in(_logged_in_client(user.email, NEW_PASSWORD))


async def _socket(client: Client) -> tuple[WebsocketCommunicator, bool, int | None]:
    headers = [
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()),
    ]
    communicator = WebsocketCommunicator(application, "/ws/user/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["log out everywhere", "password change"])
def test_open_pages_of_the_ended_sessions_lose_their_live_socket(action):
    user = UserFactory(email=f"sockets-{action.replace(' ', '-')}@example.com")
    laptop, phone = _logged_in_client(user.email), _logged_in_client(user.email)

    def act():
        if action == "log out everywhere":
            return laptop.post(reverse("account_log_out_everywhere"))
        return laptop.post(
            reverse("account_change_password"),
            {"oldpassword": DEFAULT_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )

    async def scenario():
        laptop_socket, laptop_ok, _ = await _socket(laptop)
        phone_socket, phone_ok, _ = await _socket(phone)
        assert laptop_ok and phone_ok
        assert (await sync_to_async(act)()).status_code == 302
        closed = [(await s.receive_output(timeout=2))["code"] for s in (laptop_socket, phone_socket)]
        # Pages reconnect after that close; only a session that is still valid gets back in.
        _, phone_again, phone_code = await _socket(phone)
        laptop_again_socket, laptop_again, _ = await _socket(laptop)
        if laptop_again:
            await laptop_again_socket.disconnect()
        return closed, (phone_again, phone_code), laptop_again

    closed, phone_again, laptop_again = async_to_sync(scenario)()
    assert closed == [CLOSE_RECONNECT, CLOSE_RECONNECT]
    assert phone_again == (False, 4401)
    assert laptop_again is (action == "password change"), "the session that changed the password stays"
