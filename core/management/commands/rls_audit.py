"""Check the live database against core/tables.py; exit non-zero on any gap (the suite runs it).

It fails on: a table that core/tables.py does not classify (third-party apps' and future ones too); a
tenant or identity table without RLS enabled and forced; a policy that is not exactly the expected one
(name, command, role, USING and WITH CHECK as PostgreSQL prints them); any privilege a runtime role
holds on a table, a column or a sequence beyond what the table's class grants; default privileges that
would grant future tables; a runtime role that owns anything, has a dangerous attribute, or is a member of
any role (it could SET ROLE to it).
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core.tables import TABLES, Roles, Table, TableClass

COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
TABLE_ONLY_PRIVILEGES = ("DELETE", "TRUNCATE", "TRIGGER")

_COLUMN_GRANTS = """
SELECT c.relname, r.rolname, p.privilege, array_agg(a.attname::text ORDER BY a.attnum)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  CROSS JOIN unnest(%(roles)s::text[]) AS r(rolname)
  CROSS JOIN unnest(%(privileges)s::text[]) AS p(privilege)
 WHERE c.relkind IN ('r', 'p') AND has_column_privilege(r.rolname, c.oid, a.attnum, p.privilege)
 GROUP BY 1, 2, 3
"""

_TABLE_GRANTS = """
SELECT c.relname, r.rolname, p.privilege
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
  CROSS JOIN unnest(%(roles)s::text[]) AS r(rolname)
  CROSS JOIN unnest(%(privileges)s::text[]) AS p(privilege)
 WHERE c.relkind IN ('r', 'p') AND has_table_privilege(r.rolname, c.oid, p.privilege)
"""

_SEQUENCE_GRANTS = """
SELECT s.relname, coalesce(t.relname, ''), r.rolname, p.privilege
  FROM pg_class s
  JOIN pg_namespace n ON n.oid = s.relnamespace AND n.nspname = 'public'
  LEFT JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i') AND d.classid = 'pg_class'::regclass
  LEFT JOIN pg_class t ON t.oid = d.refobjid
  CROSS JOIN unnest(%(roles)s::text[]) AS r(rolname)
  CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS p(privilege)
 WHERE s.relkind = 'S' AND has_sequence_privilege(r.rolname, s.oid, p.privilege)
"""

_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
 WHERE c.relkind IN ('r', 'p') ORDER BY c.relname
"""

_POLICIES = """
SELECT tablename, policyname, permissive, roles::text[], cmd, coalesce(qual, ''), coalesce(with_check, '')
  FROM pg_policies WHERE schemaname = 'public'
"""

_ROLES = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
       array(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid),
       array(SELECT o.rolname::text FROM pg_roles o
              WHERE o.oid <> r.oid AND pg_has_role(r.oid, o.oid, 'MEMBER')),
       (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid)
  FROM pg_roles r WHERE r.rolname = ANY(%(roles)s::text[])
"""

_DEFAULT_PRIVILEGES = """
SELECT pg_get_userbyid(d.defaclrole), d.defaclobjtype, pg_get_userbyid(acl.grantee), acl.privilege_type
  FROM pg_default_acl d, aclexplode(d.defaclacl) acl
 WHERE acl.grantee = 0 OR pg_get_userbyid(acl.grantee) = ANY(%(roles)s::text[])
"""


def expected_privileges(table: Table, role: str, roles: Roles, columns: list[str]) -> dict[str, set[str]]:
    """privilege -> columns (table-only privileges map to {"*"}) that `role` should hold on `table`."""
    if role == roles.system:
        granted = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    elif role == roles.auth:
        granted = set(table.auth_role_privileges())
    else:
        granted = set() if table.kind is TableClass.IDENTITY else set(table.runtime_privileges())
    expected: dict[str, set[str]] = {}
    for privilege in granted:
        expected[privilege] = {"*"} if privilege in TABLE_ONLY_PRIVILEGES else set(columns)
    if role == roles.app and table.kind is TableClass.IDENTITY and table.owner_column:
        expected["SELECT"] = {c for c in columns if c not in table.secret_columns}
        if table.runtime_updates:
            expected["UPDATE"] = set(table.runtime_updates)
        for privilege in table.runtime_rows:
            expected[privilege] = {"*"} if privilege in TABLE_ONLY_PRIVILEGES else set(columns)
    return expected


def audit_problems(*, using: str = "owner") -> tuple[list[str], dict[str, list[str]]]:
    """(problems not tied to a table, table -> its problems) for the live database."""
    roles = Roles.from_settings()
    role_list = [roles.app, roles.system, roles.auth]
    general: list[str] = []
    per_table: dict[str, list[str]] = defaultdict(list)
    with connections[using].cursor() as cursor:
        cursor.execute(_TABLES)
        tables = cursor.fetchall()
        cursor.execute(_POLICIES)
        policies: dict[str, dict[str, tuple]] = defaultdict(dict)
        for table, name, permissive, policy_roles, cmd, qual, check in cursor.fetchall():
            policies[table][name] = (permissive, tuple(policy_roles), cmd, qual, check)
        cursor.execute(_COLUMN_GRANTS, {"roles": role_list, "privileges": list(COLUMN_PRIVILEGES)})
        actual: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(dict)
        columns_of: dict[str, list[str]] = {}
        for table, role, privilege, columns in cursor.fetchall():
            actual[(table, role)][privilege] = set(columns)
        cursor.execute(_TABLE_GRANTS, {"roles": role_list, "privileges": list(TABLE_ONLY_PRIVILEGES)})
        for table, role, privilege in cursor.fetchall():
            actual[(table, role)][privilege] = {"*"}
        cursor.execute(
            "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE c.relkind IN ('r', 'p') GROUP BY 1"
        )
        columns_of = {table: columns for table, columns in cursor.fetchall()}
        cursor.execute(_SEQUENCE_GRANTS, {"roles": role_list})
        sequences = cursor.fetchall()
        cursor.execute(_ROLES, {"roles": role_list})
        role_rows = cursor.fetchall()
        cursor.execute(_DEFAULT_PRIVILEGES, {"roles": role_list})
        defaults = cursor.fetchall()

    found_roles = {row[0] for row in role_rows}
    for missing in set(role_list) - found_roles:
        general.append(f"role {missing} does not exist (run manage.py db_bootstrap)")
    for name, superuser, bypass, createrole, createdb, member_of, reachable, owned in role_rows:
        if superuser or createrole or createdb:
            general.append(f"role {name} is SUPERUSER, CREATEROLE or CREATEDB")
        if bypass and name != roles.system:
            general.append(f"role {name} bypasses row-level security")
        if member_of or reachable:
            general.append(f"role {name} can SET ROLE to {', '.join(sorted(set(member_of) | set(reachable)))}")
        if owned:
            general.append(f"role {name} owns {owned} relation(s)")
    for grantor, object_type, grantee, privilege in defaults:
        general.append(f"default privilege: {grantor} grants {privilege} on new objects ({object_type}) to {grantee}")

    inserters: dict[str, set[str]] = defaultdict(set)
    for name, enabled, forced, owner in tables:
        table = TABLES.get(name)
        if table is None:
            per_table[name].append("not classified in core/tables.py")
            continue
        if owner in role_list:
            per_table[name].append(f"owned by the runtime role {owner}")
        if table.has_rls:
            if not enabled:
                per_table[name].append("RLS not enabled")
            if not forced:
                per_table[name].append("RLS not forced")
        expected_policies = {
            policy: ("PERMISSIVE", (policy_role,), "ALL", qual, check)
            for policy, (policy_role, qual, check) in table.expected_policies(auth_role=roles.auth).items()
        }
        live_policies = policies.get(name, {})
        for policy in sorted(set(expected_policies) | set(live_policies)):
            if live_policies.get(policy) != expected_policies.get(policy):
                per_table[name].append(
                    f"policy {policy}: expected {expected_policies.get(policy)}, found {live_policies.get(policy)}"
                )
        for role in role_list:
            expected = expected_privileges(table, role, roles, columns_of.get(name, []))
            live = actual.get((name, role), {})
            if "INSERT" in expected:
                inserters[name].add(role)
            for privilege in sorted(set(expected) | set(live)):
                extra = live.get(privilege, set()) - expected.get(privilege, set())
                missing = expected.get(privilege, set()) - live.get(privilege, set())
                if extra:
                    per_table[name].append(f"{role} holds {privilege} beyond its class on {sorted(extra)}")
                if missing:
                    per_table[name].append(f"{role} lacks {privilege} on {sorted(missing)}")
    for sequence, table_name, role, privilege in sequences:
        if privilege == "USAGE" and role in inserters.get(table_name, set()):
            continue
        general.append(f"{role} holds {privilege} on sequence {sequence}")
    return general, dict(per_table)


class Command(BaseCommand):
    help = "Check every table's class, policies and grants against core/tables.py; exits non-zero on a gap."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="owner")

    def handle(self, *args, database: str = "owner", **options):
        general, per_table = audit_problems(using=database)
        with connections[database].cursor() as cursor:
            cursor.execute(_TABLES)
            names = [row[0] for row in cursor.fetchall()]
        for name in names:
            table = TABLES.get(name)
            kind = table.kind.value if table else "?"
            problems = per_table.get(name)
            verdict = self.style.ERROR("FAIL: " + "; ".join(problems)) if problems else self.style.SUCCESS("ok")
            self.stdout.write(f"{name:<45} {kind:<10} {verdict}")
        for problem in general:
            self.stdout.write(self.style.ERROR(f"FAIL: {problem}"))
        failing = len(per_table) + len(general)
        if failing:
            raise CommandError(
                f"{failing} problem(s), tables: {', '.join(sorted(per_table)) or 'none'}; "
                + "".join(f"{problem}; " for problem in general)
                + "see the FAIL lines above (core/tables.py, docs/security.md)"
            )
        self.stdout.write(self.style.SUCCESS(
            f"{len(names)} tables checked against core/tables.py; roles {settings.DB_APP_ROLE}, "
            f"{settings.DB_SYSTEM_ROLE}, {settings.DB_AUTH_ROLE} hold nothing beyond their classes"
        ))
