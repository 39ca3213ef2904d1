"""One-time codes that link a Discord account (accounts.DiscordLinkCode): an identity table that only the
auth context reads and writes (core/tables.py), like email confirmation keys."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from core.rls import rls_disable_sql, rls_enable_sql

TABLE = "accounts_discordlinkcode"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_identity_rls"),
    ]

    operations = [
        migrations.CreateModel(
            name="DiscordLinkCode",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="discord_link_codes",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "Discord link code",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.RunSQL(
            rls_enable_sql(table=TABLE, owner_column="", auth_role=settings.DB_AUTH_ROLE),
            rls_disable_sql(table=TABLE),
        ),
    ]
