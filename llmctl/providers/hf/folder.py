"""What a Hugging Face model folder (or cache snapshot) must hold to load, and what is missing or damaged.

transformers, given a folder without weights or without a tokenizer, or with a truncated
safetensors file, fails with messages about something else ("You need to have sentencepiece
or tiktoken installed", "no file named model.safetensors", a Rust panic). These checks read
only file names and safetensors headers, so the error can name the file that is missing or
broken. They never import torch or transformers.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from llmctl.errors import ModelNotFoundError, ProviderError

# Files a loadable checkpoint's weights come in (transformers' names and the formats it reads).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5", ".ckpt")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# One of these makes a tokenizer transformers can build: a fast tokenizer, a sentencepiece model,
# BPE vocab + merges, a WordPiece vocab, or tiktoken ranks.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "vocab.txt",
    "tokenizer.tiktoken",
)
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit


def _exists(path: Path) -> bool:
    try:
        return path.is_file()  # a dangling link into blobs/ (a half-finished download) is not a file
    except OSError:
        return False


def missing_weights(folder: Path) -> list[str]:
    """Weight files the folder should have and does not: a shard its index names, or any weights at all."""
    for index in WEIGHT_INDEXES:
        if _exists(folder / index):
            try:
                weight_map = json.loads((folder / index).read_text(encoding="utf-8")).get("weight_map", {})
                shards = sorted({str(name) for name in weight_map.values()})
            except (OSError, ValueError, AttributeError):
                return [f"{index} (unreadable)"]
            return [shard for shard in shards if not _exists(folder / shard)]
    try:
        names = [p.name for p in folder.iterdir() if _exists(p)]
    except OSError:
        names = []
    if any(name.endswith(WEIGHT_SUFFIXES) for name in names):
        return []
    return ["model.safetensors"]


def missing_tokenizer_files(folder: Path) -> list[str] | None:
    """None when the folder has a tokenizer's files; else the files one would need (any of them)."""
    if any(_exists(folder / name) for name in TOKENIZER_FILES):
        return None
    try:
        if any(p.suffix == ".tiktoken" for p in folder.iterdir()):
            return None
    except OSError:
        pass
    return ["tokenizer.json", "tokenizer.model", "vocab.json + merges.txt"]


def safetensors_damage(path: Path) -> str | None:
    """Why ``path`` is not a complete safetensors file, or None when its header and size agree."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return f"{size} bytes, too short to be a safetensors file"
            (length,) = struct.unpack("<Q", prefix)
            if length > _MAX_HEADER_BYTES or length > size - 8:
                return "its header length is not plausible (not a safetensors file, or cut short)"
            header = json.loads(handle.read(length))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    except (ValueError, UnicodeDecodeError):
        return "its header is not valid JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"tensor {name!r} has no valid data_offsets"
        end = max(end, offsets[1])
    expected = 8 + length + end
    if size < expected:
        return f"cut short: {size} bytes of the {expected} its header describes"
    return None


def damaged_weights(folder: Path) -> list[tuple[str, str]]:
    """(file name, what is wrong) for every safetensors file in ``folder`` that is not whole."""
    damaged = []
    for path in sorted(folder.glob("*.safetensors")):
        problem = safetensors_damage(path)
        if problem is not None:
            damaged.append((path.name, problem))
    return damaged


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_weights(folder: Path, *, name: str, repo_id: str | None) -> None:
    """Raise when the weights are missing: for a download, say it is unfinished and how to finish it."""
    missing = missing_weights(folder)
    if not missing:
        return
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    if repo_id is not None:
        raise ModelNotFoundError(
            f"{name}: incomplete download, its weights are missing ({shown}).",
            hint=f"Run `llmctl models download {repo_id}` again.",
        )
    raise ProviderError(
        f"{name}: the folder {folder} has no model weights ({shown} is missing).",
        hint="Copy the weights into the folder, or point -m at a complete model folder.",
    )


def tokenizer_error(folder: Path, name: str, exc: BaseException) -> ProviderError:
    """The error for a tokenizer that did not load: the missing files when there are none."""
    missing = missing_tokenizer_files(folder)
    if missing is not None:
        return ProviderError(
            f"{name} has no tokenizer: {folder} holds none of {', '.join(missing)}.",
            hint="Copy the tokenizer files of the model into the folder (or download the model again).",
        )
    return ProviderError(f"Could not load the tokenizer of {name}: {_one_line(exc)}")


def weights_error(folder: Path, name: str, repo_id: str | None, exc: BaseException) -> ProviderError | None:
    """The error for weights that did not load because a safetensors file is damaged, else None."""
    damaged = damaged_weights(folder)
    if not damaged:
        return None
    file_name, problem = damaged[0]
    hint = (
        f"Remove it with `llmctl models rm {repo_id}` and download it again."
        if repo_id is not None
        else "Replace that file with a complete copy."
    )
    return ProviderError(f"{name}: the weights file {file_name} is damaged: {problem}.", hint=hint)


def load_failure(name: str, exc: BaseException) -> ProviderError:
    """Any other load failure, in one line."""
    return ProviderError(f"Could not load {name}: {type(exc).__name__}: {_one_line(exc)}")
