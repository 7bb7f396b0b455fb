"""Turn chat messages into the prompt token ids a local model expects.

The model's own chat template is used when it has one. Two documented fallbacks:

* a template that rejects the ``system`` role (Gemma's does) gets the system
  prompt prepended to the first user message, separated by a blank line;
* a model with no template at all gets a plain transcript::

      System: {system}

      User: {message}

      Assistant: {reply}

      User: {message}

      Assistant:
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmctl.domain import Message
from llmctl.errors import ProviderError

PLAIN_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


def plain_transcript(messages: Sequence[Message]) -> str:
    turns = [f"{PLAIN_ROLE_LABELS[m.role]}: {m.content}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


def merge_system_into_first_user(messages: Sequence[Message]) -> list[Message]:
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    rest = [m for m in messages if m.role != "system"]
    if not system:
        return rest
    if rest and rest[0].role == "user":
        return [Message("user", f"{system}\n\n{rest[0].content}"), *rest[1:]]
    return [Message("user", system), *rest]


def prompt_token_ids(tokenizer: Any, messages: Sequence[Message], *, model: str = "The model") -> list[int]:
    """The templated prompt's token ids, ready for generation.

    A template that does not compile or raises while rendering is a ProviderError naming ``model``.
    """
    if getattr(tokenizer, "chat_template", None):
        try:
            return _apply_template(tokenizer, messages)
        except Exception as exc:  # jinja raises TemplateError subclasses we cannot import cheaply
            if not any(m.role == "system" for m in messages) or "system" not in str(exc).lower():
                raise template_error(model, exc) from exc
        try:
            return _apply_template(tokenizer, merge_system_into_first_user(messages))
        except Exception as exc:
            raise template_error(model, exc) from exc
    encoded = tokenizer(plain_transcript(messages), add_special_tokens=True)
    return list(encoded["input_ids"])


def template_error(model: str, exc: BaseException) -> ProviderError:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return ProviderError(
        f"{model}'s chat template failed: {type(exc).__name__}: {detail}",
        hint="Fix the template (chat_template.jinja, or chat_template in tokenizer_config.json) in the model's "
        "folder; without one, llmctl sends a plain transcript.",
    )


def _apply_template(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    chat = [{"role": m.role, "content": m.content} for m in messages]
    encoded = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)
    ids = encoded["input_ids"]
    return [int(i) for i in ids]
