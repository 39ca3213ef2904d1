"""The interface every language-model provider implements.

A provider takes a conversation in the Chat Completions message format (dicts with `role` system, user,
assistant or tool; assistant messages may carry `tool_calls`, tool messages a `tool_call_id`) and the tools
described as Chat Completions function tools, and returns one turn: either tool calls to run, or text.
The tool loop, grounding and metering live in the companion service, not in providers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class ProviderError(Exception):
    """The provider could not answer (timeout, rate limited after retries, refused, unreachable)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ProviderTurn:
    text: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Provider(Protocol):
    name: str

    def complete(self, *, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ProviderTurn:
        """One model turn. Raises ProviderError when no answer can be had."""
        ...
