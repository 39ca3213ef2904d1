"""The strategy tracker API: statistics and journals of bots, strategies, playbook tags and replays; what the
regime gatekeeper saved; replays (simulations) to create and read. Thin views over trading.tracker; another
trader's bot, tag or replay is a 404.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import DB_ID_MAX, BoundedLimitOffsetPagination, OrderingFilter, StrictCharField
from core.inputs import validate_utc_datetime
from trading.bots.selectors import bot_get
from trading.choices import OrderSide, Regime, ReplaySource, ReplayStatus, Timeframe
from trading.decisions.strategies import STRATEGIES
from trading.tracker.selectors import (
    GATE_HORIZONS,
    KINDS,
    gate_outcomes,
    gate_totals,
    replay_get,
    replay_list,
    report_build,
    subject_get,
    subject_list,
)
from trading.tracker.services import replay_create

TRACKER = ["Strategy tracker"]
AMOUNT = {"max_digits": 32, "decimal_places": 12}
QUANTITY = {"max_digits": 28, "decimal_places": 12}
RATIO = {"max_digits": 40, "decimal_places": 8}
SIMULATED_HELP = "True for a replay: a simulation over recorded candles, not real trades."

KIND = OpenApiParameter(
    "kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(KINDS),
    description="bot (key: its id), strategy (key: e.g. sma_crossover), tag (key: the playbook tag) or replay (key: its id).",
)
KEY = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="Which one (see kind).")


class SubjectOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[(k, k) for k in KINDS])
    key = serializers.CharField()
    label = serializers.CharField()
    detail = serializers.CharField()
    simulated = serializers.BooleanField(help_text=SIMULATED_HELP)


class TradeStatsOutput(serializers.Serializer):
    trades = serializers.IntegerField(help_text="Closed round trips.")
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    net_pnl = serializers.DecimalField(**AMOUNT)
    gross_profit = serializers.DecimalField(**AMOUNT)
    gross_loss = serializers.DecimalField(**AMOUNT)
    fees = serializers.DecimalField(**AMOUNT)
    win_rate = serializers.DecimalField(**RATIO, allow_null=True, help_text="A fraction: 0.5 is 50 %.")
    average_win = serializers.DecimalField(**AMOUNT, allow_null=True)
    average_loss = serializers.DecimalField(**AMOUNT, allow_null=True)
    profit_factor = serializers.DecimalField(**RATIO, allow_null=True)
    expectancy = serializers.DecimalField(**AMOUNT, allow_null=True)


class BreakdownOutput(serializers.Serializer):
    label = serializers.CharField()
    stats = TradeStatsOutput()


class EquityPointOutput(serializers.Serializer):
    day = serializers.DateField()
    pnl = serializers.DecimalField(**AMOUNT)
    equity = serializers.DecimalField(**AMOUNT)


class CurveOutput(serializers.Serializer):
    capital = serializers.DecimalField(**AMOUNT, help_text="The most ever in open positions: the base of the returns.")
    max_drawdown = serializers.DecimalField(**AMOUNT)
    max_drawdown_pct = serializers.DecimalField(**RATIO, allow_null=True, help_text="A fraction, 0 or below.")
    sharpe = serializers.DecimalField(
        **RATIO, allow_null=True, help_text="Daily returns, annualised with sqrt(365), risk-free rate 0."
    )
    sortino = serializers.DecimalField(**RATIO, allow_null=True, help_text="As Sharpe, over the downside deviation.")


class ReportOutput(serializers.Serializer):
    subject = SubjectOutput()
    fills = serializers.IntegerField(source="journal.fills")
    realized_pnl = serializers.DecimalField(**AMOUNT, source="journal.realized")
    unrealized_pnl = serializers.DecimalField(**AMOUNT, source="journal.unrealized")
    stats = TradeStatsOutput()
    curve = CurveOutput()
    exposure = serializers.DecimalField(**RATIO, allow_null=True, help_text="Share of the period a position was open.")
    by_regime = BreakdownOutput(many=True)
    by_pair = BreakdownOutput(many=True)
    by_period = BreakdownOutput(many=True, help_text="Per week (Monday, UTC) of the exit.")
    equity_curve = EquityPointOutput(many=True, source="points")


class RoundTripOutput(serializers.Serializer):
    symbol = serializers.CharField()
    direction = serializers.ChoiceField(choices=[("long", "long"), ("short", "short")])
    quantity = serializers.DecimalField(**QUANTITY)
    entry_at = serializers.DateTimeField()
    entry_price = serializers.DecimalField(**QUANTITY)
    exit_at = serializers.DateTimeField(allow_null=True, help_text="Null while the trade is open.")
    exit_price = serializers.DecimalField(**QUANTITY, allow_null=True)
    mark_price = serializers.DecimalField(**QUANTITY, allow_null=True, help_text="An open trade's price now.")
    fees = serializers.DecimalField(**AMOUNT)
    pnl = serializers.DecimalField(**AMOUNT, help_text="Realized, or unrealized at the mark for an open trade.")
    regime = serializers.CharField(help_text="The regime at entry; empty when it was not classified.")
    entry_reason = serializers.CharField()
    exit_reason = serializers.CharField()


class ReplayInput(serializers.Serializer):
    name = StrictCharField(max_length=120)
    symbol = StrictCharField(max_length=32, help_text='A listed pair, "BTC/USDT" or "BTC-USDT".')
    strategy = serializers.ChoiceField(choices=[(s.key, s.label) for s in STRATEGIES.values()])
    params = serializers.DictField(child=serializers.IntegerField(min_value=0, max_value=10**6), required=False)
    timeframe = serializers.ChoiceField(choices=Timeframe.choices)
    allocation = serializers.DecimalField(**AMOUNT, min_value=0)
    max_position = serializers.DecimalField(**QUANTITY, min_value=0)
    daily_loss_limit = serializers.DecimalField(**AMOUNT, min_value=0)
    source = serializers.ChoiceField(choices=ReplaySource.choices, default=ReplaySource.RECORDING)
    start = serializers.DateTimeField(required=False, validators=[validate_utc_datetime], help_text="Stored candles only.")
    end = serializers.DateTimeField(
        required=False, validators=[validate_utc_datetime], help_text="Stored candles only; at most 31 days after start."
    )
    bot = serializers.IntegerField(
        required=False, min_value=1, max_value=DB_ID_MAX, help_text="Link the run to one of your bots."
    )


class ReplayOutput(serializers.Serializer):
    id = serializers.IntegerField()
    simulated = serializers.SerializerMethodField(help_text=SIMULATED_HELP)
    name = serializers.CharField()
    bot = serializers.IntegerField(source="bot_id", allow_null=True)
    symbol = serializers.CharField(source="instrument.symbol")
    strategy = serializers.CharField()
    params = serializers.DictField(child=serializers.IntegerField())
    timeframe = serializers.ChoiceField(choices=Timeframe.choices)
    allocation = serializers.DecimalField(**AMOUNT)
    max_position = serializers.DecimalField(**QUANTITY)
    daily_loss_limit = serializers.DecimalField(**AMOUNT)
    fee_rate = serializers.DecimalField(max_digits=8, decimal_places=6)
    slippage_rate = serializers.DecimalField(max_digits=8, decimal_places=6)
    source = serializers.ChoiceField(choices=ReplaySource.choices)
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=ReplayStatus.choices)
    progress_pct = serializers.IntegerField()
    candles_total = serializers.IntegerField()
    candles_done = serializers.IntegerField()
    decisions = serializers.IntegerField()
    blocked = serializers.IntegerField()
    error = serializers.CharField()
    data_from = serializers.DateTimeField(allow_null=True)
    data_to = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_simulated(self, run) -> bool:
        return True


class GateFilter(serializers.Serializer):
    horizon = serializers.ChoiceField(choices=[(k, k) for k in GATE_HORIZONS], default="24h", required=False)


class GateOutcomeOutput(serializers.Serializer):
    blocked_execution = serializers.IntegerField(source="blocked.pk")
    bot = serializers.IntegerField(source="blocked.bot_id")
    strategy = serializers.CharField(source="blocked.bot.strategy")
    symbol = serializers.CharField(source="blocked.signal.instrument.symbol")
    side = serializers.ChoiceField(choices=OrderSide.choices, source="blocked.side")
    regime = serializers.ChoiceField(choices=Regime.choices, source="blocked.regime")
    signal_at = serializers.DateTimeField(source="blocked.signal.candle_open_time")
    quantity = serializers.DecimalField(**QUANTITY)
    price = serializers.DecimalField(**QUANTITY)
    mark_price = serializers.DecimalField(**QUANTITY, allow_null=True)
    mark_at = serializers.DateTimeField(allow_null=True)
    horizon_reached = serializers.BooleanField()
    would_have_made = serializers.DecimalField(**AMOUNT, allow_null=True, source="pnl")


class GateTotalOutput(serializers.Serializer):
    label = serializers.CharField()
    blocked = serializers.IntegerField()
    marked = serializers.IntegerField()
    would_have_made = serializers.DecimalField(**AMOUNT)
    saved = serializers.DecimalField(**AMOUNT)


class GateOutput(serializers.Serializer):
    horizon = serializers.CharField()
    by_strategy = GateTotalOutput(many=True)
    by_bot = GateTotalOutput(many=True)
    outcomes = GateOutcomeOutput(many=True)


class TrackerApiView(GenericAPIView):
    filter_backends = [OrderingFilter]


class SubjectListApi(TrackerApiView):
    serializer_class = SubjectOutput
    pagination_class = None

    @extend_schema(tags=TRACKER, summary="What can be tracked: bots, strategies, playbook tags, finished replays",
                   responses=SubjectOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(SubjectOutput(subject_list(user=request.user), many=True).data)


class StatsApi(TrackerApiView):
    serializer_class = ReportOutput
    pagination_class = None

    @extend_schema(tags=TRACKER, summary="Statistics, breakdowns and equity curve of a bot, strategy, tag or replay",
                   parameters=[KIND, KEY])
    def get(self, request: Request, kind: str, key: str) -> Response:
        report = report_build(user=request.user, subject=subject_get(user=request.user, kind=kind, key=key))
        return Response(ReportOutput(report).data)


class JournalApi(TrackerApiView):
    serializer_class = RoundTripOutput
    pagination_class = BoundedLimitOffsetPagination

    @extend_schema(tags=TRACKER, summary="The trade journal (round trips, oldest first; open trades last)",
                   parameters=[KIND, KEY], responses=RoundTripOutput(many=True))
    def get(self, request: Request, kind: str, key: str) -> Response:
        report = report_build(user=request.user, subject=subject_get(user=request.user, kind=kind, key=key))
        trips = sorted(report.journal.trips, key=lambda t: (not t.closed, t.entry_at))
        page = self.paginate_queryset(trips)
        return self.get_paginated_response(RoundTripOutput(page, many=True).data)


class GateApi(TrackerApiView):
    serializer_class = GateOutput
    pagination_class = None

    @extend_schema(tags=TRACKER, summary="What the regime gatekeeper's blocks saved or cost, per strategy and bot",
                   parameters=[GateFilter])
    def get(self, request: Request) -> Response:
        filters = GateFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        horizon = filters.validated_data.get("horizon") or "24h"
        outcomes = gate_outcomes(user=request.user, horizon=GATE_HORIZONS[horizon])
        return Response(GateOutput({
            "horizon": horizon, "outcomes": outcomes,
            "by_strategy": gate_totals(outcomes, by="strategy"), "by_bot": gate_totals(outcomes, by="bot"),
        }).data)


REPLAY_EXAMPLE = OpenApiExample(
    "SMA 9/21 over the March 2023 recording",
    value={"name": "Trend test", "symbol": "BTC/USDT", "strategy": "sma_crossover", "params": {"fast": 9, "slow": 21},
           "timeframe": "1m", "allocation": "250", "max_position": "0.1", "daily_loss_limit": "150"},
    request_only=True,
)


class ReplayListApi(TrackerApiView):
    serializer_class = ReplayOutput
    ordering = ("-created_at", "-id")

    @extend_schema(tags=TRACKER, summary="Your replays (simulations), newest first", responses=ReplayOutput(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(replay_list(user=request.user))
        return self.get_paginated_response(ReplayOutput(page, many=True).data)

    @extend_schema(
        tags=TRACKER, summary="Start a replay (a simulation)", request=ReplayInput, responses={201: ReplayOutput},
        description="Runs the live strategy and gatekeeper code over recorded candles in the background; poll "
        "the run until its status is done, then read its statistics at stats/replay/{id}/.",
        examples=[REPLAY_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        payload = ReplayInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        bot = None
        if "bot" in data:
            try:
                bot = bot_get(user=request.user, pk=data["bot"])
            except Http404:
                raise serializers.ValidationError({"bot": ["No such bot."]}) from None
        run = replay_create(
            user=request.user, name=data["name"], symbol=data["symbol"], strategy=data["strategy"],
            params=data.get("params"), timeframe=data["timeframe"], allocation=data["allocation"],
            max_position=data["max_position"], daily_loss_limit=data["daily_loss_limit"], source=data["source"],
            start=data.get("start"), end=data.get("end"), bot=bot, request=request,
        )
        return Response(ReplayOutput(run).data, status=status.HTTP_201_CREATED)


class ReplayDetailApi(TrackerApiView):
    serializer_class = ReplayOutput

    @extend_schema(tags=TRACKER, summary="A replay: its settings, status and progress")
    def get(self, request: Request, pk: int) -> Response:
        return Response(ReplayOutput(replay_get(user=request.user, pk=pk)).data)
