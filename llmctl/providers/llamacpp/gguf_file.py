"""Read a GGUF file's header (metadata and tensor table) without llama.cpp: ``models info``, the memory
check and the chat template all come from here, and a damaged file is one clear error, not a crash in C.

Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic ``GGUF``, version, tensor
count, metadata count; the metadata key/value pairs; one entry per tensor (name, shape, type, offset);
then the tensor data, aligned. Every count and length is checked against the bytes the file has left
before anything is read or allocated for it, so a header that claims 2^60 entries fails at once.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeAlias

from llmctl.errors import ModelNotFoundError, ProviderError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
KEPT_ARRAY_ITEMS = 64  # longer arrays (the vocabulary, its merges) are skipped; only their length is kept
_MAX_KEY_BYTES = 65_536

# ggml type id -> (name, elements per block, bytes per block)  (ggml.h; gguf-py's GGML_QUANT_SIZES)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}  # fmt: skip
# general.file_type -> the name quantized files are published under (llama.h's llama_ftype)
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}  # fmt: skip


@dataclass(frozen=True)
class SkippedArray:
    """A long metadata array (the vocabulary, its merges): its length, not its items."""

    length: int


Value: TypeAlias = "int | float | bool | str | list[Value] | SkippedArray"


@dataclass(frozen=True)
class GgufTensor:
    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int  # from the start of the tensor data

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.type_id][0]

    @property
    def nbytes(self) -> int:
        _, block, size = GGML_TYPES[self.type_id]
        return self.elements // block * size


@dataclass(frozen=True)
class GgufHeader:
    path: Path
    version: int
    metadata: dict[str, Value]
    tensors: tuple[GgufTensor, ...]
    file_size: int

    def get_str(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else None

    def get_int(self, key: str) -> int | None:
        value = self.metadata.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def architecture(self) -> str | None:
        return self.get_str("general.architecture")

    @property
    def name(self) -> str | None:
        return self.get_str("general.name")

    def arch_int(self, suffix: str) -> int | None:
        return self.get_int(f"{self.architecture}.{suffix}") if self.architecture else None

    @property
    def context_length(self) -> int | None:
        return self.arch_int("context_length")

    @property
    def chat_template(self) -> str | None:
        return self.get_str("tokenizer.chat_template") or None

    @property
    def parameters(self) -> int:
        return sum(t.elements for t in self.tensors)

    @property
    def elements_by_type(self) -> dict[str, int]:
        """Parameters per stored type (F32 norms, Q8_0 matrices, ...)."""
        counts: dict[str, int] = {}
        for tensor in self.tensors:
            counts[tensor.type_name] = counts.get(tensor.type_name, 0) + tensor.elements
        return counts

    @property
    def tensor_bytes(self) -> int:
        """What the weights take in memory (llama.cpp maps them as stored)."""
        return sum(t.nbytes for t in self.tensors)

    def kv_cache_bytes(self, n_ctx: int) -> int:
        """llama.cpp's KV cache for ``n_ctx`` tokens (keys and values in f16, every layer)."""
        layers = self.arch_int("block_count") or 0
        heads = self.arch_int("attention.head_count") or 0
        kv_heads = self.arch_int("attention.head_count_kv") or heads
        embedding = self.arch_int("embedding_length") or 0
        key = self.arch_int("attention.key_length") or (embedding // heads if heads else 0)
        value = self.arch_int("attention.value_length") or key
        return n_ctx * layers * kv_heads * (key + value) * 2

    @property
    def quantization(self) -> str | None:
        """The file's declared type (Q4_K_M, Q8_0, F16, ...), else the type most of its bytes are in."""
        declared = self.get_int("general.file_type")
        if declared is not None and declared in FILE_TYPES:
            return FILE_TYPES[declared]
        by_type: dict[str, int] = {}
        for tensor in self.tensors:
            by_type[tensor.type_name] = by_type.get(tensor.type_name, 0) + tensor.nbytes
        return max(by_type, key=lambda name: by_type[name]) if by_type else None


class GgufFileError(ProviderError):
    """A file that is not a GGUF model, or one that is cut short or damaged."""


class _Reader:
    def __init__(self, stream: BinaryIO, path: Path, size: int) -> None:
        self._stream = stream
        self._path = path
        self._size = size

    @property
    def left(self) -> int:
        return self._size - self._stream.tell()

    def damaged(self, what: str) -> GgufFileError:
        return GgufFileError(
            f"{self._path} is damaged or cut short: {what} (at byte {self._stream.tell()} of {self._size}).",
            hint="Download it again (llmctl models download ORG/REPO --include 'FILE').",
        )

    def take(self, count: int, what: str) -> bytes:
        if count > self.left:
            raise self.damaged(f"{what} needs {count} bytes, {self.left} are left")
        return self._stream.read(count)

    def unpack(self, fmt: str, what: str) -> int | float:
        value: int | float = struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]
        return value

    def u32(self, what: str) -> int:
        return int(self.unpack("I", what))

    def u64(self, what: str) -> int:
        return int(self.unpack("Q", what))

    def count(self, what: str, min_item_bytes: int) -> int:
        """A count read from the file, refused when its items could not fit in what is left."""
        value = self.u64(what)
        if value * min_item_bytes > self.left:
            raise self.damaged(f"{what} is {value}, more than the file's remaining {self.left} bytes can hold")
        return value

    def string(self, what: str, limit: int | None = None) -> str:
        length = self.count(f"the length of {what}", 1)
        if limit is not None and length > limit:
            raise self.damaged(f"{what} is {length} bytes long")
        return self.take(length, what).decode("utf-8", errors="replace")

    def skip_string(self, what: str) -> None:
        self.take(self.count(f"the length of {what}", 1), what)


_SCALARS: dict[int, tuple[str, int]] = {
    0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4), 6: ("f", 4), 7: ("?", 1),
    10: ("Q", 8), 11: ("q", 8), 12: ("d", 8),
}  # fmt: skip
_STRING, _ARRAY = 8, 9


def _value(reader: _Reader, type_id: int, key: str, *, depth: int = 0) -> Value:
    if type_id in _SCALARS:
        fmt, _ = _SCALARS[type_id]
        raw = reader.unpack(fmt, f"the value of {key}")
        return bool(raw) if type_id == 7 else raw
    if type_id == _STRING:
        return reader.string(f"the value of {key}")
    if type_id == _ARRAY and depth == 0:
        item_type = reader.u32(f"the item type of {key}")
        if item_type not in _SCALARS and item_type != _STRING:
            raise reader.damaged(f"{key} is an array of unknown type {item_type}")
        min_bytes = 8 if item_type == _STRING else _SCALARS[item_type][1]
        length = reader.count(f"the length of {key}", min_bytes)
        if length > KEPT_ARRAY_ITEMS:
            _skip_items(reader, item_type, length, key)
            return SkippedArray(length)
        return [_value(reader, item_type, key, depth=1) for _ in range(length)]
    raise reader.damaged(f"{key} has unknown value type {type_id}")


def _skip_items(reader: _Reader, item_type: int, length: int, key: str) -> None:
    if item_type == _STRING:
        skip: Callable[[], None] = lambda: reader.skip_string(f"an item of {key}")  # noqa: E731
        for _ in range(length):
            skip()
    else:
        reader.take(length * _SCALARS[item_type][1], f"the items of {key}")


def read_gguf_header(path: Path) -> GgufHeader:
    """The header of the GGUF file at ``path``; a clear error for a missing, foreign or damaged file."""
    if path.is_dir():
        raise ModelNotFoundError(f"{path} is a folder, not a GGUF file.", hint="Name the .gguf file inside it.")
    try:
        with path.open("rb") as raw:
            size = path.stat().st_size
            return _parse(_Reader(io.BufferedReader(raw, buffer_size=1 << 20), path, size), path, size)
    except FileNotFoundError:
        raise ModelNotFoundError(f"No GGUF file at {path}.") from None
    except OSError as exc:
        raise GgufFileError(f"Cannot read {path}: {exc.strerror or type(exc).__name__}.") from None


def _parse(reader: _Reader, path: Path, size: int) -> GgufHeader:
    if size < 4 or reader.take(4, "the magic number") != MAGIC:
        raise GgufFileError(
            f"{path} is not a GGUF file (it does not start with 'GGUF').",
            hint="llama.cpp runs .gguf files; for a Hugging Face model folder use -m ./FOLDER.",
        )
    version = reader.u32("the version")
    if version not in SUPPORTED_VERSIONS:
        raise GgufFileError(f"{path} is GGUF version {version}; llama.cpp reads versions 2 and 3.")
    # The smallest tensor entry: an empty name (8), n_dims (4), one dim (8), type (4), offset (8).
    tensor_count = reader.count("the tensor count", 32)
    kv_count = reader.count("the metadata count", 8 + 1 + 4 + 1)
    metadata: dict[str, Value] = {}
    for _ in range(kv_count):
        key = reader.string("a metadata key", limit=_MAX_KEY_BYTES)
        metadata[key] = _value(reader, reader.u32(f"the type of {key}"), key)
    tensors = [_tensor(reader) for _ in range(tensor_count)]
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise reader.damaged(f"general.alignment is {alignment!r}, not a power of two")
    header_end = size - reader.left
    data_start = -(-header_end // alignment) * alignment
    for tensor in tensors:
        end = data_start + tensor.offset + tensor.nbytes
        if end > size:
            raise GgufFileError(
                f"{path} is cut short: tensor {tensor.name} ends at byte {end}, the file has {size}.",
                hint="The download did not finish: download the file again.",
            )
    return GgufHeader(path, version, metadata, tuple(tensors), size)


def _tensor(reader: _Reader) -> GgufTensor:
    name = reader.string("a tensor name", limit=_MAX_KEY_BYTES)
    dims = reader.u32(f"the dimension count of {name}")
    if not 1 <= dims <= MAX_DIMS:
        raise reader.damaged(f"tensor {name} has {dims} dimensions")
    shape = tuple(reader.u64(f"a dimension of {name}") for _ in range(dims))
    type_id = reader.u32(f"the type of {name}")
    if type_id not in GGML_TYPES:
        raise reader.damaged(f"tensor {name} has unknown type {type_id}")
    block = GGML_TYPES[type_id][1]
    if shape[0] % block:
        raise reader.damaged(f"tensor {name}'s rows of {shape[0]} are not whole blocks of {block}")
    return GgufTensor(name, shape, type_id, reader.u64(f"the offset of {name}"))
