"""REST API for portfolios, positions, transactions and performance (under /api/v1/portfolios/).

Input serializers check shapes; services do the work; DomainError and Http404 become problem+json
(core/api.py). Money and quantities travel as strings (exact decimals), never JSON floats.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import BaseCurrency
from core.api import BoundedLimitOffsetPagination
from marketdata.selectors import instrument_get
from portfolios.choices import DECIMAL_PLACES, Period, PortfolioKind, TransactionKind, TransactionSource
from portfolios.selectors import (
    portfolio_get,
    portfolio_history,
    portfolio_list,
    portfolio_valuation,
    transaction_list,
)
from portfolios.services import portfolio_create, transaction_record

MAX_DIGITS = 28


def _decimal_field(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, **kwargs)


class PortfolioOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    base_currency = serializers.CharField()
    kind = serializers.CharField()
    allow_short = serializers.BooleanField()
    exchange_connection_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class ValuationOutput(serializers.Serializer):
    base_currency = serializers.CharField()
    at = serializers.DateTimeField()
    total = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    positions_value = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    cash_value = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    cost_basis = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    unrealized_pnl = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    realized_pnl = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    unpriced = serializers.ListField(child=serializers.CharField())


class PositionOutput(serializers.Serializer):
    id = serializers.IntegerField(source="position_id")
    symbol = serializers.CharField()
    quantity = _decimal_field()
    average_cost = _decimal_field(allow_null=True)
    cost_basis = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    price = _decimal_field(allow_null=True)
    price_source = serializers.CharField()
    market_value = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES, allow_null=True)
    unrealized_pnl = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES, allow_null=True)
    realized_pnl = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    quote_currency = serializers.CharField(source="quote")
    value_base = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES, allow_null=True)


class TransactionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    symbol = serializers.SerializerMethodField()
    currency = serializers.CharField()
    quantity = _decimal_field()
    price = _decimal_field(allow_null=True)
    fee = _decimal_field()
    fee_currency = serializers.CharField()
    executed_at = serializers.DateTimeField()
    note = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    source = serializers.CharField()
    realized_pnl = _decimal_field()

    def get_symbol(self, txn) -> str | None:
        return txn.instrument.symbol if txn.instrument_id else None


class PerformanceOutput(serializers.Serializer):
    period = serializers.CharField()
    start = serializers.DateField(allow_null=True)
    start_value = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    end_value = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    net_flow = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    gain = serializers.DecimalField(max_digits=40, decimal_places=DECIMAL_PLACES)
    total_return_pct = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    twr_pct = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    max_drawdown_pct = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    volatility_pct = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)


class PortfolioListApi(APIView):
    class PortfolioCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=80)
        base_currency = serializers.ChoiceField(choices=BaseCurrency.choices)
        kind = serializers.ChoiceField(choices=PortfolioKind.choices, default=PortfolioKind.MANUAL)
        allow_short = serializers.BooleanField(default=False)

    serializer_class = PortfolioOutput

    @extend_schema(responses=PortfolioOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(PortfolioOutput(portfolio_list(user=request.user), many=True).data)

    @extend_schema(request=PortfolioCreateInputSerializer, responses={201: PortfolioOutput})
    def post(self, request: Request) -> Response:
        data = self.PortfolioCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        portfolio = portfolio_create(user=request.user, request=request, **data.validated_data)
        return Response(PortfolioOutput(portfolio).data, status=status.HTTP_201_CREATED)


class PortfolioDetailApi(APIView):
    class PortfolioDetailOutputSerializer(PortfolioOutput):
        valuation = ValuationOutput()

    serializer_class = PortfolioDetailOutputSerializer

    def get(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        portfolio.valuation = portfolio_valuation(portfolio=portfolio)
        return Response(self.PortfolioDetailOutputSerializer(portfolio).data)


class PositionListApi(APIView):
    serializer_class = PositionOutput

    @extend_schema(responses=PositionOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        return Response(PositionOutput(portfolio_valuation(portfolio=portfolio).lines, many=True).data)


class PerformanceApi(APIView):
    serializer_class = PerformanceOutput

    @extend_schema(responses=PerformanceOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        history = portfolio_history(
            portfolio=portfolio, valuation=portfolio_valuation(portfolio=portfolio), periods=Period.values
        )
        return Response(PerformanceOutput(history.performance, many=True).data)


class TransactionListApi(APIView):
    class TransactionInputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=TransactionKind.choices)
        symbol = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
        currency = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)
        quantity = _decimal_field(min_value=0)
        price = _decimal_field(min_value=0, required=False, allow_null=True, default=None)
        fee = _decimal_field(min_value=0, required=False, default=0)
        fee_currency = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)
        executed_at = serializers.DateTimeField()
        external_id = serializers.CharField(required=False, allow_null=True, default=None, max_length=128)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)

    serializer_class = TransactionOutput

    @extend_schema(responses=TransactionOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(transaction_list(portfolio=portfolio), request, view=self)
        return paginator.get_paginated_response(TransactionOutput(page, many=True).data)

    @extend_schema(request=TransactionInputSerializer, responses={201: TransactionOutput})
    def post(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        data = self.TransactionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        symbol = fields.pop("symbol")
        instrument = instrument_get(symbol=symbol) if symbol else None
        txn = transaction_record(
            user=request.user,
            portfolio=portfolio,
            instrument=instrument,
            currency=fields.pop("currency") or None,
            source=TransactionSource.API,
            request=request,
            **fields,
        )
        return Response(TransactionOutput(txn).data, status=status.HTTP_201_CREATED)
