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


def prompt_token_ids(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """The templated prompt's token ids, ready for generation."""
    if getattr(tokenizer, "chat_template", None):
        try:
            return _apply_template(tokenizer, messages)
        except Exception as exc:  # jinja raises TemplateError subclasses we cannot import cheaply
            if not any(m.role == "system" for m in messages) or "system" not in str(exc).lower():
                raise
            return _apply_template(tokenizer, merge_system_into_first_user(messages))
    encoded = tokenizer(plain_transcript(messages), add_special_tokens=True)
    return list(encoded["input_ids"])


def _apply_template(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    chat = [{"role": m.role, "content": m.content} for m in messages]
    encoded = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)
    ids = encoded["input_ids"]
    return [int(i) for i in ids]
