"""The standard Hugging Face cache, read from its folder layout (no huggingface_hub import).

Layout (https://huggingface.co/docs/huggingface_hub/guides/manage-cache)::

    <cache>/models--ORG--NAME/
        blobs/<etag>                   file contents (<etag>.incomplete while downloading)
        refs/<branch or tag>           the commit sha that name points to
        snapshots/<commit sha>/<path>  symlinks into blobs/

``llmctl models list`` walks this layout itself so that it stays fast; removal goes
through huggingface_hub's ``scan_cache_dir``, which knows which blobs are shared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import ModelNotFoundError
from llmctl.providers.hf.folder import missing_weights
from llmctl.providers.hf.loading import default_hub_cache

REPO_PREFIX = "models--"
INCOMPLETE_SUFFIX = ".incomplete"


def hub_cache_dir(override: str | None = None) -> Path:
    """The cache llmctl uses: the hf provider's ``cache_dir`` if set, else the standard one."""
    return Path(override).expanduser() if override else default_hub_cache()


def repo_folder_name(repo_id: str) -> str:
    return REPO_PREFIX + repo_id.replace("/", "--")


def repo_id_from_folder(name: str) -> str | None:
    if not name.startswith(REPO_PREFIX):
        return None
    return name[len(REPO_PREFIX) :].replace("--", "/")


@dataclass(frozen=True)
class CachedRepo:
    """One model repository in the cache."""

    repo_id: str
    path: Path
    refs: dict[str, str] = field(default_factory=dict)  # ref name -> commit sha
    snapshots: tuple[Path, ...] = ()
    size_on_disk: int = 0  # every blob, partial downloads included
    incomplete_bytes: int = 0  # partial downloads (resumed by the next `llmctl models download`)

    @property
    def name(self) -> str:
        """What to pass to -m."""
        return f"hf/{self.repo_id}"

    def snapshot(self, revision: str | None = None) -> Path | None:
        """The snapshot for ``revision`` (a ref or a commit sha), else main's, else the newest one."""
        by_sha = {p.name: p for p in self.snapshots}
        if revision:
            sha = self.refs.get(revision, revision)
            found = by_sha.get(sha)
            if found is None and len(revision) >= 7:
                matches = [p for name, p in by_sha.items() if name.startswith(revision)]
                found = matches[0] if len(matches) == 1 else None
            return found
        if "main" in self.refs and self.refs["main"] in by_sha:
            return by_sha[self.refs["main"]]
        if not self.snapshots:
            return None
        return max(self.snapshots, key=_mtime)

    @property
    def revision(self) -> str | None:
        """The commit sha of the snapshot llmctl uses."""
        snap = self.snapshot()
        return snap.name if snap else None

    @property
    def is_complete(self) -> bool:
        """A snapshot with a config.json and its weights, and no download in progress.

        A download stopped by an error (a 404 on a shard, a full disk) leaves a snapshot with the small
        files only: that one is unfinished, not a model.
        """
        snap = self.snapshot()
        return (
            snap is not None
            and (snap / "config.json").exists()
            and self.incomplete_bytes == 0
            and not missing_weights(snap)
        )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_refs(repo_path: Path) -> dict[str, str]:
    refs_dir = repo_path / "refs"
    refs: dict[str, str] = {}
    if not refs_dir.is_dir():
        return refs
    for ref in refs_dir.rglob("*"):
        if ref.is_file():
            try:
                refs[ref.relative_to(refs_dir).as_posix()] = ref.read_text(encoding="utf-8").strip()
            except OSError:
                continue
    return refs


def _blob_sizes(repo_path: Path) -> tuple[int, int]:
    total = incomplete = 0
    blobs = repo_path / "blobs"
    if not blobs.is_dir():
        return 0, 0
    for blob in blobs.iterdir():
        try:
            size = blob.stat().st_size  # follows a link into huggingface_hub's shared blob store
        except OSError:
            continue
        total += size
        if blob.name.endswith(INCOMPLETE_SUFFIX):
            incomplete += size
    return total, incomplete


def read_repo(repo_path: Path) -> CachedRepo | None:
    repo_id = repo_id_from_folder(repo_path.name)
    if repo_id is None or not repo_path.is_dir():
        return None
    snapshots_dir = repo_path / "snapshots"
    snapshots = tuple(sorted(p for p in snapshots_dir.iterdir() if p.is_dir())) if snapshots_dir.is_dir() else ()
    size, incomplete = _blob_sizes(repo_path)
    return CachedRepo(
        repo_id=repo_id,
        path=repo_path,
        refs=_read_refs(repo_path),
        snapshots=snapshots,
        size_on_disk=size,
        incomplete_bytes=incomplete,
    )


def cached_models(cache: Path) -> list[CachedRepo]:
    """Every model repository in ``cache`` (datasets and spaces are not models), sorted by id."""
    if not cache.is_dir():
        return []
    repos = []
    for entry in sorted(cache.iterdir()):
        if entry.name.startswith(REPO_PREFIX):
            repo = read_repo(entry)
            if repo is not None:
                repos.append(repo)
    return repos


def find_cached(cache: Path, repo_id: str) -> CachedRepo | None:
    return read_repo(cache / repo_folder_name(repo_id))


def cached_snapshot(cache: Path, repo_id: str, revision: str | None = None) -> Path:
    """The snapshot folder of a downloaded repo, or a ModelNotFoundError saying how to get it."""
    repo = find_cached(cache, repo_id)
    snap = repo.snapshot(revision) if repo else None
    if snap is None:
        what = f"{repo_id}@{revision}" if revision else repo_id
        raise ModelNotFoundError(
            f"{what} is not downloaded (looked in {cache}).",
            hint=f"Download it with: llmctl models download {repo_id}"
            + (f" --revision {revision}" if revision else ""),
        )
    return snap


def write_ref(cache: Path, repo_id: str, ref: str, commit_sha: str) -> None:
    """Point ``refs/<ref>`` at ``commit_sha``, atomically, so offline loads of ``ref`` find the snapshot."""
    if ref == commit_sha:
        return
    path = cache / repo_folder_name(repo_id) / "refs" / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text(encoding="utf-8") == commit_sha:
            return
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(commit_sha, encoding="utf-8")
    os.replace(tmp, path)


def folder_file_sizes(folder: Path) -> list[tuple[str, int]]:
    """(relative path, size) of every file in a model folder or snapshot, links followed."""
    files = []
    for path in sorted(folder.rglob("*")):
        try:
            if path.is_file():
                files.append((path.relative_to(folder).as_posix(), path.stat().st_size))
        except OSError:
            continue
    return files


@dataclass(frozen=True)
class Removal:
    """What ``models rm`` deletes, and how much space that frees."""

    repo_id: str
    path: Path
    revisions: tuple[str, ...]  # the commit shas removed; empty for a download that never finished a file
    whole_repo: bool
    freed_bytes: int


def plan_removal(cache: Path, repo_id: str, revision: str | None = None) -> Removal:
    """What removing ``repo_id`` (or one of its revisions) would delete."""
    repo = find_cached(cache, repo_id)
    if repo is None:
        raise ModelNotFoundError(
            f"{repo_id} is not in the Hugging Face cache ({cache}).",
            hint="`llmctl models list` shows the downloaded models.",
        )
    if revision is None:
        return Removal(repo_id, repo.path, tuple(p.name for p in repo.snapshots), True, repo.size_on_disk)
    snap = repo.snapshot(revision)
    if snap is None:
        raise ModelNotFoundError(
            f"{repo_id} has no downloaded revision {revision!r}.",
            hint="Revisions there: " + (", ".join(p.name[:12] for p in repo.snapshots) or "none"),
        )
    strategy = _scan(cache).delete_revisions(snap.name)
    whole = len(repo.snapshots) == 1
    freed = repo.size_on_disk if whole else int(strategy.expected_freed_size)
    return Removal(repo_id, repo.path, (snap.name,), whole, freed)


def remove(cache: Path, removal: Removal) -> int:
    """Delete what ``removal`` names; return the bytes freed (measured, not estimated)."""
    before = _blob_sizes(removal.path)[0]
    if removal.whole_repo:
        if removal.revisions:
            _scan(cache).delete_revisions(*removal.revisions).execute()
        _rmtree(removal.path)  # partial downloads and refs that scan_cache_dir leaves behind
        _rmtree(cache / ".locks" / removal.path.name)
        return before
    _scan(cache).delete_revisions(*removal.revisions).execute()
    return before - _blob_sizes(removal.path)[0]


def _rmtree(path: Path) -> None:
    import shutil

    if path.exists():
        shutil.rmtree(path, ignore_errors=True)


def _scan(cache: Path) -> Any:
    try:
        from huggingface_hub import scan_cache_dir
    except ImportError as exc:
        from llmctl.errors import MissingDependencyError

        raise MissingDependencyError(
            "Removing downloaded models needs huggingface_hub.", hint="Install it with: pip install 'llmctl[local]'"
        ) from exc

    return scan_cache_dir(cache)
