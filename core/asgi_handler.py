"""Django's ASGI handler with the middleware chain run synchronously: one thread hop per request.

Every middleware in settings.MIDDLEWARE and every view of the project is synchronous. Django's own
ASGIHandler loads the chain in async mode all the same, so a request crosses between the event loop
and its thread at each boundary between an async-capable and a sync-only middleware (prometheus' two,
the request's sync middleware, the sync view): each crossing wakes the event loop, hands the GIL over
and waits its turn behind every other request on that loop (py-spy on a loaded web process: the loop and
the crossings took about a fifth of its CPU).

This handler loads the chain in sync mode and runs all of it in the request's thread in one call, as a
WSGI server would; the body is still read and the response still sent on the event loop, and
`request_started` / `request_finished` still run in that same thread (Django's handler sends them through
`sync_to_async` in the request's ThreadSensitiveContext), so database connections are opened and given
back by the thread that used them. An async view or middleware would still work (Django adapts it with
`async_to_sync`), only without the saving. Measured on the 2-core host (`bench/api.py --clients 60
--pause 0 --sockets 0`, two web processes): 74 API requests a second with Django's handler, 107 with this
one (together with two smaller changes of the same day, docs/scale-out.md).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        # thread_sensitive: the thread of this request's ThreadSensitiveContext, the one that runs its
        # request_started and request_finished receivers (close_old_connections) too.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
