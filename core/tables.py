"""Every table in the database, in one of four classes, and what each database role may do with it.

This is the one reviewed place (docs/security.md). `grants_apply` turns it into GRANTs after every
`migrate` and from `db_bootstrap`; `manage.py rls_audit` checks the live database against it and fails on
any table not named here, on any privilege a role holds beyond its table's class, and on any policy that
differs from the expected one. A table added by a migration or a dependency upgrade gets no privilege at
all until it is classified here.

- TENANT: a user's data. RLS enabled and forced; one policy keyed on the owner column. The runtime role
  reads and writes its own rows; the system role (BYPASSRLS) all rows.
- REFERENCE: shared by every user (instruments, quotes, signals...). The runtime role reads; only the
  process that owns the data writes, through the system connection.
- IDENTITY: users, their email addresses, authenticators, social accounts and tokens. Under RLS like a
  tenant table, the runtime role seeing only the signed-in user's row and never its secret columns; the
  auth role (core.rls.auth_context) reads and writes them for sign-in before anyone is signed in.
- SYSTEM: no privilege at all for the runtime role (Stripe's mirror, webhook payloads, the admin log...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from psycopg import sql

DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
READ = frozenset({"SELECT"})
NONE: frozenset[str] = frozenset()

TENANT_POLICY = "tenant_isolation"
AUTH_POLICY = "auth_context"


class TableClass(StrEnum):
    TENANT = "tenant"
    REFERENCE = "reference"
    IDENTITY = "identity"
    SYSTEM = "system"


def owner_expression(column: str) -> str:
    """The tenant policy, fail-closed: no `app.user_id` in the transaction matches no row."""
    return f"{column} = nullif(current_setting('app.user_id', true), '')::bigint"


def owner_expression_deparsed(column: str) -> str:
    """`owner_expression` as PostgreSQL prints it back in pg_policies (the audit compares exactly)."""
    return f"({column} = (NULLIF(current_setting('app.user_id'::text, true), ''::text))::bigint)"


@dataclass(frozen=True)
class Table:
    name: str
    kind: TableClass
    why: str
    # TENANT / IDENTITY: the column the policy compares with app.user_id; "" for an identity table the
    # runtime role may not touch at all (only the auth context reads it).
    owner_column: str = "user_id"
    # IDENTITY: columns the runtime role may not read (password hashes, secrets, tokens).
    secret_columns: tuple[str, ...] = ()
    # IDENTITY: what the runtime role may do with its own row beyond reading it: update these columns,
    # and insert or delete whole rows.
    runtime_updates: tuple[str, ...] = ()
    runtime_rows: frozenset[str] = field(default=NONE)
    # TENANT: what the auth role may do with the rows of the user it acts for (sign-in writes audit rows).
    auth_privileges: frozenset[str] = field(default=NONE)

    def runtime_privileges(self) -> frozenset[str]:
        if self.kind is TableClass.TENANT:
            return DML
        if self.kind is TableClass.REFERENCE:
            return READ
        if self.kind is TableClass.IDENTITY and self.owner_column:
            return READ | ({"UPDATE"} if self.runtime_updates else set()) | self.runtime_rows
        return NONE

    def auth_role_privileges(self) -> frozenset[str]:
        if self.kind is TableClass.IDENTITY:
            return DML
        return self.auth_privileges

    @property
    def has_rls(self) -> bool:
        return self.kind in (TableClass.TENANT, TableClass.IDENTITY)

    def expected_policies(self, *, auth_role: str) -> dict[str, tuple[str, str, str]]:
        """policy name -> (role, USING, WITH CHECK) as pg_policies shows them."""
        policies = {}
        if self.has_rls and self.owner_column:
            expression = owner_expression_deparsed(self.owner_column)
            policies[TENANT_POLICY] = ("public", expression, expression)
        if self.kind is TableClass.IDENTITY:
            policies[AUTH_POLICY] = (auth_role, "true", "true")
        return policies


def _tenant(name: str, why: str, **kw) -> Table:
    return Table(name, TableClass.TENANT, why, **kw)


def _reference(name: str, why: str) -> Table:
    return Table(name, TableClass.REFERENCE, why, owner_column="")


def _system(name: str, why: str) -> Table:
    return Table(name, TableClass.SYSTEM, why, owner_column="")


_AUDIT_ON_SIGN_IN = frozenset({"SELECT", "INSERT"})

_DJSTRIPE = ["account", "accountv2", "activeentitlement", "apikey", "applicationfee", "applicationfeerefund", "balancetransaction", "bankaccount", "card", "charge", "countryspec", "coupon", "customer", "discount", "dispute", "djstripeinvoicedefaulttaxrate", "djstripeinvoiceitemtaxrate", "djstripepaymentmethod", "djstripesubscriptionitemtaxrate", "earlyfraudwarning", "event", "feature", "file", "filelink", "idempotencykey", "invoice", "invoiceitem", "issuing_authorization", "issuing_card", "issuing_cardholder", "issuing_dispute", "issuing_transaction", "lineitem", "mandate", "paymentintent", "paymentmethod", "payout", "price", "product", "productfeature", "promotioncode", "refund", "review", "scheduledqueryrun", "session", "setupintent", "shippingrate", "source", "sourcetransaction", "subscription", "subscriptionitem", "subscriptionschedule", "taxcode", "taxid", "taxrate", "transfer", "transferreversal", "upcominginvoice", "verificationreport", "verificationsession", "webhookendpoint", "webhookeventtrigger"]

TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        # --- tenant: a user's own data ---------------------------------------------------------------
        _tenant("alerts_alert", "a trader's price and portfolio alerts"),
        _tenant("alerts_alertfiring", "when a trader's alert fired"),
        _tenant("automation_rule", "a trader's automation rules (with their webhook URL token and secret)"),
        _tenant("automation_rulerun", "each trigger event of a rule, its conditions' values and outcome"),
        _tenant("automation_runaction", "what each action of a rule's run did"),
        _tenant("automation_webhookdelivery", "a rule's outgoing webhook calls and their attempts"),
        _tenant("bot_conversation", "a member's companion conversations (web chat, Discord DM or channel)"),
        _tenant("bot_message", "the questions and answers of a companion conversation"),
        _tenant("bot_pendingaction", "writes the companion proposed, waiting for the member's confirmation"),
        _tenant("billing_appliedevent", "the Stripe events already applied to a trader's billing state"),
        _tenant("billing_checkoutsession", "a trader's Stripe checkout sessions"),
        _tenant("billing_invoice", "a trader's invoices, copied from Stripe for the billing page"),
        _tenant("billing_meterreport", "a trader's metered usage sent to Stripe"),
        _tenant("billing_subscription", "a trader's plan and its state"),
        _tenant("billing_usagerecord", "a trader's metered usage (AI queries)"),
        _tenant("core_auditlog", "who did what to a trader's money, keys, plan or access",
                auth_privileges=_AUDIT_ON_SIGN_IN),
        _tenant("core_notification", "in-app notifications (the page header's bell also on account pages)",
                auth_privileges=READ),
        _tenant("core_notificationdelivery", "a notification's email and Discord deliveries"),
        _tenant("core_idempotencyrecord", "a trader's API requests sent with an Idempotency-Key and their answers"),
        _tenant("core_notificationpreference", "which channels a trader wants for each kind"),
        _tenant("newsletter_issue", "an author's newsletter issues"),
        _tenant("newsletter_delivery", "one recipient of an author's issue (the author's row: stats)"),
        _tenant("newsletter_preference", "whether a member receives newsletters"),
        _tenant("portfolios_cashbalance", "cash per currency in a portfolio"),
        _tenant("portfolios_lot", "FIFO lots"),
        _tenant("portfolios_portfolio", "portfolios"),
        _tenant("portfolios_position", "positions"),
        _tenant("portfolios_snapshot", "daily portfolio values"),
        _tenant("portfolios_transaction", "trades, deposits and withdrawals"),
        _tenant("portfolios_watchlist", "watchlists"),
        _tenant("portfolios_watchlistitem", "watchlist entries"),
        _tenant("research_note", "a trader's research notes (drafts and the author's copy of published ones)"),
        _tenant("research_noteinstrument", "the instruments a trader's note is about"),
        _tenant("research_noterevision", "every saved version of a trader's note"),
        _tenant("trading_blockedexecution", "executions the regime gatekeeper blocked"),
        _tenant("trading_bot", "a trader's bots"),
        _tenant("trading_exchangeconnection", "exchange API keys (secret encrypted at rest)"),
        _tenant("trading_executionplan", "one bot's plan for one signal"),
        _tenant("trading_fill", "fills"),
        _tenant("trading_order", "orders"),
        _tenant("trading_replayrun", "a trader's strategy-tracker simulations over recorded candles"),
        _tenant("trading_replayfill", "the simulated fills of a trader's replay"),
        # --- reference: shared by everyone, written by the process that owns it --------------------------
        _reference("marketdata_instrument", "the pairs Nexus trades; seeded, edited by staff"),
        _reference("marketdata_quote", "latest price per pair, written by the market feed"),
        _reference("marketdata_tick", "recent trades, written by the market feed"),
        _reference("marketdata_candle", "one-minute candles, written by the market feed"),
        _reference("trading_signal", "one decision per strategy and bar, written by the signal engine"),
        _reference("trading_regimereading", "the regime gatekeeper's readings, written by the signal engine"),
        # Published research is read by every member, so it cannot sit behind the tenant policy: the publish
        # service copies the note here in system_context (rendered, sanitised) and removes its text on
        # unpublish; the outcome task writes thesis outcomes. One policy shape for every tenant table stays
        # true, and a draft can never leak through a published row (docs/research.md).
        _reference("research_publishednote", "published research notes, written by research's publish service"),
        # Its search side: one narrow row per readable published note, written by a trigger on
        # research_publishednote in the same statement (so by the same reviewed writers), read by search.
        _reference("research_publishednotesearch", "what search reads of each published note, kept by a trigger"),
        _reference("billing_stripeprice", "our Stripe prices for the pricing page, written by billing_sync_plans"),
        _reference("newsletter_archivedissue", "sent newsletter issues, public; written by the send worker"),
        _reference("django_content_type", "Django's model registry, written by migrate"),
        _reference("auth_permission", "Django's permission names, written by migrate"),
        _reference("auth_group", "staff groups, edited in the admin"),
        _reference("auth_group_permissions", "what each staff group may do, edited in the admin"),
        _reference("django_migrations", "applied migrations; read by the readiness check"),
        # --- identity ------------------------------------------------------------------------------------
        Table("accounts_user", TableClass.IDENTITY, "accounts; the email is the login", owner_column="id",
              secret_columns=("password",), runtime_updates=("display_name", "time_zone", "base_currency", "session_salt", "session_generation",
                               "last_login")),
        Table("accounts_apitoken", TableClass.IDENTITY, "API tokens (SHA-512 digests; the token is shown once)",
              runtime_updates=("last_used_at",), runtime_rows=frozenset({"INSERT", "DELETE"})),
        Table("account_emailaddress", TableClass.IDENTITY, "a user's email addresses (sign-in looks them up)"),
        Table("account_emailconfirmation", TableClass.IDENTITY, "email confirmation keys",
              owner_column=""),
        Table("mfa_authenticator", TableClass.IDENTITY, "TOTP and recovery codes (data holds the secrets)",
              secret_columns=("data",)),
        Table("socialaccount_socialaccount", TableClass.IDENTITY, "Google and Discord accounts linked to a user",
              secret_columns=("extra_data",)),
        Table("socialaccount_socialtoken", TableClass.IDENTITY, "OAuth tokens of linked accounts",
              owner_column=""),
        Table("socialaccount_socialapp", TableClass.IDENTITY, "OAuth client secrets (empty: apps come from "
              "settings)", owner_column=""),
        Table("accounts_discordlinkcode", TableClass.IDENTITY, "one-time Discord link codes (SHA-256 digests; "
              "the bot redeems them before it knows the user)", owner_column=""),
        Table("accounts_user_groups", TableClass.IDENTITY, "a user's staff groups"),
        Table("accounts_user_user_permissions", TableClass.IDENTITY, "a user's own permissions"),
        # --- system-only: the runtime role has no privilege at all ---------------------------------------
        _system("billing_webhookevent", "raw Stripe event payloads, processed by the billing worker"),
        _system("newsletter_suppression", "addresses the email provider reported bounced or complaining"),
        _system("django_admin_log", "staff actions in the admin (the admin runs on the system connection)"),
        *[_system(f"djstripe_{name}", "dj-stripe's mirror of Stripe, written by the billing worker")
          for name in _DJSTRIPE],
    ]
}


@dataclass(frozen=True)
class Roles:
    app: str
    system: str
    auth: str

    @classmethod
    def from_settings(cls) -> Roles:
        from django.conf import settings

        return cls(app=settings.DB_APP_ROLE, system=settings.DB_SYSTEM_ROLE, auth=settings.DB_AUTH_ROLE)


def live_tables(cursor) -> list[str]:
    cursor.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"""
    )
    return [name for (name,) in cursor.fetchall()]


def table_columns(cursor, table: str) -> list[str]:
    cursor.execute(
        """SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
        [f"public.{table}"],
    )
    return [name for (name,) in cursor.fetchall()]


def owned_sequences(cursor, table: str) -> list[str]:
    cursor.execute(
        """SELECT s.relname FROM pg_class s
             JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')
            WHERE s.relkind = 'S' AND d.refobjid = %s::regclass""",
        [f"public.{table}"],
    )
    return [name for (name,) in cursor.fetchall()]


def _grant(privileges, table: str, role: str, columns: list[str] | None = None) -> sql.Composed:
    if columns is None:
        target = sql.SQL("{}").format(sql.Identifier(table))
        return sql.SQL("GRANT {} ON TABLE {} TO {}").format(
            sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges)), target, sql.Identifier(role)
        )
    return sql.SQL("GRANT {} ({}) ON TABLE {} TO {}").format(
        sql.SQL(privileges), sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(table),
        sql.Identifier(role),
    )


def table_statements(cursor, table: Table | None, name: str, roles: Roles) -> list[sql.Composable]:
    """Revoke everything from the runtime roles, then grant what the table's class allows."""
    statements: list[sql.Composable] = [
        sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC, {}, {}, {}").format(
            sql.Identifier(name), sql.Identifier(roles.app), sql.Identifier(roles.system), sql.Identifier(roles.auth)
        )
    ]
    sequences = owned_sequences(cursor, name)
    for sequence in sequences:
        statements.append(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM PUBLIC, {}, {}, {}").format(
            sql.Identifier(sequence), sql.Identifier(roles.app), sql.Identifier(roles.system),
            sql.Identifier(roles.auth),
        ))
    if table is None:  # unclassified: nobody at runtime, and rls_audit fails until it is classified
        return statements
    statements.append(_grant(DML, name, roles.system))
    inserters = [roles.system]
    runtime = table.runtime_privileges()
    if table.kind is TableClass.IDENTITY and runtime:
        columns = table_columns(cursor, name)
        statements.append(_grant("SELECT", name, roles.app, [c for c in columns if c not in table.secret_columns]))
        # Before the migration that adds a column has run (db_bootstrap on an older schema), skip it.
        updatable = [c for c in table.runtime_updates if c in columns]
        if updatable:
            statements.append(_grant("UPDATE", name, roles.app, updatable))
        if table.runtime_rows:
            statements.append(_grant(table.runtime_rows, name, roles.app))
            if "INSERT" in table.runtime_rows:
                inserters.append(roles.app)
    elif runtime:
        statements.append(_grant(runtime, name, roles.app))
        if "INSERT" in runtime:
            inserters.append(roles.app)
    auth = table.auth_role_privileges()
    if auth:
        statements.append(_grant(auth, name, roles.auth))
        if "INSERT" in auth:
            inserters.append(roles.auth)
    for sequence in sequences:
        statements.append(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
            sql.Identifier(sequence), sql.SQL(", ").join(sql.Identifier(r) for r in inserters)
        ))
    return statements


def grants_apply(connection) -> list[str]:
    """Apply the classification to every table of the live database; returns the unclassified ones.

    Runs as the schema owner (after `migrate`, and from `db_bootstrap`)."""
    roles = Roles.from_settings()
    unclassified = []
    connection.ensure_connection()
    with connection.cursor() as cursor:
        for name in live_tables(cursor):
            table = TABLES.get(name)
            if table is None:
                unclassified.append(name)
            statements = table_statements(cursor, table, name, roles)
            cursor.execute("; ".join(s.as_string(connection.connection) for s in statements))
    return unclassified
