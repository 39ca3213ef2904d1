"""The OpenAI provider: one Chat Completions call with function tools, through the official `openai` client.

Model, base URL, key, timeout and retries come from settings (OPENAI_*), so any server that speaks the Chat
Completions API (OpenAI, Azure-style gateways, vLLM, Ollama, LM Studio...) works. The client itself retries
timeouts, connection errors, 408, 409, 429 and 5xx up to OPENAI_MAX_RETRIES times, honouring Retry-After;
what still fails becomes a ProviderError, `retryable` saying whether asking again later may help.

Tool arguments arrive as a JSON string written by the model. Arguments that are not a JSON object make the
whole turn a retryable ProviderError (the service may ask again); the provider never guesses arguments.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import openai
import structlog
from django.conf import settings
from openai.types.chat import ChatCompletion

from bot.companion.metrics import AI_PROVIDER_ERRORS, AI_PROVIDER_LATENCY, AI_TOKENS
from bot.companion.providers.base import ProviderError, ProviderTurn, ToolCall

logger = structlog.get_logger(__name__)

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
PROVIDER_NAME = "openai"


class OpenAIProviderError(ProviderError):
    """A ProviderError that also says, for logs and metrics, why (`reason`), the HTTP status and request id."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        retryable: bool = False,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.reason = reason
        self.status = status
        self.request_id = request_id


class OpenAIProvider:
    """Chat Completions with `tools` and `tool_choice="auto"`; one instance per configuration, thread-safe."""

    name = PROVIDER_NAME

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str = "",
        timeout_seconds: float = 20.0,
        max_retries: int = 2,
    ) -> None:
        if not api_key:
            raise ProviderError("The OpenAI provider needs an API key (OPENAI_API_KEY).", retryable=False)
        if not model:
            raise ProviderError("The OpenAI provider needs a model name (OPENAI_MODEL).", retryable=False)
        if timeout_seconds <= 0:
            raise ProviderError("OPENAI_TIMEOUT_SECONDS must be more than 0.", retryable=False)
        if max_retries < 0:
            raise ProviderError("OPENAI_MAX_RETRIES must be 0 or more.", retryable=False)
        self.model = model
        self.base_url = base_url or OPENAI_DEFAULT_BASE_URL
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        # An explicit base URL: the client would otherwise read OPENAI_BASE_URL itself, and an empty one breaks it.
        self._client = openai.OpenAI(
            api_key=api_key, base_url=self.base_url, timeout=timeout_seconds, max_retries=max_retries
        )

    def complete(self, *, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ProviderTurn:
        started = time.perf_counter()
        log = logger.bind(provider=self.name, model=self.model)
        try:
            turn, request_id, retries = self._complete(messages=messages, tools=tools)
        except OpenAIProviderError as error:
            elapsed = time.perf_counter() - started
            reason = error.reason
            AI_PROVIDER_ERRORS.labels(provider=self.name, reason=reason).inc()
            AI_PROVIDER_LATENCY.labels(provider=self.name, outcome=reason).observe(elapsed)
            log.warning(
                "companion.provider_failed",
                reason=reason,
                retryable=error.retryable,
                error=str(error),
                status=error.status,
                request_id=error.request_id,
                latency_ms=round(elapsed * 1000),
            )
            raise
        elapsed = time.perf_counter() - started
        AI_PROVIDER_LATENCY.labels(provider=self.name, outcome="ok").observe(elapsed)
        log.info(
            "companion.provider_turn",
            request_id=request_id,
            retries=retries,
            latency_ms=round(elapsed * 1000),
            prompt_tokens=turn.prompt_tokens,
            completion_tokens=turn.completion_tokens,
            tool_calls=[call.name for call in turn.tool_calls],
        )
        return turn

    def _complete(
        self, *, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> tuple[ProviderTurn, str | None, int]:
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:  # tool_choice without tools is a 400 on OpenAI
            request["tools"] = tools
            request["tool_choice"] = "auto"
        try:
            raw = self._client.chat.completions.with_raw_response.create(**request)
            completion = raw.parse()
        except openai.OpenAIError as error:
            raise _provider_error(error, timeout_seconds=self.timeout_seconds) from error
        if not isinstance(completion, ChatCompletion):
            raise OpenAIProviderError(
                "The model server did not answer with a chat completion.",
                reason="malformed_response",
                status=raw.status_code,
                request_id=raw.request_id,
            )
        self._count_tokens(completion)
        try:
            turn = _turn(completion)
        except OpenAIProviderError as error:
            error.request_id = raw.request_id
            raise
        return turn, raw.request_id, raw.retries_taken

    def _count_tokens(self, completion: ChatCompletion) -> None:
        """Tokens the server billed for this answer, even one the provider then rejects (bad arguments)."""
        prompt, answer = _usage(completion)
        AI_TOKENS.labels(provider=self.name, model=self.model, kind="prompt").inc(prompt)
        AI_TOKENS.labels(provider=self.name, model=self.model, kind="completion").inc(answer)


def _usage(completion: ChatCompletion) -> tuple[int, int]:
    """(prompt, completion) tokens; 0 for a server that sends no usage or a malformed one."""
    usage = getattr(completion, "usage", None)
    prompt, answer = getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0)
    return (
        prompt if isinstance(prompt, int) and prompt > 0 else 0,
        answer if isinstance(answer, int) and answer > 0 else 0,
    )


def _turn(completion: ChatCompletion) -> ProviderTurn:
    """The first choice as a ProviderTurn; a malformed body (non-strict parsing leaves fields out) is an error."""
    try:
        if not completion.choices:
            raise OpenAIProviderError(
                "The model server answered with no choices.", reason="malformed_response"
            )
        choice = completion.choices[0]
        message = choice.message
        calls = [_tool_call(call) for call in message.tool_calls or []]
        text = message.content if message.content is not None else message.refusal
        prompt_tokens, completion_tokens = _usage(completion)
    except (AttributeError, TypeError) as error:
        raise OpenAIProviderError(
            f"The model server's answer is not a valid chat completion ({error}).",
            reason="malformed_response",
        ) from error
    if not calls and not text:
        raise OpenAIProviderError(
            f"The model returned neither text nor tool calls (finish_reason {choice.finish_reason}).",
            reason="empty_answer",
            retryable=True,
        )
    if choice.finish_reason == "length":
        logger.warning("companion.provider_truncated", provider=PROVIDER_NAME, model=completion.model)
    return ProviderTurn(
        text=text or None,
        tool_calls=calls,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def _tool_call(call: Any) -> ToolCall:
    if getattr(call, "type", None) != "function":
        raise OpenAIProviderError(
            f"The model asked for a {call.type!r} tool call; only functions are offered.", reason="bad_tool"
        )
    raw = call.function.arguments
    if raw is None or not raw.strip():
        arguments: Any = {}  # some OpenAI-compatible servers send "" for a function without parameters
    else:
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError as error:
            raise OpenAIProviderError(
                f"The model called {call.function.name} with arguments that are not valid JSON ({error.msg}).",
                reason="malformed_tool_arguments",
                retryable=True,
            ) from error
    if not isinstance(arguments, dict):
        raise OpenAIProviderError(
            f"The model called {call.function.name} with arguments that are not a JSON object.",
            reason="malformed_tool_arguments",
            retryable=True,
        )
    return ToolCall(id=call.id, name=call.function.name, arguments=arguments)


def _provider_error(error: openai.OpenAIError, *, timeout_seconds: float) -> OpenAIProviderError:
    if isinstance(error, openai.APITimeoutError):
        return OpenAIProviderError(
            f"The model did not answer within {timeout_seconds:g} s.", reason="timeout", retryable=True
        )
    if isinstance(error, openai.APIConnectionError):
        return OpenAIProviderError(
            "The model server could not be reached.", reason="connection", retryable=True
        )
    if isinstance(error, openai.APIStatusError):
        status, request_id = error.status_code, error.request_id
        code = error.code if isinstance(error.code, str) else None
        if status == 429 and code == "insufficient_quota":
            return OpenAIProviderError(
                "The model provider's quota for this key is used up.",
                reason="quota",
                status=status,
                request_id=request_id,
            )
        if status == 429:
            return OpenAIProviderError(
                "The model provider is rate limiting requests; try again shortly.",
                reason="rate_limited",
                retryable=True,
                status=status,
                request_id=request_id,
            )
        if status in (401, 403):
            return OpenAIProviderError(
                f"The model provider refused the credentials (HTTP {status}); check OPENAI_API_KEY.",
                reason="auth",
                status=status,
                request_id=request_id,
            )
        if status >= 500 or status in (408, 409):
            return OpenAIProviderError(
                f"The model server failed (HTTP {status}).",
                reason="server_error",
                retryable=True,
                status=status,
                request_id=request_id,
            )
        detail = error.body.get("message") if isinstance(error.body, dict) else None
        return OpenAIProviderError(
            f"The model server rejected the request (HTTP {status}: {detail or error.message}).",
            reason="rejected",
            status=status,
            request_id=request_id,
        )
    if isinstance(error, openai.APIResponseValidationError):
        return OpenAIProviderError(
            "The model server's answer could not be read.", reason="malformed_response"
        )
    return OpenAIProviderError(f"The model provider failed: {error}", reason="client_error")


@functools.lru_cache(maxsize=8)
def _provider_cached(
    api_key: str, base_url: str, model: str, timeout_seconds: float, max_retries: int
) -> OpenAIProvider:
    return OpenAIProvider(
        api_key=api_key,
        base_url=base_url,
        model=model,
        timeout_seconds=timeout_seconds,
        max_retries=max_retries,
    )


def openai_provider_from_settings() -> OpenAIProvider:
    """The provider for the OPENAI_* settings, one per configuration per process (its HTTP pool is reused).

    Raises ProviderError (not retryable) when OPENAI_API_KEY is empty.
    """
    return _provider_cached(
        settings.OPENAI_API_KEY,
        settings.OPENAI_BASE_URL,
        settings.OPENAI_MODEL,
        float(settings.OPENAI_TIMEOUT_SECONDS),
        int(settings.OPENAI_MAX_RETRIES),
    )
