"""Live order updates: after an order changes, the trader's open pages get the new open-orders table.

The fragment goes to the per-user WebSocket group (core.consumers, handler `user.html`) and replaces
`#open-orders` by an HTMX out-of-band swap; pages without that element ignore it.
"""

from __future__ import annotations

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from core.consumers import page_presence, user_group
from core.rls import tenant
from trading.orders.selectors import order_list

logger = structlog.get_logger(__name__)


def open_orders_html(*, user_id: int, oob: bool) -> str:
    orders = list(order_list(user=user_id, open_only=True)[:100])
    return render_to_string("trading/partials/open_orders.html", {"open_orders": orders, "oob": oob})


def orders_push(*, user_id: int) -> None:
    """The user's open-orders table to their open pages (not rendered when no page is open)."""
    try:
        if not page_presence.among([user_id]):
            return
        with tenant(user_id):
            html = open_orders_html(user_id=user_id, oob=True)
        async_to_sync(get_channel_layer().group_send)(user_group(user_id), {"type": "user.html", "html": html})
    except Exception:
        # A page that misses one push catches up on the next; the order itself is already committed.
        logger.exception("trading.orders_push_failed", user_id=user_id)
