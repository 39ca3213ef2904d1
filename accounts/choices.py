import zoneinfo

from django.db import models

BASE_CURRENCIES = ["USD", "EUR", "GBP", "USDT", "USDC", "BTC"]


class BaseCurrency(models.TextChoices):
    USD = "USD", "US dollar"
    EUR = "EUR", "Euro"
    GBP = "GBP", "Pound sterling"
    USDT = "USDT", "Tether"
    USDC = "USDC", "USD Coin"
    BTC = "BTC", "Bitcoin"


TIME_ZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]

# Notification kind for changes to a user's access that they did not make themselves (core.notifications).
NOTIFY_ACCOUNT_SECURITY = "account.security"


class ApiScope(models.TextChoices):
    """What an API token may do (core.api.TokenScopePermission): read needs "read", writes need "trade"."""

    READ = "read", "Read: portfolios, orders, market data"
    TRADE = "trade", "Trade: place and cancel orders, change data"


def api_scopes_all() -> list[str]:
    """Every scope: the default of a new token and what tokens made before scopes existed got."""
    return [scope.value for scope in ApiScope]
