"""Migrations run only on the `owner` alias: the runtime role may not create or alter tables."""


class OwnerMigratesRouter:
    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "owner"


class TestSuiteRouter:
    """Tests only. Django's flush after a transactional test truncates the tables the router allows on
    that alias; with OwnerMigratesRouter it would see none on `default` and let committed rows leak into
    the next test. The suite never migrates `default` (tests/conftest.py migrates `owner`), so allowing
    it here only makes the flush see the tables."""

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return True
