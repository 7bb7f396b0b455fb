"""The fake Hub (`tests.wire.hub_server`) driven by the real `huggingface_hub` 2.4 client.

The suite runs with ``HF_HUB_OFFLINE=1`` and `huggingface_hub` is imported before any test starts, so every test
here goes through `configure_huggingface_hub`, which flips the *import-time* constants (endpoint, offline flag,
caches, token path) as well as the environment. See the `hub_server` module docstring for the details.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import HfApi, constants, file_download, get_hf_file_metadata, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.wire.hub_server import HubServer, configure_huggingface_hub, iter_cache_files

CONFIG = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32}'
TOKENIZER = b'{"version": "1.0", "model": {"type": "BPE"}}'


def _safetensors(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A minimal valid safetensors file with zero-filled tensors (dtype F32 or F16)."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = (4 if dtype == "F32" else 2) * (shape[0] * (shape[1] if len(shape) > 1 else 1))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + b"\0" * offset


WEIGHTS = _safetensors({"embed.weight": ("F32", [128, 32]), "norm.weight": ("F16", [32])})
TINY_FILES = {
    "config.json": CONFIG,
    "tokenizer.json": TOKENIZER,
    "model.safetensors": WEIGHTS,
    "pytorch_model.bin": b"legacy pickle weights",
    "README.md": b"# tiny\n",
    "onnx/model.onnx": b"onnx graph",
}


@pytest.fixture
def hf_home(tmp_path: Path) -> Path:
    return tmp_path / "hf_home"


@pytest.fixture
def hf_cache(hf_home: Path) -> Path:
    return hf_home / "hub"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, hf_home: Path) -> Iterator[HubServer]:
    """A running fake Hub the client is pointed at; checks for handler errors and leaked threads afterwards."""
    before = set(threading.enumerate())
    with HubServer() as server:
        configure_huggingface_hub(monkeypatch, server.url, hf_home)
        yield server
        huggingface_hub.close_session()  # drop the client's pooled keep-alive connections to this server
        assert server.errors == []
    assert server.threads() == []
    leaked = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record, instead of sleeping, the 1 s pause `http_get` takes before resuming a broken download."""
    sleeps: list[float] = []
    monkeypatch.setattr(file_download, "time", SimpleNamespace(sleep=sleeps.append))
    return sleeps


def _resolve_gets(hub: HubServer, filename: str) -> list[str | None]:
    """Range header of every GET of `filename` through /resolve/ (or the CDN), in order."""
    return [r.range for r in hub.requests if r.method == "GET" and r.path.endswith(f"/{filename}")]


# -------------------------------------------------------------------------------------------------------------
# metadata
# -------------------------------------------------------------------------------------------------------------


def test_model_info_reports_sha_sizes_lfs_and_safetensors(hub: HubServer) -> None:
    repo = hub.add_repo("org/tiny-llama", TINY_FILES, info_extra={"pipeline_tag": "text-generation"})
    main = repo.revisions["main"]

    info = HfApi().model_info("org/tiny-llama", files_metadata=True)

    assert info.id == "org/tiny-llama"
    assert info.sha == main.commit_sha
    assert info.gated is False
    assert info.pipeline_tag == "text-generation"
    assert info.config == {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    assert info.safetensors is not None
    assert info.safetensors.parameters == {"F32": 128 * 32, "F16": 32}
    assert info.safetensors.total == 128 * 32 + 32
    assert info.siblings is not None
    siblings = {s.rfilename: s for s in info.siblings}
    assert {name: s.size for name, s in siblings.items()} == {name: len(c) for name, c in TINY_FILES.items()}
    weights = siblings["model.safetensors"]
    assert weights.lfs is not None and weights.lfs.sha256 == main.files["model.safetensors"].sha256
    assert siblings["config.json"].lfs is None
    assert siblings["onnx/model.onnx"].lfs is not None  # *.onnx is in the Hub's default .gitattributes

    # Like the real Hub: sizes only come with files_metadata=True (?blobs=true).
    plain = HfApi().model_info("org/tiny-llama")
    assert plain.siblings is not None and {s.size for s in plain.siblings} == {None}
    assert [r.query.get("blobs") for r in hub.requests_for("GET", "/api/models/")] == [["true"], None]

    sha_only = HfApi().model_info("org/tiny-llama", expand=["sha"])
    assert sha_only.sha == main.commit_sha and sha_only.siblings is None


def test_tree_listing_paginates_and_paths_info(hub: HubServer) -> None:
    hub.tree_page_size = 2
    hub.add_repo("org/tiny-llama", TINY_FILES)
    api = HfApi()

    top = {e.path: type(e).__name__ for e in api.list_repo_tree("org/tiny-llama")}
    everything = [e.path for e in api.list_repo_tree("org/tiny-llama", recursive=True)]
    under_onnx = [e.path for e in api.list_repo_tree("org/tiny-llama", path_in_repo="onnx")]
    infos = api.get_paths_info("org/tiny-llama", ["config.json", "onnx", "missing.txt"])

    assert top["onnx"] == "RepoFolder" and "onnx/model.onnx" not in top
    assert sorted(everything) == sorted([*TINY_FILES, "onnx"])
    assert under_onnx == ["onnx/model.onnx"]
    assert [(i.path, type(i).__name__) for i in infos] == [("config.json", "RepoFile"), ("onnx", "RepoFolder")]
    tree_pages = hub.requests_for("GET", "/tree/main")
    assert len(tree_pages) > 3 and any("cursor" in r.query for r in tree_pages)
    assert api.list_repo_refs("org/tiny-llama").branches[0].name == "main"


# -------------------------------------------------------------------------------------------------------------
# downloads
# -------------------------------------------------------------------------------------------------------------


def test_snapshot_download_honours_allow_and_ignore_patterns(hub: HubServer, hf_cache: Path) -> None:
    repo = hub.add_repo("org/tiny-llama", TINY_FILES)
    sha = repo.revisions["main"].commit_sha

    path = Path(
        snapshot_download("org/tiny-llama", allow_patterns=["*.json", "*.safetensors"], ignore_patterns=["tok*"])
    )

    assert path == hf_cache / "models--org--tiny-llama" / "snapshots" / sha
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    # Blobs are named by ETag: the sha256 for LFS files, the git blob sha1 otherwise.
    weights = repo.revisions["main"].files["model.safetensors"]
    assert (path / "model.safetensors").resolve().name == weights.sha256
    assert (path / "config.json").resolve().name == repo.revisions["main"].files["config.json"].git_oid
    assert (hf_cache / "models--org--tiny-llama" / "refs" / "main").read_text() == sha
    downloaded = sorted(r.path.rsplit("/", 1)[1] for r in hub.requests_for("GET", "/resolve/"))
    assert downloaded == ["config.json", "model.safetensors"]
    # snapshot_download resolves the branch once, then asks for everything by commit sha.
    assert [r.path for r in hub.requests_for("GET", "/api/")] == [
        "/api/models/org/tiny-llama/revision/main",
        f"/api/models/org/tiny-llama/tree/{sha}",
    ]
    assert all(f"/resolve/{sha}/" in r.path for r in hub.requests_for(path_contains="/resolve/"))


def test_snapshot_download_of_another_revision_and_a_tag(hub: HubServer, hf_cache: Path) -> None:
    old = {"config.json": b'{"model_type": "llama", "old": true}', "model.safetensors": b"old weights"}
    repo = hub.add_repo("org/tiny-llama", TINY_FILES, extra_revisions={"v1": old}, tags={"release": "v1"})
    v1_sha = repo.revisions["v1"].commit_sha
    assert v1_sha != repo.revisions["main"].commit_sha

    path = Path(snapshot_download("org/tiny-llama", revision="v1"))
    tagged = Path(snapshot_download("org/tiny-llama", revision="release"))

    assert path.name == v1_sha and tagged == path
    assert (path / "config.json").read_bytes() == old["config.json"]
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    assert (hf_cache / "models--org--tiny-llama" / "refs" / "v1").read_text() == v1_sha
    assert (hf_cache / "models--org--tiny-llama" / "refs" / "release").read_text() == v1_sha
    assert HfApi().model_info("org/tiny-llama", revision=v1_sha[:7]).sha == v1_sha  # short shas resolve too


def test_odd_file_and_revision_names_survive_url_quoting(hub: HubServer) -> None:
    odd = {"data/ünï cödé #1.txt": "héllo".encode()}
    repo = hub.add_repo("org/odd", {"config.json": CONFIG}, extra_revisions={"refs/pr/1": odd})

    path = Path(hf_hub_download("org/odd", "data/ünï cödé #1.txt", revision="refs/pr/1"))
    snapshot = Path(snapshot_download("org/odd", revision="refs/pr/1"))

    assert path.read_bytes() == "héllo".encode()
    assert snapshot.name == repo.revisions["refs/pr/1"].commit_sha
    assert hub.requests[0].raw_path == "/org/odd/resolve/refs%2Fpr%2F1/data/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%20%231.txt"
    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: nöpe"):
        HfApi().model_info("org/odd", revision="nöpe")


def test_hf_hub_download_one_file_and_its_metadata(hub: HubServer, hf_cache: Path) -> None:
    repo = hub.add_repo("org/tiny-llama", TINY_FILES)
    main = repo.revisions["main"]

    path = Path(hf_hub_download("org/tiny-llama", "onnx/model.onnx"))
    meta = get_hf_file_metadata(hub.resolve_url("org/tiny-llama", "model.safetensors"))

    assert path == hf_cache / "models--org--tiny-llama" / "snapshots" / main.commit_sha / "onnx" / "model.onnx"
    assert path.read_bytes() == b"onnx graph"
    assert [(r.method, r.path) for r in hub.requests] == [
        ("HEAD", "/org/tiny-llama/resolve/main/onnx/model.onnx"),
        ("GET", "/org/tiny-llama/resolve/main/onnx/model.onnx"),
        ("HEAD", "/org/tiny-llama/resolve/main/model.safetensors"),
    ]
    assert meta.commit_hash == main.commit_sha
    assert meta.etag == main.files["model.safetensors"].sha256  # from X-Linked-Etag
    assert meta.size == len(WEIGHTS)  # from X-Linked-Size
    assert meta.xet_file_data is None  # no Xet headers: plain HTTP downloads

    dry = hf_hub_download("org/tiny-llama", "model.safetensors", dry_run=True)
    assert dry.file_size == len(WEIGHTS) and dry.will_download and not dry.is_cached
    assert hub.requests[-1].method == "HEAD"


def test_snapshot_dry_run_only_sends_head_requests(hub: HubServer, hf_cache: Path) -> None:
    hub.add_repo("org/tiny-llama", TINY_FILES)

    plan = snapshot_download("org/tiny-llama", dry_run=True, ignore_patterns=["*.bin"])

    assert {p.filename: p.file_size for p in plan} == {
        name: len(content) for name, content in TINY_FILES.items() if not name.endswith(".bin")
    }
    assert all(p.will_download for p in plan)
    assert hub.requests_for("GET", "/resolve/") == []
    assert not (hf_cache / "models--org--tiny-llama" / "blobs").exists()


# -------------------------------------------------------------------------------------------------------------
# errors
# -------------------------------------------------------------------------------------------------------------


def test_missing_repo_revision_and_file_raise_the_client_errors(hub: HubServer, hf_cache: Path) -> None:
    repo = hub.add_repo("org/tiny-llama", TINY_FILES)

    with pytest.raises(RepositoryNotFoundError) as info_error:
        HfApi().model_info("org/nope")
    with pytest.raises(RepositoryNotFoundError) as snapshot_error:
        snapshot_download("org/nope")
    with pytest.raises(RepositoryNotFoundError) as download_error:
        hf_hub_download("org/nope", "config.json")
    for error in (info_error, snapshot_error, download_error):
        assert type(error.value) is RepositoryNotFoundError  # not its GatedRepoError subclass
        assert error.value.response.status_code == 404
        assert error.value.server_message == "Repository not found"

    with pytest.raises(RevisionNotFoundError, match="Invalid rev id: nope"):
        snapshot_download("org/tiny-llama", revision="nope")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/tiny-llama", "config.json", revision="nope")

    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/tiny-llama", "missing.txt")
    # The EntryNotFound answer carries X-Repo-Commit, so the client caches the absence.
    sha = repo.revisions["main"].commit_sha
    assert (hf_cache / "models--org--tiny-llama" / ".no_exist" / sha / "missing.txt").exists()


def test_gated_repo_is_served_only_with_the_valid_token(hub: HubServer) -> None:
    hub.add_repo("org/gated", TINY_FILES, gated=True)

    assert HfApi().model_info("org/gated").gated == "auto"  # metadata stays public, as on the Hub
    with pytest.raises(GatedRepoError, match="Please log in") as anonymous:
        hf_hub_download("org/gated", "config.json")
    with pytest.raises(GatedRepoError, match="not in the authorized list") as stranger:
        hf_hub_download("org/gated", "config.json", token="hf_someone_else")
    with pytest.raises(GatedRepoError):
        snapshot_download("org/gated")
    assert anonymous.value.response.status_code == 401
    assert stranger.value.response.status_code == 403
    assert anonymous.value.response.headers["X-Error-Code"] == "GatedRepo"

    hub.clear_requests()
    path = Path(snapshot_download("org/gated", token=hub.valid_token, allow_patterns=["config.json"]))

    assert (path / "config.json").read_bytes() == CONFIG
    assert {r.authorization for r in hub.requests} == {f"Bearer {hub.valid_token}"}


def test_private_repo_looks_missing_without_the_token(hub: HubServer) -> None:
    hub.add_repo("org/private", {"config.json": CONFIG}, private=True)

    with pytest.raises(RepositoryNotFoundError) as error:
        hf_hub_download("org/private", "config.json")
    assert type(error.value) is RepositoryNotFoundError and error.value.response.status_code == 401

    assert Path(hf_hub_download("org/private", "config.json", token=hub.valid_token)).read_bytes() == CONFIG
    assert HfApi(token=hub.valid_token).whoami()["name"] == hub.username


# -------------------------------------------------------------------------------------------------------------
# interrupted downloads
# -------------------------------------------------------------------------------------------------------------

BIG = random.Random(0).randbytes(2 * 1024 * 1024)


def test_interrupted_download_resumes_with_a_range_request_in_the_same_call(
    hub: HubServer, hf_cache: Path, monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float]
) -> None:
    # `http_get` writes what it reads in DOWNLOAD_CHUNK_SIZE (10 MiB) pieces; bytes of an unfinished piece are
    # lost when the connection drops. Smaller pieces make a 2 MB file resume exactly where it was cut.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    hub.add_repo("org/big", {"weights.bin": BIG})
    plan = hub.interrupt_next_get("org/big", "weights.bin", after_bytes=512 * 1024)

    path = Path(hf_hub_download("org/big", "weights.bin"))

    assert path.read_bytes() == BIG
    assert plan.fired == 1
    assert plan.following_range == f"bytes={512 * 1024}-"
    assert _resolve_gets(hub, "weights.bin") == [None, f"bytes={512 * 1024}-"]
    assert retry_sleeps == [1]
    assert not [p for p in iter_cache_files(hf_cache) if p.name.endswith(".incomplete")]


def test_with_the_default_chunk_size_a_small_interrupted_file_restarts_from_zero(
    hub: HubServer, retry_sleeps: list[float]
) -> None:
    hub.add_repo("org/big", {"weights.bin": BIG})
    plan = hub.interrupt_next_get("org/big", "weights.bin", after_bytes=512 * 1024)

    path = Path(hf_hub_download("org/big", "weights.bin"))

    assert path.read_bytes() == BIG
    assert plan.following_ranges == [None]  # nothing had been written yet: no Range on the retry
    assert retry_sleeps == [1]


def test_a_failed_download_is_not_resumed_by_the_next_call(
    hub: HubServer, hf_cache: Path, monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float]
) -> None:
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    hub.add_repo("org/big", {"weights.bin": BIG})
    first = hub.interrupt_next_get("org/big", "weights.bin", after_bytes=512 * 1024)
    # Then no progress at all: http_get gives up after 5 retries in a row that bring no new bytes.
    stalled = hub.interrupt_next_get("org/big", "weights.bin", after_bytes=0, times=5)

    with pytest.raises(httpx2.RemoteProtocolError):  # huggingface_hub 2.4's HTTP client (an httpx fork)
        hf_hub_download("org/big", "weights.bin")

    assert first.following_range == f"bytes={512 * 1024}-"
    assert stalled.exhausted and retry_sleeps == [1] * 5
    # huggingface_hub 2.4 downloads into a per-process unique temp file and deletes it on failure ...
    assert not [p for p in iter_cache_files(hf_cache) if p.name.endswith(".incomplete")]
    hub.clear_requests()

    path = Path(hf_hub_download("org/big", "weights.bin"))

    # ... so the next call starts over from byte 0.
    assert _resolve_gets(hub, "weights.bin") == [None]
    assert path.read_bytes() == BIG


# -------------------------------------------------------------------------------------------------------------
# CDN redirects, raw HTTP, lifecycle, endpoint configuration
# -------------------------------------------------------------------------------------------------------------


def test_lfs_files_can_redirect_to_a_cdn_that_never_sees_the_token(
    hub: HubServer, monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float]
) -> None:
    hub.cdn_redirects = True
    hub.add_repo("org/gated", TINY_FILES, gated=True)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1000)
    plan = hub.interrupt_next_get("org/gated", "model.safetensors", after_bytes=1000)  # applies on the CDN too

    path = Path(snapshot_download("org/gated", token=hub.valid_token, allow_patterns=["*.json", "*.safetensors"]))

    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    cdn = hub.requests_for(path_contains="/_cdn/")
    # The HEAD stops at the 302 (another origin); the GET goes straight to the CDN url, and resumes there.
    assert [(r.method, r.range) for r in cdn] == [("GET", None), ("GET", "bytes=1000-")]
    assert plan.following_range == "bytes=1000-" and retry_sleeps == [1]
    assert {r.authorization for r in cdn} == {None}
    assert all(r.headers["host"].startswith("localhost:") for r in cdn)
    resolves = hub.requests_for(path_contains="/resolve/")
    assert {r.authorization for r in resolves} == {f"Bearer {hub.valid_token}"}
    assert ("GET", "model.safetensors") not in {(r.method, r.path.rsplit("/", 1)[1]) for r in resolves}


def test_injected_failures_reach_the_client(hub: HubServer) -> None:
    hub.add_repo("org/tiny-llama", TINY_FILES)
    plan = hub.fail_next("/api/models/org/tiny-llama", status=503, message="Hub is down for maintenance")

    with pytest.raises(HfHubHTTPError, match="Hub is down for maintenance") as error:
        HfApi().model_info("org/tiny-llama")

    assert error.value.response.status_code == 503 and plan.fired == 1
    assert HfApi().model_info("org/tiny-llama").sha == hub.repo("org/tiny-llama").revisions["main"].commit_sha


def test_raw_http_ranges_and_headers(hub: HubServer) -> None:
    repo = hub.add_repo("org/big", {"weights.bin": BIG, "config.json": CONFIG})
    weights = repo.revisions["main"].files["weights.bin"]
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=5)

    def fetch(method: str, path: str, **headers: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()

    try:
        status, headers, body = fetch("HEAD", "/org/big/resolve/main/weights.bin")
        assert status == 200 and body == b""
        assert headers["X-Linked-Size"] == str(len(BIG)) == headers["Content-Length"]
        assert headers["X-Linked-Etag"] == f'"{weights.sha256}"'
        assert headers["X-Repo-Commit"] == repo.revisions["main"].commit_sha
        assert not [h for h in headers if h.lower().startswith("x-xet")]

        status, headers, body = fetch("GET", "/org/big/resolve/main/weights.bin", Range="bytes=10-19")
        assert (status, headers["Content-Range"], body) == (206, f"bytes 10-19/{len(BIG)}", BIG[10:20])
        status, headers, body = fetch("GET", "/org/big/resolve/main/weights.bin", Range="bytes=-5")
        assert (status, body) == (206, BIG[-5:])
        status, headers, body = fetch("GET", "/org/big/resolve/main/weights.bin", Range=f"bytes={len(BIG)}-")
        assert (status, headers["Content-Range"]) == (416, f"bytes */{len(BIG)}")

        status, headers, body = fetch("GET", "/org/big/resolve/main/config.json")
        assert (status, body, headers["ETag"]) == (
            200,
            CONFIG,
            f'"{repo.revisions["main"].files["config.json"].git_oid}"',
        )
        assert "X-Linked-Etag" not in headers
    finally:
        conn.close()
    assert [r.range for r in hub.requests_for("GET")] == ["bytes=10-19", "bytes=-5", f"bytes={len(BIG)}-", None]


def test_stop_closes_idle_keep_alive_connections_and_joins_threads() -> None:
    server = HubServer().start()
    port = server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/api/models/org/none")
    response = conn.getresponse()
    assert (response.status, response.headers["X-Error-Code"]) == (404, "RepoNotFound")
    response.read()  # the connection stays open (HTTP/1.1 keep-alive), its handler thread waits for more
    assert len(server.threads()) == 2

    started = time.monotonic()
    server.stop()

    assert time.monotonic() - started < 2
    assert server.threads() == [] and not server.running
    server.stop()  # idempotent
    conn.close()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_explicit_endpoint_works_without_patched_endpoint_constants(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Only the offline switch is patched: there is no per-call override for it.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with HubServer() as server:
        server.add_repo("org/tiny-llama", TINY_FILES)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        assert HfApi().endpoint != server.url  # the env var alone is ignored once huggingface_hub is imported

        sha = HfApi(endpoint=server.url).model_info("org/tiny-llama").sha
        path = snapshot_download(
            "org/tiny-llama", endpoint=server.url, cache_dir=tmp_path / "cache", allow_patterns=["config.json"]
        )

        assert Path(path).name == sha
        huggingface_hub.close_session()


def test_a_subprocess_honours_hf_endpoint(hub: HubServer, hf_home: Path) -> None:
    repo = hub.add_repo("org/tiny-llama", TINY_FILES)
    code = (
        "from huggingface_hub import hf_hub_download, model_info; "
        "print(model_info('org/tiny-llama').sha); print(hf_hub_download('org/tiny-llama', 'config.json'))"
    )
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(hf_home / "sub"), "HF_HUB_OFFLINE": "0"}
    env.pop("HF_HUB_CACHE", None)

    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    sha, path = result.stdout.split()
    assert sha == repo.revisions["main"].commit_sha
    assert Path(path).read_bytes() == CONFIG and Path(path).is_relative_to(hf_home / "sub")


# -------------------------------------------------------------------------------------------------------------
# a real tiny model
# -------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A real LlamaForCausalLM (hidden 32, 1 layer, vocab 128) saved with save_pretrained; returns (folder, model).

    Module-scoped so the one-off cost of importing torch/transformers and instantiating the first model (~3 s on
    two cores) lands in fixture setup, not in the test itself.
    """
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=128,
        max_position_embeddings=64,
    )
    model = transformers.LlamaForCausalLM(config)
    model.eval()
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    return folder, model


def test_tiny_llama_served_downloaded_and_loaded_offline(
    hub: HubServer, tiny_llama: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    import transformers

    source, model = tiny_llama
    repo = hub.add_repo_from_dir("org/tiny-llama", source)

    info = HfApi().model_info("org/tiny-llama", files_metadata=True)
    local = Path(snapshot_download("org/tiny-llama"))

    assert info.safetensors is not None
    assert info.safetensors.total == sum(p.numel() for p in model.parameters())
    assert local.name == repo.revisions["main"].commit_sha
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in source.iterdir())

    hub.clear_requests()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = transformers.AutoModelForCausalLM.from_pretrained(local, local_files_only=True)  # in eval mode

    assert hub.requests == []
    assert type(loaded).__name__ == "LlamaForCausalLM"
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
