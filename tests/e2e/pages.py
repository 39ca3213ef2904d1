"""Every page of Nexus, enumerated from the URL resolver.

Each route is either visited (`Visit`: which roles see it, how its parameters are filled from seeded
objects) or excluded with the reason (`Skip`). A route that is neither fails
`test_every_route_is_visited_or_excluded`, so a new app's pages join the browser suite the day they are
merged: most need nothing here at all (`visit_by_default`), only parameters or a reason to skip.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver

ROLES = ("trader", "staff")


@dataclass(frozen=True)
class Visit:
    """Open the page as each of `roles` ("trader", "staff", or "visitor": signed out). `params` fills the
    route's parameters from that role's seeded objects (a dict such as {"portfolio": 12, "alert": 3})."""

    params: Callable[[dict], dict] | None = None
    roles: tuple[str, ...] = ROLES
    query: str = ""


@dataclass(frozen=True)
class Skip:
    reason: str


# Whole areas that are not HTML pages of ours.
SKIPPED_PREFIXES = {
    "admin/": "Django's admin: staff tooling with Django's own templates and scripts, not a trader's page",
    "api/": "the JSON API (problem+json, schema, Swagger UI from the sidecar); tested by tests/api and schemathesis",
    "stripe/": "Stripe's webhook: POST from Stripe only",
    "anymail/": "the mail provider's (Resend's) delivery and bounce webhooks: POST only",
    "accounts/google/": "OAuth redirects to Google (outside this machine)",
    "accounts/discord/": "OAuth redirects to Discord (outside this machine)",
    "accounts/social/": "allauth's legacy redirects to accounts/3rdparty/ (visited there)",
}

POST_ONLY = "POST only (a form's action or an HTMX write): no page to open"

# Route (as the resolver spells it) -> Visit or Skip. Routes not named here and not under a skipped prefix
# fail the suite, unless the route takes no parameters (then it is visited with the defaults).
ROUTES: dict[str, Visit | Skip] = {
    "": Skip("redirects to dashboard/ (visited)"),
    "healthz": Skip("plain-text health probe"),
    "readyz": Skip("plain-text readiness probe"),
    "metrics": Skip("Prometheus text exposition"),
    # accounts (ours and allauth's)
    "accounts/login/": Visit(roles=("visitor",)),
    "accounts/signup/": Visit(roles=("visitor",)),
    "accounts/password/reset/": Visit(roles=("visitor",)),
    "accounts/password/reset/done/": Visit(roles=("visitor",)),
    "accounts/password/reset/key/done/": Visit(roles=("visitor",)),
    "accounts/logout/": Skip("signs the user out (POST); its confirmation page would end the session under test"),
    "accounts/inactive/": Skip("shown only to a deactivated account, which cannot be signed in to visit it"),
    "accounts/reauthenticate/": Visit(),
    "accounts/confirm-email/": Visit(roles=("visitor",)),
    "accounts/login/code/confirm/": Skip("login by code is off (no pending code: redirects to the login page)"),
    "accounts/password/set/": Skip("only for accounts without a password (social sign-up): redirects otherwise"),
    r"accounts/^confirm-email/(?P<key>[-:\w]+)/$": Skip("needs the key from a mail; test_accounts_flow follows it"),
    r"accounts/^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$": Skip(
        "needs the key from a mail; test_accounts_flow follows it"
    ),
    "accounts/2fa/authenticate/": Skip("the second step of a login in progress: redirects without one"),
    "accounts/2fa/reauthenticate/": Skip("asked for by a sensitive action in progress: redirects without one"),
    "accounts/2fa/totp/activate/": Skip("asks to reauthenticate first (accounts/reauthenticate/, visited)"),
    "accounts/2fa/recovery-codes/generate/": Skip("asks to reauthenticate first (accounts/reauthenticate/, visited)"),
    "accounts/2fa/totp/deactivate/": Skip("only with TOTP on (the demo admin's): a confirmation form, POST to act"),
    "accounts/2fa/recovery-codes/": Skip("only once recovery codes exist; redirects to generate/ otherwise"),
    "accounts/2fa/recovery-codes/download/": Skip("a text/plain download"),
    "accounts/3rdparty/login/cancelled/": Visit(roles=("visitor",)),
    "accounts/3rdparty/login/error/": Skip("allauth answers a failed social login with 401 (no provider is set up here)"),
    "accounts/3rdparty/signup/": Skip("only during a social sign-up in progress: redirects to login without one"),
    # settings
    "settings/tokens/": Skip("redirects to settings/api/ (visited)"),
    "settings/api/<int:token_id>/revoke/": Skip(POST_ONLY),
    "settings/log-out-everywhere/": Skip(POST_ONLY),
    "settings/discord/code/": Skip(POST_ONLY),
    "settings/discord/unlink/": Skip(POST_ONLY),
    # portfolios
    "dashboard/presence/": Skip(POST_ONLY),
    "portfolios/<int:pk>/delete/": Skip(POST_ONLY),
    "portfolios/<int:pk>/transactions/": Visit(lambda o: {"pk": o["portfolio"]}),
    "portfolios/<int:pk>/transactions/add/": Skip(POST_ONLY),
    "portfolios/<int:pk>/import/": Visit(lambda o: {"pk": o["portfolio"]}),
    "portfolios/<int:pk>/export/transactions.csv": Skip("a CSV download"),
    "portfolios/<int:pk>/export/positions.csv": Skip("a CSV download"),
    "transactions/<int:pk>/delete/": Skip(POST_ONLY),
    "watchlists/<int:pk>/add/": Skip(POST_ONLY),
    "watchlists/<int:pk>/remove/<int:instrument_id>/": Skip(POST_ONLY),
    "watchlists/<int:pk>/delete/": Skip(POST_ONLY),
    # notifications and alerts
    "notifications/read/": Skip(POST_ONLY),
    "notifications/<int:notification_id>/read/": Skip(POST_ONLY),
    "alerts/<int:alert_id>/": Visit(lambda o: {"alert_id": o["alert"]}),
    "alerts/<int:alert_id>/pause/": Skip(POST_ONLY),
    "alerts/<int:alert_id>/resume/": Skip(POST_ONLY),
    "alerts/<int:alert_id>/delete/": Skip(POST_ONLY),
    # markets
    "markets/<str:slug>": Visit(lambda o: {"slug": "BTC-USDT"}),
    # trading
    "trading/orders/": Skip(POST_ONLY),
    "trading/orders/check/": Skip(POST_ONLY),
    "trading/orders/<uuid:pk>/cancel/": Skip(POST_ONLY),
    "trading/connections/<int:pk>/delete/": Skip(POST_ONLY),
    "trading/bots/<int:pk>/": Visit(lambda o: {"pk": o["bot"]}),
    "trading/bots/<int:pk>/status/": Skip(POST_ONLY),
    "trading/bots/<int:pk>/delete/": Skip(POST_ONLY),
    "trading/markets/": Skip("redirects to markets (visited)"),
    # billing
    "billing/checkout/": Skip(POST_ONLY),
    "billing/portal/": Skip(POST_ONLY),
    "billing/return/": Skip("Stripe Checkout's return address: redirects to billing/ without a session id"),
    # assistant
    "assistant/new/": Skip("starts a new conversation and redirects to assistant/ (visited)"),
    "assistant/ask/": Skip(POST_ONLY),
    "assistant/<int:pk>/": Visit(lambda o: {"pk": o["conversation"]}),
    "assistant/<int:pk>/confirm/": Skip(POST_ONLY),
    "assistant/<int:pk>/delete/": Visit(lambda o: {"pk": o["conversation"]}),
    # automation
    "automation/hooks/<str:token>/": Skip("the inbound webhook: POST from TradingView (or any sender), JSON only"),
    "automation/<int:rule_id>/": Visit(lambda o: {"rule_id": o["rule"]}),
    "automation/<int:rule_id>/edit/": Visit(lambda o: {"rule_id": o["rule"]}),
    "automation/<int:rule_id>/test/": Skip(POST_ONLY),
    "automation/<int:rule_id>/pause/": Skip(POST_ONLY),
    "automation/<int:rule_id>/resume/": Skip(POST_ONLY),
    "automation/<int:rule_id>/delete/": Skip(POST_ONLY),
    "automation/<int:rule_id>/runs/<int:run_id>/": Visit(lambda o: {"rule_id": o["rule"], "run_id": o["rule_run"]}),
    # research
    "research/preview/": Skip(POST_ONLY),
    "research/notes/<int:note_id>/": Visit(lambda o: {"note_id": o["note"]}),
    "research/notes/<int:note_id>/edit/": Visit(lambda o: {"note_id": o["note"]}),
    "research/notes/<int:note_id>/revisions/": Visit(lambda o: {"note_id": o["note"]}),
    "research/notes/<int:note_id>/publish/": Skip(POST_ONLY),
    "research/notes/<int:note_id>/unpublish/": Skip(POST_ONLY),
    "research/notes/<int:note_id>/delete/": Skip(POST_ONLY),
    "research/community/<int:note_id>/": Visit(lambda o: {"note_id": o["note"]}),
    "research/authors/<int:author_id>/": Visit(lambda o: {"author_id": o["author"]}),
    "research/on/<str:slug>/": Skip("an HTMX fragment the market page loads (markets/<str:slug>, visited)"),
    # newsletter: the studio is for authors (staff; a trader's plan has no issues), the archive is public
    "newsletter/": Visit(roles=("staff",)),
    "newsletter/new/": Visit(roles=("staff",)),
    "newsletter/draft/": Skip(POST_ONLY),
    "newsletter/<int:issue_id>/": Visit(lambda o: {"issue_id": o["issue"]}, roles=("staff",)),
    "newsletter/<int:issue_id>/edit/": Visit(lambda o: {"issue_id": o["issue"]}, roles=("staff",)),
    "newsletter/<int:issue_id>/email/": Skip(
        "the email's own HTML (inline styles), framed by newsletter/<int:issue_id>/ (visited)"
    ),
    "newsletter/<int:issue_id>/send/": Skip(POST_ONLY),
    "newsletter/<int:issue_id>/schedule/": Skip(POST_ONLY),
    "newsletter/<int:issue_id>/unschedule/": Skip(POST_ONLY),
    "newsletter/<int:issue_id>/delete/": Skip(POST_ONLY),
    "newsletter/archive/": Visit(roles=(*ROLES, "visitor")),
    "newsletter/archive/<int:issue_id>-<slug:slug>/": Visit(
        lambda o: {"issue_id": o["archived_issue"], "slug": o["archived_slug"]}, roles=(*ROLES, "visitor")
    ),
    "newsletter/feed.atom": Skip("an Atom feed (XML), not a page: tests/newsletter/test_archive_feed.py fetches and parses it"),
    "newsletter/feed.rss": Skip("an RSS feed (XML), not a page: tests/newsletter/test_archive_feed.py fetches and parses it"),
    "newsletter/unsubscribe/<str:token>/": Visit(lambda o: {"token": o["unsubscribe"]}, roles=(*ROLES, "visitor")),
    # the strategy tracker
    "trading/tracker/replays/<int:pk>/": Visit(lambda o: {"pk": o["replay"]}),
    "trading/tracker/replays/<int:pk>/delete/": Skip(POST_ONLY),
    "trading/tracker/replays/bot/<int:pk>/": Skip(POST_ONLY),
    "trading/tracker/<str:kind>/<str:key>/": Visit(lambda o: {"kind": "bot", "key": o["bot"]}),
}


@dataclass(frozen=True)
class Route:
    route: str
    name: str | None
    rule: Visit | Skip | None = field(default=None)


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


def routes() -> list[Route]:
    """Every route the resolver knows, once each (the first pattern of a route wins, as in Django)."""
    seen: dict[str, Route] = {}
    for route, name in _walk(get_resolver().url_patterns):
        if route in seen:
            continue
        rule = ROUTES.get(route)
        if rule is None:
            prefix = next((p for p in SKIPPED_PREFIXES if route.startswith(p)), None)
            if prefix is not None:
                rule = Skip(SKIPPED_PREFIXES[prefix])
            elif not _PARAM.search(route) and not route.startswith("^"):
                rule = Visit()  # a parameterless page: visited as trader and staff unless told otherwise
        seen[route] = Route(route, name, rule)
    return list(seen.values())


_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>|\(\?P<")


def unclassified() -> list[str]:
    return [route.route for route in routes() if route.rule is None]


def stale_rules() -> list[str]:
    """Rules for routes that no longer exist (a renamed route must not keep its old exclusion)."""
    known = {route.route for route in routes()}
    return [route for route in ROUTES if route not in known]


def path_for(route: str, params: dict) -> str:
    return "/" + re.sub(r"<(?:[^>:]+:)?([^>]+)>", lambda m: str(params[m.group(1)]), route)


@dataclass(frozen=True)
class PageVisit:
    role: str
    path: str
    route: str


def visits(objects: dict[str, dict]) -> list[PageVisit]:
    """(role, path) for every visited route; `objects[role]` holds that role's seeded object ids."""
    result = []
    for route in routes():
        if not isinstance(route.rule, Visit):
            continue
        for role in route.rule.roles:
            params = route.rule.params(objects.get(role, {})) if route.rule.params else {}
            path = path_for(route.route, params) + (f"?{route.rule.query}" if route.rule.query else "")
            result.append(PageVisit(role=role, path=path, route=route.route))
    return result
