"""The AI companion: one question-answering service behind the Discord bot's /ask, DMs and the /assistant page.

Answers come only from tool results (the same selectors and services the pages use, run as the asking user),
and every number in a reply is checked against them (docs/companion.md).
"""
