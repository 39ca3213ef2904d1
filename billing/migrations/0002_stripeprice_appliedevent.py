import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import core.rls


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StripePrice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("stripe_price_id", models.CharField(max_length=255, unique=True)),
                ("stripe_product_id", models.CharField(max_length=255)),
                (
                    "plan",
                    models.CharField(
                        choices=[("free", "Free"), ("pro", "Pro"), ("enterprise", "Enterprise")],
                        max_length=20,
                    ),
                ),
                ("lookup_key", models.CharField(max_length=200)),
                ("livemode", models.BooleanField()),
                ("active", models.BooleanField(default=True)),
                ("synced_at", models.DateTimeField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("active", True)),
                        fields=("lookup_key", "livemode"),
                        name="billing_stripeprice_one_active_per_key",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="AppliedEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("stripe_event_id", models.CharField(max_length=255, unique=True)),
                ("outcome", models.CharField(max_length=200)),
                ("applied_at", models.DateTimeField(auto_now_add=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        core.rls.EnableRLS("AppliedEvent"),
    ]
