"""Loopback servers speaking real vendor wire formats, for real-wire SDK tests.

See ``openai_server`` and ``anthropic_server``; the plan dataclasses and the
request recording live in ``_http``.  The ``openai_wire`` / ``anthropic_wire``
pytest fixtures are re-exported here so that a top-level conftest can register
both with ``pytest_plugins = ["tests.wire"]``.
"""

from ._http import (
    ContextTooLong,
    DropMidStream,
    Fault,
    Headers,
    KeepAlive,
    LoopbackServer,
    Plan,
    Raw,
    RecordedRequest,
    Reply,
    Slow,
    StreamError,
    estimate_tokens,
    text_tokens,
)
from .anthropic_server import AnthropicServer, anthropic_wire
from .openai_server import OpenAIServer, openai_wire

__all__ = [
    "AnthropicServer",
    "ContextTooLong",
    "DropMidStream",
    "Fault",
    "Headers",
    "KeepAlive",
    "LoopbackServer",
    "OpenAIServer",
    "Plan",
    "Raw",
    "RecordedRequest",
    "Reply",
    "Slow",
    "StreamError",
    "anthropic_wire",
    "estimate_tokens",
    "openai_wire",
    "text_tokens",
]
