"""Hostile model files: partial downloads that lie, downloads cut off by a 404, and model folders with a
missing tokenizer, damaged weights or a chat template that fails. Each is one clear line, never a traceback.

Downloads go through the real huggingface_hub client against the loopback Hub (tests/wire/hub_server.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from llmctl.errors import ProviderError
from llmctl.hub.cache import find_cached, repo_folder_name
from llmctl.hub.download import content_matches, download, plan_download
from tests.conftest import CliResult
from tests.model_hub import BIG, hub, hub_cache, hub_home, retry_sleeps, serve_model
from tests.wire.hub_server import HubServer, iter_cache_files

__all__ = ["hub", "hub_cache", "hub_home", "retry_sleeps"]  # fixtures

Run = Callable[..., CliResult]
CONFIG = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}'
NOISE = random.Random(1)


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def _partial(cache: Path, repo_id: str, blob_name: str, content: bytes) -> Path:
    path = cache / repo_folder_name(repo_id) / "blobs" / f"{blob_name}.incomplete"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# -- a resumed partial file is checked against the hash it is named by ----------------------------------


@pytest.mark.parametrize(
    ("path", "content", "partial", "resumed"),
    [
        ("model.safetensors", BIG, BIG[: 512 * 1024], True),  # a genuine partial: resumed with Range
        ("model.safetensors", BIG, NOISE.randbytes(512 * 1024), False),  # random bytes: refetched whole
        ("model.safetensors", BIG, NOISE.randbytes(len(BIG)), False),  # full size, wrong content
        ("model.safetensors", BIG, BIG[:-1] + bytes([BIG[-1] ^ 1]), False),  # one flipped bit at the end
        ("config.json", CONFIG, b'{"architectures": ["Evil', False),  # a git-sha1 named (non-LFS) blob
    ],
    ids=["genuine", "random", "full-size-garbage", "last-bit", "small-file"],
)
def test_a_resumed_partial_is_verified_and_refetched_when_it_does_not_match(
    hub: HubServer, hub_cache: Path, path: str, content: bytes, partial: bytes, resumed: bool
) -> None:
    files = {"config.json": CONFIG, "model.safetensors": BIG}
    hub.add_repo("org/big", files)
    blob = hashlib.sha256(content).hexdigest() if path.endswith(".safetensors") else _git_oid(content)
    _partial(hub_cache, "org/big", blob, partial)

    plan = plan_download("org/big", cache_dir=hub_cache)
    assert {f.path: f.state for f in plan.files}[path] == "partial"
    result = download(plan)

    assert (result.snapshot_dir / path).read_bytes() == content
    assert (path in result.resumed_files) is resumed
    assert not [p for p in iter_cache_files(hub_cache) if p.name.endswith(".incomplete")]


def test_a_server_that_keeps_sending_wrong_bytes_is_an_error_and_nothing_is_kept(
    hub: HubServer, hub_cache: Path
) -> None:
    repo = hub.add_repo("org/big", {"config.json": CONFIG, "model.safetensors": BIG})
    files = repo.revisions["main"].files
    assert isinstance(files, dict)
    files["model.safetensors"] = dataclasses.replace(files["model.safetensors"], content=NOISE.randbytes(len(BIG)))

    with pytest.raises(ProviderError, match="wrong content") as error:
        download(plan_download("org/big", cache_dir=hub_cache))

    assert "again" in (error.value.hint or "")
    blobs = hub_cache / repo_folder_name("org/big") / "blobs"
    assert not (blobs / hashlib.sha256(BIG).hexdigest()).exists()
    assert not [p for p in blobs.iterdir() if p.name.endswith(".incomplete")]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (hashlib.sha256(b"abc").hexdigest(), b"abc", True),
        (hashlib.sha256(b"abc").hexdigest(), b"abd", False),
        (_git_oid(b"abc"), b"abc", True),
        (_git_oid(b"abc"), b"ab", False),
        ("not-a-hash", b"abc", None),
    ],
)
def test_content_matches_its_blob_name(tmp_path: Path, name: str, content: bytes, expected: bool | None) -> None:
    (tmp_path / "blob").write_bytes(content)
    assert content_matches(tmp_path / "blob", name) is expected


# -- a download cut off by a 404 leaves an unfinished snapshot, said as such ----------------------------


def test_a_snapshot_left_without_weights_by_a_404_is_unfinished(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path], run_llmctl: Run
) -> None:
    serve_model(hub, "org/tiny", tiny_models["llama"])
    hub.fail_next("model.safetensors", status=404, error_code="EntryNotFound", times=10)
    with pytest.raises(ProviderError, match="404"):
        download(plan_download("org/tiny", cache_dir=hub_cache))
    cached = find_cached(hub_cache, "org/tiny")
    assert cached is not None and cached.snapshot() is not None
    assert (cached.snapshot() / "config.json").is_file()  # type: ignore[operator]

    listed = run_llmctl("models", "list", "--json")
    generated = run_llmctl("generate", "-m", "hf/org/tiny", "hi")
    info = run_llmctl("models", "info", "hf/org/tiny", "--json")

    assert not cached.is_complete
    [entry] = [e for e in json.loads(listed.stdout) if e["name"] == "hf/org/tiny"]
    assert "incomplete download" in entry["description"]
    assert generated.exit_code == 2
    assert "incomplete download" in generated.stderr
    assert "Run `llmctl models download org/tiny` again" in generated.stderr
    assert any("Incomplete download" in note for note in json.loads(info.stdout)["notes"])

    # Once a ref points at the snapshot (a re-run that failed on a later file), the missing weights are named.
    (cached.path / "refs").mkdir(exist_ok=True)
    (cached.path / "refs" / "main").write_text(cached.snapshot().name)  # type: ignore[union-attr]
    generated = run_llmctl("generate", "-m", "hf/org/tiny", "hi")
    info = run_llmctl("models", "info", "hf/org/tiny", "--json")
    assert generated.exit_code == 2, generated.stderr
    assert "incomplete download, its weights are missing (model.safetensors)" in generated.stderr
    assert "Run `llmctl models download org/tiny` again" in generated.stderr
    assert any("Incomplete download" in note for note in json.loads(info.stdout)["notes"])


# -- model folders: one clear line naming the file ---------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _index(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    weight_map = {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


FOLDER_FAULTS: list[tuple[str, Callable[[Path], object], str]] = [
    ("no tokenizer", lambda f: (f / "tokenizer.json").unlink(), "has no tokenizer"),
    ("truncated weights", lambda f: _truncate(f / "model.safetensors"), "model.safetensors is damaged: cut short"),
    ("garbage weights", lambda f: (f / "model.safetensors").write_bytes(NOISE.randbytes(4096)), "is damaged"),
    ("empty weights", lambda f: (f / "model.safetensors").write_bytes(b""), "too short"),
    ("header only", lambda f: (f / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}"), "damaged"),
    ("no weights", lambda f: (f / "model.safetensors").unlink(), "has no model weights"),
    ("missing shard", _index, "model-00002-of-00002.safetensors is missing"),
    ("template syntax", lambda f: (f / "chat_template.jinja").write_text("{% for m in messages %}"), "chat template"),
    ("template raises", lambda f: (f / "chat_template.jinja").write_text("{{ raise_exception('nope') }}"), "nope"),
    ("template calls", lambda f: (f / "chat_template.jinja").write_text("{{ messages.pop().x() }}"), "chat template"),
]


@pytest.mark.parametrize(("fault", "damage", "expected"), FOLDER_FAULTS, ids=[f[0] for f in FOLDER_FAULTS])
def test_a_broken_model_folder_is_one_clear_line_and_exit_1(
    run_llmctl: Run,
    tiny_models: dict[str, Path],
    tmp_path: Path,
    fault: str,
    damage: Callable[[Path], object],
    expected: str,
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_models["llama"], folder)
    damage(folder)

    result = run_llmctl("generate", "-m", str(folder), "hi", "--max-tokens", "2")

    assert result.exit_code == 1, result.stderr
    first, *rest = result.stderr.strip().splitlines()
    assert first.startswith("Error:") and expected in first, result.stderr
    assert len(rest) <= 1 and "Traceback" not in result.stderr and not first.startswith("Error: Unexpected")
    assert "sentencepiece" not in result.stderr


@pytest.mark.parametrize("fault", ["no tokenizer", "template syntax", "template raises"])
def test_tokens_count_says_the_same(run_llmctl: Run, tiny_models: dict[str, Path], tmp_path: Path, fault: str) -> None:
    _, damage, expected = next(f for f in FOLDER_FAULTS if f[0] == fault)
    folder = tmp_path / "model"
    shutil.copytree(tiny_models["llama"], folder)
    damage(folder)

    result = run_llmctl("tokens", "count", "-m", str(folder), "hi")

    assert result.exit_code == 1 and expected in result.stderr.splitlines()[0], result.stderr
