"""List every table holding user data with its row-level security state; fail if any is unprotected.

A table holds user data when it has a `user_id` column. Each must have RLS enabled and forced and a
policy with both USING and WITH CHECK keyed on app.user_id, unless settings.RLS_EXEMPT_TABLES names it
with a reason. The suite runs this command, so a new table without a policy fails CI.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

QUERY = """
SELECT c.relname,
       c.relrowsecurity,
       c.relforcerowsecurity,
       pg_get_userbyid(c.relowner),
       coalesce(bool_or(p.qual LIKE '%%app.user_id%%' AND p.with_check LIKE '%%app.user_id%%'), false)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped
LEFT JOIN pg_policies p ON p.schemaname = 'public' AND p.tablename = c.relname
WHERE c.relkind IN ('r', 'p')
GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relowner
ORDER BY c.relname
"""


@dataclass(frozen=True)
class TableState:
    table: str
    enabled: bool
    forced: bool
    owner: str
    has_policy: bool
    exemption: str | None

    @property
    def problems(self) -> list[str]:
        if self.exemption:
            return []
        found = []
        if not self.enabled:
            found.append("RLS not enabled")
        if not self.forced:
            found.append("RLS not forced")
        if not self.has_policy:
            found.append("no policy with USING and WITH CHECK on app.user_id")
        if self.owner == settings.DB_APP_ROLE:
            found.append("owned by the runtime role")
        return found


def rls_table_states(*, using: str = "owner") -> list[TableState]:
    with connections[using].cursor() as cursor:
        cursor.execute(QUERY)
        rows = cursor.fetchall()
    return [
        TableState(name, enabled, forced, owner, policy, settings.RLS_EXEMPT_TABLES.get(name))
        for name, enabled, forced, owner, policy in rows
    ]


class Command(BaseCommand):
    help = "Audit row-level security on every table that holds user data; exits non-zero on a gap."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="owner")

    def handle(self, *args, database: str = "owner", **options):
        states = rls_table_states(using=database)
        failing = [s for s in states if s.problems]
        for s in states:
            if s.exemption:
                verdict = self.style.WARNING(f"exempt: {s.exemption}")
            elif s.problems:
                verdict = self.style.ERROR("FAIL: " + "; ".join(s.problems))
            else:
                verdict = self.style.SUCCESS("ok")
            flags = f"enabled={'y' if s.enabled else 'n'} forced={'y' if s.forced else 'n'} policy={'y' if s.has_policy else 'n'}"
            self.stdout.write(f"{s.table:<45} {flags}  {verdict}")
        if failing:
            raise CommandError(f"{len(failing)} table(s) holding user data lack row-level security: "
                               + ", ".join(s.table for s in failing))
        self.stdout.write(self.style.SUCCESS(f"{len(states)} user-data tables checked, all protected or exempt"))
