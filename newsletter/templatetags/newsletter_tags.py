"""{% load newsletter_tags %}{% may_author_newsletter as can %}: whether to show the studio in the nav."""

from django import template

from newsletter.selectors import may_author

register = template.Library()


@register.simple_tag(takes_context=True)
def may_author_newsletter(context) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and may_author(user=user))
