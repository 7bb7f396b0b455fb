"""What ``llmctl models download`` would fetch: the repo's files, filtered, and what the cache already has.

By default only what llmctl loads (safetensors weights, config, tokenizer, chat template),
so a repo that also ships ``.bin``/``.gguf``/``.onnx`` copies costs one download, not four.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

from llmctl.hub.cache import INCOMPLETE_SUFFIX, repo_folder_name
from llmctl.hub.errors import hub_error, offline_error
from llmctl.hub.weights import TensorStats
from llmctl.providers.registry import is_repo_id

DEFAULT_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "vocab.*",
    "merges.txt",
    "added_tokens.json",
    "chat_template.*",
)
GGUF_SUFFIX = ".gguf"  # one file with the weights, the tokenizer and the chat template: llama.cpp's format
# Weight formats llmctl does not load unless the config allows them: never fetched by default.
OTHER_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".gguf", ".onnx", ".h5", ".msgpack", ".ckpt", ".tflite", ".ot")

# cached: in this snapshot; blob: its content is in the cache (another revision has it), only a link is
# missing; partial: part of it was downloaded by an earlier run; missing: not here at all.
FileState = Literal["cached", "blob", "partial", "missing"]


def _normalize(pattern: str) -> str:
    return pattern + "*" if pattern.endswith("/") else pattern


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch(path, _normalize(p)) for p in patterns)


def select_files(
    paths: Iterable[str], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """(selected, skipped) paths of a repository.

    Selected: top-level files matching DEFAULT_PATTERNS (transformers loads from the top level)
    plus anything matching an ``include`` pattern, minus anything matching an ``exclude`` one.
    When the repo has transformers' ``model*.safetensors`` weights, other top-level safetensors
    (Mistral's ``consolidated.safetensors``: the same weights again) are left out by default.
    """
    paths = list(paths)
    by_default = [p for p in paths if "/" not in p and _matches(p, DEFAULT_PATTERNS)]
    weights = [p for p in by_default if p.endswith(".safetensors")]
    if any(p.startswith("model") for p in weights):
        duplicates = {p for p in weights if not p.startswith("model")}
        by_default = [p for p in by_default if p not in duplicates]
    chosen = set(by_default) | {p for p in paths if _matches(p, include)}
    selected = [p for p in paths if p in chosen and not _matches(p, exclude)]
    skipped = [p for p in paths if p not in selected]
    return selected, skipped


@dataclass(frozen=True)
class PlannedFile:
    path: str
    size: int | None
    etag: str | None
    state: FileState
    partial_bytes: int = 0

    @property
    def transfers(self) -> bool:
        return self.state in ("partial", "missing")

    @property
    def remaining_bytes(self) -> int:
        if not self.transfers or self.size is None:
            return 0
        return max(self.size - self.partial_bytes, 0)


@dataclass(frozen=True)
class DownloadPlan:
    repo_id: str
    revision: str  # what the user asked for ("main" by default)
    commit_sha: str
    cache_dir: Path
    endpoint: str | None
    token: str | None = field(repr=False)  # never in a traceback or a log
    token_source: str | None  # "HF_TOKEN", "saved login" or None
    files: tuple[PlannedFile, ...]
    skipped: tuple[tuple[str, int | None], ...]
    gated: bool
    stats: TensorStats | None = None
    stats_note: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def remaining_bytes(self) -> int:
        return sum(f.remaining_bytes for f in self.files)

    @property
    def gguf_files(self) -> list[str]:
        """The GGUF files this plan fetches (llama.cpp models, run with -m llamacpp/ORG/REPO)."""
        return [f.path for f in self.files if f.path.endswith(GGUF_SUFFIX)]

    @property
    def snapshot_dir(self) -> Path:
        return self.cache_dir / repo_folder_name(self.repo_id) / "snapshots" / self.commit_sha

    def to_json(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit_sha": self.commit_sha,
            "cache_dir": str(self.cache_dir),
            "files": [
                {"path": f.path, "size_bytes": f.size, "state": f.state, "partial_bytes": f.partial_bytes}
                for f in self.files
            ],
            "skipped": [{"path": p, "size_bytes": s} for p, s in self.skipped],
            "total_bytes": self.total_bytes,
            "remaining_bytes": self.remaining_bytes,
            "gated": self.gated,
            "token_source": self.token_source,
            "warnings": list(self.warnings),
        }


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` as it is now (huggingface_hub itself read it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def resolve_token() -> tuple[str | None, str | None]:
    """The token to send, and where it came from."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token, "HF_TOKEN"
    from huggingface_hub import get_token

    saved = get_token()
    return (saved, "saved login") if saved else (None, None)


def ensure_online() -> None:
    try:
        from huggingface_hub import constants
    except ImportError as exc:
        from llmctl.errors import MissingDependencyError

        raise MissingDependencyError(
            "Downloading models needs huggingface_hub.", hint="Install it with: pip install 'llmctl[local]'"
        ) from exc
    if constants.HF_HUB_OFFLINE:
        raise offline_error()


def _blob_name(sibling: Any) -> str | None:
    lfs = getattr(sibling, "lfs", None)
    if lfs is not None and getattr(lfs, "sha256", None):
        return str(lfs.sha256)
    blob_id = getattr(sibling, "blob_id", None)
    return str(blob_id) if blob_id else None


def _file_state(storage: Path, commit: str, path: str, etag: str | None) -> tuple[FileState, int]:
    if (storage / "snapshots" / commit / path).exists():
        return "cached", 0
    if etag:
        if (storage / "blobs" / etag).exists():
            return "blob", 0
        partial = storage / "blobs" / (etag + INCOMPLETE_SUFFIX)
        if partial.is_file():
            return "partial", partial.stat().st_size
    return "missing", 0


def plan_download(
    repo_id: str,
    *,
    cache_dir: Path,
    revision: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    with_stats: bool = False,
) -> DownloadPlan:
    """Ask the Hub what ``repo_id`` holds and decide what to fetch. Nothing is written."""
    if not is_repo_id(repo_id):  # it names folders in the cache: "../x" must never get that far
        from llmctl.errors import UsageError

        raise UsageError(
            f"{repo_id!r} is not a Hub repository id.", hint="Use ORG/NAME, e.g. Qwen/Qwen2.5-0.5B-Instruct."
        )
    ensure_online()
    from huggingface_hub import HfApi

    endpoint = hub_endpoint()
    token, token_source = resolve_token()
    api = HfApi(endpoint=endpoint, token=token)
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:
        mapped = hub_error(exc, repo_id=repo_id, revision=revision, endpoint=endpoint, has_token=token is not None)
        if mapped is None:
            raise
        raise mapped from exc
    commit = str(info.sha)
    siblings = {s.rfilename: s for s in info.siblings or []}
    selected, skipped = select_files(siblings, include, exclude)
    storage = cache_dir / repo_folder_name(repo_id)
    files = []
    for path in sorted(selected, key=lambda p: (siblings[p].size or 0, p)):  # configs first, big shards last
        etag = _blob_name(siblings[path])
        state, partial = _file_state(storage, commit, path, etag)
        files.append(PlannedFile(path, siblings[path].size, etag, state, partial))
    gated = bool(info.gated)
    warnings = _warnings(selected, skipped, include)
    stats, note = (None, None)
    if with_stats:
        stats, note = _remote_stats(api, repo_id, commit, [f.path for f in files], info)
    return DownloadPlan(
        repo_id=repo_id,
        revision=revision or "main",
        commit_sha=commit,
        cache_dir=cache_dir,
        endpoint=endpoint,
        token=token,
        token_source=token_source,
        files=tuple(files),
        skipped=tuple((p, siblings[p].size) for p in sorted(skipped)),
        gated=gated,
        stats=stats,
        stats_note=note,
        warnings=tuple(warnings),
    )


def _warnings(selected: list[str], skipped: list[str], include: Sequence[str]) -> list[str]:
    if any(p.endswith(GGUF_SUFFIX) for p in selected):
        return []  # a GGUF file is the whole model for llama.cpp: no config.json, no tokenizer files needed
    warnings = []
    ggufs = [p for p in skipped if p.endswith(GGUF_SUFFIX)]
    if ggufs and not any(p.endswith(".safetensors") for p in selected + skipped):
        example = next((p for p in ggufs if "Q4_K_M" in p), ggufs[0])
        return [
            f"This repository has GGUF files ({len(ggufs)}), which llama.cpp runs; pick one with "
            f"--include '{example}' (or a pattern such as '*Q4_K_M.gguf')."
        ]
    if not any(p.endswith(".safetensors") for p in selected):
        others = [p for p in skipped if p.endswith(OTHER_WEIGHT_SUFFIXES)]
        if others:
            warnings.append(
                "This repository has no safetensors weights, which is all llmctl loads by default "
                f"(it has {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}). If you trust the files, "
                "add --include '*.bin' (or the format you need) and set allow_pickle_weights = true for the model."
            )
        elif not include:
            warnings.append("This repository has no model weights that llmctl can load.")
    if "config.json" not in selected:
        warnings.append("No config.json will be downloaded: transformers cannot load the result as a model.")
    return warnings


def _remote_stats(
    api: Any, repo_id: str, commit: str, paths: list[str], info: Any
) -> tuple[TensorStats | None, str | None]:
    """Parameter counts from the safetensors headers on the Hub (a few ranged requests per file)."""
    from llmctl.hub.weights import INDEX_FILE

    weights = [p for p in paths if p.endswith(".safetensors") and "/" not in p]
    if INDEX_FILE in paths:
        weights = [p for p in weights if p.startswith("model")] or weights
    headers: dict[str, dict[str, Any]] = {}
    try:
        for path in weights:
            meta = api.parse_safetensors_file_metadata(repo_id, path, revision=commit)
            headers[path] = {name: {"dtype": t.dtype, "shape": list(t.shape)} for name, t in meta.tensors.items()}
    except Exception:  # gated without a token, a server without ranges: fall back to the Hub's own count
        headers = {}
    if headers:
        return TensorStats.from_headers(headers), None
    summary = getattr(info, "safetensors", None)
    if summary is not None and getattr(summary, "total", None):
        by_dtype = {str(k): int(v) for k, v in (summary.parameters or {}).items()}
        stats = TensorStats(int(summary.total), int(summary.total), by_dtype)
        return stats, "from the Hub's parameter count; 8-bit/4-bit figures assume every weight is quantized"
    return None, "no safetensors weights to count"
