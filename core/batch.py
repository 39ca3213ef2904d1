"""Many tenants' statements in one round trip: psycopg pipeline mode under row-level security.

Work fanned out to thousands of traders (a bot signal executed for every subscriber) cannot afford one
round trip per row, yet every row must still be read and written as its owner. `TenantPipeline` queues
statements for many users on the current transaction's connection and sends them together; each user's
statements are preceded by `set_config('app.user_id', <owner>, true)`, so the database applies the same
RLS policy to every one of them as it would to a request of that user. Nothing here crosses tenants:
a statement queued for user A cannot see or write user B's rows.

    with transaction.atomic():
        pipe = TenantPipeline()
        found = pipe.select(ExecutionPlan, "id = %s FOR UPDATE", [plan_id], user_id=owner)
        pipe.sync()                      # one round trip for everything queued so far
        plan = found.instance()          # an ExecutionPlan, or None
        with pipe.together(user_id=owner):   # several writes sent as one statement
            pipe.insert(order, user_id=owner)
            pipe.update(plan, ["status", "order"], user_id=owner)
        pipe.close()                     # act as nobody again, send the rest

Inside a `tenant(owner)` block (a request, a task acting as one trader) the transaction already acts as
`owner`: a pipeline opened there must say so (`TenantPipeline(within_tenant=True)`, refused otherwise); it
then queues that owner's statements only (no `set_config`), refuses anyone else's, and `close()` leaves
the transaction acting as `owner`, as the enclosing block expects.

Every statement is a prepared statement of the connection (the same few statements repeat for every
user of a batch, so PostgreSQL parses and plans each once), unless the runtime goes through a PgBouncer
without prepared-statement support (settings.DATABASE_PREPARED_STATEMENTS). Rows are built and read with the models'
own fields (columns, defaults, `auto_now`, database preparation and converters), so the SQL follows the
models. Any error aborts the transaction (raised as Django's database errors): callers run a pipeline in
a transaction of its own and fall back to their ordinary path, or retry, if it raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections, models

from core.rls import NOBODY, USER_SETTING, _tenant_stack

SET_TENANT = "SELECT set_config(%s, %s, true)"
_UNKNOWN = object()  # what the transaction acts as before the pipeline's first set_config
EXPLICIT_PREPARE_ONLY = 2**31 - 1


@cache
def _columns(model: type[models.Model]) -> tuple[models.Field, ...]:
    return tuple(model._meta.concrete_fields)


@cache
def _select_sql(model: type[models.Model], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f'{prefix}"{field.column}"' for field in _columns(model))


@cache
def _insert_columns(model: type[models.Model], with_pk: bool) -> tuple[models.Field, ...]:
    return tuple(field for field in _columns(model) if with_pk or not field.primary_key)


@cache
def _insert_sql(
    model: type[models.Model], with_pk: bool, conflict: tuple[tuple[str, ...], tuple[str, ...]] | None
) -> str:
    fields = _insert_columns(model, with_pk)
    columns = ", ".join(f'"{field.column}"' for field in fields)
    values = ", ".join(["%s"] * len(fields))
    sql = f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES ({values})'  # noqa: S608 - model identifiers
    if conflict is not None:
        unique, update = conflict
        targets = ", ".join(f'"{model._meta.get_field(name).column}"' for name in unique)
        sets = ", ".join(
            f'"{model._meta.get_field(name).column}" = EXCLUDED."{model._meta.get_field(name).column}"'
            for name in update
        )
        sql += f" ON CONFLICT ({targets}) DO UPDATE SET {sets}"
    return sql


@cache
def _claim_sql(model: type[models.Model], with_pk: bool, unique: tuple[str, ...]) -> str:
    targets = ", ".join(f'"{model._meta.get_field(name).column}"' for name in unique)
    return (
        f"{_insert_sql(model, with_pk, None)} ON CONFLICT ({targets}) DO NOTHING "
        f'RETURNING "{model._meta.pk.column}"'
    )


@cache
def _update_sql(model: type[models.Model], names: tuple[str, ...]) -> tuple[str, tuple[models.Field, ...]]:
    fields = tuple(model._meta.get_field(name) for name in names)
    sets = ", ".join(f'"{field.column}" = %s' for field in fields)
    sql = f'UPDATE "{model._meta.db_table}" SET {sets} WHERE "{model._meta.pk.column}" = %s'  # noqa: S608 - model identifiers
    return sql, fields


@cache
def _native(sql: str, start: int = 1) -> str:
    """`sql` with psycopg's `%s` placeholders numbered as PostgreSQL's own `$n`, from `start`."""
    if "%%" in sql:
        raise ValueError("statements sent with native placeholders cannot hold a literal %")
    parts = sql.split("%s")
    out = [parts[0]]
    for number, part in enumerate(parts[1:], start):
        out.append(f"${number}{part}")
    return "".join(out)


@cache
def _native_group(statements: tuple[str, ...]) -> str:
    """One statement running `statements` as data-modifying CTEs (see `TenantPipeline.together`)."""
    numbered, start = [], 1
    for sql in statements:
        numbered.append(_native(sql, start))
        start += sql.count("%s")
    *ctes, last = numbered
    return "WITH " + ", ".join(f"w{n} AS ({sql})" for n, sql in enumerate(ctes, 1)) + " " + last


def model_select(model: type[models.Model], alias: str = "") -> str:
    """The column list `TenantPipeline.select*` and `instance_from_row` expect, in model field order."""
    return _select_sql(model, alias)


def instance_from_row(model: type[models.Model], row: Sequence[Any], using: str = "default"):
    """A model instance from a row selected with `model_select(model)` (converters applied)."""
    connection = connections[using]
    fields = _columns(model)
    values = []
    for field, value in zip(fields, row, strict=True):
        for converter in field.get_db_converters(connection):
            value = converter(value, field, connection)
        values.append(value)
    return model.from_db(using, [field.attname for field in fields], values)


def instances_from_row(row: Sequence[Any], *model_list: type[models.Model], using: str = "default"):
    """Split a joined row selected as `model_select(A, "a"), model_select(B, "b"), ...` into instances;
    the columns after them come last, as a tuple."""
    out, start = [], 0
    for model in model_list:
        width = len(_columns(model))
        out.append(instance_from_row(model, row[start : start + width], using))
        start += width
    out.append(tuple(row[start:]))
    return out


def _prepared(obj: models.Model, fields: Iterable[models.Field], *, add: bool, using: str) -> list[Any]:
    connection = connections[using]
    return [field.get_db_prep_save(field.pre_save(obj, add), connection) for field in fields]


class Pending:
    """The result of a queued statement, readable after the next `sync()`."""

    def __init__(self, cursor: psycopg.Cursor, model: type[models.Model] | None, using: str) -> None:
        self._cursor = cursor
        self._model = model
        self._using = using
        self._rows: list[tuple] | None = None

    def rows(self) -> list[tuple]:
        if self._rows is None:
            self._rows = self._cursor.fetchall()
        return self._rows

    def scalar(self):
        rows = self.rows()
        return rows[0][0] if rows else None

    def instances(self) -> list[models.Model]:
        return [instance_from_row(self._model, row, self._using) for row in self.rows()]

    def instance(self):
        found = self.instances()
        return found[0] if found else None


class TenantPipeline:
    """Statements of many tenants, queued on the current transaction and sent in one round trip per sync."""

    def __init__(self, *, using: str = "default", within_tenant: bool = False) -> None:
        self.using = using
        wrapper = connections[using]
        if not wrapper.in_atomic_block:
            raise RuntimeError("TenantPipeline needs a transaction (transaction.atomic())")
        # An anonymous request's transaction (acting_as_nobody) is no enclosing tenant() block.
        stack = [entry for entry in _tenant_stack(using) if entry != NOBODY]
        if within_tenant and not stack:
            raise RuntimeError("within_tenant=True needs an enclosing tenant() block")
        if stack and not within_tenant:
            # It sets the tenant itself and ends acting as nobody, which the enclosing block would not expect.
            raise RuntimeError("run a TenantPipeline outside tenant() blocks, or pass within_tenant=True")
        # within_tenant: the transaction already acts as the enclosing block's user, so the pipeline works for
        # that one owner only (a statement for anyone else is refused) and leaves the transaction acting as them.
        self.owner: int | None = stack[-1] if within_tenant else None
        wrapper.ensure_connection()
        self._connection: psycopg.Connection = wrapper.connection
        # Behind PgBouncer without prepared-statement support (DATABASE_PREPARED_STATEMENTS false) a statement
        # prepared in one transaction may be gone in the next, which runs on another server connection.
        self._prepare = bool(settings.DATABASE_PREPARED_STATEMENTS)
        if self._prepare and self._connection.prepare_threshold is None:
            # Django turns psycopg's prepared statements off (threshold None), which also ignores an explicit
            # prepare=True. A threshold no query reaches keeps the ORM's queries unprepared, as Django
            # wants, and lets ours be prepared.
            self._connection.prepare_threshold = EXPLICIT_PREPARE_ONLY
        # psycopg's errors raised as Django's (IntegrityError, OperationalError...), as for ORM queries.
        self._errors = wrapper.wrap_database_errors
        self._context = None  # psycopg's pipeline() context manager while statements are queued
        self._pipeline = None
        self._tenant: object = _UNKNOWN if self.owner is None else self.owner
        self._writer: psycopg.Cursor | None = None  # one cursor for every statement whose result is not read
        self._group: list[tuple[str, Sequence[Any]]] | None = None  # writes collected by `together()`
        self.statements = 0
        self.round_trips = 0

    # --- queueing -------------------------------------------------------------------------------------

    def _begin(self) -> None:
        if self._pipeline is None:
            self._context = self._connection.pipeline()
            self._pipeline = self._context.__enter__()

    def as_user(self, user_id: int | None) -> None:
        """Make the statements queued next act as `user_id` (None: as nobody, so they see nothing)."""
        if user_id == self._tenant:
            return
        if self.owner is not None:
            raise ValueError(f"this pipeline runs inside tenant({self.owner}): it acts as that user only")
        self._begin()
        value = "" if user_id is None else str(int(user_id))
        self._write(SET_TENANT, [USER_SETTING, value])
        self._tenant = user_id

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        if self._group is not None:
            self._group.append((sql, params))
            return
        self._send_native(_native(sql), params)

    def _send_native(self, sql: str, params: Sequence[Any]) -> None:
        self._begin()
        if self._writer is None:
            # Native `$n` placeholders: psycopg sends the text as it is (no parsing of long statements).
            self._writer = psycopg.RawCursor(self._connection)
        with self._errors:
            self._writer.execute(sql, params, prepare=self._prepare)
        self.statements += 1

    def execute(
        self, sql: str, params: Sequence[Any] = (), *, user_id: int | None, model: type[models.Model] | None = None
    ) -> Pending:
        """Queue a statement whose result is read after the next sync (each gets a cursor of its own)."""
        if self._group is not None:
            raise RuntimeError("a together() block holds writes only")
        self.as_user(user_id)
        self._begin()
        cursor = psycopg.Cursor(self._connection)
        with self._errors:
            cursor.execute(sql, params, prepare=self._prepare)
        self.statements += 1
        return Pending(cursor, model, self.using)

    def write(self, sql: str, params: Sequence[Any] = (), *, user_id: int | None) -> None:
        """Queue a statement whose result is not needed (an INSERT, an UPDATE) as `user_id`."""
        if self._group is not None and user_id != self._tenant:
            raise ValueError("a together() block writes as one user")
        self.as_user(user_id)
        self._write(sql, params)

    @contextmanager
    def together(self, *, user_id: int) -> Iterator[None]:
        """Send the writes queued in the block (all as `user_id`) as one statement: data-modifying CTEs,
        `WITH w1 AS (INSERT ...), w2 AS (UPDATE ...) INSERT ...`. PostgreSQL runs them on one snapshot in
        an unspecified order, so the block must not touch a row twice and must not depend on its own
        writes; foreign keys are checked at commit (Django declares them deferred), unique constraints
        and row-level security per row as usual."""
        if self._group is not None:
            raise RuntimeError("together() blocks do not nest")
        self.as_user(user_id)
        self._group = []
        try:
            yield
        finally:
            group, self._group = self._group, None
        if not group:
            return
        if len(group) == 1:
            self._write(*group[0])
            return
        self._send_native(_native_group(tuple(sql for sql, _ in group)), [p for _, params in group for p in params])

    def select(self, model: type[models.Model], where: str, params: Sequence[Any], *, user_id: int) -> Pending:
        """`SELECT <model columns> FROM <table> WHERE <where>` as `user_id`; read `.instances()` after sync."""
        sql = f'SELECT {_select_sql(model)} FROM "{model._meta.db_table}" WHERE {where}'  # noqa: S608 - values bound
        return self.execute(sql, params, user_id=user_id, model=model)

    def insert(
        self,
        obj: models.Model,
        *,
        user_id: int,
        unique_fields: Sequence[str] | None = None,
        update_fields: Sequence[str] | None = None,
    ) -> None:
        """Insert `obj` with every column given (primary keys come from `reserve_ids`); with unique_fields,
        an existing row is updated instead (ON CONFLICT DO UPDATE SET update_fields)."""
        model = type(obj)
        obj._prepare_related_fields_for_save(operation_name="insert")
        conflict = (tuple(unique_fields), tuple(update_fields or ())) if unique_fields else None
        with_pk = obj.pk is not None
        params = _prepared(obj, _insert_columns(model, with_pk), add=True, using=self.using)
        self.write(_insert_sql(model, with_pk, conflict), params, user_id=user_id)

    def claim(self, obj: models.Model, *, user_id: int, unique_fields: Sequence[str]) -> Pending:
        """Insert `obj` unless a row with the same `unique_fields` exists (ON CONFLICT DO NOTHING, so a
        concurrent writer of the same row waits for it and gives way, without aborting the transaction);
        after the next sync `.scalar()` is the new row's primary key, None when the row was already there."""
        model = type(obj)
        obj._prepare_related_fields_for_save(operation_name="insert")
        with_pk = obj.pk is not None
        params = _prepared(obj, _insert_columns(model, with_pk), add=True, using=self.using)
        return self.execute(_claim_sql(model, with_pk, tuple(unique_fields)), params, user_id=user_id)

    def update(self, obj: models.Model, fields: Sequence[str], *, user_id: int) -> None:
        sql, targets = _update_sql(type(obj), tuple(fields))
        params = _prepared(obj, targets, add=False, using=self.using)
        self.write(sql, [*params, obj.pk], user_id=user_id)

    def reserve_ids(self, model: type[models.Model], count: int) -> list[int]:
        """`count` primary keys from the table's own sequence (one round trip, shared with what is queued)."""
        return self.reserve_ids_many({model: count})[model]

    def reserve_ids_many(self, counts: dict[type[models.Model], int]) -> dict[type[models.Model], list[int]]:
        """Primary keys for several tables in one round trip: {model: [ids]} (sequences know no tenant)."""
        pending = {}
        for model, count in counts.items():
            if count > 0:
                pending[model] = self.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [f'"{model._meta.db_table}"', model._meta.pk.column, count],
                    user_id=None if self._tenant is _UNKNOWN else self._tenant,
                )
        self.sync()
        return {model: [row[0] for row in pending[model].rows()] if model in pending else [] for model in counts}

    # --- sending --------------------------------------------------------------------------------------

    def sync(self) -> None:
        """Send everything queued and wait for it; raises the first error (the transaction is then aborted)."""
        if self._pipeline is None:
            return
        pipeline, context = self._pipeline, self._context
        self._pipeline = self._context = None
        self.round_trips += 1
        with self._errors:
            try:
                pipeline.sync()
            except BaseException as error:
                context.__exit__(type(error), error, error.__traceback__)
                raise
            context.__exit__(None, None, None)

    def close(self) -> None:
        """Stop acting as anyone (inside a tenant() block: go on acting as its user) and send what is left."""
        if self.owner is None:
            self.as_user(None)
        self.sync()
