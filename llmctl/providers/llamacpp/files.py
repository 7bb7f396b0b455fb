"""Which .gguf file a model reference means: a path, or one file of a Hub repo in the Hugging Face cache.

``-m llamacpp/ORG/REPO`` takes the repo's only GGUF model; a repo with several (one per
quantization, as most publish) needs a choice after a colon: a quantization
(``ORG/REPO:Q4_K_M``) or a file pattern like ``--include``'s (``ORG/REPO:*q8_0.gguf``). A model
split in parts (``x-00001-of-00003.gguf``) is named by its first part, which llama.cpp loads
the rest from. Projector files (``mmproj-*.gguf``, vision add-ons) are not models.

The cache is read from its folder layout (``refs/``, ``snapshots/``), without huggingface_hub,
which the ``gguf`` extra does not install.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from llmctl.errors import ModelNotFoundError
from llmctl.providers.llamacpp.gguf_file import FILE_TYPES

GGUF_SUFFIX = ".gguf"
_SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
# Longest first, so Q4_K_M is found before Q4_K.
_QUANT_NAMES = sorted({*FILE_TYPES.values(), "Q4_K", "Q5_K", "Q3_K"}, key=len, reverse=True)
_QUANT_IN_NAME = re.compile(
    r"(?:^|[-_.])(" + "|".join(re.escape(q) for q in _QUANT_NAMES) + r")(?=[-_.]|$)", re.IGNORECASE
)


def is_gguf_path(reference: str) -> bool:
    return reference.lower().endswith(GGUF_SUFFIX)


def split_selector(model_id: str) -> tuple[str, str | None]:
    """``ORG/REPO:Q4_K_M`` -> (``ORG/REPO``, ``Q4_K_M``); no colon, no selector."""
    repo, sep, selector = model_id.partition(":")
    return repo, (selector.strip() or None) if sep else None


def quantization_in_name(filename: str) -> str | None:
    """The quantization a file's name declares (``Q4_K_M`` in ``model.Q4_K_M.gguf``), upper-cased."""
    stem = _SPLIT_PART.sub("", Path(filename).name)
    if is_gguf_path(stem):
        stem = stem[: -len(GGUF_SUFFIX)]
    found = _QUANT_IN_NAME.findall(stem)
    return found[-1].upper() if found else None


def model_files(names: list[str]) -> list[str]:
    """The loadable GGUF models among a repo's file paths: first parts only, projectors left out."""
    chosen = []
    for name in sorted(names):
        base = Path(name).name.lower()
        if not base.endswith(GGUF_SUFFIX) or base.startswith("mmproj"):
            continue
        part = _SPLIT_PART.search(base)
        if part is not None and int(part.group(1)) != 1:
            continue
        chosen.append(name)
    return chosen


def _describe(files: list[str]) -> str:
    return ", ".join(f"{name} ({quantization_in_name(name) or '?'})" for name in files)


def choose_file(repo_id: str, names: list[str], selector: str | None) -> str:
    """The one file of ``names`` (a repo's paths) that ``selector`` picks, or an error listing the choices."""
    files = model_files(names)
    if not files:
        raise ModelNotFoundError(
            f"{repo_id} has no .gguf model file in the Hugging Face cache.",
            hint=f"Download one: llmctl models download {repo_id} --include '*Q4_K_M.gguf'",
        )
    if selector is None:
        if len(files) == 1:
            return files[0]
        raise ModelNotFoundError(
            f"{repo_id} has {len(files)} GGUF files; say which: -m llamacpp/{repo_id}:QUANT (or :PATTERN).",
            hint=f"Choices: {_describe(files)}",
        )
    if any(c in selector for c in "*?[") or is_gguf_path(selector):
        matches = [f for f in files if fnmatch.fnmatchcase(f, selector) or fnmatch.fnmatchcase(Path(f).name, selector)]
    else:
        matches = [f for f in files if (quantization_in_name(f) or "").upper() == selector.upper()]
    if len(matches) == 1:
        return matches[0]
    what = "no GGUF file" if not matches else f"{len(matches)} GGUF files ({', '.join(matches)})"
    raise ModelNotFoundError(f"{repo_id}:{selector} matches {what}.", hint=f"Choices in the cache: {_describe(files)}")


def hub_cache_dir(override: str | None) -> Path:
    """The provider's ``cache_dir``, else the standard Hugging Face cache (from the environment now)."""
    if override:
        return Path(override).expanduser()
    hub_cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if hub_cache:
        return Path(os.path.expandvars(hub_cache)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def cached_snapshot(cache: Path, repo_id: str) -> Path | None:
    """The snapshot ``refs/main`` points to, else the newest one; None when the repo is not cached."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    main = repo / "refs" / "main"
    try:
        if main.is_file():
            candidate = snapshots / main.read_text(encoding="utf-8").strip()
            if candidate.is_dir():
                return candidate
        found = [p for p in snapshots.iterdir() if p.is_dir()] if snapshots.is_dir() else []
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def snapshot_gguf_names(snapshot: Path) -> list[str]:
    return sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if is_gguf_path(p.name))


def is_gguf_snapshot(snapshot: Path) -> bool:
    """A snapshot holding GGUF models and no transformers config: llama.cpp's, not an unfinished HF download."""
    return not (snapshot / "config.json").exists() and bool(model_files(snapshot_gguf_names(snapshot)))


def locate(model_id: str, cache_dir: str | None) -> Path:
    """The .gguf file ``model_id`` names: an absolute path (the registry made it so), or ORG/REPO[:SELECTOR]."""
    if os.path.isabs(model_id):
        return Path(model_id)
    repo_id, selector = split_selector(model_id)
    cache = hub_cache_dir(cache_dir)
    snapshot = cached_snapshot(cache, repo_id)
    if snapshot is None:
        raise ModelNotFoundError(
            f"{repo_id} is not downloaded (looked in {cache}).",
            hint=f"Download a GGUF file of it: llmctl models download {repo_id} --include '*Q4_K_M.gguf'",
        )
    return snapshot / choose_file(repo_id, snapshot_gguf_names(snapshot), selector)
