"""Research constants: thesis directions, who may read a published note, thesis outcomes, chart intervals."""

from django.db import models


class Direction(models.TextChoices):
    LONG = "long", "Long"
    SHORT = "short", "Short"


class Audience(models.TextChoices):
    MEMBERS = "members", "Every signed-in member"
    PAYING = "paying", "Members on a paid plan"


class Outcome(models.TextChoices):
    OPEN = "open", "Open"
    TARGET_HIT = "target_hit", "Target hit"
    STOP_HIT = "stop_hit", "Stop hit"
    EXPIRED = "expired", "Expired"


# The candle intervals a note's chart may use: marketdata's timeframes (marketdata.selectors.TIMEFRAMES).
class ChartInterval(models.TextChoices):
    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"
    H1 = "1h", "1 hour"
    D1 = "1d", "1 day"


TITLE_MAX = 200
BODY_MAX = 50_000
TAG_MAX = 32
TAGS_MAX = 10
CHART_ALT_MAX = 500
