"""Identity tables under row-level security (docs/security.md).

The runtime role sees only the signed-in user's own rows (and never the secret columns: core/tables.py
grants by column); the auth role, reached only through core.rls.auth_context, reads them for sign-in.
"""

from django.conf import settings
from django.db import migrations

from core.rls import rls_disable_sql, rls_enable_sql

# table -> the column its tenant policy compares with app.user_id ("" : auth context only)
IDENTITY_TABLES = {
    "accounts_user": "id",
    "account_emailaddress": "user_id",
    "account_emailconfirmation": "",
    "mfa_authenticator": "user_id",
    "socialaccount_socialaccount": "user_id",
    "socialaccount_socialtoken": "",
    "socialaccount_socialapp": "",
    "accounts_user_groups": "user_id",
    "accounts_user_user_permissions": "user_id",
}


def _forwards():
    return [
        statement
        for table, owner_column in IDENTITY_TABLES.items()
        for statement in rls_enable_sql(table=table, owner_column=owner_column, auth_role=settings.DB_AUTH_ROLE)
    ]


def _backwards():
    return [statement for table in IDENTITY_TABLES for statement in rls_disable_sql(table=table)]


# API tokens are already under the tenant policy (0002); sign-in looks them up by prefix too.
_API_TOKENS_FORWARDS = rls_enable_sql(table="accounts_apitoken", owner_column="", auth_role=settings.DB_AUTH_ROLE)[2:]
_API_TOKENS_BACKWARDS = ['DROP POLICY IF EXISTS auth_context ON "accounts_apitoken"']


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_drop_plain_text_tokens_and_db_sessions"),
        ("account", "0009_emailaddress_unique_primary_email"),
        ("mfa", "0003_authenticator_type_uniq"),
        ("socialaccount", "0006_alter_socialaccount_extra_data"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="user",
            options={"base_manager_name": "objects", "ordering": ["email"]},
        ),
        migrations.RunSQL(_forwards(), _backwards()),
        migrations.RunSQL(_API_TOKENS_FORWARDS, _API_TOKENS_BACKWARDS),
    ]
