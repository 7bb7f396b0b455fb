"""The raw wire, as curl sees it: SSE framing and event order, and every refusal in the vendor's JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.server.harness import ServeProcess

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
HELLO = [{"role": "user", "content": "Hello"}]


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each SSE event; comments (pings) skipped."""
    found = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            found.append((name, "\n".join(data)))
    return found


def test_openai_stream_is_data_lines_ending_in_done(demo_server: ServeProcess) -> None:
    body = {
        "model": "demo",
        "messages": HELLO,
        "max_tokens": 6,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = httpx.post(demo_server.url + CHAT, json=body, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 6


def test_anthropic_stream_is_the_full_event_sequence(demo_server: ServeProcess) -> None:
    body = {"model": "demo", "messages": HELLO, "max_tokens": 6, "stream": True}
    response = httpx.post(demo_server.url + MESSAGES, json=body, timeout=60)
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for name, data in events:
        assert json.loads(data)["type"] == name
    start = json.loads(events[0][1])["message"]
    delta = json.loads(events[-2][1])
    assert start["usage"]["input_tokens"] > 0
    assert delta["usage"]["output_tokens"] == len(names) - 6 or delta["usage"]["output_tokens"] <= 6
    assert delta["delta"]["stop_reason"] in ("end_turn", "max_tokens")


def _openai(**overrides: Any) -> dict[str, Any]:
    return {"model": "demo", "messages": HELLO, **overrides}


def _anthropic(**overrides: Any) -> dict[str, Any]:
    return {"model": "demo", "messages": HELLO, "max_tokens": 8, **overrides}


BIG = "x" * (9 * 2**20)

# (path, raw body, status, error type the vendor uses, a phrase of the message)
HOSTILE = [
    (CHAT, b"{not json", 400, "invalid_request_error", "not valid JSON"),
    (CHAT, b"[1, 2]", 400, "invalid_request_error", "JSON object"),
    (CHAT, b"\xff\xfe", 400, "invalid_request_error", "UTF-8"),
    (CHAT, json.dumps({"messages": HELLO}).encode(), 400, "invalid_request_error", "model: is required"),
    (CHAT, json.dumps(_openai(messages=[])).encode(), 400, "invalid_request_error", "messages"),
    (CHAT, json.dumps(_openai(max_tokens="5")).encode(), 400, "invalid_request_error", "max_tokens"),
    (CHAT, json.dumps(_openai(max_tokens=10**7)).encode(), 400, "invalid_request_error", "at most"),
    (CHAT, json.dumps(_openai(temperature=9)).encode(), 400, "invalid_request_error", "temperature"),
    (CHAT, json.dumps(_openai(n=3)).encode(), 400, "invalid_request_error", "n"),
    (CHAT, json.dumps(_openai(keep_alive="soon")).encode(), 400, "invalid_request_error", "keep_alive"),
    (
        CHAT,
        json.dumps(_openai(messages=[{"role": "tool", "content": "x"}])).encode(),
        400,
        "invalid_request_error",
        "role",
    ),
    (
        CHAT,
        json.dumps(_openai(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])).encode(),
        400,
        "invalid_request_error",
        "image_url",
    ),
    (CHAT, json.dumps(_openai(model="nope/nothing")).encode(), 404, "invalid_request_error", "nope"),
    (CHAT, json.dumps(_openai(model="../../etc")).encode(), 404, "invalid_request_error", "etc"),
    (
        CHAT,
        json.dumps(_openai(messages=[{"role": "user", "content": BIG}])).encode(),
        413,
        "invalid_request_error",
        "limit",
    ),
    (MESSAGES, b"{not json", 400, "invalid_request_error", "not valid JSON"),
    (MESSAGES, json.dumps({"model": "demo", "messages": HELLO}).encode(), 400, "invalid_request_error", "max_tokens"),
    (MESSAGES, json.dumps(_anthropic(max_tokens=0)).encode(), 400, "invalid_request_error", "max_tokens"),
    (MESSAGES, json.dumps(_anthropic(max_tokens=10**7)).encode(), 400, "invalid_request_error", "max_tokens"),
    (
        MESSAGES,
        json.dumps(_anthropic(messages=[{"role": "system", "content": "x"}])).encode(),
        400,
        "invalid_request_error",
        "role",
    ),
    (MESSAGES, json.dumps(_anthropic(model="nope/nothing")).encode(), 404, "not_found_error", "nope"),
    (
        MESSAGES,
        json.dumps(_anthropic(messages=[{"role": "user", "content": BIG}])).encode(),
        413,
        "request_too_large",
        "limit",
    ),
    (MESSAGES + "/count_tokens", b"{}", 400, "invalid_request_error", "model"),
]


@pytest.mark.parametrize(("path", "raw", "status", "error_type", "phrase"), HOSTILE)
@pytest.mark.parametrize("stream", [False, True])
def test_hostile_requests_get_the_vendors_error_json(
    demo_server: ServeProcess, path: str, raw: bytes, status: int, error_type: str, phrase: str, stream: bool
) -> None:
    if stream and raw.startswith(b"{") and raw.endswith(b"}") and len(raw) < 2**20:
        data = json.loads(raw)
        data["stream"] = True
        raw = json.dumps(data).encode()
    response = httpx.post(demo_server.url + path, content=raw, headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == status, response.text
    body = response.json()
    if path.startswith(MESSAGES):
        assert body["type"] == "error" and body["error"]["type"] == error_type
    else:
        assert body["error"]["type"] == error_type
    assert phrase in body["error"]["message"]
    assert "Traceback" not in response.text


def test_nothing_refused_is_recorded(demo_server: ServeProcess) -> None:
    before = len(demo_server.ledger_rows())
    httpx.post(demo_server.url + CHAT, content=b"{", timeout=30)
    httpx.post(demo_server.url + CHAT, json=_openai(model="nope/x"), timeout=30)
    assert len(demo_server.ledger_rows()) == before
