"""``llmctl models download``: fetch a Hub repository into the standard Hugging Face cache.

huggingface_hub does the talking (endpoints, auth, redirects, Xet, cache layout and locks);
``model_download_plan`` decides which files. One thing is ours: **resuming across runs**.
huggingface_hub 2.4 writes each file to a per-process temporary file and deletes it when the
download fails or is interrupted, so a re-run would start a 5 GB shard from byte 0. For plain
HTTP downloads we keep the partial bytes in ``blobs/<etag>.incomplete`` (the name older
huggingface_hub versions used for the same purpose) and hand them to huggingface_hub's own
``http_get`` with ``resume_size``, which asks for the rest with ``Range``. Xet-stored files go
through ``hf_hub_download`` unchanged (Xet keeps its own chunk cache).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from llmctl.errors import ProviderError
from llmctl.hub.cache import INCOMPLETE_SUFFIX, repo_folder_name, write_ref
from llmctl.hub.download_plan import (
    DEFAULT_PATTERNS,
    DownloadPlan,
    PlannedFile,
    ensure_online,
    plan_download,
    select_files,
)
from llmctl.hub.errors import gated_without_token, hub_error
from llmctl.hub.weights import TensorStats

__all__ = ["DEFAULT_PATTERNS", "DownloadPlan", "DownloadResult", "download", "plan_download", "select_files"]


@dataclass(frozen=True)
class DownloadResult:
    plan: DownloadPlan
    snapshot_dir: Path
    downloaded_bytes: int
    resumed_files: tuple[str, ...]
    seconds: float
    stats: TensorStats | None = None


class DownloadProgress(Protocol):
    """Where the download reports progress (the CLI draws it; tests may record it)."""

    def start(self, plan: DownloadPlan) -> None: ...
    def file_started(self, path: str, size: int | None, resumed_from: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def file_finished(self, path: str) -> None: ...
    def finish(self) -> None: ...


class _Quiet:
    def start(self, plan: DownloadPlan) -> None:
        pass

    def file_started(self, path: str, size: int | None, resumed_from: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_finished(self, path: str) -> None:
        pass

    def finish(self) -> None:
        pass


def check_disk_space(plan: DownloadPlan) -> None:
    """Refuse before starting when the cache's disk cannot hold what is left to download."""
    from llmctl.domain import human_bytes

    target = plan.cache_dir
    while not target.exists() and target != target.parent:
        target = target.parent
    free = shutil.disk_usage(target).free
    needed = plan.remaining_bytes
    if needed > free:
        raise ProviderError(
            f"Not enough free disk space for {plan.repo_id}: it needs {human_bytes(needed)}, "
            f"but {target} has {human_bytes(free)} free.",
            hint="Free some space (`llmctl models rm MODEL` removes a downloaded model), point HF_HUB_CACHE "
            "at a bigger disk, or download fewer files with --exclude.",
        )


def download(plan: DownloadPlan, progress: DownloadProgress | None = None) -> DownloadResult:
    """Fetch every file of ``plan`` that is not in the cache yet, resuming partial ones."""
    ensure_online()
    if plan.gated and plan.token is None:
        raise gated_without_token(plan.repo_id, plan.endpoint)
    check_disk_space(plan)
    reporter: DownloadProgress = progress or _Quiet()
    bar = _bar_class(reporter)
    started = time.perf_counter()
    downloaded = 0
    resumed = []
    reporter.start(plan)
    try:
        for item in plan.files:
            if item.state == "cached":
                continue
            if item.transfers:
                reporter.file_started(item.path, item.size, item.partial_bytes)
            try:
                fetched, resumed_from = _download_file(plan, item, bar)
            except Exception as exc:
                mapped = hub_error(
                    exc,
                    repo_id=plan.repo_id,
                    revision=plan.revision,
                    endpoint=plan.endpoint,
                    has_token=plan.token is not None,
                    filename=item.path,
                )
                if mapped is None:
                    raise
                raise mapped from exc
            downloaded += fetched
            if resumed_from:
                resumed.append(item.path)
            if item.transfers:
                reporter.file_finished(item.path)
    finally:
        reporter.finish()
    write_ref(plan.cache_dir, plan.repo_id, plan.revision, plan.commit_sha)
    from llmctl.hub.weights import tensor_stats

    snapshot = plan.snapshot_dir
    stats = tensor_stats(snapshot) if snapshot.is_dir() else None
    return DownloadResult(plan, snapshot, downloaded, tuple(resumed), time.perf_counter() - started, stats)


def _download_file(plan: DownloadPlan, item: PlannedFile, bar: type) -> tuple[int, int]:
    """Download one file into the cache; return (bytes fetched, bytes it resumed from)."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.utils._runtime import is_xet_available

    common: dict[str, Any] = {
        "revision": plan.commit_sha,
        "cache_dir": plan.cache_dir,
        "endpoint": plan.endpoint,
        "token": plan.token,
    }
    url = hf_hub_url(plan.repo_id, item.path, revision=plan.commit_sha, endpoint=plan.endpoint)
    meta = get_hf_file_metadata(url, token=plan.token, endpoint=plan.endpoint)
    if meta.xet_file_data is not None and is_xet_available() and not constants.HF_HUB_DISABLE_XET:
        hf_hub_download(plan.repo_id, item.path, tqdm_class=bar, **common)
        return meta.size or 0, 0
    if meta.etag is None:
        hf_hub_download(plan.repo_id, item.path, tqdm_class=bar, **common)
        return meta.size or 0, 0
    storage = plan.cache_dir / repo_folder_name(plan.repo_id)
    blob = storage / "blobs" / meta.etag
    fetched = resumed_from = 0
    if not blob.exists():
        fetched, resumed_from = _fetch_blob(plan, url, meta, blob, bar)
    # The blob is in place: huggingface_hub links the snapshot entry to it (no transfer).
    hf_hub_download(plan.repo_id, item.path, **common)
    return fetched, resumed_from


def _fetch_blob(plan: DownloadPlan, url: str, meta: Any, blob: Path, bar: type) -> tuple[int, int]:
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import WeakFileLock, build_hf_headers  # type: ignore[attr-defined]

    lock = plan.cache_dir / ".locks" / repo_folder_name(plan.repo_id) / f"{blob.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    headers = build_hf_headers(token=plan.token)
    target = url
    if meta.location and meta.location != url:
        target = meta.location
        if urlparse(meta.location).netloc != urlparse(url).netloc:
            headers.pop("authorization", None)  # a CDN's signed URL must not see the Hub token
    partial = blob.with_name(blob.name + INCOMPLETE_SUFFIX)

    def fetch_rest() -> int:
        """Append what ``partial`` lacks; the bytes it held before."""
        if meta.size is not None and partial.exists() and partial.stat().st_size > meta.size:
            partial.unlink()
        with partial.open("ab") as handle:
            start = handle.tell()
            if meta.size is None or start < meta.size:
                http_get(
                    target,
                    handle,
                    resume_size=start,
                    headers=headers,
                    expected_size=meta.size,
                    displayed_filename=blob.name,
                    tqdm_class=bar,
                )
        return start

    with WeakFileLock(lock):
        if blob.exists():  # another process finished it while we waited
            return 0, 0
        resume_from = fetch_rest()
        if content_matches(partial, blob.name) is False:
            # Bytes kept from an earlier run were not the start of this file (another tool's
            # leftovers, a disk error): they are dropped and the whole file fetched again.
            partial.unlink()
            if resume_from == 0:
                raise _checksum_mismatch(plan, blob.name)
            fetch_rest()
            if content_matches(partial, blob.name) is False:
                partial.unlink()
                raise _checksum_mismatch(plan, blob.name)
            resume_from = 0
        os.replace(partial, blob)
    return (meta.size or 0) - resume_from, resume_from


_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")


def content_matches(path: Path, blob_name: str) -> bool | None:
    """Does the file hold what its cache name says? The Hub names LFS blobs by their sha256 and the
    others by their git blob sha1. None when the name is neither (nothing to check against)."""
    if _SHA256.fullmatch(blob_name):
        digest = hashlib.sha256()
    elif _GIT_SHA1.fullmatch(blob_name):
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(b"blob %d\x00" % path.stat().st_size)
    else:
        return None
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest() == blob_name


_HASH_CHUNK = 8 * 1024 * 1024


def _checksum_mismatch(plan: DownloadPlan, blob_name: str) -> ProviderError:
    return ProviderError(
        f"A file of {plan.repo_id} arrived with the wrong content (its checksum is not {blob_name[:12]}…); "
        "it was deleted.",
        hint="Run the same command again; if it keeps happening, the server or a proxy is altering the file.",
    )


def _bar_class(reporter: DownloadProgress) -> type:
    """A tqdm look-alike that huggingface_hub drives and that feeds ``reporter`` (one overall bar)."""

    class _Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any) -> None:
            # `initial` bytes (a resumed file) were counted by file_started already.
            self.total = total
            self.n = initial

        def update(self, n: float | None = 1) -> None:
            if n:
                self.n += int(n)
                reporter.advance(int(n))

        def update_transfer(self, n: float | None = 1) -> None:
            """Network bytes (Xet); written bytes are what `update` counts."""

        def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            pass

        set_transfer_postfix_str = set_postfix_str
        set_description = set_postfix_str
        set_description_str = set_postfix_str
        refresh = set_postfix_str

        def close(self) -> None:
            pass

        def __enter__(self) -> _Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    return _Bar
