"""A GGUF model's own chat template (``tokenizer.chat_template`` in its metadata), rendered as transformers
renders one, with the fallbacks documented in ``providers/hf/prompt.py``: a template that rejects the
``system`` role gets the system prompt merged into the first user message; no template at all, a plain
transcript.

The environment matches transformers' ``apply_chat_template``: a sandbox (a template is data from a
download, never code to trust), ``trim_blocks``/``lstrip_blocks``, ``loopcontrols``, and the helpers
templates call (``raise_exception``, ``strftime_now``, a ``tojson`` that keeps non-ASCII text).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from llmctl.domain import Message
from llmctl.errors import ProviderError
from llmctl.providers.hf.prompt import merge_system_into_first_user, plain_transcript


@dataclass(frozen=True)
class PromptText:
    """The text to tokenize, and whether the tokenizer adds the model's BOS itself (plain transcript only:
    a template writes ``bos_token`` where it wants one)."""

    text: str
    templated: bool


def _raise_exception(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:  # fmt: skip
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@lru_cache(maxsize=8)
def _compiled(source: str) -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def render(source: str, messages: Sequence[Message], *, bos_token: str, eos_token: str) -> str:
    chat = [{"role": m.role, "content": m.content} for m in messages]
    text: str = _compiled(source).render(
        messages=chat, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
    )
    return text


def prompt_text(
    template: str | None, messages: Sequence[Message], *, bos_token: str, eos_token: str, model: str
) -> PromptText:
    """What to tokenize for ``messages``; a template that fails is a ProviderError naming ``model``."""
    if not template:
        return PromptText(plain_transcript(messages), templated=False)
    try:
        return PromptText(render(template, messages, bos_token=bos_token, eos_token=eos_token), templated=True)
    except Exception as exc:  # jinja2's TemplateError family, and whatever a template's own code raises
        if not any(m.role == "system" for m in messages) or "system" not in str(exc).lower():
            raise template_error(model, exc) from exc
    try:
        merged = merge_system_into_first_user(messages)
        return PromptText(render(template, merged, bos_token=bos_token, eos_token=eos_token), templated=True)
    except Exception as exc:
        raise template_error(model, exc) from exc


def template_error(model: str, exc: BaseException) -> ProviderError:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return ProviderError(
        f"{model}'s chat template failed: {type(exc).__name__}: {detail}",
        hint="The template is the GGUF file's tokenizer.chat_template; without one, llmctl sends a plain transcript.",
    )
