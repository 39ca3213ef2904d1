"""Real-shaped Stripe webhook events, built from Stripe's own example objects and signed like Stripe.

The objects come from Stripe's published fixture file (settings.SHARED_DATA_DIR / "stripe" /
"fixtures3.json", see SOURCE.md there); a scenario changes only the fields it needs.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import time
from functools import lru_cache
from typing import Any

from django.conf import settings

from billing.plans import Plan

_ids = itertools.count(1)


@lru_cache(maxsize=1)
def _resources() -> dict[str, Any]:
    path = settings.SHARED_DATA_DIR / "stripe" / "fixtures3.json"
    return json.loads(path.read_text())["resources"]


def resource(name: str) -> dict[str, Any]:
    return copy.deepcopy(_resources()[name])


def next_id(prefix: str) -> str:
    return f"{prefix}_nexus{next(_ids):06d}"


def sign(payload: bytes, *, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event(*, type: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> dict[str, Any]:
    envelope = resource("event")
    envelope.update(
        id=event_id or next_id("evt"),
        type=type,
        created=created,
        api_version="2026-05-27.dahlia",
        livemode=False,
        pending_webhooks=1,
        request={"id": None, "idempotency_key": None},
        data={"object": obj},
    )
    return envelope


def _price(plan: Plan, *, metered: bool) -> dict[str, Any]:
    price = resource("price")
    lookup_key = plan.metered_price_lookup_key if metered else plan.flat_price_lookup_key
    price.update(
        id=f"price_{lookup_key}",
        lookup_key=lookup_key,
        product=plan.stripe_product_id,
        metadata={"nexus_plan": plan.code},
        unit_amount=None if metered else int(plan.monthly_price * 100),
        unit_amount_decimal=None if metered else str(int(plan.monthly_price * 100)),
    )
    price["recurring"].update(
        usage_type="metered" if metered else "licensed", meter="mtr_nexus" if metered else None
    )
    return price


def subscription(
    *,
    sub_id: str,
    customer_id: str,
    status: str,
    plan: Plan,
    created: int,
    trial_end: int | None = None,
    period_end: int | None = None,
    cancel_at: int | None = None,
    user_id: int | None = None,
) -> dict[str, Any]:
    obj = resource("subscription")
    template_item = obj["items"]["data"][0]
    items = []
    for metered in (False, True):
        item = copy.deepcopy(template_item)
        item.update(
            id=next_id("si"),
            price=_price(plan, metered=metered),
            subscription=sub_id,
            current_period_start=created,
            current_period_end=period_end or created + 30 * 86400,
        )
        item.pop("plan", None)
        items.append(item)
    obj["items"].update(data=items, url=f"/v1/subscription_items?subscription={sub_id}")
    ended = status in ("canceled", "incomplete_expired")
    obj.update(
        id=sub_id,
        customer=customer_id,
        status=status,
        created=created,
        start_date=created,
        billing_cycle_anchor=created,
        trial_start=created if trial_end else None,
        trial_end=trial_end,
        cancel_at=cancel_at,
        cancel_at_period_end=False,
        canceled_at=created if ended else None,
        ended_at=created if ended else None,
        metadata={"nexus_user_id": str(user_id), "nexus_plan": plan.code} if user_id else {},
        pending_update=None,
        transfer_data=None,
        pause_collection=None,
        latest_invoice=None,
    )
    return obj


def invoice(
    *,
    invoice_id: str,
    customer_id: str,
    sub_id: str,
    status: str,
    amount: int,
    created: int,
    attempt_count: int = 0,
    number: str | None = None,
) -> dict[str, Any]:
    obj = resource("invoice")
    paid = status == "paid"
    obj.update(
        id=invoice_id,
        customer=customer_id,
        status=status,
        created=created,
        number=number or f"NX-{invoice_id[-6:]}",
        amount_due=amount,
        amount_paid=amount if paid else 0,
        amount_remaining=0 if paid else amount,
        subtotal=amount,
        total=amount,
        total_excluding_tax=amount,
        attempt_count=attempt_count,
        attempted=attempt_count > 0,
        billing_reason="subscription_cycle",
        hosted_invoice_url=f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
        invoice_pdf=f"https://pay.stripe.com/invoice/acct_test/{invoice_id}/pdf",
        period_start=created - 30 * 86400,
        period_end=created,
        parent={
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": sub_id},
            "type": "subscription_details",
        },
    )
    obj["status_transitions"].update(finalized_at=created, paid_at=created if paid else None)
    return obj


def checkout_session(
    *, session_id: str, customer_id: str, sub_id: str, user_id: int, created: int
) -> dict[str, Any]:
    obj = resource("checkout.session")
    obj.update(
        id=session_id,
        customer=customer_id,
        subscription=sub_id,
        client_reference_id=str(user_id),
        mode="subscription",
        status="complete",
        payment_status="paid",
        created=created,
        expires_at=created + 86400,
        payment_intent=None,
        url=None,
    )
    return obj


def customer(
    *, customer_id: str, user_id: int, email: str, default_payment_method: str | None = None
) -> dict[str, Any]:
    obj = resource("customer")
    obj.update(id=customer_id, email=email, metadata={"nexus_user_id": str(user_id)}, discount=None)
    obj["invoice_settings"]["default_payment_method"] = default_payment_method
    return obj
