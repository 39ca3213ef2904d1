"""One write path for the rows of one owner or of thousands: collect them, write each owner's as that owner,
then run the after-commit effects once.

A trade writes domain rows (an order, its fill, a bot's figures), ledger rows (portfolio transactions,
positions, lots, cash), audit rows and notifications, and after its commit it dispatches the notifications,
sends events and pushes live pages. `UnitOfWork` collects all of these for any number of owners and writes
them on a `core.batch.TenantPipeline` in the current transaction:

    with transaction.atomic():
        uow = UnitOfWork()                       # or UnitOfWork(pipe) to share a pipeline's reads
        uow.insert(order, user_id=owner)
        uow.update(bot, ["position_quantity"], user_id=owner)
        uow.audit(audit_entry(...))              # the owner is the entry's user
        uow.notify(*notification_build(...))     # rows now, dispatch after the commit
        uow.emit("orders_filled", orders_filled_send, payload)
        uow.flush()                              # ids reserved, rows written, effects registered

`flush` reserves the primary keys of every new row in one round trip, then sends each owner's rows (a run
of rows collected one after the other for the same owner) as one statement (`TenantPipeline.together`),
preceded by `set_config('app.user_id', <owner>)`, so row-level security checks every row against its owner
as in a request. After the commit it dispatches every notification at once (`notifications_dispatch`) and
calls each emitted effect once with everything emitted under its name. A batch of one is the same code
with one owner.

Inside a `tenant(owner)` block (a request, a task acting as one trader) the unit of work runs on the
current transaction as that owner: its pipeline writes that owner's rows only and leaves the transaction
acting as them (`TenantPipeline(within_tenant=True)`), so the general order path writes a fill with the same code
(`trading.orders.services.order_apply_exchange`). `claim` inserts a row at once, with ON CONFLICT DO
NOTHING, for rows two writers may report at the same moment (a venue's fill).

A run of rows is one statement of data-modifying CTEs, so it must not write a row twice (see
`TenantPipeline.together`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from django.db import models, transaction

from core.batch import Pending, TenantPipeline
from core.models import AuditLog, Notification, NotificationDelivery
from core.notifications import notifications_dispatch

logger = structlog.get_logger(__name__)

# Parameters per statement stay well under PostgreSQL's 65,535 bind parameters.
MAX_PARAMS_PER_STATEMENT = 20_000


@dataclass
class _Write:
    obj: models.Model
    user_id: int
    fields: Sequence[str] | None = None  # an update of these fields; None: an insert
    unique_fields: Sequence[str] | None = None
    update_fields: Sequence[str] | None = None


class UnitOfWork:
    """Rows and after-commit effects of one or many owners, written together (see the module)."""

    def __init__(self, pipe: TenantPipeline | None = None) -> None:
        self.pipe = pipe if pipe is not None else TenantPipeline()
        self._writes: list[_Write] = []
        self._deliveries: list[NotificationDelivery] = []
        self._effects: dict[str, tuple[Callable[[list], None], list]] = {}

    # --- collecting -----------------------------------------------------------------------------------

    def insert(
        self,
        obj: models.Model,
        *,
        user_id: int,
        unique_fields: Sequence[str] | None = None,
        update_fields: Sequence[str] | None = None,
    ) -> None:
        """A new row (its primary key reserved at `flush` if it has none); with unique_fields, an existing
        row is updated instead (ON CONFLICT DO UPDATE SET update_fields)."""
        self._writes.append(_Write(obj, user_id, unique_fields=unique_fields, update_fields=update_fields))

    def claim(self, obj: models.Model, *, user_id: int, unique_fields: Sequence[str]) -> Pending:
        """Insert `obj` first, with the reads queued on the pipeline (sent at its next sync), unless a row
        with the same unique_fields exists: `.scalar()` is then None and the rows that depend on it are
        not this unit's to write (a fill reported twice at the same moment: the other writer records it).
        The primary key is the returned one; nothing of it is written again at `flush`."""
        return self.pipe.claim(obj, user_id=user_id, unique_fields=unique_fields)

    def update(self, obj: models.Model, fields: Sequence[str], *, user_id: int) -> None:
        self._writes.append(_Write(obj, user_id, fields=tuple(fields)))

    def audit(self, entry: AuditLog) -> None:
        """An audit row (`core.audit.audit_entry`), written as the user it belongs to."""
        self.insert(entry, user_id=entry.user_id)

    def notify(self, notification: Notification, deliveries: list[NotificationDelivery]) -> None:
        """A notification and its deliveries (`core.notifications.notification_build`), dispatched after the
        commit."""
        user_id = notification.user_id
        self.insert(notification, user_id=user_id)
        for delivery in deliveries:
            self.insert(delivery, user_id=user_id)
        self._deliveries.extend(deliveries)

    def emit(self, name: str, send: Callable[[list], None], item: Any) -> None:
        """After the commit, `send` is called once with every item emitted under `name` (an event for the
        whole batch, one live push for all its owners)."""
        if name in self._effects and self._effects[name][0] != send:
            raise ValueError(f"effect {name!r} is already sent by another function")
        self._effects.setdefault(name, (send, []))[1].append(item)

    # --- writing --------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything collected (each owner's rows as that owner) and register the after-commit
        effects. The caller's transaction commits."""
        writes, self._writes = self._writes, []
        deliveries, self._deliveries = self._deliveries, []
        effects, self._effects = self._effects, {}
        self._reserve_ids(writes)
        run: list[_Write] = []
        params = 0
        for write in writes:
            width = len(type(write.obj)._meta.concrete_fields)
            if run and (write.user_id != run[0].user_id or params + width > MAX_PARAMS_PER_STATEMENT):
                self._send(run)
                run, params = [], 0
            run.append(write)
            params += width
        if run:
            self._send(run)
        self.pipe.close()
        if deliveries or effects:
            transaction.on_commit(lambda: _after_commit(deliveries, effects))

    def _reserve_ids(self, writes: list[_Write]) -> None:
        missing: dict[type[models.Model], list[models.Model]] = {}
        for write in writes:
            if write.fields is None and write.obj.pk is None and write.unique_fields is None:
                missing.setdefault(type(write.obj), []).append(write.obj)
        if not missing:
            return
        ids = self.pipe.reserve_ids_many({model: len(rows) for model, rows in missing.items()})
        for model, rows in missing.items():
            for row, pk in zip(rows, ids[model], strict=True):
                row.pk = pk

    def _send(self, run: list[_Write]) -> None:
        user_id = run[0].user_id
        with self.pipe.together(user_id=user_id):
            for write in run:
                if write.fields is None:
                    self.pipe.insert(
                        write.obj, user_id=user_id, unique_fields=write.unique_fields, update_fields=write.update_fields
                    )
                else:
                    self.pipe.update(write.obj, write.fields, user_id=user_id)


def _after_commit(deliveries: list[NotificationDelivery], effects: dict[str, tuple[Callable, list]]) -> None:
    steps: list[tuple[str, Callable[[], None]]] = [("notifications", lambda: notifications_dispatch(deliveries))]
    steps += [(name, lambda send=send, items=items: send(items)) for name, (send, items) in effects.items()]
    for step, run in steps:
        if step == "notifications" and not deliveries:
            continue
        try:
            run()
        except Exception:
            # The rows are committed; a missed toast is retried by the notification sweeper and a missed
            # push or event is caught up by the next one.
            logger.exception("unit_of_work.after_commit_failed", step=step)
