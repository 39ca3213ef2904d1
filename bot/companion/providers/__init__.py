"""Language-model providers behind one interface (base.py): OpenAI-compatible servers, and the offline planner.

`provider_get()` picks the OpenAI provider when settings.OPENAI_API_KEY is set, otherwise the offline one.
"""

from __future__ import annotations

from django.conf import settings

from bot.companion.providers.base import Provider, ProviderError, ProviderTurn, ToolCall

__all__ = ["Provider", "ProviderError", "ProviderTurn", "ToolCall", "provider_get"]


def provider_get() -> Provider:
    if settings.OPENAI_API_KEY:
        # Imported here: the openai client is only loaded by processes that use it.
        from bot.companion.providers.openai_provider import openai_provider_from_settings

        return openai_provider_from_settings()
    from bot.companion.providers.offline import OfflineProvider

    return OfflineProvider()
