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
