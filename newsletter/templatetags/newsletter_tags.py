"""{% load newsletter_tags %}{% may_author_newsletter as can %}: whether to show the studio in the nav."""

from django import template

from core.rls import needs_auth_context
from newsletter.selectors import may_author

register = template.Library()


@register.simple_tag(takes_context=True)
def may_author_newsletter(context) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if needs_auth_context(request):
        # Account pages (sign-in, 2FA, email addresses) run as the authentication role, which reads no
        # plans: there the link shows for staff, who may always author.
        return bool(user.is_staff)
    return may_author(user=user)
