"""HTTP through Django (automation webhooks through automation.intake first); WebSockets through Channels
behind session auth and an allowed-hosts origin check.

The public market sockets (marketdata.routing) are routed before the session/auth stack: they serve
anonymous and logged-in visitors alike, and thousands of them should not each resolve a session."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django.setup(set_prefix=False)

from core.asgi_handler import SyncChainASGIHandler  # noqa: E402

# Django's ASGI handler, its middleware chain run in one thread hop per request (core/asgi_handler.py).
django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from automation.intake import WebhookIntake  # noqa: E402
from config.routing import public_websocket_urlpatterns, websocket_urlpatterns  # noqa: E402
from core import daphne_http, ws_backpressure  # noqa: E402
from core.asgi_limit import HttpConcurrencyLimit  # noqa: E402
from core.rls import PROBE_PATHS, SessionUserMiddleware  # noqa: E402
from marketdata.api_socket import ApiSocketConsumer  # noqa: E402

ws_backpressure.install()  # under daphne, a client that stops reading is closed, not buffered
daphne_http.install()  # under daphne, Twisted no longer parses POST bodies that daphne never reads

application = ProtocolTypeRouter(
    {
        # Automation webhooks recorded in batches before Django (automation/intake.py); then a queue in
        # front of Django instead of a thread per request (core/asgi_limit.py).
        "http": WebhookIntake(
            HttpConcurrencyLimit(
                django_asgi_app,
                settings.WEB_HTTP_CONCURRENCY,
                ceiling=settings.WEB_HTTP_MAX_INSIDE,
                stall_after=settings.WEB_HTTP_STALL_MS / 1000,
                exempt=PROBE_PATHS,
            )
        ),
        # The programs' socket: token-authenticated (no cookies), so no origin check (programs send none).
        "websocket": URLRouter(
            [
                re_path(r"^ws/v1/$", ApiSocketConsumer.as_asgi()),
                re_path(
                    r"",
                    AllowedHostsOriginValidator(
                        URLRouter(
                            [
                                *public_websocket_urlpatterns,
                                re_path(
                                    r"",
                                    SessionMiddlewareStack(
                                        SessionUserMiddleware(URLRouter(websocket_urlpatterns))
                                    ),
                                ),
                            ]
                        )
                    ),
                ),
            ]
        ),
    }
)
