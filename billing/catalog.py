"""`billing_sync_plans`: make Stripe's catalog match billing/plans.py, idempotently.

Products have our own ids (`nexus_pro`), prices our lookup keys (`nexus_pro_monthly`, `nexus_pro_ai_queries`)
and a digest of their terms in metadata. A run reads what exists and creates only what is missing or
changed (Stripe prices are immutable: a changed price is a new price that takes over the lookup key).
Every create's idempotency key contains that digest, so a retried run cannot create twice. The prices
Stripe returns are recorded in billing's StripePrice table (shared reference: the runtime role reads it,
only this sync writes it, in system context), where pages and Checkout find the price ids. dj-stripe's
Product and Price tables are not used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing import stripe_gateway
from billing.choices import AI_QUERY_METER_EVENT
from billing.models import StripePrice
from billing.plans import CURRENCY, Plan, paid_plan_list
from core.money import plain
from core.rls import system_context


def _digest(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _cents(amount: Decimal) -> str:
    """Stripe's unit_amount_decimal: minor units, fractions allowed (0.01 USD is "1")."""
    return plain(amount * 100)


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _meter(report: SyncReport) -> dict[str, Any]:
    for meter in stripe_gateway.meter_list():
        if meter.get("event_name") == AI_QUERY_METER_EVENT:
            report.unchanged.append(f"meter {meter['id']}")
            return meter
    params = {
        "display_name": "Nexus AI queries",
        "event_name": AI_QUERY_METER_EVENT,
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
        "value_settings": {"event_payload_key": "value"},
    }
    meter = stripe_gateway.meter_create(params=params, idempotency_key=f"nexus-meter-{AI_QUERY_METER_EVENT}")
    report.created.append(f"meter {meter['id']}")
    return meter


def _product(plan: Plan, report: SyncReport) -> dict[str, Any]:
    wanted = {
        "name": f"Nexus {plan.name}",
        "description": plan.tagline,
        "metadata": {"nexus_plan": plan.code},
    }
    product = stripe_gateway.product_retrieve(product_id=plan.stripe_product_id)
    if product is None:
        product = stripe_gateway.product_create(
            params={"id": plan.stripe_product_id, **wanted},
            idempotency_key=f"nexus-product-{plan.stripe_product_id}-{_digest(wanted)}",
        )
        report.created.append(f"product {product['id']}")
        return product
    current = {
        "name": product.get("name"),
        "description": product.get("description"),
        "metadata": {"nexus_plan": (product.get("metadata") or {}).get("nexus_plan")},
    }
    if current != wanted or not product.get("active", True):
        product = stripe_gateway.product_update(
            product_id=plan.stripe_product_id,
            params={**wanted, "active": True},
            idempotency_key=f"nexus-product-{plan.stripe_product_id}-update-{_digest(wanted)}",
        )
        report.updated.append(f"product {product['id']}")
    else:
        report.unchanged.append(f"product {product['id']}")
    return product


def _price_terms(plan: Plan, *, metered: bool, meter_id: str) -> dict[str, Any]:
    if not metered:
        return {
            "currency": CURRENCY,
            "unit_amount_decimal": _cents(plan.monthly_price),
            "recurring": {"interval": "month", "usage_type": "licensed"},
            "nickname": f"{plan.name} monthly",
        }
    return {
        "currency": CURRENCY,
        "billing_scheme": "tiered",
        "tiers_mode": "graduated",
        "tiers": [
            {"up_to": plan.ai_queries_included, "unit_amount_decimal": "0"},
            {"up_to": "inf", "unit_amount_decimal": _cents(plan.ai_query_overage)},
        ],
        "recurring": {"interval": "month", "usage_type": "metered", "meter": meter_id},
        "nickname": f"{plan.name} AI queries",
    }


def _price(
    plan: Plan, *, lookup_key: str, terms: dict[str, Any], existing: dict | None, report: SyncReport
) -> dict:
    digest = _digest(terms)
    if existing is not None and (existing.get("metadata") or {}).get("nexus_digest") == digest:
        report.unchanged.append(f"price {existing['id']} ({lookup_key})")
        return existing
    price = stripe_gateway.price_create(
        params={
            **terms,
            "product": plan.stripe_product_id,
            "lookup_key": lookup_key,
            "transfer_lookup_key": True,
            "metadata": {"nexus_plan": plan.code, "nexus_digest": digest},
        },
        idempotency_key=f"nexus-price-{lookup_key}-{digest}",
    )
    report.created.append(f"price {price['id']} ({lookup_key})")
    return price


def _prices_record(plan: Plan, prices: list[dict]) -> None:
    """Make StripePrice say which price holds each of the plan's lookup keys now."""
    now = timezone.now()
    for price in prices:
        livemode = bool(price.get("livemode"))
        # A price that lost its lookup key to a newer one is no longer offered.
        StripePrice.objects.filter(lookup_key=price["lookup_key"], livemode=livemode, active=True).exclude(
            stripe_price_id=price["id"]
        ).update(active=False, synced_at=now)
        StripePrice.objects.update_or_create(
            stripe_price_id=price["id"],
            defaults={
                "stripe_product_id": plan.stripe_product_id,
                "plan": plan.code,
                "lookup_key": price["lookup_key"],
                "livemode": livemode,
                "active": True,
                "synced_at": now,
            },
        )


def plans_sync() -> SyncReport:
    """Create or update the meter, products and prices for every paid plan; record the prices."""
    report = SyncReport()
    meter = _meter(report)
    synced: list[tuple[Plan, list[dict]]] = []
    for plan in paid_plan_list():
        _product(plan, report)
        keys = [plan.flat_price_lookup_key, plan.metered_price_lookup_key]
        existing = {
            price.get("lookup_key"): price
            for price in stripe_gateway.price_list_by_lookup_keys(lookup_keys=keys)
        }
        prices = [
            _price(
                plan,
                lookup_key=key,
                terms=_price_terms(plan, metered=key == plan.metered_price_lookup_key, meter_id=meter["id"]),
                existing=existing.get(key),
                report=report,
            )
            for key in keys
        ]
        synced.append((plan, prices))
    with system_context(reason="billing_sync_plans: record our Stripe prices"):
        for plan, prices in synced:
            _prices_record(plan, prices)
    return report
