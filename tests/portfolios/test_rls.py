"""Another trader's portfolio is invisible: through the pages, the API, the ORM without filters, raw SQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from core.rls import tenant
from portfolios.models import (
    CashBalance,
    Lot,
    Portfolio,
    Position,
    Snapshot,
    Transaction,
    Watchlist,
    WatchlistItem,
)
from portfolios.selectors import portfolio_holders
from portfolios.services import (
    portfolio_create,
    snapshot_take,
    transaction_record,
    watchlist_add,
    watchlist_create,
)
from tests.portfolios.conftest import D, at

pytestmark = pytest.mark.django_db

MODELS = [Portfolio, Transaction, Position, Lot, CashBalance, Snapshot, Watchlist, WatchlistItem]


@pytest.fixture
def a_portfolio(user_a, instruments):
    """User A has a row in every portfolios table."""
    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Alice's", base_currency="USDT")
        transaction_record(
            user=user_a,
            portfolio=portfolio,
            kind="deposit",
            currency="USDT",
            quantity=D("500"),
            executed_at=at(1),
        )
        transaction_record(
            user=user_a,
            portfolio=portfolio,
            kind="buy",
            instrument=instruments["BTC/USDT"],
            quantity=D("0.01"),
            price=D("20000"),
            executed_at=at(2),
        )
        snapshot_take(portfolio=portfolio, day=at(2).date())
        watchlist = watchlist_create(user=user_a, name="Alice's list")
        watchlist_add(user=user_a, watchlist=watchlist, instrument=instruments["BTC/USDT"])
    return portfolio


def test_pages_and_api_answer_404_for_another_users_portfolio(client, user_b, a_portfolio):
    client.force_login(user_b)
    pk = a_portfolio.pk
    for url in [
        f"{reverse('dashboard')}?portfolio={pk}",
        reverse("portfolio_transactions", args=[pk]),
        reverse("portfolio_import", args=[pk]),
        reverse("portfolio_export_transactions", args=[pk]),
        reverse("portfolio_export_positions", args=[pk]),
        reverse("api-portfolio", args=[pk]),
        reverse("api-portfolio-positions", args=[pk]),
        reverse("api-portfolio-transactions", args=[pk]),
    ]:
        assert client.get(url).status_code == 404, url
    response = client.post(
        reverse("portfolio_transaction_add", args=[pk]),
        {"kind": "deposit", "currency": "USDT", "quantity": "1", "executed_at": "2023-03-02T10:00"},
    )
    assert response.status_code == 404
    assert client.get(reverse("api-portfolios")).json() == []
    page = client.get(reverse("dashboard")).content.decode()
    assert "Alice" not in page and "Create your first portfolio" in page
    with tenant(a_portfolio.user_id):
        assert Transaction.objects.count() == 2


def test_unfiltered_orm_queries_see_only_the_current_tenant(user_a, user_b, a_portfolio):
    with tenant(user_b.pk):
        assert [model.objects.count() for model in MODELS] == [0] * len(MODELS)
    with tenant(user_a.pk):
        assert all(model.objects.count() > 0 for model in MODELS)
    assert [model.objects.count() for model in MODELS] == [0] * len(MODELS)  # no tenant at all: nothing


def test_raw_sql_cannot_read_change_or_forge_another_users_rows(user_a, user_b, a_portfolio):
    tables = [model._meta.db_table for model in MODELS]
    with tenant(user_b.pk), connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - table names from the models
            assert cursor.fetchone()[0] == 0, table
        cursor.execute("UPDATE portfolios_cashbalance SET amount = 0 WHERE user_id = %s", [user_a.pk])
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM portfolios_transaction WHERE user_id = %s", [user_a.pk])
        assert cursor.rowcount == 0
    with (
        tenant(user_b.pk),
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO portfolios_portfolio (user_id, name, base_currency, kind, allow_short, created_at) "
            "VALUES (%s, 'forged', 'USDT', 'manual', false, now())",
            [user_a.pk],
        )
    with tenant(user_a.pk):
        assert CashBalance.objects.get().amount == D("300")


def test_finding_holders_is_the_one_cross_tenant_read(user_a, user_b, a_portfolio, instruments):
    with tenant(user_b.pk):
        other = portfolio_create(user=user_b, name="Bob's", base_currency="USDT")
        transaction_record(
            user=user_b,
            portfolio=other,
            kind="buy",
            instrument=instruments["BTC/USDT"],
            quantity=D("1"),
            price=D("20000"),
            executed_at=at(2),
        )
    with tenant(user_b.pk):
        # Even inside B's tenant the holders query crosses tenants, on purpose and logged.
        holders = portfolio_holders(symbols=["BTC/USDT"])
        assert (holders[user_a.pk], holders[user_b.pk]) == ([a_portfolio.pk], [other.pk])
        assert Portfolio.objects.count() == 1  # and the tenant is B again afterwards
    assert user_a.pk not in portfolio_holders(symbols=["ETH/USDT"])
