"""Incoming automation webhooks in front of Django: deliveries checked and recorded in batches.

A TradingView alert storm or a sender's retry loop arrives as hundreds of small POSTs a second to
/automation/hooks/<token>/. Through Django each one paid the whole middleware chain (sessions, CSRF,
CSP, allauth, request logging; nothing of which a token-authenticated JSON endpoint uses) and a dozen
database round trips of its own, and a web process recorded about a hundred a second. This ASGI app
takes those POSTs before Django (everything else passes through untouched): it reads the body on the
event loop, queues the delivery, and a writer thread records whatever has queued meanwhile with
`webhook_receive_many`: the same checks and guarantees as the Django view (`automation.views.webhook_view`,
which the test client and a WSGI deployment still use), one rule lookup and one transaction for the lot.
While a batch is being written the next one gathers, so the busier the endpoint, the larger the batches.
`writers` batches of a process are written at once (`AUTOMATION_INTAKE_WRITERS`, 2: while one waits for
the database the other's Python runs; at 500 deliveries a second for 30 s on the 2-core host, response
p50 470-570 ms with two, 700-1,600 ms with one), each on a connection the web process's pool holds for it.

The answers are the view's: 202 `{"run": id, "status": ...}`, problem+json 400 / 403 / 404 / 409 / 413,
405 for another method (from Django), and 503 with Retry-After when the database is unavailable or when
more than `max_waiting` deliveries wait in this process (the sender retries; nothing was recorded). The
Host header is checked against ALLOWED_HOSTS as Django would.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host
from django.urls import reverse
from prometheus_client import Counter, Histogram

from automation.services import Delivery, RuleRun, WebhookRejected, webhook_receive_many
from core.api import problem_response
from core.unavailable import DETAIL as UNAVAILABLE_DETAIL
from core.unavailable import UNAVAILABLE

logger = structlog.get_logger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_WEBHOOK_BODY = 64 * 1024
MAX_BATCH = 200
MAX_WAITING = 2000
BUSY_DETAIL = "Too many webhook deliveries are waiting on this server. Please retry shortly."

ANSWERS = Counter("nexus_automation_webhooks_total", "Incoming automation webhook deliveries, by answer.", ["status"])
BATCH_SIZE = Histogram(
    "nexus_automation_webhook_batch_size", "Deliveries recorded together in one transaction.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200),
)


@dataclass
class _LoopState:
    waiting: list[tuple[Delivery, asyncio.Future]] = field(default_factory=list)
    flushing: int = 0  # batches being written now


def webhook_response(outcome: RuleRun | WebhookRejected | HttpResponse, path: str) -> HttpResponse:
    """The answer to one delivery (here and in the Django view): 202 with the run, or problem+json."""
    if isinstance(outcome, HttpResponse):
        response = outcome
    elif isinstance(outcome, WebhookRejected):
        logger.info("automation.webhook_rejected", status=outcome.status, detail=str(outcome), path=path)
        response = problem_response(outcome.status, str(outcome), instance=path)
    else:
        response = HttpResponse(json.dumps({"run": outcome.pk, "status": outcome.status}), status=202,
                                content_type="application/json")
    ANSWERS.labels(status=str(response.status_code)).inc()
    return response


def too_large(path: str) -> HttpResponse:
    return problem_response(413, f"The body is larger than {MAX_WEBHOOK_BODY // 1024} KiB.", instance=path)


def _record(deliveries: list[Delivery]) -> list[RuleRun | WebhookRejected]:
    """In the intake's thread: one batch, with connections checked before and given back after, as Django
    does around a request."""
    close_old_connections()
    try:
        return webhook_receive_many(deliveries)
    finally:
        close_old_connections()


class WebhookIntake:
    """ASGI middleware: POSTs to the automation webhook URL are answered here, everything else goes to `app`."""

    def __init__(
        self, app: ASGIApp, *, max_batch: int = MAX_BATCH, max_waiting: int = MAX_WAITING, writers: int | None = None
    ) -> None:
        self.app = app
        # Each writer's connection is counted in the web process's pool (settings.AUTOMATION_INTAKE_WRITERS).
        self.writers = writers = writers or settings.AUTOMATION_INTAKE_WRITERS
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        # The URL as Django routes it (`<str:token>`: anything but a slash). Reversed in a context of its own:
        # reversing fills every URL resolver's asgiref Local, each a context variable, and in the main
        # thread's context (which every request's context copies) those ~120 variables were walked by
        # asgiref on each thread hop: about 4 ms of CPU per request, 40 % of a /healthz under daphne.
        sample = contextvars.Context().run(reverse, "automation:webhook", args=["TOKEN"])
        self.prefix, self.suffix = sample.split("TOKEN")
        # A thread (and a database connection) per writer; more batches wait their turn on the event loop.
        self._executor = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="webhook-intake")
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}

    def _token(self, scope: Scope) -> str | None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST":
            return None
        if not (path.startswith(self.prefix) and path.endswith(self.suffix)):
            return None
        token = path[len(self.prefix):len(path) - len(self.suffix)]
        return token if token and "/" not in token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self._token(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = dict(scope.get("headers") or [])
        if not self._host_allowed(headers.get(b"host", b"").decode("latin-1")):
            refused = problem_response(400, "The Host header is not one this server answers to.", instance=path)
            await self._answer(send, webhook_response(refused, path))
            return
        body = await self._body(receive)
        if body is None:
            await self._answer(send, webhook_response(too_large(path), path))
            return
        if body is False:
            return  # the sender went away
        signature = headers.get(b"x-nexus-signature", b"").decode("latin-1")
        outcome = await self._submit((token, body, signature))
        await self._answer(send, webhook_response(outcome, path))

    # --- the request ------------------------------------------------------------------------------------

    @staticmethod
    def _host_allowed(host: str) -> bool:
        """As HttpRequest.get_host() decides (this project does not trust X-Forwarded-Host)."""
        domain, _ = split_domain_port(host)
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:  # Django's own default while developing
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        return bool(domain) and validate_host(domain, allowed)

    @staticmethod
    async def _body(receive: Receive) -> bytes | None | bool:
        """The body; None when it is over the limit; False when the client disconnected."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_WEBHOOK_BODY:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    async def _answer(send: Send, response: HttpResponse) -> None:
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
        headers.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": response.content})

    # --- batching ---------------------------------------------------------------------------------------

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState()
        return state

    async def _submit(self, delivery: Delivery) -> RuleRun | WebhookRejected | HttpResponse:
        state = self._state()
        if len(state.waiting) >= self.max_waiting:
            return problem_response(503, BUSY_DETAIL, headers={"Retry-After": "1"})
        future = asyncio.get_running_loop().create_future()
        state.waiting.append((delivery, future))
        if state.flushing < self.writers:
            state.flushing += 1
            asyncio.get_running_loop().create_task(self._flush(state))
        return await future

    async def _flush(self, state: _LoopState) -> None:
        loop = asyncio.get_running_loop()
        try:
            while state.waiting:
                batch, state.waiting = state.waiting[: self.max_batch], state.waiting[self.max_batch:]
                BATCH_SIZE.observe(len(batch))
                try:
                    outcomes: list = await loop.run_in_executor(self._executor, _record, [d for d, _ in batch])
                except UNAVAILABLE as exc:
                    logger.warning("database_unavailable", path=self.prefix, error=str(exc).strip()[:300])
                    retry_after = str(settings.DB_UNAVAILABLE_RETRY_AFTER)
                    outcomes = [problem_response(503, UNAVAILABLE_DETAIL, headers={"Retry-After": retry_after})
                                for _ in batch]
                except Exception:  # noqa: BLE001 - every waiting sender gets an answer, never a hung request
                    logger.exception("automation.webhook_batch_failed", deliveries=len(batch))
                    outcomes = [problem_response(500, "The delivery could not be recorded.") for _ in batch]
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            state.flushing -= 1
