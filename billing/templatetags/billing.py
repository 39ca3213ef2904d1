"""{% load billing %}: plan and limits in templates.

{% user_plan as plan %}                      {{ plan.name }}
{% entitlement_remaining "bots" as left %}   None when unlimited
{% entitlement_allows "bots" as can_add %}   {% if can_add %}<button>New bot</button>{% endif %}
"""

from django import template

from billing.plans import plan_get, quantity_phrase
from billing.selectors import entitlement_remaining as remaining_for
from billing.selectors import user_plan as plan_for

register = template.Library()


def _user(context):
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return user if user is not None and user.is_authenticated else None


@register.simple_tag(takes_context=True)
def user_plan(context):
    user = _user(context)
    return plan_for(user=user) if user else plan_get("free")


@register.simple_tag(takes_context=True)
def entitlement_remaining(context, feature: str):
    user = _user(context)
    return remaining_for(user=user, feature=feature) if user else 0


@register.simple_tag(takes_context=True)
def entitlement_allows(context, feature: str, increment: int = 1) -> bool:
    user = _user(context)
    if user is None:
        return False
    left = remaining_for(user=user, feature=feature)
    return left is None or left >= increment


@register.filter
def limit_display(value):
    return "Unlimited" if value is None else f"{value:,}"


@register.filter
def limit_phrase(value, feature: str) -> str:
    """{{ plan.limits.bots|limit_phrase:"bots" }} -> "1 trading bot", "10 trading bots", "unlimited ..."."""
    phrase = quantity_phrase(feature, value)
    return phrase[:1].upper() + phrase[1:]
