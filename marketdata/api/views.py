"""The markets API: listed pairs, their latest quotes and their candles, read through marketdata.selectors."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ETagMixin, OrderingFilter
from core.errors import DomainError
from marketdata.api.serializers import CandleFilter, CandleOutput, InstrumentOutput, QuoteFilter, QuoteOutput
from marketdata.selectors import candle_list, candles_memo, instrument_get, instrument_list, quote_latest_map

MARKETS = ["Markets"]
PAIR = OpenApiParameter(
    "symbol", OpenApiTypes.STR, OpenApiParameter.PATH, description='The pair with a dash, e.g. "BTC-USDT".'
)


class ApiView(GenericAPIView):
    """Filters go through the selectors (a query serializer each), so of the default filter backends only the
    ordering one stays: it hands the view's `ordering` to the cursor pagination."""

    filter_backends = [OrderingFilter]


def _pair(symbol: str):
    """The listed instrument named in a path; an unknown one is a 404."""
    try:
        return instrument_get(symbol=symbol)
    except DomainError as error:
        raise Http404(str(error)) from error


class InstrumentListApi(ETagMixin, ApiView):
    serializer_class = InstrumentOutput
    pagination_class = None

    @extend_schema(tags=MARKETS, summary="List the pairs Nexus trades", responses=InstrumentOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(InstrumentOutput(instrument_list(), many=True).data)


class InstrumentDetailApi(ETagMixin, ApiView):
    serializer_class = InstrumentOutput

    @extend_schema(tags=MARKETS, summary="Get a pair", parameters=[PAIR])
    def get(self, request: Request, symbol: str) -> Response:
        return Response(InstrumentOutput(_pair(symbol)).data)


class QuoteListApi(ApiView):
    serializer_class = QuoteOutput
    pagination_class = None

    @extend_schema(
        tags=MARKETS,
        summary="Latest quotes of pairs",
        parameters=[QuoteFilter],
        description="Pairs without a quote yet are left out. An unlisted pair is a 400.",
        responses=QuoteOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = QuoteFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data.get("symbols")
        if wanted:
            symbols = [instrument_get(symbol=s).symbol for s in wanted.split(",") if s.strip()]
        else:
            symbols = list(instrument_list().values_list("symbol", flat=True))
        quotes = quote_latest_map(symbols=symbols)
        return Response(QuoteOutput([quotes[s] for s in symbols if s in quotes], many=True).data)


class InstrumentQuoteApi(ETagMixin, ApiView):
    serializer_class = QuoteOutput

    @extend_schema(
        tags=MARKETS,
        summary="A pair's latest quote",
        parameters=[PAIR],
        description="404 when the pair is not listed or has no quote yet.",
    )
    def get(self, request: Request, symbol: str) -> Response:
        instrument = _pair(symbol)
        quote = quote_latest_map(symbols=[instrument.symbol]).get(instrument.symbol)
        if quote is None:
            raise Http404("This pair has no quote yet.")
        return Response(QuoteOutput(quote).data)


class CandleListApi(ApiView):
    serializer_class = CandleOutput
    pagination_class = None

    @extend_schema(
        tags=MARKETS,
        summary="A pair's candles, oldest first",
        parameters=[PAIR, CandleFilter],
        description="The newest `limit` bars of the range, from the stored one-minute candles.",
        responses=CandleOutput(many=True),
    )
    def get(self, request: Request, symbol: str) -> Response:
        instrument = _pair(symbol)
        filters = CandleFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        interval, limit, start, end = data["interval"], data["limit"], data.get("start"), data.get("end")

        def render() -> list:
            bars = candle_list(symbol=instrument.symbol, timeframe=interval, limit=limit, start=start, end=end)
            return list(CandleOutput(bars, many=True).data)

        # Rendered once per process while the pair's candles are unchanged (every chart reads the same).
        return Response(candles_memo.get(instrument.pk, ("api", interval, limit, start, end), render))
