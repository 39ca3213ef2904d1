"""Every table in the live database, probed through the runtime role: does it behave as its class says?

Seeds two users with a row in every tenant and identity table, then for each table of the database:
- tenant: no context sees nothing; A sees exactly A's rows; A cannot insert, update or delete B's;
- identity: outside the auth context nothing beyond the user's own row, and no secret column;
- reference: SELECT only;
- system-only: permission denied for SELECT, INSERT, UPDATE and DELETE.
And the runtime role can SET ROLE to no other role.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from psycopg import sql

from core.rls import auth_context, system_context, tenant
from core.tables import TABLES, TableClass, live_tables
from tests.factories import UserFactory
from tests.rls.seeding import seed_every_table

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _refused(statement, params=()) -> str:
    """Run `statement` in a savepoint on the runtime connection; the error PostgreSQL gave, or ''."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    except DatabaseError as exc:
        return str(exc)
    return ""


def _changed(statement, params=()) -> int:
    """Rows a write changed, 0 when the role may not write the table at all."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.rowcount
    except DatabaseError as exc:
        assert "permission denied" in str(exc), exc
        return 0


def _count(statement, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def _q(name: str) -> str:
    return '"' + name + '"'


def _columns(table: str) -> list[tuple[str, str, bool]]:
    """(column, data type, is identity) of a table, read by the owner."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type, is_identity = 'YES' FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            [table],
        )
        return cursor.fetchall()


def _primary_key(table: str) -> str:
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            [table],
        )
        row = cursor.fetchone()
        return row[0] if row else ""


@pytest.fixture
def seeded():
    a = UserFactory(email="probe-a@example.com")
    b = UserFactory(email="probe-b@example.com")
    return a, b, seed_every_table(users=[a, b])


def _rows_of(table: str, owner_column: str, user_id: int) -> int:
    with system_context(reason="tests: count one user's rows"):
        return _count(f"SELECT count(*) FROM {_q(table)} WHERE {_q(owner_column)} = %s", [user_id])


def _check_tenant(name: str, owner_column: str, a, b) -> list[str]:
    problems = []
    if _count(f"SELECT count(*) FROM {_q(name)}"):
        problems.append("rows visible without a tenant context")
    a_rows, b_rows = _rows_of(name, owner_column, a.pk), _rows_of(name, owner_column, b.pk)
    if not (a_rows and b_rows):
        problems.append(f"not seeded for both users ({a_rows}, {b_rows})")
    with tenant(a.pk):
        if _count(f"SELECT count(*) FROM {_q(name)}") != a_rows:
            problems.append("A does not see exactly A's rows")
        if _count(f"SELECT count(*) FROM {_q(name)} WHERE {_q(owner_column)} <> %s", [a.pk]):
            problems.append("A sees another user's rows")
        for verb, statement in [
            ("updated", f"UPDATE {_q(name)} SET {_q(owner_column)} = {_q(owner_column)} WHERE {_q(owner_column)} = %s"),
            ("deleted", f"DELETE FROM {_q(name)} WHERE {_q(owner_column)} = %s"),
        ]:
            if _changed(statement, [b.pk]):
                problems.append(f"A {verb} B's rows")
        if a_rows and owner_column != "id":
            pk = _primary_key(name)
            columns = [(c, t) for c, t, identity in _columns(name) if not (identity or c == pk == "id")]
            select = ", ".join(
                "%s" if c == owner_column else ("gen_random_uuid()" if c == pk and t == "uuid" else _q(c))
                for c, t in columns
            )
            error = _refused(
                f"INSERT INTO {_q(name)} ({', '.join(_q(c) for c, _ in columns)}) "
                f"SELECT {select} FROM {_q(name)} LIMIT 1",
                [b.pk],
            )
            if "row-level security" not in error and "permission denied" not in error:
                problems.append(f"A inserted a row for B ({error or 'accepted'})")
        # Writing A's own rows stays possible (the probe must not pass because everything is refused).
        if a_rows and TABLES[name].kind is TableClass.TENANT:
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {_q(name)} SET {_q(owner_column)} = {_q(owner_column)}")
                if cursor.rowcount != a_rows:
                    problems.append("A cannot update A's own rows")
    return problems


def _check_refused(name: str, privileges: list[str]) -> list[str]:
    problems = []
    statements = {
        "SELECT": f"SELECT 1 FROM {_q(name)} LIMIT 1",
        "INSERT": f"INSERT INTO {_q(name)} DEFAULT VALUES",
        "UPDATE": f"UPDATE {_q(name)} SET {_q(_columns(name)[0][0])} = {_q(_columns(name)[0][0])} WHERE false",
        "DELETE": f"DELETE FROM {_q(name)} WHERE false",
    }
    for privilege in privileges:
        if "permission denied" not in _refused(statements[privilege]):
            problems.append(f"{privilege} not refused")
    return problems


def test_every_table_behaves_as_its_class(seeded):
    a, b, models_seeded = seeded
    with connection.cursor() as cursor:
        tables = live_tables(cursor)
    report = {}
    for name in tables:
        table = TABLES.get(name)
        if table is None:
            report[name] = ["not classified"]
            continue
        if table.kind is TableClass.TENANT:
            problems = _check_tenant(name, table.owner_column, a, b)
        elif table.kind is TableClass.REFERENCE:
            problems = [] if not _refused(f"SELECT 1 FROM {_q(name)} LIMIT 1") else ["SELECT refused"]
            problems += _check_refused(name, ["INSERT", "UPDATE", "DELETE"])
        elif table.kind is TableClass.SYSTEM:
            problems = _check_refused(name, ["SELECT", "INSERT", "UPDATE", "DELETE"])
        elif table.owner_column:
            problems = _check_tenant(name, table.owner_column, a, b)
            with tenant(a.pk):
                for secret in table.secret_columns:
                    if "permission denied" not in _refused(f"SELECT {_q(secret)} FROM {_q(name)}"):
                        problems.append(f"secret column {secret} readable")
        else:
            problems = _check_refused(name, ["SELECT", "INSERT", "UPDATE", "DELETE"])
        if problems:
            report[name] = problems
    assert report == {}
    assert {n for n, t in TABLES.items() if t.kind is TableClass.TENANT and n in tables} <= set(models_seeded)


def test_identity_rows_are_reachable_in_the_auth_context_only(seeded):
    a, b, _ = seeded
    assert _count("SELECT count(*) FROM accounts_user") == 0
    with tenant(a.pk):
        assert _count("SELECT count(*) FROM accounts_user") == 1
    with auth_context(reason="tests: sign-in looks a user up by email"):
        assert _count("SELECT count(*) FROM accounts_user WHERE email = %s", [b.email]) == 1
        assert _count("SELECT count(*) FROM accounts_user WHERE password <> ''") >= 2
        # The auth role reaches identity tables and nothing else.
        assert "permission denied" in _refused("SELECT 1 FROM portfolios_portfolio")
        assert "permission denied" in _refused("SELECT 1 FROM djstripe_apikey")


@pytest.mark.parametrize("alias", ["default", "auth"])
def test_runtime_roles_cannot_switch_role(alias):
    roles = [settings.DB_SYSTEM_ROLE, settings.DB_OWNER_ROLE, settings.DB_AUTH_ROLE, settings.DB_APP_ROLE, "postgres"]
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_user")
        me = cursor.fetchone()[0]
    for role in roles:
        if role == me:
            continue
        with (
            pytest.raises(DatabaseError, match="permission denied"),
            transaction.atomic(using=alias),
            connections[alias].cursor() as cursor,
        ):
            cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
