"""The per-user WebSocket: refuses anonymous and foreign-origin connections, delivers to its user only."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from core.consumers import user_group

pytestmark = pytest.mark.django_db(transaction=True)


def _headers(client: Client | None, origin: bytes = b"http://127.0.0.1:8000") -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def _connect(headers):
    communicator = WebsocketCommunicator(application, "/ws/user/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


def test_anonymous_connections_are_refused():
    async def scenario():
        communicator, connected, code = await _connect(_headers(None))
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(scenario)() == (False, 4401)


def test_a_foreign_origin_is_refused(user_a):
    client = Client()
    client.force_login(user_a)

    async def scenario():
        communicator, connected, _ = await _connect(_headers(client, origin=b"https://evil.example"))
        await communicator.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


def test_a_message_for_a_user_reaches_that_user_and_no_one_else(user_a, user_b):
    alice, bob = Client(), Client()
    alice.force_login(user_a)
    bob.force_login(user_b)

    async def scenario():
        a, a_ok, _ = await _connect(_headers(alice))
        b, b_ok, _ = await _connect(_headers(bob))
        assert a_ok and b_ok
        await get_channel_layer().group_send(
            user_group(user_a.pk), {"type": "user.html", "html": '<div id="toasts" hx-swap-oob="beforeend">hi</div>'}
        )
        received = await a.receive_from(timeout=2)
        # A message for Bob, sent after Alice's: had hers reached him too, it would come first.
        await get_channel_layer().group_send(
            user_group(user_b.pk), {"type": "user.html", "html": '<div id="toasts" hx-swap-oob="beforeend">bob</div>'}
        )
        bob_first = await b.receive_from(timeout=2)
        await a.disconnect()
        await b.disconnect()
        return received, bob_first

    received, bob_first = async_to_sync(scenario)()
    assert "hi" in received
    assert "bob" in bob_first and "hi" not in bob_first, "Alice's message reached Bob"


def test_toasts_are_sent_to_users_with_a_page_open_and_not_rendered_for_the_others(user_a, user_b):
    """A page's socket marks its user present while it is open (core.presence); a notification for a user
    with no page open sends no frame (here a listener on Bob's group without a page would hear it)."""
    from channels.db import database_sync_to_async
    from django.core.cache import cache

    from core.consumers import page_presence
    from core.notifications import notify, send_in_app_many

    alice = Client()
    alice.force_login(user_a)
    layer = get_channel_layer()

    async def scenario():
        page, connected, _ = await _connect(_headers(alice))
        assert connected
        present_while_open = await cache.aget(page_presence.key(user_a.pk))
        listener = await layer.new_channel()
        await layer.group_add(user_group(user_b.pk), listener)

        @database_sync_to_async
        def tell():
            first = notify(user=user_a, kind="alert.price", message="for Alice")
            second = notify(user=user_b, kind="alert.price", message="for Bob")
            send_in_app_many([first, second])
            return sorted(page_presence.among([user_a.pk, user_b.pk]))

        present = await tell()
        frame = await page.receive_from(timeout=2)
        marker = {"type": "test.marker"}
        await layer.group_send(user_group(user_b.pk), marker)  # after anything sent to Bob before it
        bob_heard = await layer.receive(listener)
        await page.disconnect()
        await layer.group_discard(user_group(user_b.pk), listener)
        return present_while_open, present, frame, bob_heard

    present_while_open, present, frame, bob_heard = async_to_sync(scenario)()
    assert present_while_open == 1 and present == [user_a.pk]
    assert "for Alice" in frame and "notification-unread" in frame
    assert bob_heard == {"type": "test.marker"}, "a toast was sent to a user with no page open"
