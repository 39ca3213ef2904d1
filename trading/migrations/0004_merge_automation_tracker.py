# Merges the automation (order source) and strategy tracker branches; no operations of its own.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('trading', '0003_alter_order_source'),
        ('trading', '0003_tracker'),
    ]

    operations = [
    ]
