"""Tenant isolation through PostgreSQL row-level security.

Every tenant table carries `user_id`, has RLS enabled and forced, and one policy that compares it with the
transaction-local setting `app.user_id`. Nothing here filters rows: the database does. The pieces:

- `TenantMiddleware`: each request runs inside `transaction.atomic()` with `app.user_id` set for the
  logged-in user (ATOMIC_REQUESTS would open its transaction after middleware, too late to set it).
- `tenant(user_id)`: the same for Celery tasks, Channels consumers and the Discord bot.
- `system_context(reason=...)`: the one reviewed path for work that must cross tenants (fan-out planning,
  Stripe webhooks before the customer is resolved, staff in the admin). It switches the transaction to
  the BYPASSRLS system role with SET LOCAL ROLE, logs the reason, and ends with the transaction.
- `EnableRLS`: the migration operation that puts a table under the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from django.conf import settings
from django.db import connections, transaction
from django.db.migrations.operations.base import Operation
from django.http import HttpRequest, HttpResponse
from psycopg import sql

logger = structlog.get_logger(__name__)

USER_SETTING = "app.user_id"
POLICY_NAME = "tenant_isolation"
POLICY_EXPRESSION = "user_id = nullif(current_setting('app.user_id', true), '')::bigint"


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
    stack = getattr(wrapper, "_nexus_tenants", None)
    if stack is None:
        stack = wrapper._nexus_tenants = []
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
    with transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            previous = _current_user_setting(cursor)
            _set_user_setting(cursor, str(user_id))
        stack.append(user_id)
        try:
            yield
        finally:
            stack.pop()
        # After an exception or set_rollback(), the rollback itself restores the setting.
        if not connections[using].needs_rollback:
            with connections[using].cursor() as cursor:
                _set_user_setting(cursor, previous)


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
def system_context(*, reason: str, using: str = "default") -> Iterator[None]:
    """Cross-tenant work, named and logged. Lasts until the block ends (SET LOCAL ROLE)."""
    if not reason:
        raise ValueError("system_context() needs a reason, it is logged")
    role = settings.DB_SYSTEM_ROLE
    with transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT current_user, session_user")
            previous_role, session_role = cursor.fetchone()
            cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        logger.info("rls.system_context", reason=reason)
        yield
        if connections[using].needs_rollback:
            return
        with connections[using].cursor() as cursor:
            if previous_role == session_role:
                cursor.execute("SET LOCAL ROLE NONE")
            else:
                cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(previous_role)))


def is_staff_admin_request(request: HttpRequest) -> bool:
    from core.access import user_may_use_admin

    return request.path.startswith("/admin/") and user_may_use_admin(user=request.user)


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if is_staff_admin_request(request):
                with system_context(reason=f"staff {user.pk} in admin: {request.method} {request.path}"):
                    return self._respond(request)
            with tenant(user.pk):
                return self._respond(request)
        with transaction.atomic():
            return self._respond(request)

    def _respond(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 500 or getattr(request, "_view_raised", False):
            # The view raised (or the handler turned an exception into a 500): none of its writes stay,
            # as with ATOMIC_REQUESTS. Rolled back here, after other middleware has handled the exception.
            transaction.set_rollback(True)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        request._view_raised = True


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
        table = schema_editor.quote_name(self._table(app_label, to_state))
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(
            f"CREATE POLICY {POLICY_NAME} ON {table} FOR ALL "
            f"USING ({POLICY_EXPRESSION}) WITH CHECK ({POLICY_EXPRESSION})"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        table = schema_editor.quote_name(self._table(app_label, from_state))
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self) -> str:
        return f"Enable row-level security on {self.model_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"rls_{self.model_name.lower()}"
