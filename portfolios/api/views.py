"""REST API for portfolios, positions, transactions and performance (under /api/v1/portfolios/).

Input serializers check shapes; services do the work; DomainError and Http404 become problem+json
(core/api.py). Money and quantities travel as strings (exact decimals), never JSON floats.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import BaseCurrency
from core.api import ETagMixin, StrictCharField, problem_responses
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


# A name needs a character other than a space (the schema says so too, as a pattern).
_NOT_BLANK = RegexValidator(r"\S", message="Give a name that is not only spaces.")


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


class PortfolioCreateInput(serializers.Serializer):
    name = StrictCharField(max_length=80, validators=[_NOT_BLANK])
    base_currency = serializers.ChoiceField(choices=BaseCurrency.choices)
    kind = serializers.ChoiceField(choices=PortfolioKind.choices, default=PortfolioKind.MANUAL)
    allow_short = serializers.BooleanField(default=False)


class PortfolioListApi(ETagMixin, APIView):
    serializer_class = PortfolioOutput

    @extend_schema(summary="Your portfolios", responses=PortfolioOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(PortfolioOutput(portfolio_list(user=request.user), many=True).data)

    @extend_schema(
        summary="Create a portfolio",
        request=PortfolioCreateInput,
        responses={201: PortfolioOutput, **problem_responses(400)},
        examples=[
            OpenApiExample("Manual", value={"name": "Long term", "base_currency": "USD"}, request_only=True)
        ],
    )
    def post(self, request: Request) -> Response:
        data = PortfolioCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        portfolio = portfolio_create(user=request.user, request=request, **data.validated_data)
        return Response(PortfolioOutput(portfolio).data, status=status.HTTP_201_CREATED)


class PortfolioDetailOutput(PortfolioOutput):
    valuation = ValuationOutput()


class PortfolioDetailApi(APIView):
    serializer_class = PortfolioDetailOutput

    @extend_schema(summary="A portfolio with its current valuation", responses=PortfolioDetailOutput)
    def get(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        portfolio.valuation = portfolio_valuation(portfolio=portfolio)
        return Response(PortfolioDetailOutput(portfolio).data)


class PositionListApi(APIView):
    serializer_class = PositionOutput

    @extend_schema(summary="A portfolio's positions, valued now", responses=PositionOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        return Response(PositionOutput(portfolio_valuation(portfolio=portfolio).lines, many=True).data)


class PerformanceApi(APIView):
    serializer_class = PerformanceOutput

    @extend_schema(
        summary="A portfolio's performance over each period", responses=PerformanceOutput(many=True)
    )
    def get(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        history = portfolio_history(
            portfolio=portfolio, valuation=portfolio_valuation(portfolio=portfolio), periods=Period.values
        )
        return Response(PerformanceOutput(history.performance, many=True).data)


class TransactionInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TransactionKind.choices)
    symbol = StrictCharField(required=False, allow_blank=True, default="", max_length=32)
    currency = StrictCharField(required=False, allow_blank=True, default="", max_length=16)
    quantity = _decimal_field(min_value=0)
    price = _decimal_field(min_value=0, required=False, allow_null=True, default=None)
    fee = _decimal_field(min_value=0, required=False, default=0)
    fee_currency = StrictCharField(required=False, allow_blank=True, default="", max_length=16)
    executed_at = serializers.DateTimeField()
    external_id = StrictCharField(required=False, allow_null=True, default=None, max_length=128)
    note = StrictCharField(required=False, allow_blank=True, default="", max_length=500)


class TransactionListApi(GenericAPIView):
    serializer_class = TransactionOutput
    # Newest first; the cursor pages through executed_at (ties keep their order).
    ordering = ("-executed_at", "-id")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator: only the model is needed
            return transaction_list(portfolio=None)
        return transaction_list(portfolio=portfolio_get(user=self.request.user, pk=self.kwargs["pk"]))

    @extend_schema(summary="A portfolio's transactions, newest first", responses=TransactionOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TransactionOutput(page, many=True).data)

    @extend_schema(
        summary="Record a trade, deposit or withdrawal",
        request=TransactionInput,
        responses={201: TransactionOutput, **problem_responses(400)},
        examples=[
            OpenApiExample(
                "Buy",
                value={
                    "kind": "buy",
                    "symbol": "BTC/USDT",
                    "quantity": "0.5",
                    "price": "64000",
                    "executed_at": "2026-11-30T12:00:00Z",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        portfolio = portfolio_get(user=request.user, pk=pk)
        data = TransactionInput(data=request.data)
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
