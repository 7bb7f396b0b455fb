"""Conversations are never lost or corrupted: hostile files, ids, disks and a second chat at once."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmctl.errors import InputError
from llmctl.services.chat import store as conversation_store
from llmctl.services.chat.conversation import Conversation, Turn
from llmctl.services.chat.store import ConversationStore
from tests.services.test_chat_session import _say, _session

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "format": 1,
    "id": "20250101-120000-good",
    "model": "demo",
    "system": None,
    "created_at": "2025-01-01T12:00:00+00:00",
    "updated_at": "2025-01-01T12:00:00+00:00",
    "turns": [{"user": "hi", "reply": "hello", "model": "demo", "at": "2025-01-01T12:00:00+00:00"}],
}


def write(root: Path, name: str, data: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.json"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize("hostile_id", ["../../escaped", "/tmp/absolute", "a/b", "..", "", "x\x00y", "~/home", 42])
def test_the_file_name_comes_from_the_store_never_from_the_json_id(tmp_path: Path, hostile_id: object) -> None:
    root = tmp_path / "store" / "conversations"
    write(root, "20250101-120000-abcd", {**GOOD, "id": hostile_id})
    store = ConversationStore(root)
    conversation = store.load("20250101-120000-abcd")
    assert conversation.id == "20250101-120000-abcd"
    conversation.turns.append(Turn("more", "ok", "demo"))
    assert store.save(conversation) == root / "20250101-120000-abcd.json"
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert written == {Path("store/conversations/20250101-120000-abcd.json")}


@pytest.mark.parametrize("hostile_id", ["../../escaped", "/tmp/x", "a/b", "..", ""])
def test_a_new_conversation_with_a_path_for_an_id_is_refused(tmp_path: Path, hostile_id: str) -> None:
    with pytest.raises(InputError, match="not a conversation id"):
        ConversationStore(tmp_path).save(Conversation(id=hostile_id, model="demo", turns=[Turn("q", "a", "demo")]))
    assert not any(tmp_path.parent.glob("escaped*"))


DAMAGED = [
    pytest.param("{not json", id="not-json"),
    pytest.param("", id="empty"),
    pytest.param([], id="array"),
    pytest.param(None, id="null"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param({**GOOD, "model": None}, id="null-model"),
    pytest.param({**GOOD, "created_at": None}, id="null-date"),
    pytest.param({**GOOD, "created_at": 12}, id="number-date"),
    pytest.param({**GOOD, "updated_at": "yesterday"}, id="bad-date"),
    pytest.param({**GOOD, "turns": {"user": "hi"}}, id="turns-object"),
    pytest.param({**GOOD, "turns": [None]}, id="null-turn"),
    pytest.param({**GOOD, "turns": [["hi", "hello"]]}, id="array-turn"),
    pytest.param({**GOOD, "turns": [{"user": 5, "reply": "x"}]}, id="number-user"),
    pytest.param({**GOOD, "turns": [{"user": "hi", "reply": None}]}, id="null-reply"),
    pytest.param({**GOOD, "turns": [{"user": "hi", "reply": "x", "usage": []}]}, id="array-usage"),
    pytest.param({**GOOD, "turns": [{"user": "hi", "reply": "x", "usage": {"input_tokens": "7"}}]}, id="text-count"),
    pytest.param({**GOOD, "turns": [{"user": "hi", "reply": "x", "usage": {"source": "guess"}}]}, id="bad-source"),
    pytest.param({**GOOD, "turns": [{"user": "hi", "reply": "x", "status": "great"}]}, id="bad-status"),
    pytest.param({**GOOD, "turns": [{"user": "hi", "reply": "x", "cost_usd": True}]}, id="bool-cost"),
    pytest.param({**GOOD, "system": ["a"]}, id="array-system"),
    pytest.param('{"id": "x", "model": "demo", "turns": [{"user": "\\ud800", "reply": "x"}]}', id="lone-surrogate"),
    pytest.param("[" * 100_000 + "]" * 100_000, id="nested-too-deep"),
]


@pytest.mark.parametrize("damage", DAMAGED)
def test_one_damaged_file_breaks_neither_the_list_nor_continue_for_the_others(tmp_path: Path, damage: Any) -> None:
    write(tmp_path, "20250101-120000-good", GOOD)
    broken = write(tmp_path, "20250102-120000-bad", damage)
    os.utime(broken, (2e9, 2e9))  # modified after the good one
    store = ConversationStore(tmp_path)
    assert [s.id for s in store.list()] == ["20250101-120000-good"]
    latest = store.latest_readable()
    assert latest.conversation is not None and latest.conversation.id == "20250101-120000-good"
    assert latest.skipped == (broken,)
    with pytest.raises(InputError, match="Could not read the saved conversation"):
        store.load("20250102-120000-bad")


def test_naive_datetimes_are_read_as_utc_and_sort_with_the_others(tmp_path: Path) -> None:
    naive = {**GOOD, "created_at": "2025-06-01T10:00:00", "updated_at": "2025-06-01T10:00:00"}
    naive["turns"] = [{**GOOD["turns"][0], "at": "2025-06-01T10:00:00"}]  # type: ignore[index]
    write(tmp_path, "20250601-100000-nave", naive)
    write(tmp_path, "20250101-120000-good", GOOD)
    store = ConversationStore(tmp_path)
    assert [s.id for s in store.list()] == ["20250601-100000-nave", "20250101-120000-good"]
    assert store.latest_readable().skipped == ()


def _fail_with(error: int) -> Any:
    def refuse(*args: object, **kwargs: object) -> Any:
        raise OSError(error, os.strerror(error))

    return refuse


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["full", "read-only", "denied"])
def test_a_conversation_that_cannot_be_saved_is_a_warning_and_the_chat_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    store = ConversationStore(tmp_path)
    session, _ = _session(["first reply", "second reply"], store=store)
    monkeypatch.setattr(conversation_store.tempfile, "mkstemp", _fail_with(error))
    outcome = _say(session, "hello")
    assert not outcome.saved and outcome.turn.reply == "first reply"
    assert any(w.startswith("Conversation not saved") and os.strerror(error) in w for w in outcome.warnings)
    monkeypatch.undo()
    second = _say(session, "again")  # the chat goes on, and the next save keeps both turns
    assert second.saved and [t.reply for t in store.load(session.conversation.id).turns] == [
        "first reply",
        "second reply",
    ]
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_a_store_folder_that_is_a_file_is_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    session, _ = _session(["reply"], store=ConversationStore(blocker / "conversations"))
    outcome = _say(session, "hello")
    assert not outcome.saved and any("Conversation not saved" in w for w in outcome.warnings)


def test_two_chats_on_one_conversation_keep_each_others_turns(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    first, _ = _session(["a1", "a2", "a3"], store=store)
    _say(first, "one")
    second, _ = _session(["b1", "b2"], store=store, conversation=store.load(first.conversation.id))
    _say(second, "two")
    _say(first, "three")
    _say(second, "four")
    _say(first, "five")
    saved = store.load(first.conversation.id)
    assert [t.user for t in saved.turns] == ["one", "two", "three", "four", "five"]


def test_retry_still_replaces_the_last_reply_on_disk(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    session, _ = _session(["first", "better"], store=store)
    _say(session, "hello")
    turn = session.retry()
    for _ in turn.deltas():
        pass
    turn.finish()
    assert [t.reply for t in store.load(session.conversation.id).turns] == ["better"]


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from llmctl.services.chat.conversation import Turn
    from llmctl.services.chat.store import ConversationStore

    store = ConversationStore(Path(sys.argv[1]))
    conversation = store.load(sys.argv[2])
    for n in range(int(sys.argv[4])):
        conversation.turns.append(Turn(f"{sys.argv[3]}-{n}", "reply", "demo"))
        store.save(conversation)
    """
)


def test_chats_in_parallel_processes_lose_no_turn(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    store.save(Conversation(id="20250101-120000-race", model="demo", turns=[Turn("start", "ok", "demo")]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "20250101-120000-race", name, "15"], env=env)
        for name in ("a", "b", "c", "d")
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    users = [t.user for t in store.load("20250101-120000-race").turns]
    assert len(users) == 1 + 4 * 15 and len(set(users)) == len(users)
    for name in "abcd":
        assert [u for u in users if u.startswith(name + "-")] == [f"{name}-{n}" for n in range(15)]


@pytest.fixture
def our_handlers() -> Iterator[None]:
    from llmctl.services import interrupts

    saved = {name: signal.getsignal(getattr(signal, name)) for name in interrupts.HANDLED}
    interrupts.install()
    yield
    for name, handler in saved.items():
        signal.signal(getattr(signal, name), handler)


@pytest.mark.usefixtures("our_handlers")
def test_a_signal_while_the_turn_is_saved_waits_until_it_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmctl.services.interrupts import Terminated

    store = ConversationStore(tmp_path)
    session, _ = _session(["the reply"], store=store)
    real_save = store.save

    def save_while_signalled(conversation: Conversation) -> Path:
        os.kill(os.getpid(), signal.SIGHUP)  # the terminal closes mid-save
        return real_save(conversation)

    monkeypatch.setattr(store, "save", save_while_signalled)
    with pytest.raises(Terminated):
        _say(session, "hello")
    assert [t.reply for t in store.load(session.conversation.id).turns] == ["the reply"]
