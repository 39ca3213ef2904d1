"""Tenant isolation through PostgreSQL row-level security (docs/security.md).

Every tenant table carries its owner's id, has RLS enabled and forced, and one policy that compares it
with the transaction-local setting `app.user_id`. Nothing here filters rows: the database does. The pieces:

- `TenantMiddleware`: each request runs inside `transaction.atomic()` with `app.user_id` set for the
  signed-in user (ATOMIC_REQUESTS would open its transaction after middleware, too late to set it).
- `tenant(user_id)`: the same for Celery tasks, Channels consumers and the Discord bot.
- `system_context(reason=...)`: the one reviewed path for work that must cross tenants (fan-out planning,
  Stripe webhooks before the customer is resolved, staff in the admin, the feed's writes of shared
  market data). The block runs on a connection of its own that logs in as the BYPASSRLS system role; the
  runtime role is a member of no other role, so no statement sent on a runtime connection can get there.
- `auth_context(reason=...)`: the same shape for sign-in before anyone is signed in (login by email,
  sign-up, password reset, the 2FA step, social login, API token lookup), on the auth role's connection,
  which reaches the identity tables and nothing else.
- `EnableRLS` / `identity_rls_sql`: the migration pieces that put a table under its policies.

Both contexts swap the thread's `default` connection for their own until the block ends, so the ORM,
`transaction.atomic()` and `transaction.on_commit()` inside work unchanged; the block is one transaction
on that connection and commits when it ends, independently of the caller's transaction.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import structlog
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.operations.base import Operation
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from core.tables import AUTH_POLICY, TENANT_POLICY, owner_expression

logger = structlog.get_logger(__name__)

USER_SETTING = "app.user_id"
SYSTEM_ALIAS = "system"
AUTH_ALIAS = "auth"
SUMMARY_SECONDS = 60
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


class ContextTally:
    """How often each context was entered, and why: one info line a minute per process.

    Every entry is logged at debug (a running server enters system_context twice a second); the counts per
    reason go out at info on the first entry after SUMMARY_SECONDS have passed, so no thread is needed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._since = time.time()

    def count(self, context: str, reason: str) -> None:
        now = time.time()
        with self._lock:
            self._counts[(context, reason)] += 1
            elapsed = now - self._since
            if elapsed < 0:  # the wall clock was set back: start the minute again
                self._since = now
            if elapsed < SUMMARY_SECONDS:
                return
            counts, self._counts, self._since = self._counts, Counter(), now
        summary: dict[str, dict[str, int]] = {}
        for (name, why), n in sorted(counts.items()):
            summary.setdefault(name, {})[why] = n
        logger.info("rls.contexts", seconds=round(elapsed), **summary)


context_tally = ContextTally()


def _current_user_setting(cursor) -> str:
    cursor.execute("SELECT current_setting(%s, true)", [USER_SETTING])
    return cursor.fetchone()[0] or ""


def _set_user_setting(cursor, value: str) -> None:
    cursor.execute("SELECT set_config(%s, %s, true)", [USER_SETTING, value])


def current_tenant_id(*, using: str = "default") -> int | None:
    """The user id the current transaction acts as, or None."""
    with connections[using].cursor() as cursor:
        value = _current_user_setting(cursor)
    return int(value) if value else None


def _tenant_stack(using: str) -> list[int]:
    """The users that the `tenant()` blocks open on this connection act as, innermost last.

    While a `tenant(user)` block is open the transaction acts as `user` (a nested block for someone else
    restores it on the way out, by its own code or by the rollback of its savepoint), so a nested block
    for the same user needs no round trip to the database: it is a plain nested atomic block.
    """
    wrapper = connections[using]
    stack: list[int] | None = getattr(wrapper, "_nexus_tenants", None)
    if stack is None:
        stack = []
        setattr(wrapper, "_nexus_tenants", stack)  # noqa: B010 - our own attribute on Django's wrapper
    return stack


@contextmanager
def tenant(user_id: int, *, using: str = "default") -> Iterator[None]:
    """Run the block in a transaction that acts as `user_id`; nested use restores the outer tenant."""
    if user_id is None:
        raise ValueError("tenant() needs a user id; use system_context() for cross-tenant work")
    user_id = int(user_id)
    stack = _tenant_stack(using)
    if stack and stack[-1] == user_id and connections[using].in_atomic_block:
        with transaction.atomic(using=using):
            yield
        return
    # The setting is transaction-local: an outermost block needs neither the previous value nor a restore.
    outermost = not connections[using].in_atomic_block
    with transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            cursor.execute(
                "SELECT current_setting(%s, true), set_config(%s, %s, true)", [USER_SETTING, USER_SETTING, str(user_id)]
            )
            previous = cursor.fetchone()[0] or ""
        stack.append(user_id)
        try:
            yield
        finally:
            stack.pop()
        # After an exception or set_rollback(), the rollback itself restores the setting.
        if not outermost and not connections[using].needs_rollback:
            with connections[using].cursor() as cursor:
                _set_user_setting(cursor, previous)


# The stack entry of a transaction that acts as nobody yet (the anonymous request's, until DRF's token
# authentication names its user with activate_tenant()).
NOBODY = 0


@contextmanager
def acting_as_nobody(*, using: str = "default") -> Iterator[None]:
    """A transaction that acts as no user (until activate_tenant() names one, which nested tenant() blocks
    for that user then find on the stack: no round trip to set what is already set)."""
    stack = _tenant_stack(using)
    with transaction.atomic(using=using):
        stack.append(NOBODY)
        try:
            yield
        finally:
            stack.pop()


def activate_tenant(user_id: int, *, using: str = "default") -> None:
    """Make the rest of the current transaction act as `user_id`.

    For authentication that completes inside the view (DRF token auth), after TenantMiddleware has
    already opened the request's transaction as anonymous. Outside a transaction it would leak into the
    next use of the connection, so it refuses.
    """
    if not connections[using].in_atomic_block:
        raise RuntimeError("activate_tenant() must run inside the request's transaction")
    with connections[using].cursor() as cursor:
        _set_user_setting(cursor, str(int(user_id)))
    stack = _tenant_stack(using)
    if stack:  # an enclosing tenant() block now acts as this user until it ends
        stack[-1] = int(user_id)


@contextmanager
def _on_connection(alias: str) -> Iterator[None]:
    """Run the block as one transaction on `alias`'s connection, seen by the ORM as `default`."""
    outer = connections[DEFAULT_DB_ALIAS]
    inner = connections[alias]
    if outer is inner:
        with transaction.atomic():
            yield
        return
    connections[DEFAULT_DB_ALIAS] = inner
    try:
        with transaction.atomic():
            yield
    finally:
        connections[DEFAULT_DB_ALIAS] = outer


@contextmanager
def system_context(*, reason: str) -> Iterator[None]:
    """Cross-tenant work, named and logged (debug, and counted in the minute's summary), on the system role's own connection."""
    if not reason:
        raise ValueError("system_context() needs a reason, it is logged")
    logger.debug("rls.system_context", reason=reason)
    context_tally.count("system_context", reason)
    with _on_connection(SYSTEM_ALIAS):
        yield


@contextmanager
def auth_context(*, reason: str, user_id: int | None = None) -> Iterator[None]:
    """Identity lookups for sign-in, named and logged, on the auth role's own connection.

    `user_id`: the signed-in user the flow acts for (changing a password, managing 2FA), so that the
    audit rows it writes land in that user's tenant."""
    if not reason:
        raise ValueError("auth_context() needs a reason, it is logged")
    logger.debug("rls.auth_context", reason=reason, user_id=user_id)
    context_tally.count("auth_context", reason)
    with _on_connection(AUTH_ALIAS):
        if user_id is None:
            yield
        else:
            with tenant(user_id):
                yield


def is_staff_admin_request(request: HttpRequest) -> bool:
    from core.access import user_may_use_admin

    return request.path.startswith("/admin/") and user_may_use_admin(user=request.user)


def needs_auth_context(request: HttpRequest) -> bool:
    """allauth's pages (sign-in, sign-up, reset, email addresses, 2FA, social accounts) read identity rows
    of users who are not signed in yet, or secrets of the signed-in one: they run in the auth context."""
    return request.path.startswith(settings.AUTH_CONTEXT_PATH_PREFIXES)


def session_user_id(session) -> int | None:
    """The user id a session claims (Django checks it against the user's session hash when loading)."""
    value = session.get(SESSION_KEY) if session is not None else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def session_user(session):
    """The user a session authenticates, loaded under that user's own row-level security, or anonymous."""
    from django.contrib.auth import get_user
    from django.contrib.auth.models import AnonymousUser

    user_id = session_user_id(session)
    if user_id is None:
        return AnonymousUser()
    holder = HttpRequest()
    holder.session = session
    with tenant(user_id):
        return get_user(holder)


def _request_user(request: HttpRequest):
    if not hasattr(request, "_cached_user"):
        setattr(request, "_cached_user", session_user(request.session))  # noqa: B010 - Django's own cache name
    return getattr(request, "_cached_user")  # noqa: B009


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, loading the session's user under that user's own row-level security: the user row is
    visible to its owner only, so the plain lookup would find no one."""

    def process_request(self, request: HttpRequest) -> None:
        request.user = SimpleLazyObject(lambda: _request_user(request))  # type: ignore[assignment]
        request.auser = partial(sync_to_async(_request_user), request)


class SessionUserMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, loading the session's user under that user's own row-level security."""

    async def resolve_scope(self, scope) -> None:
        scope["user"]._wrapped = await database_sync_to_async(session_user)(scope["session"])


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in PROBE_PATHS:
            # Liveness must not depend on the database, and readiness reports its state rather than failing
            # on it: no request transaction (the probes read no tenant data).
            return self.get_response(request)
        user_id = session_user_id(getattr(request, "session", None))
        if user_id is not None and request.path.startswith(settings.SESSIONLESS_PATH_PREFIXES):
            user_id = None  # a machine-to-machine endpoint: a browser's session there acts as no one
        if user_id is not None and request.user.is_authenticated and request.user.pk == user_id:
            with tenant(user_id):
                return self._as_user(request)
        if needs_auth_context(request):
            with auth_context(reason=f"sign-in: {request.method} {request.path}"):
                return self._respond(request)
        with acting_as_nobody():
            return self._respond(request)

    def _as_user(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if is_staff_admin_request(request):
            with system_context(reason=f"staff {user.pk} in admin: {request.method} {request.path}"):
                return self._respond(request)
        if needs_auth_context(request):
            with auth_context(reason=f"account: {request.method} {request.path}", user_id=user.pk):
                return self._respond(request)
        return self._respond(request)

    def _respond(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 500 or getattr(request, "_view_raised", False):
            # The view raised (or the handler turned an exception into a 500): none of its writes stay,
            # as with ATOMIC_REQUESTS. Rolled back here, after other middleware has handled the exception.
            transaction.set_rollback(True)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        setattr(request, "_view_raised", True)  # noqa: B010 - read back by _respond


class EnableRLS(Operation):
    """Enable and force row-level security on a model's table with the fail-closed tenant policy."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def deconstruct(self):
        return (self.__class__.__qualname__, [self.model_name], {})

    def state_forwards(self, app_label, state) -> None:
        pass

    def _table(self, app_label, state) -> str:
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        for statement in rls_enable_sql(table=self._table(app_label, to_state), owner_column="user_id"):
            schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        for statement in rls_disable_sql(table=self._table(app_label, from_state)):
            schema_editor.execute(statement)

    def describe(self) -> str:
        return f"Enable row-level security on {self.model_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"rls_{self.model_name.lower()}"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rls_enable_sql(*, table: str, owner_column: str, auth_role: str | None = None) -> list[str]:
    """RLS enabled and forced on `table`; the tenant policy on `owner_column` ("" for none); for an
    identity table, the auth role's policy (it looks users up before anyone is signed in)."""
    quoted = _quoted(table)
    statements = [f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY", f"ALTER TABLE {quoted} FORCE ROW LEVEL SECURITY"]
    if owner_column:
        expression = owner_expression(owner_column)
        statements.append(
            f"CREATE POLICY {TENANT_POLICY} ON {quoted} FOR ALL USING ({expression}) WITH CHECK ({expression})"
        )
    if auth_role:
        statements.append(
            f"CREATE POLICY {AUTH_POLICY} ON {quoted} FOR ALL TO {_quoted(auth_role)} USING (true) WITH CHECK (true)"
        )
    return statements


def rls_disable_sql(*, table: str) -> list[str]:
    quoted = _quoted(table)
    return [
        f"DROP POLICY IF EXISTS {TENANT_POLICY} ON {quoted}",
        f"DROP POLICY IF EXISTS {AUTH_POLICY} ON {quoted}",
        f"ALTER TABLE {quoted} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted} DISABLE ROW LEVEL SECURITY",
    ]
