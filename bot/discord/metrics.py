"""Prometheus metrics of the bot process, served on DISCORD_BOT_METRICS_PORT (default 9109) by `runbot`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMANDS = Counter(
    "nexus_discord_commands_total",
    "Slash commands and DMs handled, by command and outcome.",
    ["command", "outcome"],
)
LATENCY = Histogram(
    "nexus_discord_command_seconds",
    "From receiving a command to its last message sent.",
    ["command"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
)
ERRORS = Counter("nexus_discord_errors_total", "Unexpected failures, by where they happened.", ["where"])
AI_TOKENS = Counter(
    "nexus_discord_ai_tokens_total", "AI tokens used by companion answers in Discord.", ["kind"]
)
IN_FLIGHT = Gauge("nexus_discord_commands_in_flight", "Commands being handled right now.")
CONNECTED = Gauge("nexus_discord_gateway_connected", "1 while the bot is connected to Discord's gateway.")
RECONNECTS = Counter("nexus_discord_reconnects_total", "Times the bot (re)started its connection to Discord.")
