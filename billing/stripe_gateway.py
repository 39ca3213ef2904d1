"""The one module that talks to Stripe (the official `stripe` library, through StripeClient).

Every POST carries an idempotency key the caller derives from our own ids, so a retried request (by
the library, by Celery, by a double click) never creates a second object. All calls go through
`stripe.default_http_client`, the same HTTP client dj-stripe uses, which is where tests record them.
"""

from __future__ import annotations

from typing import Any

import stripe
from djstripe.settings import djstripe_settings

from core.errors import DomainError

NETWORK_RETRIES = 2


class PaymentsNotConfigured(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "Payments are not configured on this Nexus server yet; plans cannot be bought right now."
        )


class StripeUnavailable(DomainError):
    """Stripe refused or could not be reached; the user may try again."""


def secret_key() -> str:
    return djstripe_settings.STRIPE_SECRET_KEY


def _client() -> stripe.StripeClient:
    key = secret_key()
    if not key:
        raise PaymentsNotConfigured()
    stripe.ensure_default_http_client()
    return stripe.StripeClient(
        key,
        stripe_version=djstripe_settings.STRIPE_API_VERSION,
        http_client=stripe.default_http_client,
        max_network_retries=NETWORK_RETRIES,
    )


def _post_options(idempotency_key: str) -> dict[str, Any]:
    if not idempotency_key:
        raise ValueError("every POST to Stripe needs an idempotency key")
    return {"idempotency_key": idempotency_key}


def _call(fn, *args, **kwargs) -> dict[str, Any]:
    try:
        result = fn(*args, **kwargs)
    except stripe.InvalidRequestError:
        raise
    except stripe.StripeError as exc:
        raise StripeUnavailable(
            f"Stripe could not complete the request ({exc.user_message or exc}). Please try again."
        ) from exc
    return result.to_dict(for_json=True) if hasattr(result, "to_dict") else result


def customer_create(*, email: str, name: str, user_id: int, idempotency_key: str) -> dict[str, Any]:
    params = {"email": email, "metadata": {"nexus_user_id": str(user_id)}}
    if name:
        params["name"] = name
    return _call(_client().v1.customers.create, params, _post_options(idempotency_key))


def checkout_session_create(*, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    return _call(_client().v1.checkout.sessions.create, params, _post_options(idempotency_key))


def checkout_session_expire(*, session_id: str, idempotency_key: str) -> dict[str, Any]:
    return _call(_client().v1.checkout.sessions.expire, session_id, None, _post_options(idempotency_key))


def portal_session_create(*, customer_id: str, return_url: str, idempotency_key: str) -> dict[str, Any]:
    params = {"customer": customer_id, "return_url": return_url}
    return _call(_client().v1.billing_portal.sessions.create, params, _post_options(idempotency_key))


def meter_event_create(
    *, event_name: str, customer_id: str, value: int, identifier: str, timestamp: int
) -> dict[str, Any]:
    params = {
        "event_name": event_name,
        "identifier": identifier,
        "timestamp": timestamp,
        "payload": {"stripe_customer_id": customer_id, "value": str(value)},
    }
    # The identifier makes Stripe count the event once; the same string as idempotency key replays the response.
    return _call(_client().v1.billing.meter_events.create, params, _post_options(identifier))


def product_retrieve(*, product_id: str) -> dict[str, Any] | None:
    try:
        return _call(_client().v1.products.retrieve, product_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise StripeUnavailable(f"Stripe refused to read product {product_id}: {exc.user_message}") from exc


def product_create(*, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    return _call(_client().v1.products.create, params, _post_options(idempotency_key))


def product_update(*, product_id: str, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    return _call(_client().v1.products.update, product_id, params, _post_options(idempotency_key))


def price_list_by_lookup_keys(*, lookup_keys: list[str]) -> list[dict[str, Any]]:
    result = _call(
        _client().v1.prices.list,
        {"lookup_keys": lookup_keys, "active": True, "limit": 100, "expand": ["data.tiers"]},
    )
    return list(result.get("data", []))


def price_create(*, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    return _call(_client().v1.prices.create, params, _post_options(idempotency_key))


def meter_list() -> list[dict[str, Any]]:
    result = _call(_client().v1.billing.meters.list, {"status": "active", "limit": 100})
    return list(result.get("data", []))


def meter_create(*, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    return _call(_client().v1.billing.meters.create, params, _post_options(idempotency_key))


def checkout_session_retrieve(*, session_id: str) -> dict[str, Any]:
    return _call(_client().v1.checkout.sessions.retrieve, session_id)
