"""CSV import: preview with per-row results, all-or-nothing writes, re-import adds nothing, size limit."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.models import AuditLog
from core.rls import system_context, tenant
from portfolios.importing import MAX_IMPORT_BYTES, RowStatus, import_preview, transactions_import
from portfolios.models import Position, Transaction
from portfolios.selectors import cash_balance
from portfolios.services import portfolio_create, transaction_record
from tests.portfolios.conftest import D, at

NEXUS_FILE = b"""date,type,symbol,currency,quantity,price,fee,fee_currency,note,external_id
2023-03-01T09:00:00Z,deposit,,USDT,10000,,,,,
2023-03-01T10:00:00Z,buy,BTC/USDT,,0.2,23140.48,4.628096,USDT,first,
2023-03-02 10:00:00,buy,BTC/USDT,,0.1,22000,0.0001,BTC,,
2023-03-03,sell,BTC-USDT,,0.15,24000,3.6,,,
"""

BINANCE_FILE = (
    "\ufeffDate(UTC),Pair,Side,Price,Executed,Amount,Fee\n"
    "2023-03-01 10:00:00,BTCUSDT,BUY,23140.48,0.01000000BTC,231.4048USDT,0.00001000BTC\n"
    "2023-03-02 11:30:00,ETHUSDT,BUY,1565.30,1.0000ETH,1565.30USDT,1.5653USDT\n"
    "2023-03-05 08:00:00,BTCUSDT,SELL,22400.00,0.00500000BTC,112.00USDT,0.112USDT\n"
).encode()


def _statuses(preview):
    return [(row.line, row.status, row.message) for row in preview.rows]


def test_a_valid_file_previews_then_imports(portfolio, as_a):
    preview = import_preview(portfolio=portfolio, content=NEXUS_FILE)
    assert preview.format == "nexus" and preview.valid
    assert [(line, status) for line, status, _ in _statuses(preview)] == [
        (2, RowStatus.NEW),
        (3, RowStatus.NEW),
        (4, RowStatus.NEW),
        (5, RowStatus.NEW),
    ]
    assert Transaction.objects.count() == 0  # a preview writes nothing

    transactions_import(user=as_a, portfolio=portfolio, content=NEXUS_FILE, filename="trades.csv")
    position = Position.objects.get(portfolio=portfolio)
    # lots: 0.2 @ 23,140.48 + fee; 0.0999 BTC (fee in BTC) costing 2,200; the sell takes 0.15 of the first
    assert position.quantity == D("0.2") + D("0.0999") - D("0.15")
    assert cash_balance(portfolio=portfolio, currency="USDT") == (
        D("10000") - D("4628.096") - D("4.628096") - D("2200") + D("3600") - D("3.6")
    )
    assert AuditLog.objects.filter(action="portfolio.transactions_imported").count() == 1


def test_bad_rows_are_listed_with_line_numbers_and_nothing_is_written(portfolio, as_a):
    content = b"""date,type,symbol,currency,quantity,price,fee,fee_currency,note,external_id
2023-03-01T09:00:00Z,deposit,,USDT,1000,,,,,
2023-03-01T10:00:00Z,swap,BTC/USDT,,1,20000,,,,
2023-03-01T10:00:00Z,buy,BTC/USDT,,one,20000,,,,
2023-03-01T11:00:00Z,buy,DOGE/USDT,,1,0.1,,,,
2023-03-01T12:00:00Z,buy,BTC/USDT,,0.01,20000,,,,
2023-03-02T12:00:00Z,sell,BTC/USDT,,0.5,21000,,,,
2023-13-02T12:00:00Z,deposit,,USDT,5,,,,,
"""
    preview = import_preview(portfolio=portfolio, content=content)
    assert not preview.valid
    errors = {line: message for line, status, message in _statuses(preview) if status == RowStatus.ERROR}
    assert set(errors) == {3, 4, 5, 7, 8}
    assert errors[3].startswith("Type “swap” is not one of")
    assert errors[4] == "Quantity “one” is not a number."
    assert errors[5] == "Nexus does not list the instrument “DOGE/USDT”."
    assert errors[7].startswith("You hold 0.01 BTC in BTC/USDT; this sell needs 0.5.")
    assert errors[8].startswith("Date “2023-13-02T12:00:00Z” is not a date")

    result = transactions_import(user=as_a, portfolio=portfolio, content=content)
    assert result.error_count == 5
    assert Transaction.objects.count() == 0
    assert not AuditLog.objects.filter(action="portfolio.transactions_imported").exists()


def test_importing_the_same_file_again_adds_nothing(portfolio, as_a):
    transactions_import(user=as_a, portfolio=portfolio, content=NEXUS_FILE)
    before = list(Transaction.objects.values_list("pk", flat=True))

    again = transactions_import(user=as_a, portfolio=portfolio, content=NEXUS_FILE)
    assert [row.status for row in again.rows] == [RowStatus.DUPLICATE] * 4
    assert list(Transaction.objects.values_list("pk", flat=True)) == before


def test_two_identical_rows_in_one_file_are_two_trades(portfolio, as_a):
    content = NEXUS_FILE + b"2023-03-01T09:00:00Z,deposit,,USDT,10000,,,,,\n"  # the same as line 2
    preview = transactions_import(user=as_a, portfolio=portfolio, content=content)
    assert preview.new_count == 5
    assert cash_balance(portfolio=portfolio, currency="USDT") == D("20000") - D("4628.096") - D(
        "4.628096"
    ) - D("2200") + D("3600") - D("3.6")
    assert transactions_import(user=as_a, portfolio=portfolio, content=content).duplicate_count == 5


def test_binance_trade_history_export(portfolio, as_a):
    preview = transactions_import(
        user=as_a, portfolio=portfolio, content=BINANCE_FILE, filename="binance.csv"
    )
    assert preview.format == "binance" and preview.new_count == 3, _statuses(preview)
    btc = Position.objects.get(portfolio=portfolio, instrument__symbol="BTC/USDT")
    assert btc.quantity == D("0.01") - D("0.00001") - D("0.005")
    eth = Position.objects.get(portfolio=portfolio, instrument__symbol="ETH/USDT")
    assert (eth.quantity, eth.cost_basis) == (D("1"), D("1565.30") + D("1.5653"))
    assert transactions_import(user=as_a, portfolio=portfolio, content=BINANCE_FILE).new_count == 0


def test_a_binance_row_in_the_wrong_unit_is_an_error(portfolio):
    content = BINANCE_FILE.replace(b"1.0000ETH", b"1.0000BTC")
    preview = import_preview(portfolio=portfolio, content=content)
    assert _statuses(preview)[1] == (3, RowStatus.ERROR, "Executed is in BTC, expected ETH for ETH/USDT.")


def test_the_size_limit_has_a_clear_message(portfolio):
    content = NEXUS_FILE + b"#" * MAX_IMPORT_BYTES
    preview = import_preview(portfolio=portfolio, content=content)
    assert preview.file_errors == [
        "The file is 2.0 MB; the limit is 2 MB. Split it into smaller files: rows already imported are "
        "skipped, so importing in parts is safe."
    ]


@pytest.mark.django_db
def test_the_import_pages_preview_confirm_and_refuse_oversized_files(client, user_a, instruments):
    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Main", base_currency="USDT")
    client.force_login(user_a)
    url = reverse("portfolio_import", args=[portfolio.pk])

    big = SimpleUploadedFile("big.csv", b"x" * (MAX_IMPORT_BYTES + 1), content_type="text/csv")
    response = client.post(url, {"file": big})
    assert response.status_code == 400
    assert "the limit is 2 MB" in response.content.decode()

    response = client.post(
        url, {"file": SimpleUploadedFile("trades.csv", NEXUS_FILE, content_type="text/csv")}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "4 new, 0 already imported, 0 with errors" in html
    with tenant(user_a.pk):
        assert Transaction.objects.count() == 0
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)

    response = client.post(url, {"token": token})
    assert response.status_code == 302
    with tenant(user_a.pk):
        assert Transaction.objects.filter(portfolio=portfolio).count() == 4
    assert client.post(url, {"token": token}).status_code == 302  # an used preview has expired
    with tenant(user_a.pk):
        assert Transaction.objects.filter(portfolio=portfolio).count() == 4


def test_an_import_draws_the_past_equity_curve_from_stored_candles(
    portfolio, as_a, instruments, django_capture_on_commit_callbacks
):
    from datetime import UTC, datetime, timedelta

    from django.utils import timezone

    from config.celery import app as celery_app
    from marketdata.models import Candle
    from portfolios.models import Snapshot

    btc = instruments["BTC/USDT"]
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Candle.objects.filter(instrument=btc).delete()
    today = timezone.now().date()
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    for day, close in zip(days, ("20000", "21000", "22000"), strict=True):
        price = D(close)
        with system_context(reason="tests: the market feed's and signal engine's shared data"):
            Candle.objects.create(
                instrument=btc,
                open_time=datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC),
                open=price,
                high=price,
                low=price,
                close=price,
                volume=D(1),
            )
    content = (
        "date,type,symbol,currency,quantity,price\n"
        f"{days[0]}T08:00:00Z,deposit,,USDT,1000,\n"
        f"{days[0]}T09:00:00Z,buy,BTC/USDT,,0.01,20000\n"
    ).encode()
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            transactions_import(user=as_a, portfolio=portfolio, content=content)
    finally:
        celery_app.conf.task_always_eager = False
    assert list(Snapshot.objects.filter(portfolio=portfolio).values_list("date", "value")) == [
        (days[0], D("1000")),
        (days[1], D("1010")),
        (days[2], D("1020")),
    ]


# --- Hostile files (each a case from the hostile-input run) ---------------------------------------------

HEADER = b"date,type,symbol,currency,quantity,price,fee,fee_currency,note,external_id\n"


def _row_errors(preview) -> dict[int, str]:
    return {row.line: row.message for row in preview.rows if row.status == RowStatus.ERROR}


def test_a_nul_in_a_note_or_an_external_id_is_a_row_error_and_nothing_is_written(portfolio, as_a):
    content = HEADER + (
        b"2023-03-01T09:00:00Z,deposit,,USDT,100,,,,a\x00b,\n"
        b"2023-03-01T10:00:00Z,deposit,,USDT,100,,,,,ext\x001\n"
    )
    preview = transactions_import(user=as_a, portfolio=portfolio, content=content)
    assert _row_errors(preview) == {
        2: "The note cell contains a NUL or an invalid Unicode character.",
        3: "The external_id cell contains a NUL or an invalid Unicode character.",
    }
    assert Transaction.objects.count() == 0


def test_cells_longer_than_any_field_are_refused_with_the_line(portfolio):
    long_note = HEADER + b"2023-03-01T09:00:00Z,deposit,,USDT,100,,,," + b"n" * 1_001 + b",\n"
    assert _row_errors(import_preview(portfolio=portfolio, content=long_note)) == {
        2: "The note cell is longer than 1,000 characters."
    }
    past_the_csv_limit = HEADER + b"2023-03-01T09:00:00Z,deposit,,USDT,100,,,," + b"n" * 140_000 + b",\n"
    preview = import_preview(portfolio=portfolio, content=past_the_csv_limit)
    assert preview.file_errors[0].startswith(
        "Line 2: this is not CSV Nexus can read (field larger than field limit (131072))."
    )


def test_an_unterminated_quote_is_refused_not_read_to_the_end_of_the_file(portfolio):
    content = (
        HEADER
        + b'2023-03-01T09:00:00Z,deposit,,USDT,100,,,,"open quote,\n2023-03-02T09:00:00Z,deposit,,USDT,5,,,,,\n'
    )
    preview = import_preview(portfolio=portfolio, content=content)
    assert not preview.valid and not preview.rows
    assert preview.file_errors == [
        "Line 3: this is not CSV Nexus can read (unexpected end of data). A cell holds at most 1,000 "
        'characters; look for a quote (") left open.'
    ]


@pytest.mark.parametrize("date", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00"])
def test_a_date_outside_what_utc_can_hold_is_a_row_error(portfolio, date):
    content = HEADER + f"{date},deposit,,USDT,100,,,,,\n".encode()
    assert _row_errors(import_preview(portfolio=portfolio, content=content)) == {
        2: f"Date “{date}” is not a date such as 2023-03-01 10:00:00 (UTC)."
    }


@pytest.mark.parametrize("quantity", ["1e999999999", "99999999999999999"])
def test_a_quantity_past_the_stored_precision_is_a_row_error(portfolio, quantity):
    content = HEADER + f"2023-03-01T09:00:00Z,deposit,,USDT,{quantity},,,,,\n".encode()
    assert _row_errors(import_preview(portfolio=portfolio, content=content)) == {
        2: "Quantity: That number is too large."
    }


@pytest.mark.parametrize("quantity", ["0,5", "20000,50", "20,000", "1,5,0", ",5"])
def test_a_comma_that_may_be_a_decimal_comma_is_refused_never_dropped(portfolio, quantity):
    content = HEADER + f'2023-03-01T09:00:00Z,deposit,,USDT,"{quantity}",,,,,\n'.encode()
    assert _row_errors(import_preview(portfolio=portfolio, content=content)) == {
        2: f"Quantity “{quantity}”: use a dot as the decimal separator (0.5), and commas only to group "
        "thousands (20,000.50)."
    }


def test_commas_that_can_only_group_thousands_are_read(portfolio, as_a):
    content = HEADER + (
        b'2023-03-01T09:00:00Z,deposit,,USDT,"20,000.50",,,,,\n'
        b'2023-03-01T10:00:00Z,deposit,,USDT,"1,000,000",,,,,\n'
    )
    transactions_import(user=as_a, portfolio=portfolio, content=content)
    assert cash_balance(portfolio=portfolio, currency="USDT") == D("1020000.50")


def test_the_export_neutralises_formulas_and_imports_back_unchanged(client, as_a, instruments):
    portfolio = portfolio_create(user=as_a, name="Main", base_currency="USDT")
    notes = ['=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "'=quoted", "'plain", "plain"]
    ids = ["=1", "+2", "-3", "@4", "'=5", "'6", "7"]
    for note, external_id in zip(notes, ids, strict=True):
        transaction_record(
            user=as_a, portfolio=portfolio, kind="deposit", currency="USDT", quantity=D(1),
            executed_at=at(1), note=note, external_id=external_id,
        )  # fmt: skip

    client.force_login(as_a)
    exported = client.get(reverse("portfolio_export_transactions", args=[portfolio.pk])).content
    cells = list(csv.DictReader(io.StringIO(exported.decode())))
    assert [row["note"] for row in cells] == [
        '\'=HYPERLINK("http://x","y")',
        "'+1",
        "'-2+3",
        "'@SUM(A1)",
        "''=quoted",
        "'plain",
        "plain",
    ]
    assert [row["external_id"] for row in cells] == ["'=1", "'+2", "'-3", "'@4", "''=5", "'6", "7"]

    assert transactions_import(user=as_a, portfolio=portfolio, content=exported).duplicate_count == 7
    copy = portfolio_create(user=as_a, name="Copy", base_currency="USDT")
    transactions_import(user=as_a, portfolio=copy, content=exported)
    stored = Transaction.objects.filter(portfolio=copy).values_list("note", "external_id")
    assert sorted(stored) == sorted(zip(notes, ids, strict=True))
