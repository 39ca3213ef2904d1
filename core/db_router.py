"""Migrations run only on the `owner` alias: the runtime roles may not create or alter tables."""


class OwnerMigratesRouter:
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "owner"
