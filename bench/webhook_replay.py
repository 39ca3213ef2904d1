"""A subscription lifecycle replayed N times, each time every event 3 times over in a shuffled order.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/webhook_replay.py [--replays 200] [--copies 3]

Uses a database of its own (<name>_bench_billing_replay, recreated). Each replay takes the 14 events of
one user's lifecycle (checkout, trial, invoices, payment failures, cancellation: tests/billing/scenarios.py),
stores every delivery as the endpoint does (`webhook_event_receive`) and processes every delivery as the
Celery task does (`webhook_event_process`), in a shuffled order with each event `--copies` times. A twin
user gets the same events once each, in the order of their first arrival. Checked per replay:

- processed: each event applied exactly once, every other delivery skipped as a duplicate;
- side effects (audit rows + notifications) equal the twin's: duplicates add none;
- final state right: canceled Pro subscription, the right invoice states and payment standing, the Free
  plan now, the same as when the events are processed in Stripe's own order.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs

os.environ.update(bench_environment("bench_billing_replay"))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replays", type=int, default=200)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)

    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from billing import webhooks
    from billing.models import Invoice, Subscription
    from billing.selectors import user_plan
    from core.models import AuditLog, Notification
    from core.rls import system_context, tenant
    from tests.billing.scenarios import DAY, lifecycle

    # The bench plays the queue itself: every delivery is processed right here, in delivery order.
    webhooks.webhook_event_enqueue = lambda *, event_id: None
    # The live refresh of open billing pages has no audience here.
    webhooks.push_billing_status = lambda *, user: None

    start = int(timezone.now().timestamp()) - 70 * DAY
    rng = random.Random(args.seed)

    def new_user(label: str):
        with system_context(reason="bench: billing replay users"):
            user = User.objects.create(email=f"{label}@bench.local", password=make_password(None))
            Subscription.objects.create(user=user, stripe_customer_id=f"cus_{label}")
        return user

    def run(user, tag: str, order: list[int]) -> tuple[int, int]:
        scenario = lifecycle(
            user_id=user.pk, email=user.email, customer_id=f"cus_{tag}", start=start, tag=tag
        )
        applied = skipped = 0
        for index in order:
            event = scenario.events[index]
            # What the endpoint does after dj-stripe verified the signature, in its system context.
            with system_context(reason="bench: store a Stripe delivery"):
                webhooks.webhook_event_receive(SimpleNamespace(json_body=event))
            outcome = webhooks.webhook_event_process(event_id=event["id"])
            if outcome.startswith("duplicate"):
                skipped += 1
            else:
                applied += 1
        return applied, skipped

    def state(user) -> tuple:
        with tenant(user.pk):
            s = Subscription.objects.get(user=user)
            invoices = tuple(
                Invoice.objects.filter(user=user).order_by("stripe_id").values_list("status", "amount_paid")
            )
            effects = (
                AuditLog.objects.filter(user=user).count(),
                tuple(Notification.objects.filter(user=user).order_by("pk").values_list("kind", flat=True)),
            )
        final = (
            s.plan,
            s.status,
            s.state_at,
            s.trial_end,
            s.last_paid_at,
            s.payment_failed_at,
            tuple(s.failed_payment_times),
            s.has_payment_method,
            invoices,
            user_plan(user=user).code,
        )
        return final, effects

    events_per_replay = len(
        lifecycle(user_id=0, email="", customer_id="cus_x", start=start, tag="probe").events
    )
    stripe_order_user = new_user("stripe_order")
    run(stripe_order_user, "stripe_order", list(range(events_per_replay)))
    expected_final, _ = state(stripe_order_user)

    applied_total = skipped_total = side_effects = extra_side_effects = right = 0
    began = time.perf_counter()
    for replay in range(args.replays):
        deliveries = list(range(events_per_replay)) * args.copies
        rng.shuffle(deliveries)
        first_arrivals = list(dict.fromkeys(deliveries))

        shuffled = new_user(f"dup{replay}")
        applied, skipped = run(shuffled, f"dup{replay}", deliveries)
        twin = new_user(f"once{replay}")
        run(twin, f"once{replay}", first_arrivals)

        got_final, got_effects = state(shuffled)
        twin_final, twin_effects = state(twin)
        applied_total += applied
        skipped_total += skipped
        side_effects += got_effects[0] + len(got_effects[1])
        extra_side_effects += abs(got_effects[0] - twin_effects[0]) + abs(
            len(got_effects[1]) - len(twin_effects[1])
        )
        if (
            applied == events_per_replay
            and got_final == twin_final == expected_final
            and got_effects == twin_effects
        ):
            right += 1
    seconds = time.perf_counter() - began
    deliveries_total = args.replays * events_per_replay * args.copies

    print(
        json.dumps(
            {
                "bench": "webhook_replay",
                "replays": args.replays,
                "events_per_replay": events_per_replay,
                "copies": args.copies,
                "deliveries": deliveries_total,
                "applied": applied_total,
                "applied_expected": args.replays * events_per_replay,
                "duplicates_skipped": skipped_total,
                "side_effects": side_effects,
                "side_effects_from_duplicates": extra_side_effects,
                "final_state_correct": right,
                "seconds": round(seconds, 2),
                "deliveries_per_second": round(deliveries_total / seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
