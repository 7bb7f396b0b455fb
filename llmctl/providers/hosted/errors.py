"""SDK exceptions → one-line LlmctlErrors that say what failed and what to try.

The OpenAI and Anthropic SDKs share their exception names (APITimeoutError,
RateLimitError, ...), so one translation serves both: the adapter passes its SDK
module in. The SDKs have already retried what is worth retrying
(``max_retries``) by the time an error gets here.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import httpx2

from llmctl.domain import plural
from llmctl.errors import (
    AuthenticationError,
    ContextLengthError,
    InputError,
    LlmctlError,
    ModelNotFoundError,
    ProviderError,
)
from llmctl.providers.hosted.base import Endpoint
from llmctl.providers.hosted.credentials import ApiKey, default_key_env, scrub

_MAX_DETAIL = 300
# A run of this many characters of the key is treated as the key: a server that echoes a
# key cut short (or a cut of ours) must not leak its first or last part either.
KEY_FRAGMENT = 8

# "maximum context length is 128000 tokens. However, your messages resulted in 129024 tokens" (OpenAI),
# "... However, you requested 5000 tokens (4000 in the messages, 1000 in the completion)" (vLLM, older),
# "... However, your request has 3000 input tokens" (vLLM), "prompt is too long: 208310 tokens > 200000 maximum"
# and "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000" (Anthropic).
_LIMIT = re.compile(r"(?:maximum context length|context length|context window) (?:is|of) (\d+)", re.I)
_INPUT_PATTERNS = (
    re.compile(r"messages resulted in (\d+) tokens", re.I),
    re.compile(r"\((\d+) in the messages", re.I),
    re.compile(r"request has (\d+) input tokens", re.I),
)
_ANTHROPIC_TOO_LONG = re.compile(r"prompt is too long: (\d+) tokens > (\d+)", re.I)
_INPUT_PLUS_OUTPUT = re.compile(r"(\d+) \+ (\d+) > (\d+)")
_CONTEXT_WORDS = ("context length", "context window", "context limit", "prompt is too long", "too many tokens")
# A 400 about the model name (LiteLLM: "Invalid model name passed in model=gpt-5o"), not about the options.
_BAD_MODEL = re.compile(
    r"invalid model|model name|unknown model|no such model|unsupported model"
    r"|model\b.{0,80}\b(?:not found|does not exist|is not (?:available|supported|valid))",
    re.I,
)


def mask_key(text: str, key: ApiKey | None) -> str:
    """``text`` with the key masked: whole, and every run of KEY_FRAGMENT or more of its characters."""
    text = scrub(text, key)
    if key is None or key.placeholder or len(key.value) < KEY_FRAGMENT:
        return text
    # Compared case-blind: a server that echoes the key upper-cased must not show it either.
    value = key.value.casefold()
    fragments = {value[i : i + KEY_FRAGMENT] for i in range(len(value) - KEY_FRAGMENT + 1)}
    folded = text.casefold() if len(text.casefold()) == len(text) else text.lower()
    hidden = [False] * len(text)
    for start in range(len(text) - KEY_FRAGMENT + 1):
        if folded[start : start + KEY_FRAGMENT] in fragments:
            hidden[start : start + KEY_FRAGMENT] = [True] * KEY_FRAGMENT
    if not any(hidden):
        return text
    out: list[str] = []
    for index, char in enumerate(text):
        if not hidden[index]:
            out.append(char)
        elif index == 0 or not hidden[index - 1]:
            out.append("****")
    return "".join(out)


def one_line(text: str, key: ApiKey | None) -> str:
    """Masked first, then shortened: a cut through the key must not leave part of it behind."""
    text = mask_key(" ".join(text.split()), key)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def api_message(exc: BaseException, key: ApiKey | None = None) -> str:
    """The server's own words about the error, on one line (or the SDK's message), the key masked."""
    body: Any = getattr(exc, "body", None)
    text: str | None = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            text = inner["message"]
        elif isinstance(inner, str):
            text = inner
        elif isinstance(body.get("message"), str):
            text = body["message"]
        elif isinstance(body.get("detail"), str):  # FastAPI-style servers
            text = body["detail"]
    elif isinstance(body, str) and body.strip():
        text = re.sub(r"<[^>]+>", " ", body)  # an HTML error page from a proxy
    if not text:
        text = str(getattr(exc, "message", None) or exc)
    return one_line(text, key)


def _retried(endpoint: Endpoint) -> str:
    retries = endpoint.settings.max_retries
    if retries == 0:
        return ""
    return f" (after {retries} {'retry' if retries == 1 else 'retries'})"


def translate(
    exc: BaseException, sdk: ModuleType, endpoint: Endpoint, model: str, *, mid_stream: bool = False
) -> LlmctlError:
    """The LlmctlError to raise for ``exc``; ``model`` is how the user named the model."""
    error = _translate(exc, sdk, endpoint, model, mid_stream=mid_stream)
    error.message = mask_key(error.message, endpoint.key)
    error.hint = None if error.hint is None else mask_key(error.hint, endpoint.key)
    error.args = (error.message,)
    return error


def _translate(exc: BaseException, sdk: ModuleType, endpoint: Endpoint, model: str, *, mid_stream: bool) -> LlmctlError:
    name, label = endpoint.provider_name, endpoint.label
    settings = endpoint.settings
    if isinstance(exc, (sdk.APITimeoutError, httpx2.TimeoutException)):
        when = " mid-answer" if mid_stream else _retried(endpoint)
        return ProviderError(
            f"{label} did not answer within {settings.timeout:g} s{when}.",
            hint=f"Try again, or raise providers.{name}.timeout (seconds) in the config.",
        )
    if mid_stream and isinstance(exc, (sdk.APIConnectionError, httpx2.TransportError)):
        return ProviderError(
            f"The connection to {label} broke off mid-answer.",
            hint="The text received before the break was kept; run the request again.",
        )
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(
            f"Cannot connect to {label}{_cause(exc, endpoint.key)}{_retried(endpoint)}.",
            hint="Check your network connection (and proxy settings), then try again."
            if endpoint.official
            else f"Is the server running? Check providers.{name}.base_url in the config.",
        )
    if isinstance(exc, sdk.APIStatusError):
        return _status_error(exc, sdk, endpoint, model, mid_stream=mid_stream)
    if isinstance(exc, sdk.APIError):  # an error event inside a stream
        return ProviderError(
            f"{label} reported an error mid-answer: {api_message(exc, endpoint.key)}",
            hint="The text received before the error was kept; try again.",
        )
    return ProviderError(f"{label} failed: {type(exc).__name__}: {api_message(exc, endpoint.key)}")


def _cause(exc: BaseException, key: ApiKey) -> str:
    cause = exc.__cause__
    text = str(cause) if cause is not None else ""
    if "refused" in text.lower():
        return " (connection refused)"
    return f" ({one_line(text, key)})" if text.strip() else ""


def _status_error(exc: Any, sdk: ModuleType, endpoint: Endpoint, model: str, *, mid_stream: bool) -> LlmctlError:
    name, label = endpoint.provider_name, endpoint.label
    status: int = exc.status_code
    detail = api_message(exc, endpoint.key)
    if mid_stream and status < 400:  # Anthropic's in-stream `error` event
        return ProviderError(
            f"{label} reported an error mid-answer: {detail}",
            hint="The text received before the error was kept; try again.",
        )
    if isinstance(exc, sdk.AuthenticationError):
        return _rejected_key(endpoint)
    if isinstance(exc, sdk.PermissionDeniedError):
        return AuthenticationError(
            f"{label} refused access to {model} (HTTP 403): {detail}",
            hint=f"The key ({endpoint.key.describe()}) lacks permission for this model or resource.",
        )
    if isinstance(exc, sdk.NotFoundError):
        if _names_model(exc, detail):
            return ModelNotFoundError(
                f"{label} has no model {model!r}: {detail}",
                hint=f"`llmctl models list --remote {name}` lists the models it serves.",
            )
        return ProviderError(
            f"{label} answered 404 Not Found for {exc.request.url}: {detail}",
            hint=f"Check providers.{name}.base_url (OpenAI-compatible servers usually want a URL ending in /v1).",
        )
    if isinstance(exc, sdk.RateLimitError):
        if getattr(exc, "code", None) == "insufficient_quota" or "quota" in detail.lower():
            return ProviderError(
                f"{label}: quota exhausted (HTTP 429): {detail}",
                hint="Check the account's plan and billing; retrying will not help.",
            )
        return ProviderError(
            f"Rate limited by {label} (HTTP 429){_retried(endpoint)}: {detail}",
            hint=f"Wait a little and try again, or raise providers.{name}.max_retries so the SDK retries longer.",
        )
    if status >= 500:
        what = "is overloaded" if status == 529 or "overload" in detail.lower() else "had a server error"
        return ProviderError(
            f"{label} {what} (HTTP {status}){_retried(endpoint)}: {detail}",
            hint=f"The fault is on the server's side: try again later (providers.{name}.max_retries sets how "
            "often the SDK retries).",
        )
    if status in (400, 413, 422):
        return _bad_request(exc, detail, endpoint, model)
    return ProviderError(f"{label} answered HTTP {status}: {detail}")


def listing_error(exc: BaseException, sdk: ModuleType, endpoint: Endpoint) -> LlmctlError:
    """The error for a failed ``GET /models``: a 404 there means the server has no such endpoint."""
    if isinstance(exc, sdk.NotFoundError):
        return ProviderError(
            f"{endpoint.label} has no model-listing endpoint ({exc.request.method} {exc.request.url} answered 404).",
            hint=f"Check providers.{endpoint.provider_name}.base_url, or see the server's documentation for "
            "the model names it serves.",
        )
    return translate(exc, sdk, endpoint, "its model list")


def _names_model(exc: Any, detail: str) -> bool:
    return getattr(exc, "code", None) == "model_not_found" or "model" in detail.lower()


def _rejected_key(endpoint: Endpoint) -> AuthenticationError:
    name, label, key = endpoint.provider_name, endpoint.label, endpoint.key
    if key.placeholder:
        usual = default_key_env(name, endpoint.settings)
        return AuthenticationError(
            f"{label} requires an API key, and none is configured for provider {name!r} (HTTP 401).",
            hint=(f"Set {usual}, or providers" if usual else "Set providers")
            + f".{name}.api_key_env to the variable that holds the key, or providers.{name}.api_key_cmd to a "
            "command that prints it.",
        )
    if key.env_var:
        return AuthenticationError(
            f"{label} rejected the API key from ${key.env_var} (HTTP 401).",
            hint=f"Check the key in ${key.env_var} (mistyped, revoked, or meant for another provider?), or point "
            f"providers.{name}.api_key_env / api_key_cmd at the right one.",
        )
    return AuthenticationError(
        f"{label} rejected the API key printed by {key.source} (HTTP 401).",
        hint=f"Check what {key.source} prints (its first line is used as the key).",
    )


def _bad_request(exc: Any, detail: str, endpoint: Endpoint, model: str) -> LlmctlError:
    lowered = detail.lower()
    code = getattr(exc, "code", None)
    if code == "context_length_exceeded" or any(word in lowered for word in _CONTEXT_WORDS):
        return context_error(detail, model)
    if code == "model_not_found" or _BAD_MODEL.search(detail):
        name = endpoint.provider_name
        return ModelNotFoundError(
            f"{endpoint.label} does not accept the model name {model!r} (HTTP {exc.status_code}): {detail}",
            hint=f"Check the model id (`llmctl models list --remote {name}` lists the models it serves).",
        )
    return InputError(
        f"{endpoint.label} rejected the request (HTTP {exc.status_code}): {detail}",
        hint="Check the options given (--max-tokens, --temperature, ...) against what this model accepts.",
    )


def context_error(detail: str, model: str) -> InputError:
    """A context-length error with both numbers when the server's message has them."""
    hint = "Shorten the input, or pick a model with a larger context window (-m MODEL)."
    both = _INPUT_PLUS_OUTPUT.search(detail)
    if both:
        prompt, reserved, window = (int(g) for g in both.groups())
        return InputError(
            f"The input ({plural(prompt, 'token')}) plus --max-tokens ({reserved}) exceed {model}'s context window "
            f"of {plural(window, 'token')}.",
            hint="Lower --max-tokens or shorten the input.",
        )
    anthropic_style = _ANTHROPIC_TOO_LONG.search(detail)
    if anthropic_style:
        return ContextLengthError(int(anthropic_style[1]), int(anthropic_style[2]), model=model)
    limit = _LIMIT.search(detail)
    tokens = next((m for m in (p.search(detail) for p in _INPUT_PATTERNS) if m), None)
    if limit and tokens:
        prompt, window = int(tokens[1]), int(limit[1])
        if prompt <= window:
            return InputError(
                f"The input ({plural(prompt, 'token')}) plus the tokens to generate exceed {model}'s context "
                f"window of {plural(window, 'token')}.",
                hint="Lower --max-tokens or shorten the input.",
            )
        return ContextLengthError(prompt, window, model=model)
    return InputError(f"The input does not fit in {model}'s context window: {detail}", hint=hint)
