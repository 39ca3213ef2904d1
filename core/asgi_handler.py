"""Django's ASGI handler with a request's synchronous work in one hop, on a reused thread.

Every middleware in settings.MIDDLEWARE and every view of the project is synchronous. Django's own
ASGIHandler loads the chain in async mode all the same, so a request crosses between the event loop
and its thread at each boundary between an async-capable and a sync-only middleware (prometheus' two,
the request's sync middleware, the sync view): each crossing wakes the event loop, hands the GIL over
and waits its turn behind every other request on that loop (py-spy on a loaded web process: the loop and
the crossings took about a fifth of its CPU).

This handler loads the chain in sync mode and, in one call on the request's thread, sends
`request_started`, builds the request, runs the whole chain and (for a response that is not streamed)
closes it, which sends `request_finished`: one crossing where Django's handler makes three. The body is
still read and the response still sent on the event loop. Database connections are opened and given
back by that one thread, as under Django's handler (its `request_started` / `request_finished`
receivers close old connections). A streamed response (a file) is closed after it is sent, as Django does,
on the same thread.

Django gives every request a thread of its own (a ThreadSensitiveContext with a new one-thread executor)
and joins that thread on the event loop when the request ends. Here a request borrows an idle one-thread
executor and gives it back: the same guarantee (every thread-sensitive call of one request runs on one
thread, nothing else runs there meanwhile) without starting and joining a thread per request.

An async view or middleware would still work (Django adapts it with `async_to_sync`), only without the
saving. Measured on the 2-core host (`bench/api.py --clients 60 --pause 0 --sockets 0`, two web
processes): 74 API requests a second with Django's handler, 107 with the one-hop chain (together with two
smaller changes of the same day, docs/scale-out.md); docs/scale-out.md has the figures of the single
hop and the reused threads.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import set_script_prefix

# Idle request threads kept for reuse; more than this many at once (a burst past the process's
# concurrency limit, core/asgi_limit.py, lets probes through) are shut down when their request ends.
IDLE_THREADS = 64


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    def _respond(self, scope, body_file):
        """On the request's thread: request_started, the request, the chain; a response that is not
        streamed is closed here too (request_finished: the connections go back on this thread)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))

        async def process_request():
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away meanwhile
                await self.send_response(response, send)
            return response

        # As Django's handler: a client that disconnects while its request runs cancels the wait.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            # The thread finishes the request on its own; this closes what it may have left open.
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if response.streaming:
                await sync_to_async(response.close)()
        body_file.close()
