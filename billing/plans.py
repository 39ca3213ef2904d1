"""The plans, defined once. Pages, entitlements, `billing_sync_plans` and Checkout all read this module.

Limits are per user; `None` means unlimited. AI queries are counted per calendar month (UTC) and,
on paid plans, reported to a Stripe Billing Meter; the metered price charges nothing up to
`ai_queries_included` and `ai_query_overage` per query beyond it (only Enterprise, which has no hard
AI limit, can go beyond).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from billing.choices import Feature, PlanCode
from core.money import ZERO

CURRENCY = "usd"


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    rank: int
    monthly_price: Decimal
    tagline: str
    limits: Mapping[str, int | None]
    trial_days: int = 0
    ai_queries_included: int = 0
    ai_query_overage: Decimal = ZERO
    highlights: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_paid(self) -> bool:
        return self.monthly_price > 0

    def limit(self, feature: str) -> int | None:
        return self.limits[Feature(feature)]

    # Stripe identifiers are ours, so syncing twice finds what the first run created.
    @property
    def stripe_product_id(self) -> str:
        return f"nexus_{self.code}"

    @property
    def flat_price_lookup_key(self) -> str:
        return f"nexus_{self.code}_monthly"

    @property
    def metered_price_lookup_key(self) -> str:
        return f"nexus_{self.code}_ai_queries"


FREE = Plan(
    code=PlanCode.FREE,
    name="Free",
    rank=0,
    monthly_price=Decimal("0.00"),
    tagline="Try Nexus with one exchange and one bot.",
    limits={
        Feature.BOTS: 1,
        Feature.ALERTS: 5,
        Feature.EXCHANGE_CONNECTIONS: 1,
        Feature.AI_QUERIES: 25,
        Feature.API_REQUESTS_PER_MINUTE: 60,
        Feature.AUTOMATION_RULES: 3,
        Feature.WEBHOOK_TRIGGERS: 1,
        Feature.NEWSLETTER_ISSUES: 0,
        Feature.NEWSLETTER_RECIPIENTS: 0,
        Feature.PUBLISHED_NOTES: 3,
    },
    highlights=("Paper trading", "Live portfolio", "Community support"),
)
PRO = Plan(
    code=PlanCode.PRO,
    name="Pro",
    rank=1,
    monthly_price=Decimal("29.00"),
    tagline="For active traders running several strategies.",
    trial_days=14,
    limits={
        Feature.BOTS: 10,
        Feature.ALERTS: 100,
        Feature.EXCHANGE_CONNECTIONS: 5,
        Feature.AI_QUERIES: 1000,
        Feature.API_REQUESTS_PER_MINUTE: 600,
        Feature.AUTOMATION_RULES: 50,
        Feature.WEBHOOK_TRIGGERS: 10,
        Feature.NEWSLETTER_ISSUES: 0,
        Feature.NEWSLETTER_RECIPIENTS: 0,
        Feature.PUBLISHED_NOTES: 50,
    },
    ai_queries_included=1000,
    ai_query_overage=Decimal("0.02"),
    highlights=("14-day free trial", "Email and Discord alerts", "AI companion"),
)
ENTERPRISE = Plan(
    code=PlanCode.ENTERPRISE,
    name="Enterprise",
    rank=2,
    monthly_price=Decimal("199.00"),
    tagline="For desks and communities that trade at scale.",
    limits={
        Feature.BOTS: 100,
        Feature.ALERTS: None,
        Feature.EXCHANGE_CONNECTIONS: 25,
        Feature.AI_QUERIES: None,
        Feature.API_REQUESTS_PER_MINUTE: 3000,
        Feature.AUTOMATION_RULES: None,
        Feature.WEBHOOK_TRIGGERS: None,
        Feature.NEWSLETTER_ISSUES: 30,
        Feature.NEWSLETTER_RECIPIENTS: 10000,
        Feature.PUBLISHED_NOTES: None,
    },
    ai_queries_included=10000,
    ai_query_overage=Decimal("0.01"),
    highlights=(
        "10,000 AI queries included, then $0.01 each",
        "Newsletters to up to 10,000 members",
        "Priority support",
    ),
)

PLANS: dict[str, Plan] = {plan.code: plan for plan in (FREE, PRO, ENTERPRISE)}


def plan_get(code: str) -> Plan:
    try:
        return PLANS[code]
    except KeyError:
        raise KeyError(f"unknown plan {code!r}") from None


def plan_list() -> list[Plan]:
    return sorted(PLANS.values(), key=lambda plan: plan.rank)


def paid_plan_list() -> list[Plan]:
    return [plan for plan in plan_list() if plan.is_paid]


def plan_upgrade_for(*, current: Plan, feature: str, needed: int) -> Plan | None:
    """The cheapest plan above `current` whose limit on `feature` allows `needed`."""
    for plan in plan_list():
        if plan.rank <= current.rank:
            continue
        limit = plan.limit(feature)
        if limit is None or limit >= needed:
            return plan
    return None


def plan_for_stripe_price(price: Mapping) -> Plan | None:
    """Which of our plans a Stripe price (as found in a subscription item) belongs to."""
    metadata = price.get("metadata") or {}
    if metadata.get("nexus_plan") in PLANS:
        return PLANS[metadata["nexus_plan"]]
    lookup_key = price.get("lookup_key") or ""
    product = price.get("product")
    product_id = product.get("id") if isinstance(product, Mapping) else product
    for plan in paid_plan_list():
        if lookup_key in (plan.flat_price_lookup_key, plan.metered_price_lookup_key):
            return plan
        if product_id == plan.stripe_product_id:
            return plan
    return None


_UNITS = {
    Feature.BOTS: ("trading bot", "trading bots"),
    Feature.ALERTS: ("price alert", "price alerts"),
    Feature.EXCHANGE_CONNECTIONS: ("exchange connection", "exchange connections"),
    Feature.AI_QUERIES: ("AI query a month", "AI queries a month"),
    Feature.API_REQUESTS_PER_MINUTE: ("API request a minute", "API requests a minute"),
    Feature.AUTOMATION_RULES: ("automation rule", "automation rules"),
    Feature.WEBHOOK_TRIGGERS: ("webhook-triggered rule", "webhook-triggered rules"),
    Feature.NEWSLETTER_ISSUES: ("newsletter issue a month", "newsletter issues a month"),
    Feature.NEWSLETTER_RECIPIENTS: ("newsletter recipient per issue", "newsletter recipients per issue"),
    Feature.PUBLISHED_NOTES: ("published research note", "published research notes"),
}


def quantity_phrase(feature: str, count: int | None) -> str:
    singular, plural = _UNITS[Feature(feature)]
    if count is None:
        return f"unlimited {plural}"
    return f"{count:,} {singular if count == 1 else plural}"
