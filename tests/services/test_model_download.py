"""Downloads through the real huggingface_hub client from the loopback Hub: patterns, revisions,
errors, resuming, and the cache layout the HF provider then loads from offline."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest

from llmctl.errors import AuthenticationError, ModelNotFoundError, ProviderError
from llmctl.hub import download as model_download
from llmctl.hub.cache import find_cached
from llmctl.hub.download import DownloadPlan, download, plan_download, select_files
from llmctl.providers.base import ResolvedModel
from tests.model_hub import (
    BIG,
    EXTRA_FILES,
    folder_files,
    hub,
    hub_cache,
    hub_home,
    retry_sleeps,
    serve_model,
    true_parameter_count,
)
from tests.wire.hub_server import HubServer, iter_cache_files

__all__ = ["hub", "hub_cache", "hub_home", "retry_sleeps"]  # fixtures

REPO = "org/tiny-llama"
# Everything save_pretrained writes for a tiny model (transformers 5 puts the template in its own file).
LOADABLE = {
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
}


def _gets(hub: HubServer) -> list[str]:
    """File names fetched with GET through /resolve/ (ranged header reads included)."""
    return [r.path.rsplit("/", 1)[1] for r in hub.requests_for("GET", "/resolve/")]


def _snapshot_files(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.advanced = 0

    def start(self, plan: DownloadPlan) -> None:
        self.events.append(("start", str(plan.remaining_bytes)))

    def file_started(self, path: str, size: int | None, resumed_from: int) -> None:
        self.events.append(("file", path, str(resumed_from)))

    def advance(self, nbytes: int) -> None:
        self.advanced += nbytes

    def file_finished(self, path: str) -> None:
        self.events.append(("done", path))

    def finish(self) -> None:
        self.events.append(("finish",))


# -- which files ---------------------------------------------------------------------------------------------


def test_default_selection_is_what_llmctl_loads_at_the_top_level() -> None:
    paths = [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "consolidated.safetensors",  # Mistral's second copy of the same weights
        "tokenizer.model",
        "vocab.json",
        "merges.txt",
        "chat_template.jinja",
        "pytorch_model.bin",
        "model.gguf",
        "onnx/model.onnx",
        "original/tokenizer.model",
        "sub/model.safetensors",
        "README.md",
    ]
    selected, skipped = select_files(paths)
    assert set(selected) == {
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.model",
        "vocab.json",
        "merges.txt",
        "chat_template.jinja",
    }
    assert set(selected) | set(skipped) == set(paths)


def test_include_adds_and_exclude_removes() -> None:
    paths = ["config.json", "model.safetensors", "pytorch_model.bin", "onnx/model.onnx", "consolidated.safetensors"]
    selected, _ = select_files(paths, include=["*.bin", "onnx/", "consolidated.*"], exclude=["config.json"])
    assert set(selected) == {"model.safetensors", "pytorch_model.bin", "onnx/model.onnx", "consolidated.safetensors"}
    everything, none_skipped = select_files(paths, include=["*"])
    assert set(everything) == set(paths) and none_skipped == []


# -- downloading ---------------------------------------------------------------------------------------------


def test_default_download_fetches_only_loadable_files_into_the_standard_cache(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    repo = serve_model(hub, REPO, tiny_models["llama"])
    recorder = Recorder()

    plan = plan_download(REPO, cache_dir=hub_cache)
    result = download(plan, recorder)

    sha = repo.revisions["main"].commit_sha
    assert plan.commit_sha == sha and result.snapshot_dir == hub_cache / "models--org--tiny-llama" / "snapshots" / sha
    assert _snapshot_files(result.snapshot_dir) == LOADABLE
    assert {p for p, _ in plan.skipped} == set(EXTRA_FILES)
    assert not {"pytorch_model.bin", "model.onnx", "model.gguf", "README.md"} & set(_gets(hub))
    for name in LOADABLE:
        assert (result.snapshot_dir / name).read_bytes() == (tiny_models["llama"] / name).read_bytes()
    assert (hub_cache / "models--org--tiny-llama" / "refs" / "main").read_text() == sha
    assert recorder.advanced == plan.total_bytes == result.downloaded_bytes
    assert [e[0] for e in recorder.events].count("done") == len(LOADABLE)
    assert result.stats is not None and result.stats.parameters == true_parameter_count(tiny_models["llama"])
    assert not [p for p in iter_cache_files(hub_cache) if p.name.endswith(".incomplete")]


def test_the_hf_provider_loads_the_download_offline(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    from llmctl.provider_specs import HuggingFaceProviderSettings
    from llmctl.providers.hf.loading import load_model

    serve_model(hub, REPO, tiny_models["llama"])
    download(plan_download(REPO, cache_dir=hub_cache))
    hub.clear_requests()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    loaded = load_model(ResolvedModel("hf", "huggingface", REPO, HuggingFaceProviderSettings()))

    assert type(loaded.model).__name__ == "LlamaForCausalLM"
    assert (
        Path(loaded.source)
        == hub_cache / "models--org--tiny-llama" / "snapshots" / hub.repo(REPO).revisions["main"].commit_sha
    )
    assert hub.requests == []


def test_a_second_run_downloads_nothing(hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]) -> None:
    serve_model(hub, REPO, tiny_models["llama"])
    download(plan_download(REPO, cache_dir=hub_cache))
    hub.clear_requests()

    plan = plan_download(REPO, cache_dir=hub_cache)
    result = download(plan)

    assert {f.state for f in plan.files} == {"cached"} and plan.remaining_bytes == 0
    assert result.downloaded_bytes == 0 and hub.requests_for("GET", "/resolve/") == []


def test_revision_include_and_exclude(hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["llama"]
    old_config = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "old": true}'
    repo = serve_model(
        hub, REPO, folder, extra_revisions={"v1": {"config.json": old_config, "pytorch_model.bin": b"old pickle"}}
    )

    plan = plan_download(REPO, cache_dir=hub_cache, revision="v1", include=["*.bin"], exclude=["tokenizer*"])
    result = download(plan)

    assert plan.commit_sha == repo.revisions["v1"].commit_sha != repo.revisions["main"].commit_sha
    assert _snapshot_files(result.snapshot_dir) == {"config.json", "pytorch_model.bin"}
    assert (result.snapshot_dir / "config.json").read_bytes() == old_config
    assert (hub_cache / "models--org--tiny-llama" / "refs" / "v1").read_text() == plan.commit_sha
    cached = find_cached(hub_cache, REPO)
    assert cached is not None and cached.snapshot("v1") == result.snapshot_dir


def test_a_revision_sharing_weights_with_a_downloaded_one_only_links_them(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    folder = tiny_models["llama"]
    new_config = (folder / "config.json").read_bytes().replace(b"{", b'{"revised": true, ', 1)
    repo = serve_model(hub, REPO, folder, extra_revisions={"v2": {**folder_files(folder), "config.json": new_config}})
    download(plan_download(REPO, cache_dir=hub_cache))
    hub.clear_requests()

    plan = plan_download(REPO, cache_dir=hub_cache, revision="v2")
    result = download(plan)

    assert {f.path: f.state for f in plan.files}["model.safetensors"] == "blob"
    assert plan.remaining_bytes == len(new_config)
    assert _gets(hub) == ["config.json"]
    assert result.snapshot_dir.name == repo.revisions["v2"].commit_sha
    assert _snapshot_files(result.snapshot_dir) == LOADABLE
    assert (result.snapshot_dir / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()


def test_dry_run_counts_parameters_from_remote_headers_and_writes_nothing(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    serve_model(hub, REPO, tiny_models["gemma"])  # tied embeddings: the checkpoint stores them once

    plan = plan_download(REPO, cache_dir=hub_cache, with_stats=True)

    assert plan.stats is not None and plan.stats.parameters == true_parameter_count(tiny_models["gemma"])
    assert {f.path for f in plan.files} == LOADABLE
    assert plan.total_bytes == sum((tiny_models["gemma"] / f).stat().st_size for f in LOADABLE)
    ranged = [r for r in hub.requests_for("GET", "/resolve/")]
    assert ranged and all(r.range for r in ranged)  # only header reads
    assert not hub_cache.exists() or not list(iter_cache_files(hub_cache))


def test_dry_run_of_a_gated_repo_without_a_token_uses_the_hubs_parameter_count(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    serve_model(hub, "org/gated", tiny_models["llama"], gated=True)

    plan = plan_download("org/gated", cache_dir=hub_cache, with_stats=True)

    assert plan.gated and plan.token is None
    assert plan.stats is not None and plan.stats.parameters == true_parameter_count(tiny_models["llama"])
    assert plan.stats_note is not None and "Hub's parameter count" in plan.stats_note


def test_hf_token_is_sent_when_set(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_model(hub, "org/gated", tiny_models["llama"], gated=True)
    monkeypatch.setenv("HF_TOKEN", hub.valid_token)

    plan = plan_download("org/gated", cache_dir=hub_cache)
    download(plan)

    assert plan.gated and plan.token_source == "HF_TOKEN"
    assert {r.authorization for r in hub.requests_for(path_contains="/resolve/")} == {f"Bearer {hub.valid_token}"}


# -- errors ----------------------------------------------------------------------------------------------------


def test_gated_repo_without_a_token_says_to_accept_the_license(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    serve_model(hub, "org/gated", tiny_models["llama"], gated=True)
    plan = plan_download("org/gated", cache_dir=hub_cache)  # metadata of a gated repo is public

    with pytest.raises(AuthenticationError) as error:
        download(plan)

    assert "gated" in error.value.message and "license" in error.value.message
    assert hub.requests_for(path_contains="/resolve/") == []  # refused before any transfer
    assert f"{hub.url}/org/gated" in (error.value.hint or "") and "HF_TOKEN" in (error.value.hint or "")


def test_gated_repo_with_a_token_without_access(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_model(hub, "org/gated", tiny_models["llama"], gated=True)
    monkeypatch.setenv("HF_TOKEN", "hf_someone_else")

    with pytest.raises(AuthenticationError) as error:
        download(plan_download("org/gated", cache_dir=hub_cache))

    assert "403" in error.value.message and "accept the license" in (error.value.hint or "").lower()


def test_missing_repo_and_missing_revision(hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]) -> None:
    serve_model(hub, REPO, tiny_models["llama"])

    with pytest.raises(ModelNotFoundError, match="does not exist") as missing:
        plan_download("org/nope", cache_dir=hub_cache)
    with pytest.raises(ModelNotFoundError, match="no revision 'v9'"):
        plan_download(REPO, cache_dir=hub_cache, revision="v9")

    assert missing.value.exit_code == 2


def test_offline_mode_is_named(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ProviderError, match="HF_HUB_OFFLINE=1") as error:
        plan_download(REPO, cache_dir=hub_cache)
    assert "HF_HUB_OFFLINE=0" in (error.value.hint or "")


def test_no_network_says_the_hub_cannot_be_reached(
    hub_home: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.wire.hub_server import configure_huggingface_hub

    with HubServer() as server:
        dead = server.url
    configure_huggingface_hub(monkeypatch, dead, hub_home)  # the port is closed now

    with pytest.raises(ProviderError, match="Could not reach the Hugging Face Hub") as error:
        plan_download(REPO, cache_dir=hub_cache)
    assert dead in error.value.message


def test_not_enough_disk_is_refused_before_any_transfer(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_model(hub, REPO, tiny_models["llama"])
    plan = plan_download(REPO, cache_dir=hub_cache)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(model_download.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))

    with pytest.raises(ProviderError, match="Not enough free disk space") as error:
        download(plan)

    assert "1,000 B free" in error.value.message or "1.00 KB free" in error.value.message
    assert hub.requests_for("GET", "/resolve/") == []


# -- interrupted transfers -----------------------------------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub writes what it reads in 10 MiB pieces; smaller ones let a 2 MB file be cut mid-way.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)


def test_an_interrupted_download_resumes_with_a_range_request_on_the_next_run(
    hub: HubServer, hub_cache: Path, retry_sleeps: list[float], small_chunks: None
) -> None:
    config = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}'
    hub.add_repo("org/big", {"config.json": config, "model.safetensors": BIG})
    hub.interrupt_next_get("org/big", "model.safetensors", after_bytes=512 * 1024)
    hub.interrupt_next_get("org/big", "model.safetensors", after_bytes=0, times=5)  # then the network is gone

    with pytest.raises(ProviderError, match=r"model\.safetensors") as error:
        download(plan_download("org/big", cache_dir=hub_cache))
    assert "again to resume" in (error.value.hint or "")
    partial = [p for p in iter_cache_files(hub_cache) if p.name.endswith(".incomplete")]
    assert [p.stat().st_size for p in partial] == [512 * 1024]
    hub.clear_requests()

    plan = plan_download("org/big", cache_dir=hub_cache)
    result = download(plan)

    states = {f.path: (f.state, f.partial_bytes) for f in plan.files}
    assert states == {"config.json": ("cached", 0), "model.safetensors": ("partial", 512 * 1024)}
    assert [r.range for r in hub.requests_for("GET", "/resolve/")] == [f"bytes={512 * 1024}-"]
    assert (result.snapshot_dir / "model.safetensors").read_bytes() == BIG
    assert result.resumed_files == ("model.safetensors",)
    assert result.downloaded_bytes == len(BIG) - 512 * 1024
    assert not [p for p in iter_cache_files(hub_cache) if p.name.endswith(".incomplete")]


def test_a_dropped_connection_resumes_within_the_same_run(
    hub: HubServer, hub_cache: Path, retry_sleeps: list[float], small_chunks: None
) -> None:
    hub.add_repo("org/big", {"config.json": b"{}", "model.safetensors": BIG})
    plan_cut = hub.interrupt_next_get("org/big", "model.safetensors", after_bytes=1024 * 1024)
    recorder = Recorder()

    result = download(plan_download("org/big", cache_dir=hub_cache), recorder)

    assert (result.snapshot_dir / "model.safetensors").read_bytes() == BIG
    assert plan_cut.following_range == f"bytes={1024 * 1024}-"
    assert recorder.advanced == len(BIG) + 2 and retry_sleeps == [1]


def test_a_partial_snapshot_made_by_other_tools_still_loads(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `hf download --include ...` (snapshot_download with patterns) records the repo's full file list, so
    # huggingface_hub calls the snapshot incomplete offline; what llmctl loads is all there.
    from huggingface_hub import constants, snapshot_download

    from llmctl.provider_specs import HuggingFaceProviderSettings
    from llmctl.providers.hf.loading import load_model

    serve_model(hub, REPO, tiny_models["llama"])
    snapshot_download(REPO, allow_patterns=sorted(LOADABLE))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    loaded = load_model(ResolvedModel("hf", "huggingface", REPO, HuggingFaceProviderSettings()))

    assert type(loaded.model).__name__ == "LlamaForCausalLM"


def test_an_unfinished_download_is_flagged_in_the_catalog(
    hub: HubServer, hub_cache: Path, retry_sleeps: list[float], small_chunks: None
) -> None:
    from llmctl.config import Settings
    from llmctl.services.models.catalog import list_models

    hub.add_repo("org/big", {"config.json": b"{}", "model.safetensors": BIG})
    hub.interrupt_next_get("org/big", "model.safetensors", after_bytes=512 * 1024)
    hub.interrupt_next_get("org/big", "model.safetensors", after_bytes=0, times=5)
    with pytest.raises(ProviderError):
        download(plan_download("org/big", cache_dir=hub_cache))

    cached = find_cached(hub_cache, "org/big")
    entry = next(e for e in list_models(Settings()) if e.name == "hf/org/big")

    assert cached is not None and cached.incomplete_bytes == 512 * 1024 and not cached.is_complete
    assert entry.description is not None and "llmctl models download org/big" in entry.description
