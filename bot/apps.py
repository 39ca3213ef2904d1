from django.apps import AppConfig


class BotConfig(AppConfig):
    name = "bot"
    verbose_name = "Bot"

    def ready(self) -> None:
        from bot.discord.notify import discord_available, post_to_channel, send_discord
        from core.channel_posts import register_channel_poster
        from core.notifications import register_channel

        # Sent by the Celery worker (not inline); offered to users who linked Discord while a bot token is set.
        register_channel("discord", send_discord, label="Discord", available=discord_available)
        # Posts to a Discord channel (automation rules' "post to Discord" action), through the same REST client.
        register_channel_poster("discord", post_to_channel)
