"""Row-level security on every research tenant table, and the published copies as shared reference data:
readable by the runtime role, writable by none of it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from core.rls import system_context, tenant
from core.tables import TABLES, TableClass
from tests.research.conftest import publish, write

TENANT_TABLES = ["research_note", "research_noteinstrument", "research_noterevision"]


def _sql(query: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()[0] if cursor.description else cursor.rowcount


@pytest.fixture
def both(author, reader, btc):
    for user in (author, reader):
        note = write(user, title=f"{user.email}'s note", body="x", symbols=["BTC/USDT"])
        publish(user, note)


def test_the_tables_are_classified():
    assert {name for name, t in TABLES.items() if name.startswith("research_") and t.kind is TableClass.TENANT} == set(
        TENANT_TABLES
    )
    assert TABLES["research_publishednote"].kind is TableClass.REFERENCE


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_a_tenant_sees_changes_and_deletes_only_its_own_rows(both, author, reader, table):
    with system_context(reason="test: both tenants have rows"):
        assert _sql(f"SELECT count(DISTINCT user_id) FROM {table}") == 2  # noqa: S608 - fixed table names
    with tenant(author.pk):
        assert _sql(f"SELECT count(*) FROM {table} WHERE user_id <> {author.pk}") == 0  # noqa: S608
        assert _sql(f"SELECT count(*) FROM {table}") >= 1  # noqa: S608
        assert _sql(f"DELETE FROM {table} WHERE user_id = {reader.pk}") == 0  # noqa: S608
    with transaction.atomic():
        assert _sql(f"SELECT count(*) FROM {table}") == 0  # noqa: S608 - no context: nothing


def test_a_tenant_cannot_write_a_row_for_someone_else(author, reader, btc):
    note = write(author, title="Mine", body="x")
    with (
        tenant(reader.pk),
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO research_noterevision (user_id, note_id, number, title, body, tags, details, created_at)"
            " VALUES (%s, %s, 99, 't', 'b', '{}', '{}', now())",
            [author.pk, note.pk],
        )


def test_published_copies_are_read_by_everyone_and_written_by_no_runtime_request(both, reader):
    with tenant(reader.pk):
        assert _sql("SELECT count(*) FROM research_publishednote") == 2
    for statement in ("DELETE FROM research_publishednote",
                      "INSERT INTO research_publishednote (note_id) VALUES (1)"):
        with tenant(reader.pk), pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            _sql(statement)
