"""The database itself refuses cross-tenant access, whatever the application code forgets."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from core.audit import audit_record
from core.rls import (
    TenantMiddleware,
    _tenant_stack,
    activate_tenant,
    current_tenant_id,
    system_context,
    tenant,
)


def _count(sql: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


@pytest.fixture
def rows(user_a, user_b):
    audit_record(action="test.a", user=user_a, actor=user_a)
    audit_record(action="test.b", user=user_b, actor=user_b)


@pytest.mark.django_db
def test_runtime_role_is_neither_superuser_nor_bypassrls():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)


@pytest.mark.django_db
def test_runtime_role_owns_no_table():
    assert _count("SELECT count(*) FROM pg_tables WHERE tableowner = current_user") == 0


def test_with_a_context_b_rows_cannot_be_read_changed_or_deleted(rows, user_a, user_b):
    with tenant(user_a.pk):
        assert _count("SELECT count(*) FROM core_auditlog") == 1
        assert _count("SELECT count(*) FROM core_auditlog WHERE user_id = %s", [user_b.pk]) == 0
        with connection.cursor() as cursor:
            cursor.execute("UPDATE core_auditlog SET action = 'hijacked' WHERE user_id = %s", [user_b.pk])
            assert cursor.rowcount == 0
            cursor.execute("DELETE FROM core_auditlog WHERE user_id = %s", [user_b.pk])
            assert cursor.rowcount == 0
    with system_context(reason="test: check B's row survived"):
        assert _count("SELECT count(*) FROM core_auditlog WHERE user_id = %s AND action = 'test.b'", [user_b.pk]) == 1


def test_insert_with_another_users_id_is_refused(rows, user_a, user_b):
    with (
        tenant(user_a.pk),
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO core_auditlog (user_id, actor_label, action, target_type, target_id, created_at) "
            "VALUES (%s, 'x', 'forged', '', '', now())",
            [user_b.pk],
        )


def test_without_context_nothing_is_visible(rows):
    assert current_tenant_id() is None
    assert _count("SELECT count(*) FROM core_auditlog") == 0


def test_nested_tenant_restores_the_outer_one(user_a, user_b):
    with tenant(user_a.pk):
        with tenant(user_b.pk):
            assert current_tenant_id() == user_b.pk
        assert current_tenant_id() == user_a.pk
    assert current_tenant_id() is None


def test_system_context_crosses_tenants_and_ends_with_its_block(rows):
    with system_context(reason="test"):
        assert _count("SELECT count(*) FROM core_auditlog WHERE action LIKE 'test.%%'") == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user")
        assert cursor.fetchone()[0] is True
    assert _count("SELECT count(*) FROM core_auditlog") == 0


def _signed_in(request, user):
    request.session = {SESSION_KEY: str(user.pk)}
    request.user = user
    return request


def test_middleware_runs_the_view_as_the_logged_in_user(rows, user_a):
    seen = {}

    def view(request):
        seen["tenant"] = current_tenant_id()
        seen["rows"] = _count("SELECT count(*) FROM core_auditlog WHERE action LIKE 'test.%%'")  # no filter: RLS alone decides
        return HttpResponse("ok")

    request = _signed_in(RequestFactory().get("/dashboard/"), user_a)
    TenantMiddleware(view)(request)
    assert seen == {"tenant": user_a.pk, "rows": 1}


def test_a_token_request_acts_as_its_user_once_authenticated(rows, user_a, user_b):
    """An API request starts as nobody; once token authentication names the user (activate_tenant), the
    services' own tenant(user) blocks find the transaction already acting as that user (no second
    set_config), a block for someone else still switches and restores, and nothing outlives the request."""
    seen = {}

    def view(request):
        seen["before"] = _count("SELECT count(*) FROM core_auditlog WHERE action LIKE 'test.%%'")
        activate_tenant(user_a.pk)
        with CaptureQueriesContext(connection) as queries, tenant(user_a.pk):
            seen["rows"] = _count("SELECT count(*) FROM core_auditlog WHERE action LIKE 'test.%%'")
        seen["settings"] = [query["sql"] for query in queries if "set_config" in query["sql"]]
        with tenant(user_b.pk):
            seen["inner"] = current_tenant_id()
        seen["after"] = current_tenant_id()
        return HttpResponse("ok")

    TenantMiddleware(view)(RequestFactory().get("/api/v1/portfolios/"))  # no session: a token request
    assert seen == {"before": 0, "rows": 1, "settings": [], "inner": user_b.pk, "after": user_a.pk}
    assert _tenant_stack("default") == []
    assert current_tenant_id() is None


def test_middleware_keeps_nothing_a_failing_request_wrote(user_a):
    def view(request):
        audit_record(action="test.half_written", user=user_a, actor=user_a)
        return HttpResponse("boom", status=500)

    request = _signed_in(RequestFactory().post("/anything/"), user_a)
    TenantMiddleware(view)(request)
    with tenant(user_a.pk):
        assert _count("SELECT count(*) FROM core_auditlog WHERE action = 'test.half_written'") == 0


def test_api_token_requests_run_as_the_tokens_user(user_a, user_b, rows):
    from rest_framework.test import APIClient

    from core.api_auth import TenantTokenAuthentication
    from tests.factories import api_token_for

    seen = {}
    original = TenantTokenAuthentication.authenticate

    def spy(self, request):
        result = original(self, request)
        seen["tenant"] = current_tenant_id()
        seen["rows"] = _count("SELECT count(*) FROM core_auditlog WHERE action LIKE 'test.%%'")
        return result

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user_b)}")
    TenantTokenAuthentication.authenticate = spy
    try:
        assert api.get("/api/v1/accounts/me/").status_code == 200
    finally:
        TenantTokenAuthentication.authenticate = original
    assert seen == {"tenant": user_b.pk, "rows": 1}
