"""A subscription's life in Stripe events, in the order Stripe emits them: used by tests and bench/."""

from __future__ import annotations

from dataclasses import dataclass

from billing.plans import PRO
from tests.billing import stripe_events

DAY = 86400


@dataclass
class Lifecycle:
    customer_id: str
    subscription_id: str
    events: list[dict]
    # Stripe times of the steps, for asserting what applies when.
    started: int
    active: int
    failed: int
    canceled: int


def lifecycle(*, user_id: int, email: str, customer_id: str, start: int, tag: str) -> Lifecycle:
    """Checkout → trial (14 days) → active → payment fails twice → past_due → canceled by Stripe."""
    sub_id = f"sub_{tag}"
    trial_end = start + 14 * DAY
    active, failed, retry, canceled = (
        trial_end,
        trial_end + 30 * DAY,
        trial_end + 33 * DAY,
        trial_end + 44 * DAY,
    )

    def sub(status: str, at: int, **extra) -> dict:
        return stripe_events.subscription(
            sub_id=sub_id,
            customer_id=customer_id,
            status=status,
            plan=PRO,
            created=start,
            trial_end=trial_end,
            period_end=extra.pop("period_end", at + 30 * DAY),
            user_id=user_id,
            **extra,
        )

    def inv(number: int, status: str, amount: int, at: int, attempts: int = 1) -> dict:
        return stripe_events.invoice(
            invoice_id=f"in_{tag}_{number}",
            customer_id=customer_id,
            sub_id=sub_id,
            status=status,
            amount=amount,
            created=at,
            attempt_count=attempts,
            number=f"NX-{tag}-{number}",
        )

    def ev(type_: str, obj: dict, at: int, n: int) -> dict:
        return stripe_events.event(type=type_, obj=obj, created=at, event_id=f"evt_{tag}_{n:02d}")

    events = [
        ev(
            "checkout.session.completed",
            stripe_events.checkout_session(
                session_id=f"cs_test_{tag}",
                customer_id=customer_id,
                sub_id=sub_id,
                user_id=user_id,
                created=start,
            ),
            start,
            1,
        ),
        ev("customer.subscription.created", sub("trialing", start, period_end=trial_end), start, 2),
        ev("invoice.finalized", inv(0, "open", 0, start), start, 3),
        ev("invoice.paid", inv(0, "paid", 0, start), start + 1, 4),
        ev(
            "customer.updated",
            stripe_events.customer(
                customer_id=customer_id, user_id=user_id, email=email, default_payment_method="pm_card_visa"
            ),
            start + 60,
            5,
        ),
        ev(
            "customer.subscription.trial_will_end",
            sub("trialing", start, period_end=trial_end),
            trial_end - 3 * DAY,
            6,
        ),
        ev("invoice.finalized", inv(1, "open", 2900, active), active, 7),
        ev("invoice.paid", inv(1, "paid", 2900, active), active + 1, 8),
        ev("customer.subscription.updated", sub("active", active), active + 1, 9),
        ev("invoice.finalized", inv(2, "open", 2900, failed), failed, 10),
        ev("invoice.payment_failed", inv(2, "open", 2900, failed), failed + 1, 11),
        ev("customer.subscription.updated", sub("past_due", failed), failed + 1, 12),
        ev("invoice.payment_failed", inv(2, "open", 2900, retry, attempts=2), retry, 13),
        ev("customer.subscription.deleted", sub("canceled", canceled), canceled, 14),
    ]
    return Lifecycle(
        customer_id=customer_id,
        subscription_id=sub_id,
        events=events,
        started=start,
        active=active,
        failed=failed,
        canceled=canceled,
    )
