"""Reading a request body: bounded in size, JSON, validated by a pydantic model into a WireError."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from llmctl.server.dispatch import MAX_BODY_BYTES
from llmctl.server.errors import Kind, WireError

Model = TypeVar("Model", bound=BaseModel)


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The body as JSON; too large (by its Content-Length or as it arrives) or not JSON is a WireError."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireError(Kind.TOO_LARGE, f"The request body is {int(declared):,} bytes; the limit is {limit:,}.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise WireError(Kind.TOO_LARGE, f"The request body is larger than the limit of {limit:,} bytes.")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise WireError(Kind.INVALID, f"The request body is not UTF-8 (byte {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise WireError(
            Kind.INVALID, f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None


def validated(model: type[Model], data: Any) -> Model:
    """``data`` as ``model``; the first problem named by its JSON path, as the vendors do."""
    if not isinstance(data, dict):
        raise WireError(Kind.INVALID, "The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"]) or "body"
        problem = "is required" if first["type"] == "missing" else first["msg"][:1].lower() + first["msg"][1:]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise WireError(Kind.INVALID, f"{path}: {problem}{suffix}.", path) from None
