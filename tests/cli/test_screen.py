"""``generate`` and ``chat`` as a person sees them: a real pseudo-terminal of a fixed size, replayed in ``pyte``.

Every assertion reads the emulated screen and its scrollback, not the raw bytes: the
whole answer is there, wrapped at the window width, once and in order, in any size,
after Ctrl-C too. The model is a hosted one on a loopback OpenAI-wire server (its
replies are scripted), or the demo model for the loading case.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.screen import Terminal, assert_words_once_in_order, words
from tests.wire.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.slow

KEY = "sk-test-screen-0123456789"
PARAGRAPH = " ".join(f"w{i:03d}" for i in range(300))
TALL_LIST = "\n".join(f"{i}. item{i:03d} of the list" for i in range(1, 81))
LONG_WORD = "".join(f"{i:04d}" for i in range(120))
MARKDOWN = (
    "## Steps\n\n"
    + "\n".join(f"- step{i:02d} do this" for i in range(12))
    + "\n\n```bash\n"
    + "\n".join(f"echo line{i:02d}" for i in range(12))
    + "\n```\n\nDone01 done02."
)
SIZES = [(80, 24), (40, 12)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[OpenAIServer, dict[str, str]]]:
    with OpenAIServer(api_key=KEY) as wire:
        config = tmp_path / "config.toml"
        config.write_text(f'[providers.openai]\nbase_url = "{wire.base_url}"\ntimeout = 20\nmax_retries = 0\n')
        env = {
            "LLMCTL_CONFIG": str(config),
            "LLMCTL_HOME": str(tmp_path / "home"),
            "OPENAI_API_KEY": KEY,
            "PROMPT_TOOLKIT_NO_CPR": "1",
        }
        yield wire, env


def _generate(env: dict[str, str], *args: str, columns: int = 80, rows: int = 24) -> Terminal:
    argv = [sys.executable, "-m", "llmctl", "generate", "-m", "openai/gpt-4o-mini", *args]
    return Terminal(argv, columns=columns, rows=rows, env=env)


def _expected_words(text: str) -> list[str]:
    """The words of ``text`` that occur once in it (and so must on the screen), punctuation aside."""
    plain = [w for w in words(text) if w[0].isalnum() and w[-1].isalnum()]
    return [w for w in plain if plain.count(w) == 1]


@pytest.mark.parametrize(("columns", "rows"), SIZES)
@pytest.mark.parametrize("text", [PARAGRAPH, TALL_LIST, MARKDOWN], ids=["paragraph", "tall-list", "markdown"])
def test_generate_shows_the_whole_answer_once(
    server: tuple[OpenAIServer, dict[str, str]], text: str, columns: int, rows: int
) -> None:
    wire, env = server
    wire.add(Reply(text=text, chunk_delay_s=0.001))
    term = _generate(env, "Hi", columns=columns, rows=rows)
    assert term.finish() == 0
    assert_words_once_in_order(term, _expected_words(text))
    assert "```" not in term.text()  # Markdown is rendered on a terminal


@pytest.mark.parametrize(("columns", "rows"), SIZES)
def test_generate_folds_an_unbroken_line(server: tuple[OpenAIServer, dict[str, str]], columns: int, rows: int) -> None:
    wire, env = server
    wire.add(Reply(text=f"See {LONG_WORD} here.", chunk_delay_s=0.001))
    term = _generate(env, "Hi", columns=columns, rows=rows)
    assert term.finish() == 0
    assert "".join(line.strip() for line in term.lines()).count(LONG_WORD) == 1, term.text()


def test_generate_raw_on_a_terminal_writes_the_text_itself(server: tuple[OpenAIServer, dict[str, str]]) -> None:
    wire, env = server
    wire.add(Reply(text=MARKDOWN))
    term = _generate(env, "Hi", "--raw", columns=40, rows=12)
    assert term.finish() == 0
    assert "```bash" in term.text()  # not rendered
    assert_words_once_in_order(term, _expected_words(MARKDOWN))


def test_markdown_forced_into_a_pipe(server: tuple[OpenAIServer, dict[str, str]]) -> None:
    wire, env = server
    wire.add(Reply(text=MARKDOWN))
    argv = [sys.executable, "-m", "llmctl", "generate", "-m", "openai/gpt-4o-mini", "--markdown", "Hi"]
    done = subprocess.run(argv, env={**__import__("os").environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "•" in done.stdout and "```" not in done.stdout
    assert "\x1b[" not in done.stdout  # no cursor movement or colour in a file
    assert done.stdout.count("step07") == 1


def test_generate_ctrl_c_keeps_the_text_once(server: tuple[OpenAIServer, dict[str, str]]) -> None:
    wire, env = server
    endless = [f"t{i:04d} " for i in range(5000)]
    wire.add(Reply(chunks=endless, chunk_delay_s=0.005))
    term = _generate(env, "Hi", columns=40, rows=12)
    term.wait_for(lambda t: "t0150" in t.text(), timeout_s=60)
    term.interrupt()
    assert term.finish() == 130
    shown = [w for w in words(term.text()) if w.startswith("t") and w[1:].isdigit()]
    assert shown == [f"t{i:04d}" for i in range(len(shown))], term.text()  # a prefix, once, in order
    assert len(shown) >= 150
    assert term.text().count("Interrupted") == 1
    assert "Traceback" not in term.text()


def test_ctrl_c_while_the_model_loads_says_the_load_was_cancelled(tmp_path: Path) -> None:
    env = {"LLMCTL_HOME": str(tmp_path / "home"), "LLMCTL_CONFIG": str(tmp_path / "none.toml")}
    term = Terminal([sys.executable, "-m", "llmctl", "generate", "Hello"], env=env)
    maps = Path(f"/proc/{term.process.pid}/maps")
    deadline = time.monotonic() + 60
    while "libtorch" not in maps.read_text():  # loading has begun: torch is being imported
        assert time.monotonic() < deadline, "torch never started loading"
        time.sleep(0.02)
    term.interrupt()
    assert term.finish() == 130
    assert "while loading demo; nothing was generated" in term.text(), term.text()
    assert "Traceback" not in term.text()


def _chat(env: dict[str, str], *args: str, columns: int, rows: int) -> Terminal:
    argv = [sys.executable, "-m", "llmctl", "chat", "-m", "openai/gpt-4o-mini", *args]
    term = Terminal(argv, columns=columns, rows=rows, env=env)
    term.wait_for(">>>")
    return term


@pytest.mark.parametrize(("columns", "rows"), SIZES)
def test_chat_shows_each_reply_once(server: tuple[OpenAIServer, dict[str, str]], columns: int, rows: int) -> None:
    wire, env = server
    wire.add(Reply(text=PARAGRAPH, chunk_delay_s=0.001), Reply(text=TALL_LIST, chunk_delay_s=0.001))
    term = _chat(env, columns=columns, rows=rows)
    term.send(b"first question\r")
    term.wait_for(lambda t: t.text().count(">>>") == 2 and "w299" in t.text())
    term.send(b"second question\r")
    term.wait_for(lambda t: t.text().count(">>>") == 3 and "item080" in t.text())
    term.send(b"\x04")  # Ctrl-D
    assert term.finish() == 0
    assert_words_once_in_order(term, ["first", *PARAGRAPH.split(), "second", *_expected_words(TALL_LIST)])


def test_chat_ctrl_c_stops_the_reply_and_the_chat_goes_on(server: tuple[OpenAIServer, dict[str, str]]) -> None:
    wire, env = server
    wire.add(Reply(chunks=[f"t{i:04d} " for i in range(5000)], chunk_delay_s=0.005), Reply(text="after01 after02"))
    term = _chat(env, columns=40, rows=12)
    term.send(b"talk forever\r")
    term.wait_for(lambda t: "t0100" in t.text())
    term.interrupt()
    term.wait_for(lambda t: t.text().count(">>>") == 2)
    term.send(b"again\r")
    term.wait_for(lambda t: "after02" in t.text() and t.text().count(">>>") == 3)
    term.send(b"\x04")
    assert term.finish() == 0
    shown = [w for w in words(term.text()) if w.startswith("t") and w[1:].isdigit()]
    assert shown == [f"t{i:04d}" for i in range(len(shown))], term.text()
    assert term.text().count("[interrupted]") == 1
    assert_words_once_in_order(term, ["talk", "again", "after01", "after02"])
