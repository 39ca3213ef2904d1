from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.html import format_html

from core.notifications import notification_unread_count, render_unread_badge

register = template.Library()


@register.simple_tag(takes_context=True)
def notification_bell(context) -> str:
    """The nav's link to the notification centre with the unread count (updated live over the WebSocket)."""
    request = context["request"]
    count = notification_unread_count(user=request.user)
    url = reverse("notification_list")
    template = (
        '<a href="{}" class="notification-bell" aria-current="page">Notifications {}</a>'
        if request.path == url
        else '<a href="{}" class="notification-bell">Notifications {}</a>'
    )
    return format_html(template, url, render_unread_badge(count))


@register.simple_tag
def alert_create_url(symbol: str = "", kind: str = "", threshold="", portfolio="", pnl_unit: str = "") -> str:
    """/alerts/ with the form prefilled, for the market page and position rows:
    {% alert_create_url symbol=instrument.symbol %} or
    {% alert_create_url symbol=line.symbol kind="position_pnl_below" portfolio=portfolio.pk pnl_unit="percent" %}
    """
    values = {
        "symbol": symbol,
        "kind": kind,
        "threshold": threshold,
        "portfolio": portfolio,
        "pnl_unit": pnl_unit,
    }
    params = {key: value for key, value in values.items() if value not in ("", None)}
    return reverse("alert_list") + ("?" + urlencode(params) if params else "")
