"""What each slash command does, as plain synchronous functions: the nextcord handlers (bot/discord/client.py)
parse the interaction, run `command_run` on the ORM pool and send the embeds it returns.

Who is asking is resolved from the Discord user id through the account link (accounts.selectors); every read
or write of a member's data then runs inside `tenant(<their user id>)`, so row-level security holds for the
bot exactly as for the web. Bad input answers with the DomainError's message; a member who has not linked
their account gets the link to /settings/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.http import Http404
from django.urls import reverse

from accounts.selectors import discord_user_resolve
from accounts.services import discord_link_redeem, discord_unlink
from alerts.choices import WINDOW_LABELS, AlertKind
from alerts.selectors import alert_get, alert_list
from alerts.services import alert_create, alert_delete, alert_pause
from billing.choices import Feature
from billing.selectors import entitlement_remaining, entitlement_usage, user_plan
from bot.discord.chart import candles_png
from bot.discord.render import COLOR_OK, Attachment, Field, Reply, error_reply
from core.errors import DomainError
from core.rls import tenant
from marketdata.selectors import TIMEFRAMES, candle_list, instrument_get, quote_latest_map
from portfolios.selectors import portfolio_list, portfolio_valuation
from portfolios.templatetags.portfolio_format import money, pct, price, quantity, signed_money
from trading.bots.selectors import bot_get, bot_list
from trading.bots.services import bot_set_status
from trading.choices import BotStatus
from trading.decisions.selectors import regime_latest_map
from trading.orders.selectors import order_list

CHART_CANDLES = 120
LIST_LIMIT = 15
ALERT_CONDITIONS = {
    "above": AlertKind.PRICE_ABOVE,
    "below": AlertKind.PRICE_BELOW,
    "cross": AlertKind.PRICE_CROSS,
    "move": AlertKind.PERCENT_MOVE,
}


@dataclass(frozen=True)
class Member:
    """The Discord account behind an interaction or a message."""

    discord_user_id: str
    username: str = ""
    global_name: str = ""


def link_url() -> str:
    return f"{settings.SITE_URL.rstrip('/')}{reverse('account_settings')}"


def not_linked_reply() -> Reply:
    return Reply(
        title="Link your Nexus account first",
        description=(
            "This command answers from your own Nexus data, so Nexus needs to know who you are.\n"
            f"1. Open {link_url()} and under **Discord** choose *Get a link code* (or *Connect with Discord*).\n"
            "2. Send `/link CODE` here.\n"
            "`/price`, `/chart`, `/regime` and `/help` work without linking."
        ),
        url=link_url(),
    )


# --- Commands that need no link -------------------------------------------------------------------------


def help_reply(member: Member, user=None) -> Reply:
    lines = [
        "`/portfolio` your portfolios' value and P&L",
        "`/position <symbol>` one holding, e.g. BTC or BTC/USDT",
        "`/price <pair>` the latest price and 24h change",
        "`/chart <pair> [interval]` a candle chart (1m, 5m, 1h, 1d)",
        "`/regime <pair>` the regime gatekeeper's latest reading",
        "`/alerts list|add|pause|remove` your alerts",
        "`/bots list|pause|resume` your trading bots",
        "`/orders [open|recent]` your orders",
        "`/ask <question>` ask the companion about your trading (or DM the bot)",
        "`/usage` AI queries left this month",
        "`/link CODE`, `/unlink` connect or disconnect your Nexus account",
    ]
    footer = "Your own numbers are only shown to you unless you set share: True."
    return Reply(title="Nexus commands", description="\n".join(lines), footer=footer, private=True)


def link(member: Member, user=None, *, code: str) -> Reply:
    linked = discord_link_redeem(
        discord_user_id=member.discord_user_id,
        code=code,
        username=member.username,
        global_name=member.global_name,
    )
    return Reply(
        title="Linked",
        description=f"This Discord account is now linked to the Nexus account **{linked.label}**. "
        "Try `/portfolio`. Send `/unlink` to undo.",
        color=COLOR_OK,
    )


def price_reply(member: Member, user=None, *, pair: str) -> Reply:
    instrument = instrument_get(symbol=pair)
    quote = quote_latest_map(symbols=[instrument.symbol]).get(instrument.symbol)
    if quote is None:
        raise DomainError(f"There is no price for {instrument.symbol} yet: the market feed has not sent one.")
    places = instrument.price_precision
    fields = [
        Field("Price", f"{price(quote.price, places)} {instrument.quote}", True),
        Field("24h change", pct(quote.change_pct), True),
    ]
    if quote.bid is not None and quote.ask is not None:
        fields.append(Field("Bid / ask", f"{price(quote.bid, places)} / {price(quote.ask, places)}", True))
    footer = f"Updated {quote.updated_at:%Y-%m-%d %H:%M:%S} UTC" + (
        " (stale: the feed is behind)" if quote.stale else ""
    )
    return Reply(title=instrument.symbol, fields=fields, footer=footer, private=False)


def chart(member: Member, user=None, *, pair: str, interval: str = "1h") -> Reply:
    interval = (interval or "1h").strip().lower()
    if interval not in TIMEFRAMES:
        raise DomainError(f"The interval must be one of {', '.join(TIMEFRAMES)}.", field="interval")
    instrument = instrument_get(symbol=pair)
    bars = candle_list(symbol=instrument.symbol, timeframe=interval, limit=CHART_CANDLES)
    if not bars:
        raise DomainError(f"No candles are stored for {instrument.symbol} yet.")
    filename = f"{instrument.symbol.replace('/', '-')}-{interval}.png"
    png = candles_png(bars, title=instrument.symbol, timeframe=interval)
    return Reply(
        title=f"{instrument.symbol} · {interval}",
        description=f"Last {len(bars)} candles, close {price(bars[-1].close, instrument.price_precision)} "
        f"{instrument.quote}.",
        image=Attachment(filename=filename, data=png),
        private=False,
    )


def regime(member: Member, user=None, *, pair: str) -> Reply:
    instrument = instrument_get(symbol=pair)
    reading = regime_latest_map().get(instrument.symbol)
    if reading is None:
        raise DomainError(f"The regime gatekeeper has no reading for {instrument.symbol} yet.")
    return Reply(
        title=f"{instrument.symbol} regime: {reading.get_regime_display()}",
        fields=[
            Field("Timeframe", reading.timeframe, True),
            Field("SMA slope", f"{quantity(reading.sma_slope_pct.quantize(Decimal('0.0001')))}%", True),
            Field("ADX", quantity(reading.adx.quantize(Decimal("0.01"))), True),
        ],
        footer=f"As of {reading.as_of:%Y-%m-%d %H:%M} UTC. Not investment advice.",
        private=False,
    )


# --- A member's own data (inside their tenant) ------------------------------------------------------------


def unlink(member: Member, user) -> Reply:
    discord_unlink(user=user, via="discord")
    return Reply(
        title="Unlinked",
        description="This Discord account is no longer linked to Nexus. "
        "Nexus will not send you Discord messages any more.",
        color=COLOR_OK,
    )


def portfolio(member: Member, user) -> Reply:
    portfolios = list(portfolio_list(user=user))
    if not portfolios:
        return Reply(title="No portfolios yet", description=f"Create one at {settings.SITE_URL}.")
    fields = []
    for item in portfolios[:LIST_LIMIT]:
        v = portfolio_valuation(portfolio=item)
        cur = v.base_currency
        lines = [
            f"Value **{money(v.total, cur)} {cur}** (positions {money(v.positions_value, cur)}, "
            f"cash {money(v.cash_value, cur)})",
            f"Unrealized P&L {signed_money(v.unrealized_pnl, cur)} · realized {signed_money(v.realized_pnl, cur)}",
        ]
        for line in sorted(v.lines, key=lambda line: line.value_base or 0, reverse=True)[:5]:
            lines.append(
                f"• {line.symbol}: {quantity(line.quantity)} @ {price(line.price)} "
                f"({signed_money(line.unrealized_pnl, line.quote)} {line.quote})"
            )
        if v.unpriced:
            lines.append(f"No price for {', '.join(v.unpriced)}.")
        fields.append(Field(item.name, "\n".join(lines)))
    return Reply(title="Your portfolios", fields=fields)


def position(member: Member, user, *, symbol: str) -> Reply:
    wanted = symbol.strip().upper().replace("-", "/")
    if not wanted:
        raise DomainError("Name a holding, e.g. BTC or BTC/USDT.", field="symbol")
    if "/" in wanted:
        wanted = instrument_get(symbol=wanted).symbol
    fields = []
    for item in portfolio_list(user=user):
        v = portfolio_valuation(portfolio=item)
        for line in v.lines:
            if wanted not in (line.symbol, line.base) or not line.quantity:
                continue
            fields.append(
                Field(
                    f"{item.name}: {line.symbol}",
                    "\n".join(
                        [
                            f"Quantity {quantity(line.quantity)} {line.base}",
                            f"Average cost {price(line.average_cost)} · price {price(line.price)} {line.quote}",
                            f"Value {money(line.market_value, line.quote)} {line.quote}",
                            f"Unrealized P&L {signed_money(line.unrealized_pnl, line.quote)} {line.quote} "
                            f"({pct(line.unrealized_pct)})",
                            f"Realized P&L {signed_money(line.realized_pnl, line.quote)} {line.quote}",
                        ]
                    ),
                )
            )
    if not fields:
        raise DomainError(f"You hold no {wanted} in any portfolio.", field="symbol")
    return Reply(title=f"Your {wanted} position", fields=fields)


def _alert_line(alert) -> str:
    what = alert.get_kind_display()
    market = alert.instrument.symbol if alert.instrument_id else ""
    level = quantity(alert.threshold) if alert.threshold is not None else ""
    window = f" in {WINDOW_LABELS.get(alert.window_minutes, '')}" if alert.window_minutes else ""
    return (
        f"#{alert.pk} {market} {what} {level}{'%' if alert.kind == AlertKind.PERCENT_MOVE else ''}{window} · "
        f"{alert.get_state_display()}"
    )


def alerts_list(member: Member, user) -> Reply:
    alerts = list(alert_list(user=user)[:50])
    if not alerts:
        return Reply(title="No alerts", description="Add one with `/alerts add`.")
    return Reply(title="Your alerts", description="\n".join(_alert_line(a) for a in alerts))


def alerts_add(
    member: Member, user, *, condition: str, pair: str, level: str, window: int | None = None
) -> Reply:
    kind = ALERT_CONDITIONS.get((condition or "").strip().lower())
    if kind is None:
        raise DomainError(f"The condition must be one of {', '.join(ALERT_CONDITIONS)}.", field="condition")
    if kind == AlertKind.PERCENT_MOVE and window is not None and window not in WINDOW_LABELS:
        choices = ", ".join(str(minutes) for minutes in WINDOW_LABELS)
        raise DomainError(f"The window must be one of {choices} (minutes).", field="window_minutes")
    alert = alert_create(
        user=user,
        kind=kind,
        symbol=pair,
        threshold=level,
        window_minutes=window if kind == AlertKind.PERCENT_MOVE else None,
    )
    return Reply(title="Alert added", description=_alert_line(alert), color=COLOR_OK)


def alerts_pause(member: Member, user, *, alert_id: int) -> Reply:
    alert = alert_pause(user=user, alert=alert_get(user=user, alert_id=alert_id))
    return Reply(title="Alert paused", description=_alert_line(alert), color=COLOR_OK)


def alerts_remove(member: Member, user, *, alert_id: int) -> Reply:
    alert = alert_get(user=user, alert_id=alert_id)
    line = _alert_line(alert)
    alert_delete(user=user, alert=alert)
    return Reply(title="Alert removed", description=line, color=COLOR_OK)


def _bot_line(bot) -> str:
    return f"#{bot.pk} **{bot.name}** {bot.instrument.symbol} · {bot.strategy} · {bot.get_status_display()}"


def bots_list(member: Member, user) -> Reply:
    bots = list(bot_list(user=user).order_by("name")[:50])
    if not bots:
        return Reply(title="No bots", description="Create one on the Bots page.")
    return Reply(title="Your bots", description="\n".join(_bot_line(b) for b in bots))


def _bot_status(user, bot_id: int, status: str) -> Reply:
    bot = bot_set_status(user=user, bot=bot_get(user=user, pk=bot_id), status=status)
    return Reply(title=f"Bot {bot.get_status_display().lower()}", description=_bot_line(bot), color=COLOR_OK)


def bots_pause(member: Member, user, *, bot_id: int) -> Reply:
    return _bot_status(user, bot_id, BotStatus.PAUSED)


def bots_resume(member: Member, user, *, bot_id: int) -> Reply:
    return _bot_status(user, bot_id, BotStatus.ENABLED)


def orders(member: Member, user, *, which: str = "open") -> Reply:
    which = (which or "open").strip().lower()
    if which not in ("open", "recent"):
        raise DomainError("Choose open or recent.", field="which")
    rows = list(order_list(user=user, open_only=which == "open")[:LIST_LIMIT])
    if not rows:
        return Reply(title="No open orders" if which == "open" else "No orders yet")
    lines = []
    for order in rows:
        at = f" @ {price(order.price, order.instrument.price_precision)}" if order.price is not None else ""
        filled = f", filled {quantity(order.filled_quantity)}" if order.filled_quantity else ""
        lines.append(
            f"{order.created_at:%m-%d %H:%M} {order.get_side_display()} {quantity(order.quantity)} "
            f"{order.instrument.symbol} {order.get_type_display().lower()}{at} · "
            f"{order.get_status_display()}{filled}"
        )
    return Reply(
        title="Your open orders" if which == "open" else "Your recent orders", description="\n".join(lines)
    )


def usage(member: Member, user) -> Reply:
    plan = user_plan(user=user)
    remaining = entitlement_remaining(user=user, feature=Feature.AI_QUERIES)
    used = entitlement_usage(user=user, feature=Feature.AI_QUERIES)
    left = "unlimited" if remaining is None else str(remaining)
    return Reply(
        title="AI companion usage",
        fields=[
            Field("Plan", plan.name, True),
            Field("Used this month", str(used), True),
            Field("Left", left, True),
        ],
        footer=f"Upgrade or manage your plan at {settings.SITE_URL.rstrip('/')}{reverse('billing')}",
    )


# --- Dispatch ----------------------------------------------------------------------------------------------

# name -> (function, needs a linked account)
COMMANDS: dict[str, tuple[Callable[..., Reply], bool]] = {
    "help": (help_reply, False),
    "link": (link, False),
    "price": (price_reply, False),
    "chart": (chart, False),
    "regime": (regime, False),
    "unlink": (unlink, True),
    "portfolio": (portfolio, True),
    "position": (position, True),
    "alerts list": (alerts_list, True),
    "alerts add": (alerts_add, True),
    "alerts pause": (alerts_pause, True),
    "alerts remove": (alerts_remove, True),
    "bots list": (bots_list, True),
    "bots pause": (bots_pause, True),
    "bots resume": (bots_resume, True),
    "orders": (orders, True),
    "usage": (usage, True),
}


def command_run(name: str, member: Member, **options) -> Reply:
    """Run the command `name` for `member`. A member's own data is read and written only inside their
    tenant; bad input becomes an error reply naming what was wrong. Anything else propagates (the client
    logs it and apologises)."""
    function, needs_link = COMMANDS[name]
    try:
        if not needs_link:
            return function(member, None, **options)
        user = discord_user_resolve(discord_user_id=member.discord_user_id)
        if user is None:
            return not_linked_reply()
        with tenant(user.pk):
            return function(member, user, **options)
    except DomainError as exc:
        return error_reply(str(exc))
    except Http404 as exc:
        return error_reply(str(exc) or "Not found.")
