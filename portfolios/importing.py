"""CSV import of transactions (the Nexus format and Binance's trade-history export) and CSV export.

`import_preview` reads a file and reports every row's result without writing anything: new, already
imported (skipped), or an error with its line number. `transactions_import` writes the new rows, all in
one database transaction, and only when no row has an error. Rows are de-duplicated on an external id:
the file's own, or one derived from the row's content, so importing the same file twice adds nothing.
The formats are described in docs/portfolio-math.md ("Import and export").
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.http import HttpRequest

from core.audit import audit_record
from core.errors import DomainError
from core.inputs import text_problem
from core.money import decimal_parse, plain
from marketdata.selectors import instrument_list
from portfolios.choices import AMOUNT, QUANTITY, TransactionKind, TransactionSource
from portfolios.models import Portfolio, Transaction
from portfolios.selectors import external_ids_present
from portfolios.services import (
    backfill_after_commit,
    ensure_owner,
    portfolio_lock,
    push_after_commit,
    request_actor,
    transaction_build,
    transactions_apply_many,
)

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000
# The longest field stored is a 500-character note; a longer cell is a mistake, not data to truncate.
MAX_CELL_CHARS = 1_000

NEXUS_COLUMNS = [
    "date",
    "type",
    "symbol",
    "currency",
    "quantity",
    "price",
    "fee",
    "fee_currency",
    "note",
    "external_id",
]
NEXUS_REQUIRED = {"date", "type", "quantity"}
BINANCE_COLUMNS = ["date(utc)", "pair", "side", "price", "executed", "amount", "fee"]
BINANCE_LEGACY_COLUMNS = ["date(utc)", "market", "type", "price", "amount", "total", "fee", "fee coin"]
TYPE_ALIASES = {
    "buy": TransactionKind.BUY,
    "sell": TransactionKind.SELL,
    "deposit": TransactionKind.DEPOSIT,
    "withdrawal": TransactionKind.WITHDRAWAL,
    "withdraw": TransactionKind.WITHDRAWAL,
    "fee": TransactionKind.FEE,
    "transfer_in": TransactionKind.TRANSFER_IN,
    "transfer in": TransactionKind.TRANSFER_IN,
    "transfer_out": TransactionKind.TRANSFER_OUT,
    "transfer out": TransactionKind.TRANSFER_OUT,
}
AMOUNT_WITH_UNIT = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)\s*([A-Za-z0-9]*)\s*$")
# Commas only between groups of three digits, and either a decimal point or two commas: "20,000.50" and
# "1,000,000". "0,5", "20000,50" and "20,000" might be decimal commas, so they are refused, not guessed.
THOUSANDS = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+\.[0-9]+$|^[0-9]{1,3}(?:,[0-9]{3}){2,}$")
# A cell a spreadsheet would run as a formula; the export writes such text behind a ' (see _spreadsheet_safe).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class RowStatus:
    NEW = "new"
    DUPLICATE = "duplicate"
    ERROR = "error"


@dataclass
class ImportRow:
    line: int
    status: str
    summary: str
    message: str = ""
    txn: Transaction | None = None


@dataclass
class ImportPreview:
    format: str = ""
    rows: list[ImportRow] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)

    @property
    def new_count(self) -> int:
        return sum(1 for row in self.rows if row.status == RowStatus.NEW)

    @property
    def duplicate_count(self) -> int:
        return sum(1 for row in self.rows if row.status == RowStatus.DUPLICATE)

    @property
    def error_count(self) -> int:
        return sum(1 for row in self.rows if row.status == RowStatus.ERROR) + len(self.file_errors)

    @property
    def valid(self) -> bool:
        return not self.error_count and bool(self.rows)


class RowError(Exception):
    pass


# --- parsing ------------------------------------------------------------------------------------------


def _formula_like(text: str) -> bool:
    """Would a spreadsheet run this cell as a formula (once the quotes it reads as "text" are gone)?"""
    return text.lstrip("'").startswith(FORMULA_START)


def _spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet shows instead of running: a ' before anything formula-like (=HYPERLINK(...))."""
    return f"'{text}" if _formula_like(text) else text


def _from_spreadsheet(text: str) -> str:
    """The text `_spreadsheet_safe` was given, so an exported file imports back unchanged."""
    return text[1:] if text.startswith("'") and _formula_like(text[1:]) else text


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError(
            "The file is not UTF-8 text. Export it again as CSV (UTF-8).", field="file"
        ) from None


def _records(text: str) -> list[tuple[int, list[str]]]:
    """Every CSV record with the line it ends on. A quote left open, text after a closing quote, or a cell
    past the csv module's limit (131,072 characters) is an error naming the line, not a guess."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    try:
        for cells in reader:
            records.append((reader.line_num, cells))
    except csv.Error as exc:
        raise DomainError(
            f"Line {reader.line_num}: this is not CSV Nexus can read ({exc}). A cell holds at most "
            f'{MAX_CELL_CHARS:,} characters; look for a quote (") left open.',
            field="file",
        ) from None
    return records


def _cells_problem(columns: list[str], cells: list[str]) -> str | None:
    """The first cell no field could hold (a NUL, or longer than MAX_CELL_CHARS), named by its column."""
    for column, cell in zip(columns, cells, strict=False):
        problem = text_problem(cell, max_length=MAX_CELL_CHARS)
        if problem:
            return f"The {column} cell {problem}."
    return None


def _number(text: str, what: str) -> Decimal | None:
    text = (text or "").strip()
    if not text:
        return None
    if "," in text:
        if not THOUSANDS.match(text):
            raise RowError(
                f"{what} “{text}”: use a dot as the decimal separator (0.5), "
                "and commas only to group thousands (20,000.50)."
            )
        text = text.replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(f"{what} “{text}” is not a number.") from None
    if not value.is_finite():
        raise RowError(f"{what} “{text}” is not a number.")
    column = AMOUNT if what == "Fee" else QUANTITY  # prices have the precision of quantities
    return decimal_parse(value, field=what.lower(), sign="zero_or_more", **column)


def _amount_with_unit(text: str, what: str) -> tuple[Decimal | None, str]:
    """Binance writes "0.00100000BTC": the number and the currency in one cell."""
    text = (text or "").strip()
    if not text:
        return None, ""
    match = AMOUNT_WITH_UNIT.match(text)
    if not match:
        raise RowError(f"{what} “{text}” is not an amount such as 0.001BTC.")
    return _number(match.group(1), what), match.group(2).upper()


def _datetime(text: str) -> datetime:
    text = (text or "").strip()
    if not text:
        raise RowError("The date is missing.")
    candidate = text.replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(candidate)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00+14:00 is before year 1 in UTC
        raise RowError(f"Date “{text}” is not a date such as 2023-03-01 10:00:00 (UTC).") from None


def _row_id(prefix: str, values: list[str], seen: dict[str, int]) -> str:
    """A stable id for a row that has none: its content, plus how many identical rows came before it."""
    digest = hashlib.sha256("\x1f".join(v.strip() for v in values).encode()).hexdigest()[:32]
    seen[digest] = seen.get(digest, 0) + 1
    return f"{prefix}:{digest}:{seen[digest]}"


class _Instruments:
    def __init__(self) -> None:
        self.by_symbol = {}
        self.by_pair = {}
        for instrument in instrument_list(active=None):
            self.by_symbol[instrument.symbol] = instrument
            self.by_pair[f"{instrument.base}{instrument.quote}"] = instrument

    def symbol(self, text: str):
        symbol = (text or "").strip().upper().replace("-", "/")
        if not symbol:
            return None
        if symbol in self.by_symbol:
            return self.by_symbol[symbol]
        if symbol in self.by_pair:
            return self.by_pair[symbol]
        raise RowError(f"Nexus does not list the instrument “{text.strip()}”.")

    def pair(self, text: str):
        pair = (text or "").strip().upper().replace("/", "").replace("-", "")
        if pair not in self.by_pair:
            raise RowError(f"Nexus does not list the pair “{text.strip()}”.")
        return self.by_pair[pair]


def _nexus_row(cells: dict[str, str], instruments: _Instruments, seen: dict[str, int]) -> dict:
    kind_text = (cells.get("type") or "").strip().lower()
    if kind_text not in TYPE_ALIASES:
        raise RowError(
            f"Type “{cells.get('type', '')}” is not one of buy, sell, deposit, withdrawal, fee, "
            "transfer_in, transfer_out."
        )
    values = [cells.get(column, "") for column in NEXUS_COLUMNS if column != "external_id"]
    return {
        "kind": TYPE_ALIASES[kind_text],
        "instrument": instruments.symbol(cells.get("symbol", "")),
        "currency": (cells.get("currency") or "").strip() or None,
        "quantity": _number(cells.get("quantity", ""), "Quantity"),
        "price": _number(cells.get("price", ""), "Price"),
        "fee": _number(cells.get("fee", ""), "Fee") or Decimal(0),
        "fee_currency": (cells.get("fee_currency") or "").strip(),
        "executed_at": _datetime(cells.get("date", "")),
        "note": _from_spreadsheet((cells.get("note") or "").strip()),
        "external_id": _from_spreadsheet((cells.get("external_id") or "").strip())
        or _row_id("csv", values, seen),
    }


def _binance_row(
    cells: dict[str, str], instruments: _Instruments, seen: dict[str, int], *, legacy: bool
) -> dict:
    instrument = instruments.pair(cells.get("market" if legacy else "pair", ""))
    side = (cells.get("type" if legacy else "side") or "").strip().upper()
    if side not in ("BUY", "SELL"):
        raise RowError(f"Side “{side}” is neither BUY nor SELL.")
    price = _number(cells.get("price", ""), "Price")
    if legacy:
        quantity = _number(cells.get("amount", ""), "Amount")
        fee = _number(cells.get("fee", ""), "Fee") or Decimal(0)
        fee_currency = (cells.get("fee coin") or "").strip().upper()
    else:
        quantity, unit = _amount_with_unit(cells.get("executed", ""), "Executed")
        if unit and unit != instrument.base:
            raise RowError(f"Executed is in {unit}, expected {instrument.base} for {instrument.symbol}.")
        _, amount_unit = _amount_with_unit(cells.get("amount", ""), "Amount")
        if amount_unit and amount_unit != instrument.quote:
            raise RowError(
                f"Amount is in {amount_unit}, expected {instrument.quote} for {instrument.symbol}."
            )
        fee, fee_currency = _amount_with_unit(cells.get("fee", ""), "Fee")
        fee = fee or Decimal(0)
    columns = BINANCE_LEGACY_COLUMNS if legacy else BINANCE_COLUMNS
    return {
        "kind": TransactionKind.BUY if side == "BUY" else TransactionKind.SELL,
        "instrument": instrument,
        "currency": None,
        "quantity": quantity,
        "price": price,
        "fee": fee,
        "fee_currency": fee_currency,
        "executed_at": _datetime(cells.get("date(utc)", "")),
        "note": "",
        "external_id": _row_id("binance", [cells.get(c, "") for c in columns], seen),
    }


def _summary(fields: dict) -> str:
    what = fields["instrument"].symbol if fields.get("instrument") else (fields.get("currency") or "")
    text = f"{fields['executed_at']:%Y-%m-%d %H:%M} {TransactionKind(fields['kind']).label} "
    text += f"{plain(fields['quantity']) if fields.get('quantity') is not None else '?'} {what}"
    if fields.get("price") is not None:
        text += f" @ {plain(fields['price'])}"
    if fields.get("fee"):
        text += f", fee {plain(fields['fee'])} {fields.get('fee_currency') or ''}".rstrip()
    return text


def import_preview(*, portfolio: Portfolio, content: bytes) -> ImportPreview:
    """Every row's result, checked against the portfolio as it is (FIFO, cash, duplicates). Writes nothing."""
    preview = ImportPreview()
    if len(content) > MAX_IMPORT_BYTES:
        preview.file_errors.append(size_message(len(content)))
        return preview
    try:
        records = _records(_decode(content))
    except DomainError as exc:
        preview.file_errors.append(str(exc))
        return preview
    if not records or not records[0][1]:
        preview.file_errors.append("The file is empty.")
        return preview
    header = records[0][1]
    problem = _cells_problem(["header"] * len(header), header)
    if problem:
        preview.file_errors.append(f"Line 1: {problem}")
        return preview
    columns = [c.strip().lower() for c in header]
    if columns[: len(BINANCE_COLUMNS)] == BINANCE_COLUMNS:
        preview.format, legacy = "binance", False
    elif columns[: len(BINANCE_LEGACY_COLUMNS)] == BINANCE_LEGACY_COLUMNS:
        preview.format, legacy = "binance", True
    elif set(columns) >= NEXUS_REQUIRED:
        preview.format, legacy = "nexus", False
        unknown = set(columns) - set(NEXUS_COLUMNS)
        if unknown:
            preview.file_errors.append(f"Line 1: unknown columns {', '.join(sorted(unknown))}.")
            return preview
    else:
        preview.file_errors.append(
            "Line 1: the header is neither the Nexus format (date,type,symbol,currency,quantity,price,fee,"
            "fee_currency,note,external_id) nor a Binance trade-history export (Date(UTC),Pair,Side,...)."
        )
        return preview

    instruments = _Instruments()
    seen: dict[str, int] = {}
    ids_in_file: dict[str, int] = {}
    for line, cells_list in records[1:]:
        if not any(cell.strip() for cell in cells_list):
            continue
        if len(preview.rows) >= MAX_IMPORT_ROWS:
            preview.file_errors.append(
                f"The file has more than {MAX_IMPORT_ROWS:,} rows; split it into smaller files."
            )
            return preview
        if len(cells_list) > len(columns):
            preview.rows.append(
                ImportRow(
                    line=line,
                    status=RowStatus.ERROR,
                    summary=",".join(cells_list)[:120],
                    message=f"{len(cells_list)} cells, but the header has {len(columns)}.",
                )
            )
            continue
        cells = dict(zip(columns, cells_list, strict=False))
        summary = ",".join(cells_list)[:120]
        try:
            problem = _cells_problem(columns, cells_list)
            if problem:
                raise RowError(problem)
            if preview.format == "binance":
                fields = _binance_row(cells, instruments, seen, legacy=legacy)
            else:
                fields = _nexus_row(cells, instruments, seen)
            if fields["quantity"] is None:
                raise RowError("The quantity is missing.")
            summary = _summary(fields)
            txn = transaction_build(portfolio=portfolio, source=TransactionSource.IMPORT, **fields)
        except RowError as exc:
            preview.rows.append(
                ImportRow(line=line, status=RowStatus.ERROR, summary=summary, message=str(exc))
            )
            continue
        except DomainError as exc:
            label = f"{exc.field.replace('_', ' ').capitalize()}: " if exc.field else ""
            preview.rows.append(
                ImportRow(line=line, status=RowStatus.ERROR, summary=summary, message=f"{label}{exc}")
            )
            continue
        if txn.external_id in ids_in_file:
            preview.rows.append(
                ImportRow(
                    line=line,
                    status=RowStatus.ERROR,
                    summary=summary,
                    message=f"Same external id as line {ids_in_file[txn.external_id]}.",
                )
            )
            continue
        ids_in_file[txn.external_id] = line
        preview.rows.append(ImportRow(line=line, status=RowStatus.NEW, summary=summary, txn=txn))

    if not preview.rows and not preview.file_errors:
        preview.file_errors.append("The file has a header but no rows.")
        return preview
    present = external_ids_present(
        portfolio=portfolio, external_ids=[r.txn.external_id for r in preview.rows if r.txn]
    )
    for row in preview.rows:
        if row.txn is not None and row.txn.external_id in present:
            row.status, row.message, row.txn = RowStatus.DUPLICATE, "Already imported; skipped.", None
    candidates = [row for row in preview.rows if row.status == RowStatus.NEW]
    problems = transactions_apply_many(
        portfolio=portfolio, transactions=[r.txn for r in candidates], dry_run=True
    )
    for problem in problems:
        if problem.index < 0:
            preview.file_errors.append(problem.message)
        else:
            row = candidates[problem.index]
            row.status, row.message = RowStatus.ERROR, problem.message
    return preview


@transaction.atomic
def transactions_import(
    *, user, portfolio: Portfolio, content: bytes, filename: str = "", request: HttpRequest | None = None
) -> ImportPreview:
    """Write the file's new rows if, and only if, every row is valid. Returns the checked preview."""
    ensure_owner(user, portfolio)
    portfolio = portfolio_lock(portfolio)
    preview = import_preview(portfolio=portfolio, content=content)
    if not preview.valid:
        return preview
    new = [row.txn for row in preview.rows if row.status == RowStatus.NEW]
    if new:
        problems = transactions_apply_many(portfolio=portfolio, transactions=new, dry_run=False)
        if problems:  # the lock makes this unreachable unless the rules changed between the two passes
            raise DomainError(problems[0].message)
        audit_record(
            action="portfolio.transactions_imported",
            user=user,
            actor=request_actor(user, request),
            actor_label="" if request_actor(user, request) else user.email,
            target=portfolio,
            after={
                "file": filename[:200],
                "format": preview.format,
                "imported": len(new),
                "skipped_duplicates": preview.duplicate_count,
            },
            request=request,
        )
        push_after_commit(portfolio)
        backfill_after_commit(portfolio)
    return preview


def size_message(size: int) -> str:
    return (
        f"The file is {size / 1024 / 1024:.1f} MB; the limit is {MAX_IMPORT_BYTES // 1024 // 1024} MB. "
        "Split it into smaller files: rows already imported are skipped, so importing in parts is safe."
    )


# --- export -------------------------------------------------------------------------------------------


def transactions_csv(*, transactions) -> str:
    """The Nexus import format, so an export can be imported again (into another portfolio, say)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NEXUS_COLUMNS)
    for txn in transactions:
        writer.writerow(
            [
                txn.executed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                txn.kind,
                txn.instrument.symbol if txn.instrument_id else "",
                "" if txn.instrument_id else txn.currency,
                plain(txn.quantity),
                plain(txn.price) if txn.price is not None else "",
                plain(txn.fee) if txn.fee else "",
                txn.fee_currency if txn.fee else "",
                _spreadsheet_safe(txn.note),
                _spreadsheet_safe(txn.external_id or f"nexus:{txn.pk}"),
            ]
        )
    return out.getvalue()


def positions_csv(*, valuation) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "symbol",
            "quantity",
            "average_cost",
            "cost_basis",
            "price",
            "price_source",
            "market_value",
            "unrealized_pnl",
            "realized_pnl",
            "quote_currency",
            f"value_{valuation.base_currency.lower()}",
        ]
    )
    for line in valuation.lines:
        writer.writerow(
            [
                line.symbol,
                plain(line.quantity),
                plain(line.average_cost) if line.average_cost is not None else "",
                plain(line.cost_basis),
                plain(line.price) if line.price is not None else "",
                line.price_source,
                plain(line.market_value) if line.market_value is not None else "",
                plain(line.unrealized_pnl) if line.unrealized_pnl is not None else "",
                plain(line.realized_pnl),
                line.quote,
                plain(line.value_base) if line.value_base is not None else "",
            ]
        )
    for cash in valuation.cash:
        writer.writerow(
            [
                f"{cash.currency} (cash)",
                plain(cash.amount),
                "",
                "",
                "",
                "",
                plain(cash.amount),
                "",
                "",
                cash.currency,
                plain(cash.value_base) if cash.value_base is not None else "",
            ]
        )
    return out.getvalue()
