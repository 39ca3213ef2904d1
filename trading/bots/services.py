"""Writes of bots: create, pause/resume, delete (audited), and a bot's own position moved by its fills."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from core.audit import audit_record
from core.errors import DomainError
from core.money import ZERO, plain
from marketdata.selectors import instrument_get
from trading.choices import BotStatus, OrderSide, Timeframe
from trading.common import decimal_input, positive_input, request_actor
from trading.connections.selectors import connection_trades_portfolio
from trading.decisions.strategies import strategy_params_clean
from trading.entitlements import trading_entitlement_check
from trading.exchanges.base import ExchangeFill
from trading.models import Bot, ExchangeConnection, Fill

BOT_FILL_FIELDS = ["position_quantity", "position_cost", "realized_pnl", "realized_pnl_day", "pnl_day", "updated_at"]


@transaction.atomic
def bot_create(
    *,
    user,
    name: str,
    portfolio,
    connection: ExchangeConnection,
    symbol: str,
    strategy: str,
    params: dict | None = None,
    timeframe: str = Timeframe.M1,
    allocation,
    max_position,
    daily_loss_limit,
    request: HttpRequest | None = None,
) -> Bot:
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the bot a name.", field="name")
    if Bot.objects.filter(user=user, name=name).exists():
        raise DomainError("You already have a bot with that name.", field="name")
    if connection.user_id != user.pk or portfolio.user_id != user.pk:
        raise DomainError("Choose one of your own connections and portfolios.")
    if not connection_trades_portfolio(connection=connection, portfolio=portfolio):
        raise DomainError(
            "Paper connections trade paper portfolios, real exchanges trade your other portfolios.", field="portfolio"
        )
    _fee_check(connection)
    if timeframe not in Timeframe.values:
        raise DomainError("Choose a timeframe.", field="timeframe")
    instrument = instrument_get(symbol=symbol)
    cleaned, params_key = strategy_params_clean(strategy, params)
    allocation = positive_input(allocation, field="allocation", label="Per-trade allocation")
    max_position = positive_input(max_position, field="max_position", label="Maximum position")
    loss_limit = decimal_input(daily_loss_limit, field="daily_loss_limit", label="Daily loss limit")
    if loss_limit is None:
        raise DomainError("Enter the daily loss limit.", field="daily_loss_limit")
    if allocation < instrument.min_notional:
        raise DomainError(
            f"Each trade must be worth at least {plain(instrument.min_notional)} {instrument.quote} "
            f"on {instrument.symbol}.", field="allocation",
        )
    trading_entitlement_check(user=user, feature="bots")
    bot = Bot.objects.create(
        user=user, name=name, portfolio=portfolio, connection=connection, instrument=instrument, strategy=strategy,
        params=cleaned, params_key=params_key, timeframe=timeframe, allocation=allocation,
        max_position=max_position, daily_loss_limit=loss_limit,
    )
    audit_record(action="trading.bot_created", user=user, actor=request_actor(request, user), target=bot,
                 after=_bot_summary(bot), request=request)
    return bot


_UNCHANGED = object()


@transaction.atomic
def bot_update(
    *,
    user,
    bot: Bot,
    name=_UNCHANGED,
    params=_UNCHANGED,
    timeframe=_UNCHANGED,
    allocation=_UNCHANGED,
    max_position=_UNCHANGED,
    daily_loss_limit=_UNCHANGED,
    request: HttpRequest | None = None,
) -> Bot:
    """Change a bot's name, strategy parameters, timeframe or limits, with the checks of `bot_create`.

    Its pair, strategy, connection and portfolio stay: a bot on other ones is another bot. Audited."""
    if bot.user_id != user.pk:
        raise DomainError("That bot is not yours.")
    before = _bot_summary(bot)
    if name is not _UNCHANGED:
        name = (name or "").strip()
        if not name:
            raise DomainError("Give the bot a name.", field="name")
        if Bot.objects.filter(user=user, name=name).exclude(pk=bot.pk).exists():
            raise DomainError("You already have a bot with that name.", field="name")
        bot.name = name
    if params is not _UNCHANGED:
        bot.params, bot.params_key = strategy_params_clean(bot.strategy, params)
    if timeframe is not _UNCHANGED:
        if timeframe not in Timeframe.values:
            raise DomainError("Choose a timeframe.", field="timeframe")
        bot.timeframe = timeframe
    if allocation is not _UNCHANGED:
        bot.allocation = positive_input(allocation, field="allocation", label="Per-trade allocation")
        if bot.allocation < bot.instrument.min_notional:
            raise DomainError(
                f"Each trade must be worth at least {plain(bot.instrument.min_notional)} {bot.instrument.quote} "
                f"on {bot.instrument.symbol}.", field="allocation",
            )
    if max_position is not _UNCHANGED:
        bot.max_position = positive_input(max_position, field="max_position", label="Maximum position")
    if daily_loss_limit is not _UNCHANGED:
        loss_limit = decimal_input(daily_loss_limit, field="daily_loss_limit", label="Daily loss limit")
        if loss_limit is None:
            raise DomainError("Enter the daily loss limit.", field="daily_loss_limit")
        bot.daily_loss_limit = loss_limit
    after = _bot_summary(bot)
    if after == before:
        return bot
    bot.save()
    audit_record(action="trading.bot_updated", user=user, actor=request_actor(request, user), target=bot,
                 before={k: v for k, v in before.items() if after[k] != v},
                 after={k: v for k, v in after.items() if before[k] != v}, request=request)
    return bot


def _fee_check(connection: ExchangeConnection) -> None:
    """Fee validation: bots trade often, so a venue charging more than the configured maximum is refused."""
    limit = Decimal(settings.TRADING_BOT_MAX_TAKER_FEE)
    if connection.taker_fee is None:
        raise DomainError("This connection's fees are unknown; re-validate it before running bots.", field="connection")
    if connection.taker_fee > limit:
        raise DomainError(
            f"{connection.label} charges a {connection.taker_fee * 100:.3f}% taker fee; bots need "
            f"{limit * 100:.3f}% or less.", field="connection",
        )


def _bot_summary(bot: Bot) -> dict:
    return {
        "name": bot.name, "symbol": bot.instrument.symbol, "strategy": bot.strategy, "params": bot.params,
        "timeframe": bot.timeframe, "allocation": bot.allocation, "max_position": bot.max_position,
        "daily_loss_limit": bot.daily_loss_limit, "status": bot.status,
    }


@transaction.atomic
def bot_set_status(*, user, bot: Bot, status: str, request: HttpRequest | None = None) -> Bot:
    if bot.user_id != user.pk:
        raise DomainError("That bot is not yours.")
    if status not in BotStatus.values:
        raise DomainError("Choose running or paused.", field="status")
    if status == BotStatus.ENABLED:
        _fee_check(bot.connection)
    previous = bot.status
    bot.status = status
    bot.save(update_fields=["status", "updated_at"])
    audit_record(action="trading.bot_status_changed", user=user, actor=request_actor(request, user), target=bot,
                 before={"status": previous}, after={"status": status}, request=request)
    return bot


@transaction.atomic
def bot_delete(*, user, bot: Bot, request: HttpRequest | None = None) -> None:
    if bot.user_id != user.pk:
        raise DomainError("That bot is not yours.")
    before = _bot_summary(bot)
    bot.delete()
    audit_record(action="trading.bot_deleted", user=user, actor=request_actor(request, user), before=before,
                 request=request)


def bot_fill_account(bot: Bot, *, side: str, fill: Fill | ExchangeFill, quote: str, today=None) -> None:
    """Move the bot's own position, cost and realized P&L (today's too) by one fill; the caller saves.
    `today` is the UTC day the fill counts for (the replay's simulated day; now by default)."""
    today = today or timezone.now().date()
    if bot.pnl_day != today:
        bot.pnl_day, bot.realized_pnl_day = today, ZERO
    fee_in_quote = fill.fee if fill.fee_currency == quote else ZERO
    if side == OrderSide.BUY:
        bot.position_quantity += fill.quantity
        bot.position_cost += fill.quantity * fill.price + fee_in_quote
    else:
        average = bot.position_cost / bot.position_quantity if bot.position_quantity > 0 else fill.price
        sold = min(fill.quantity, bot.position_quantity)
        realized = fill.quantity * fill.price - fee_in_quote - average * sold
        bot.position_cost -= average * sold
        bot.position_quantity -= sold
        bot.realized_pnl += realized
        bot.realized_pnl_day += realized
