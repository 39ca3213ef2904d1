"""The Discord side of the companion (docs/companion.md).

- `commands`: what each slash command does, as plain synchronous functions that run inside the member's
  tenant and return a `render.Reply` (tested without Discord);
- `render`: replies as embeds within Discord's limits (long answers split across embeds and messages);
- `chart`: candles drawn to a PNG, from the same stored candles as the market page;
- `client`: the nextcord client and its slash commands (thin: parse, run the command on the ORM pool,
  send the embeds);
- `runner`: the process `manage.py runbot` runs (reconnects, heartbeat, metrics, clean stop);
- `notify`: the `discord` notification channel (direct messages through Discord's REST API, sent by Celery).
"""
