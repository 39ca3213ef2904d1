from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()


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
