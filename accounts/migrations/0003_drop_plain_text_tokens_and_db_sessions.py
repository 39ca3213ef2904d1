"""Plain-text secrets leave the database.

- API tokens of Django REST framework's `authtoken` app were stored in plain text: each is revoked, its
  owner told (an in-app notification and an audit row, through accounts.services), and the table dropped.
  API tokens are now accounts.ApiToken, stored as digests (0002).
- Sessions now live in Redis (SESSION_ENGINE), so the `django_session` table goes too.

Both apps left INSTALLED_APPS, so their tables are dropped here by name, if they exist (a database created
after this change never had them). Not reversible in substance: the dropped rows are gone.
"""

from django.db import migrations

from core.tables import grants_apply


def revoke_plain_text_api_tokens(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('authtoken_token') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return
        cursor.execute("SELECT user_id, left(key, 8) FROM authtoken_token ORDER BY user_id")
        tokens = cursor.fetchall()
    # The notices are written by the running application's own connection: give it the grants of the
    # schema as it is now (new columns of 0002), committed before it looks (this migration is not atomic).
    grants_apply(schema_editor.connection)
    # The notice goes through the app's service (core.notifications and the audit log as the user), so it
    # is the same notice and the same rows that the running application writes.
    from accounts.services import legacy_api_token_revoked_notify

    for user_id, prefix in tokens:
        legacy_api_token_revoked_notify(user_id=user_id, token_prefix=prefix)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP TABLE authtoken_token")
        cursor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0002_session_generation_api_tokens"),
        ("core", "0003_drop_covered_fk_indexes"),
    ]

    operations = [
        migrations.RunPython(revoke_plain_text_api_tokens, migrations.RunPython.noop),
        migrations.RunSQL(
            "DROP TABLE IF EXISTS django_session; DELETE FROM django_migrations WHERE app = 'sessions';",
            migrations.RunSQL.noop,
        ),
    ]
