"""REST API: one transaction (get, delete), CSV import, snapshots, performance for one period, watchlists.

The import goes through portfolios/importing.py exactly as the import page does (a dry run is the page's
preview); watchlists through the same services as /watchlists/. Another user's portfolio, transaction or
watchlist is a 404.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ETagMixin, StrictCharField
from marketdata.selectors import instrument_get, quote_latest_map
from portfolios.api.views import PerformanceOutput, TransactionOutput
from portfolios.choices import DECIMAL_PLACES, Period
from portfolios.importing import (
    MAX_IMPORT_BYTES,
    RowStatus,
    import_preview,
    size_message,
    transactions_import,
)
from portfolios.models import Snapshot
from portfolios.selectors import (
    portfolio_get,
    portfolio_history,
    portfolio_valuation,
    snapshot_list,
    transaction_get,
    watchlist_get,
    watchlist_list,
)
from portfolios.services import (
    transaction_delete,
    watchlist_add,
    watchlist_create,
    watchlist_delete,
    watchlist_remove,
)

AMOUNT = {"max_digits": 40, "decimal_places": DECIMAL_PLACES}


# --- one transaction -----------------------------------------------------------------------------------


def _transaction(request: Request, pk: int, txn_id: int):
    portfolio = portfolio_get(user=request.user, pk=pk)
    txn = transaction_get(user=request.user, pk=txn_id)
    if txn.portfolio_id != portfolio.pk:
        raise exceptions.NotFound("No such transaction.")
    return txn


class TransactionDetailApi(ETagMixin, APIView):
    serializer_class = TransactionOutput

    @extend_schema(summary="Get one transaction", responses={200: TransactionOutput})
    def get(self, request: Request, pk: int, txn_id: int) -> Response:
        return Response(TransactionOutput(_transaction(request, pk, txn_id)).data)

    @extend_schema(
        summary="Delete a transaction",
        description="Removes the transaction and replays the portfolio's history without it; refused (400) "
        "when that would break a later transaction (selling more than was held, say).",
        responses={204: None},
    )
    def delete(self, request: Request, pk: int, txn_id: int) -> Response:
        transaction_delete(user=request.user, txn=_transaction(request, pk, txn_id), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- import --------------------------------------------------------------------------------------------


class ImportInput(serializers.Serializer):
    file = serializers.FileField(
        help_text="A CSV file in the Nexus format (date,type,symbol,currency,quantity,price,fee,fee_currency,"
        f"note,external_id) or a Binance trade-history export; at most {MAX_IMPORT_BYTES // 1024 // 1024} MB."
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Check every row and report what would be imported; write nothing."
    )


class ImportRowOutput(serializers.Serializer):
    line = serializers.IntegerField()
    status = serializers.ChoiceField(choices=[RowStatus.NEW, RowStatus.DUPLICATE, RowStatus.ERROR])
    summary = serializers.CharField()
    message = serializers.CharField()


class ImportOutput(serializers.Serializer):
    format = serializers.ChoiceField(choices=["nexus", "binance"])
    dry_run = serializers.BooleanField()
    imported = serializers.IntegerField(help_text="Transactions written (0 on a dry run).")
    new_count = serializers.IntegerField(help_text="Rows that are new (written, or would be on a dry run).")
    duplicate_count = serializers.IntegerField(help_text="Rows already imported before; skipped.")
    rows = ImportRowOutput(many=True)


class TransactionImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = ImportOutput

    @extend_schema(
        summary="Import transactions from a CSV file",
        description="All or nothing, as on the import page: the file's new rows are written only if every "
        "row is valid; rows imported before (same external id) are skipped, so importing a file again is "
        "safe. Any invalid row is a 400 whose `errors.file` lists each problem by line.",
        request={"multipart/form-data": ImportInput},
        responses={201: ImportOutput, 200: ImportOutput},
    )
    def post(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        data = ImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload, dry_run = data.validated_data["file"], data.validated_data["dry_run"]
        if upload.size > MAX_IMPORT_BYTES:
            raise exceptions.ValidationError({"file": [size_message(upload.size)]})
        content = upload.read()
        if dry_run:
            preview = import_preview(portfolio=portfolio, content=content)
        else:
            preview = transactions_import(
                user=request.user, portfolio=portfolio, content=content, filename=upload.name, request=request
            )
        if not preview.valid:
            raise exceptions.ValidationError(
                {
                    "file": [*preview.file_errors]
                    + [
                        f"Line {row.line}: {row.message}"
                        for row in preview.rows
                        if row.status == RowStatus.ERROR
                    ]
                }
            )
        body = ImportOutput(
            {
                "format": preview.format,
                "dry_run": dry_run,
                "imported": 0 if dry_run else preview.new_count,
                "new_count": preview.new_count,
                "duplicate_count": preview.duplicate_count,
                "rows": preview.rows,
            }
        ).data
        return Response(body, status=status.HTTP_200_OK if dry_run else status.HTTP_201_CREATED)


# --- snapshots and performance -------------------------------------------------------------------------


class SnapshotOutput(serializers.Serializer):
    date = serializers.DateField()
    taken_at = serializers.DateTimeField()
    value = serializers.DecimalField(**AMOUNT)
    cash_value = serializers.DecimalField(**AMOUNT)
    positions_value = serializers.DecimalField(**AMOUNT)
    unrealized_pnl = serializers.DecimalField(**AMOUNT)
    realized_pnl = serializers.DecimalField(**AMOUNT)
    net_flow = serializers.DecimalField(**AMOUNT, help_text="Money added minus taken out that day.")


class SnapshotFilter(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day (inclusive).")
    until = serializers.DateField(required=False, help_text="Last day (inclusive).")

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["Must not be before `since`."]})
        return attrs


class SnapshotListApi(generics.ListAPIView):
    serializer_class = SnapshotOutput
    ordering = ("-date",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's call
            return Snapshot.objects.none()
        portfolio = portfolio_get(user=self.request.user, pk=self.kwargs["pk"])
        filters = SnapshotFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        snapshots = snapshot_list(portfolio=portfolio)
        since: date | None = filters.validated_data.get("since")
        until: date | None = filters.validated_data.get("until")
        if since:
            snapshots = snapshots.filter(date__gte=since)
        if until:
            snapshots = snapshots.filter(date__lte=until)
        return snapshots.order_by("-date")

    @extend_schema(
        summary="List a portfolio's daily snapshots",
        description="One point per UTC day: the portfolio's value at the day's end in its base currency "
        "(the equity curve), newest first.",
        parameters=[SnapshotFilter],
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class CurvePoint(serializers.Serializer):
    time = serializers.DateField()
    value = serializers.DecimalField(**AMOUNT)
    invested = serializers.DecimalField(**AMOUNT, help_text="Money added minus taken out, cumulative.")


class PeriodPerformanceOutput(PerformanceOutput):
    curve = CurvePoint(many=True, help_text="The equity curve over the period, the live value last.")


class PeriodPerformanceApi(ETagMixin, APIView):
    serializer_class = PeriodPerformanceOutput

    @extend_schema(
        summary="Performance over one period, with its equity curve",
        parameters=[
            OpenApiParameter(
                "period",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=Period.values,
                description="The period.",
            )
        ],
        responses={200: PeriodPerformanceOutput},
    )
    def get(self, request: Request, pk: int, period: str) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        if period not in Period.values:
            raise exceptions.NotFound(f"No period {period!r}; one of {', '.join(Period.values)}.")
        history = portfolio_history(
            portfolio=portfolio, valuation=portfolio_valuation(portfolio=portfolio), periods=[period]
        )
        result = history.performance[0]
        start = result.start
        curve = [p for p in history.equity_curve() if start is None or p["time"] >= start.isoformat()]
        return Response(PeriodPerformanceOutput({**asdict(result), "curve": curve}).data)


# --- watchlists ----------------------------------------------------------------------------------------


class WatchlistItemOutput(serializers.Serializer):
    instrument_id = serializers.IntegerField()
    symbol = serializers.CharField(source="instrument.symbol")
    added_at = serializers.DateTimeField()
    price = serializers.DecimalField(max_digits=28, decimal_places=DECIMAL_PLACES, allow_null=True)


class WatchlistOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    items = WatchlistItemOutput(many=True)


def _watchlist_data(watchlists: list) -> list[dict]:
    symbols = {item.instrument.symbol for w in watchlists for item in w.items.all()}
    quotes = quote_latest_map(symbols=symbols)
    rows = []
    for w in watchlists:
        items = list(w.items.all())
        for item in items:
            quote = quotes.get(item.instrument.symbol)
            item.price = quote.price if quote is not None else None
        rows.append({"id": w.pk, "name": w.name, "created_at": w.created_at, "items": items})
    return WatchlistOutput(rows, many=True).data


class WatchlistInput(serializers.Serializer):
    name = StrictCharField(max_length=80)


class WatchlistItemInput(serializers.Serializer):
    symbol = StrictCharField(max_length=32, help_text="A listed instrument, e.g. BTC/USDT.")


class WatchlistListApi(ETagMixin, APIView):
    serializer_class = WatchlistOutput

    @extend_schema(
        summary="List watchlists",
        description="Each with its instruments and their latest prices.",
        responses={200: WatchlistOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(_watchlist_data(list(watchlist_list(user=request.user))))

    @extend_schema(
        summary="Create a watchlist",
        request=WatchlistInput,
        responses={201: WatchlistOutput},
        examples=[OpenApiExample("A watchlist", value={"name": "Majors"}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        data = WatchlistInput(data=request.data)
        data.is_valid(raise_exception=True)
        watchlist = watchlist_create(user=request.user, name=data.validated_data["name"])
        return Response(
            _watchlist_data([watchlist_get(user=request.user, pk=watchlist.pk)])[0],
            status=status.HTTP_201_CREATED,
        )


class WatchlistDetailApi(ETagMixin, APIView):
    serializer_class = WatchlistOutput

    @extend_schema(summary="Get a watchlist", responses={200: WatchlistOutput})
    def get(self, request: Request, pk: int) -> Response:
        return Response(_watchlist_data([watchlist_get(user=request.user, pk=pk)])[0])

    @extend_schema(summary="Delete a watchlist", responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        watchlist_delete(user=request.user, watchlist=watchlist_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WatchlistItemListApi(APIView):
    serializer_class = WatchlistOutput

    @extend_schema(
        summary="Add an instrument to a watchlist",
        description="Adding one already on the list changes nothing.",
        request=WatchlistItemInput,
        responses={201: WatchlistOutput},
        examples=[OpenApiExample("Add BTC", value={"symbol": "BTC/USDT"}, request_only=True)],
    )
    def post(self, request: Request, pk: int) -> Response:
        watchlist = watchlist_get(user=request.user, pk=pk)
        data = WatchlistItemInput(data=request.data)
        data.is_valid(raise_exception=True)
        instrument = instrument_get(symbol=data.validated_data["symbol"])
        watchlist_add(user=request.user, watchlist=watchlist, instrument=instrument)
        return Response(
            _watchlist_data([watchlist_get(user=request.user, pk=pk)])[0], status=status.HTTP_201_CREATED
        )


class WatchlistItemDetailApi(APIView):
    @extend_schema(summary="Remove an instrument from a watchlist", responses={204: None})
    def delete(self, request: Request, pk: int, instrument_id: int) -> Response:
        watchlist = watchlist_get(user=request.user, pk=pk)
        if not any(item.instrument_id == instrument_id for item in watchlist.items.all()):
            raise exceptions.NotFound("That instrument is not on this watchlist.")
        watchlist_remove(user=request.user, watchlist=watchlist, instrument_id=instrument_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
