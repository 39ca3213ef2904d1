"""Stripe at the HTTP boundary: a `stripe.HTTPClient` that records every request and answers with
real-shaped JSON built from Stripe's example objects, keeping just enough state (and Stripe's
idempotency-key replay) for the flows under test.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

from tests.billing.stripe_events import resource


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    headers: dict[str, str]


def _params(encoded: str) -> dict[str, Any]:
    """Stripe's form encoding, kept flat: {"line_items[0][price]": "price_x", ...}."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(encoded or "", keep_blank_values=True):
        if key in result:
            existing = result[key]
            result[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            result[key] = value
    return result


def _nested(params: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {
        k[len(prefix) + 1 : -1]: v
        for k, v in params.items()
        if k.startswith(prefix + "[") and k.count("[") == 1
    }


def _error(status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None):
    return status, {"error": {"type": type_, "message": message, "code": code}}


@dataclass
class FakeStripe(stripe.HTTPClient):
    """Install with `monkeypatch.setattr(stripe, "default_http_client", fake)`."""

    name = "nexus-fake-stripe"
    requests: list[Request] = field(default_factory=list)
    customers: dict[str, dict] = field(default_factory=dict)
    products: dict[str, dict] = field(default_factory=dict)
    prices: dict[str, dict] = field(default_factory=dict)
    meters: dict[str, dict] = field(default_factory=dict)
    sessions: dict[str, dict] = field(default_factory=dict)
    meter_events: dict[str, dict] = field(default_factory=dict)
    # Requests to these paths fail with a network error this many times before succeeding.
    unreachable: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _replays: dict[str, tuple[str, int]] = field(default_factory=dict)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        super().__init__()

    # -- what tests read -------------------------------------------------------------------------------
    def posts(self, path_prefix: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith(path_prefix)]

    def price_id(self, lookup_key: str) -> str:
        """The id of the price that holds `lookup_key` in Stripe now."""
        [price_id] = [p["id"] for p in self.prices.values() if p["lookup_key"] == lookup_key]
        return price_id

    def metered_total(self, customer_id: str) -> int:
        return sum(
            int(e["payload"]["value"])
            for e in self.meter_events.values()
            if e["payload"]["stripe_customer_id"] == customer_id
        )

    # -- HTTPClient ------------------------------------------------------------------------------------
    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        params = _params(body if method.lower() == "post" else parts.query)
        headers = dict(headers or {})
        key = headers.get("Idempotency-Key")
        self.requests.append(Request(method.upper(), parts.path, params, key, headers))
        if self.unreachable.get(parts.path, 0) > 0:
            self.unreachable[parts.path] -= 1
            raise stripe.APIConnectionError("Network error: connection refused (test)", should_retry=False)
        replay_key = f"{key}|{parts.path}" if key and method.lower() == "post" else None
        if replay_key and replay_key in self._replays:
            stored_body, status = self._replays[replay_key]
            return stored_body, status, {"Request-Id": "req_replay", "Idempotent-Replayed": "true"}
        status, payload = self._route(method.upper(), parts.path, params)
        encoded = json.dumps(payload)
        if replay_key and status < 500:
            self._replays[replay_key] = (encoded, status)
        return encoded, status, {"Request-Id": f"req_{next(self._counter)}"}

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        raise NotImplementedError("streaming is not used by Nexus")

    def close(self) -> None:
        pass

    # -- routes ----------------------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._counter):05d}"

    def _route(self, method: str, path: str, params: dict[str, Any]):
        now = int(time.time())
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        if method == "GET" and parts == ["account"]:
            return 200, resource("account")
        if method == "POST" and parts == ["customers"]:
            customer = resource("customer")
            customer.update(
                id=self._id("cus"),
                email=params.get("email"),
                name=params.get("name"),
                metadata=_nested(params, "metadata"),
                created=now,
                discount=None,
            )
            self.customers[customer["id"]] = customer
            return 200, customer
        if parts == ["checkout", "sessions"] and method == "POST":
            session = resource("checkout.session")
            session.update(
                id=self._id("cs_test"),
                mode=params.get("mode"),
                customer=params.get("customer"),
                client_reference_id=params.get("client_reference_id"),
                metadata=_nested(params, "metadata"),
                success_url=params.get("success_url"),
                cancel_url=params.get("cancel_url"),
                status="open",
                payment_status="unpaid",
                created=now,
                expires_at=now + 86400,
                payment_intent=None,
                currency="usd",
            )
            session["url"] = f"https://checkout.stripe.com/c/pay/{session['id']}"
            self.sessions[session["id"]] = session
            return 200, session
        if parts[:2] == ["checkout", "sessions"] and len(parts) >= 3:
            session = self.sessions.get(parts[2])
            if session is None:
                return _error(404, f"No such checkout.session: '{parts[2]}'", code="resource_missing")
            if method == "GET":
                return 200, session
            if parts[3:] == ["expire"]:
                if session["status"] != "open":
                    return _error(
                        400, f"This Checkout Session is {session['status']} and can no longer be expired."
                    )
                session.update(status="expired", url=None)
                return 200, session
        if method == "POST" and parts == ["billing_portal", "sessions"]:
            portal = resource("billing_portal.session")
            sid = self._id("bps")
            portal.update(
                id=sid,
                customer=params.get("customer"),
                return_url=params.get("return_url"),
                livemode=False,
                created=now,
                flow=None,
                url=f"https://billing.stripe.com/p/session/test_{sid}",
            )
            return 200, portal
        if method == "POST" and parts == ["billing", "meter_events"]:
            meter_event = resource("billing.meter_event")
            meter_event.update(
                event_name=params.get("event_name"),
                identifier=params.get("identifier"),
                created=now,
                timestamp=int(params.get("timestamp") or now),
                livemode=False,
                payload=_nested(params, "payload"),
            )
            # Stripe counts an identifier once.
            self.meter_events.setdefault(meter_event["identifier"], meter_event)
            return 200, meter_event
        if parts == ["billing", "meters"]:
            if method == "GET":
                return 200, {
                    "object": "list",
                    "data": list(self.meters.values()),
                    "has_more": False,
                    "url": path,
                }
            meter = resource("billing.meter")
            meter.update(
                id=self._id("mtr"),
                event_name=params.get("event_name"),
                display_name=params.get("display_name"),
                livemode=False,
                created=now,
                updated=now,
                customer_mapping={
                    "type": "by_id",
                    "event_payload_key": params.get("customer_mapping[event_payload_key]"),
                },
            )
            self.meters[meter["id"]] = meter
            return 200, meter
        if parts[:1] == ["products"] and parts[2:] == ["features"] and method == "GET":
            return 200, {"object": "list", "data": [], "has_more": False, "url": path}
        if parts[:1] == ["products"] and len(parts) <= 2:
            if method == "POST" and len(parts) == 1:
                product = resource("product")
                product.update(
                    id=params.get("id") or self._id("prod"),
                    name=params.get("name"),
                    description=params.get("description"),
                    metadata=_nested(params, "metadata"),
                    default_price=None,
                    livemode=False,
                    created=now,
                    updated=now,
                    type="service",
                    package_dimensions=None,
                    shippable=None,
                )
                self.products[product["id"]] = product
                return 200, product
            product = self.products.get(parts[1]) if len(parts) > 1 else None
            if product is None:
                return _error(
                    404, f"No such product: '{parts[1] if len(parts) > 1 else ''}'", code="resource_missing"
                )
            if method == "POST":
                product.update(
                    {k: v for k, v in params.items() if k in ("name", "description")},
                    metadata=_nested(params, "metadata") or product["metadata"],
                    updated=now,
                )
                if "active" in params:
                    product["active"] = params["active"] == "true"
            return 200, product
        if parts == ["prices"]:
            if method == "GET":
                wanted = {v for k, v in params.items() if k.startswith("lookup_keys[")}
                data = [p for p in self.prices.values() if p["lookup_key"] in wanted and p["active"]]
                return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/prices"}
            return 200, self._price_create(params, now)
        return _error(404, f"Unrecognized request URL ({method}: {path}).")

    def _price_create(self, params: dict[str, Any], now: int) -> dict:
        price = resource("price")
        lookup_key = params.get("lookup_key")
        if lookup_key and params.get("transfer_lookup_key") == "true":
            for other in self.prices.values():
                if other["lookup_key"] == lookup_key:
                    other["lookup_key"] = None
        metered = params.get("recurring[usage_type]") == "metered"
        tiers = None
        if params.get("billing_scheme") == "tiered":
            tiers = []
            for index in itertools.count():
                up_to = params.get(f"tiers[{index}][up_to]")
                if up_to is None:
                    break
                tiers.append(
                    {
                        "flat_amount": None,
                        "flat_amount_decimal": None,
                        "unit_amount": None,
                        "unit_amount_decimal": params.get(f"tiers[{index}][unit_amount_decimal]"),
                        "up_to": None if up_to == "inf" else int(up_to),
                    }
                )
        unit_amount_decimal = params.get("unit_amount_decimal")
        price.update(
            id=self._id("price"),
            product=params.get("product"),
            lookup_key=lookup_key,
            created=now,
            currency=params.get("currency"),
            nickname=params.get("nickname"),
            metadata=_nested(params, "metadata"),
            billing_scheme=params.get("billing_scheme", "per_unit"),
            tiers_mode=params.get("tiers_mode"),
            unit_amount=int(unit_amount_decimal) if unit_amount_decimal else None,
            unit_amount_decimal=unit_amount_decimal,
            transform_quantity=None,
            livemode=False,
        )
        if tiers is not None:
            price["tiers"] = tiers
        price["recurring"].update(
            interval=params.get("recurring[interval]"),
            usage_type=params.get("recurring[usage_type]"),
            meter=params.get("recurring[meter]") if metered else None,
        )
        self.prices[price["id"]] = price
        return price
