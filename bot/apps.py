from django.apps import AppConfig


class BotConfig(AppConfig):
    name = "bot"
    verbose_name = "Bot"

    def ready(self) -> None:
        from bot.discord.notify import discord_available, send_discord
        from core.notifications import register_channel

        # Sent by the Celery worker (not inline); offered to users who linked Discord while a bot token is set.
        register_channel("discord", send_discord, label="Discord", available=discord_available)
