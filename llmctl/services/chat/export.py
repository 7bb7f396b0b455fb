"""A saved conversation as a file to share: Markdown for reading, or the store's own JSON."""

from __future__ import annotations

import json
from pathlib import Path

from llmctl.domain import RunStatus
from llmctl.errors import InputError
from llmctl.services.chat.conversation import Conversation, conversation_to_json


def to_markdown(conversation: Conversation) -> str:
    """A readable transcript: a heading per speaker, interrupted and failed replies labelled."""
    lines = [
        f"# Conversation {conversation.id}",
        "",
        f"- Model: {conversation.model}",
        f"- Started: {conversation.created_at.astimezone():%Y-%m-%d %H:%M}",
        f"- Turns: {len(conversation.turns)}",
        "",
    ]
    if conversation.system:
        lines += ["## System", "", conversation.system, ""]
    for turn in conversation.turns:
        lines += ["## User", "", turn.user, ""]
        heading = "## Assistant" + (f" ({turn.model})" if turn.model != conversation.model else "")
        lines += [heading, ""]
        if turn.reply:
            lines += [turn.reply, ""]
        if turn.status is RunStatus.INTERRUPTED:
            lines += ["*(interrupted)*", ""]
        elif turn.status is RunStatus.ERROR:
            lines += [f"*(failed: {turn.error or 'unknown error'})*", ""]
    return "\n".join(lines).rstrip() + "\n"


def export(conversation: Conversation, path: Path) -> str:
    """Write the conversation to ``path``: JSON for ``.json``, Markdown otherwise. Returns the format."""
    if path.suffix.lower() == ".json":
        text, kind = json.dumps(conversation_to_json(conversation), indent=2, ensure_ascii=False) + "\n", "json"
    else:
        text, kind = to_markdown(conversation), "markdown"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Could not write {path}: {exc.strerror or exc}", hint="Pick another file name.") from exc
    return kind
