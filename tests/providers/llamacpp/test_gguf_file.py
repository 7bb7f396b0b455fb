"""The GGUF header reader: the facts ``models info`` shows, and one clear error for every hostile file.

No llama_cpp needed: the header is read in Python before llama.cpp ever sees the file.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from llmctl.errors import ModelNotFoundError
from llmctl.providers.llamacpp.files import choose_file, locate, model_files, quantization_in_name
from llmctl.providers.llamacpp.gguf_file import GgufFileError, read_gguf_header
from llmctl.providers.llamacpp.machine import physical_cores


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _header(tensors: int = 0, kvs: int = 0, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs)


def _kv_u32(key: str, value: int) -> bytes:
    return _string(key) + struct.pack("<II", 4, value)


def _tensor(name: str, dims: tuple[int, ...], type_id: int = 0, offset: int = 0) -> bytes:
    return (
        _string(name)
        + struct.pack("<I", len(dims))
        + struct.pack(f"<{len(dims)}Q", *dims)
        + struct.pack("<IQ", type_id, offset)
    )


def _valid_small() -> bytes:
    """One f32 tensor of 8 values, aligned at 32: a well-formed file of 32 + 32 bytes of data."""
    head = _header(tensors=1, kvs=1) + _kv_u32("general.alignment", 32) + _tensor("w", (8,))
    head += b"\0" * (-len(head) % 32)
    return head + b"\0" * 32


PAD = b"\0" * 64  # bytes enough that the count checks pass and the length checked is the one named

HOSTILE: list[tuple[str, bytes, str]] = [
    ("empty", b"", "is not a GGUF file"),
    ("text", b"hello, I am a README and not a model\n" * 10, "is not a GGUF file"),
    ("safetensors", struct.pack("<Q", 2) + b"{}", "is not a GGUF file"),
    ("old-version", _header(version=1), "GGUF version 1"),
    ("future-version", _header(version=99), "GGUF version 99"),
    ("magic-only", b"GGUF", "damaged or cut short: the version"),
    ("huge-tensor-count", _header(tensors=2**60), "the tensor count is 1152921504606846976"),
    ("huge-kv-count", _header(kvs=2**62), "the metadata count is"),
    ("max-kv-count", _header(kvs=2**64 - 1), "the metadata count is"),
    ("huge-key-length", _header(kvs=1) + struct.pack("<Q", 2**63) + PAD, "the length of a metadata key"),
    ("huge-string", _header(kvs=1) + _string("k") + struct.pack("<IQ", 8, 2**40) + PAD, "the length of the value"),
    ("huge-array", _header(kvs=1) + _string("k") + struct.pack("<IIQ", 9, 4, 2**61) + PAD, "the length of k"),
    ("array-of-arrays", _header(kvs=1) + _string("k") + struct.pack("<IIQ", 9, 9, 1), "array of unknown type 9"),
    ("unknown-value-type", _header(kvs=1) + _string("k") + struct.pack("<I", 99) + PAD, "unknown value type 99"),
    ("cut-in-metadata", _header(kvs=3) + _kv_u32("a", 1) + b"\x05", "damaged or cut short"),
    ("too-many-dims", _header(tensors=1) + _tensor("w", (1,) * 9), "has 9 dimensions"),
    ("zero-dims", _header(tensors=1) + _string("w") + struct.pack("<I", 0) + b"\0" * 24, "has 0 dimensions"),
    ("unknown-tensor-type", _header(tensors=1) + _tensor("w", (32,), type_id=99), "unknown type 99"),
    ("partial-block", _header(tensors=1) + _tensor("w", (33,), type_id=8), "not whole blocks of 32"),
    ("bad-alignment", _header(kvs=1) + _kv_u32("general.alignment", 24), "not a power of two"),
    ("data-cut-short", _valid_small()[:-1], "is cut short: tensor w ends at byte 128, the file has 127"),
    ("data-far-away", _header(tensors=1) + _tensor("w", (8,), offset=2**50) + b"\0" * 64, "is cut short"),
    ("huge-tensor", _header(tensors=1) + _tensor("w", (2**62, 2**62)) + b"\0" * 64, "is cut short"),
]


@pytest.mark.parametrize(("content", "message"), [(c, m) for _, c, m in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_a_hostile_file_is_one_clear_error_naming_it(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(GgufFileError) as caught:
        read_gguf_header(path)
    assert str(path) in caught.value.message
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_a_well_formed_small_file_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.gguf"
    path.write_bytes(_valid_small())
    header = read_gguf_header(path)
    assert header.parameters == 8 and header.tensor_bytes == 32 and header.quantization == "F32"


def test_a_missing_file_and_a_folder_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="No GGUF file at"):
        read_gguf_header(tmp_path / "nowhere.gguf")
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(ModelNotFoundError, match="is a folder, not a GGUF file"):
        read_gguf_header(tmp_path / "dir.gguf")


@pytest.mark.parametrize(
    ("outtype", "quantization", "bytes_per_weight"),
    [("f32", "F32", 4.0), ("f16", "F16", 2.0), ("q8_0", "Q8_0", 34 / 32)],
)
def test_the_header_of_a_written_model(
    tiny_models: dict[str, Path], tiny_ggufs: dict[str, Path], outtype: str, quantization: str, bytes_per_weight: float
) -> None:
    from safetensors import safe_open

    header = read_gguf_header(tiny_ggufs[outtype])
    assert header.architecture == "llama"
    assert header.context_length == 256
    assert header.quantization == quantization
    assert header.chat_template is not None and "start_header_id" in header.chat_template
    with safe_open(str(tiny_models["llama"] / "model.safetensors"), "np") as weights:
        shapes = [weights.get_slice(key).get_shape() for key in weights.keys()]  # noqa: SIM118
    assert header.parameters == sum(math.prod(shape) for shape in shapes)
    matrices = sum(t.elements for t in header.tensors if len(t.shape) == 2)
    vectors = header.parameters - matrices
    assert header.tensor_bytes == pytest.approx(matrices * bytes_per_weight + vectors * 4)
    assert read_gguf_header(tiny_ggufs["no-template"]).chat_template is None


# -- which file of a Hub repo ------------------------------------------------------------------------

REPO_FILES = [
    "README.md",
    "SmolLM2-135M-Instruct-Q4_K_M.gguf",
    "SmolLM2-135M-Instruct-Q8_0.gguf",
    "SmolLM2-135M-Instruct-f16.gguf",
    "mmproj-SmolLM2-f16.gguf",
    "big/SmolLM2-135M-Instruct-Q6_K-00001-of-00002.gguf",
    "big/SmolLM2-135M-Instruct-Q6_K-00002-of-00002.gguf",
]


@pytest.mark.parametrize(
    ("selector", "chosen"),
    [
        ("Q4_K_M", "SmolLM2-135M-Instruct-Q4_K_M.gguf"),
        ("q8_0", "SmolLM2-135M-Instruct-Q8_0.gguf"),
        ("F16", "SmolLM2-135M-Instruct-f16.gguf"),
        ("Q6_K", "big/SmolLM2-135M-Instruct-Q6_K-00001-of-00002.gguf"),  # the first part of a split model
        ("*Q4_K_M.gguf", "SmolLM2-135M-Instruct-Q4_K_M.gguf"),
        ("big/*", "big/SmolLM2-135M-Instruct-Q6_K-00001-of-00002.gguf"),
    ],
)
def test_a_selector_picks_one_file(selector: str, chosen: str) -> None:
    assert choose_file("HuggingFaceTB/SmolLM2", REPO_FILES, selector) == chosen


@pytest.mark.parametrize(
    ("names", "selector", "message"),
    [
        (REPO_FILES, None, r"has 4 GGUF files; say which: -m llamacpp/o/r:QUANT"),
        (REPO_FILES, "Q2_K", r"o/r:Q2_K matches no GGUF file"),
        (REPO_FILES, "*.gguf", r"matches 4 GGUF files"),
        (["README.md", "mmproj-f16.gguf"], None, r"has no .gguf model file"),
    ],
)
def test_an_ambiguous_or_empty_choice_lists_the_choices(names: list[str], selector: str | None, message: str) -> None:
    with pytest.raises(ModelNotFoundError, match=message) as caught:
        choose_file("o/r", names, selector)
    if model_files(names):
        assert caught.value.hint is not None and "SmolLM2-135M-Instruct-Q8_0.gguf (Q8_0)" in caught.value.hint


def test_a_repo_with_one_model_file_needs_no_selector() -> None:
    assert choose_file("o/r", ["x.Q8_0.gguf", "mmproj.gguf", "x-00002-of-00002.gguf"], None) == "x.Q8_0.gguf"


@pytest.mark.parametrize(
    ("name", "quant"),
    [("a-Q4_K_M.gguf", "Q4_K_M"), ("a.q5_k_s.gguf", "Q5_K_S"), ("a-IQ4_XS-00001-of-00003.gguf", "IQ4_XS"),
     ("a-bf16.gguf", "BF16"), ("q4_k_m-model.gguf", "Q4_K_M"), ("plain.gguf", None), ("aQ8_0.gguf", None)],
)  # fmt: skip
def test_quantization_from_a_file_name(name: str, quant: str | None) -> None:
    assert quantization_in_name(name) == quant


def test_a_repo_is_found_in_the_hugging_face_cache_by_its_refs(tmp_path: Path, tiny_ggufs: dict[str, Path]) -> None:
    repo = tmp_path / "hub" / "models--org--tiny-GGUF"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    for outtype in ("f16", "q8_0"):
        (snapshot / f"tiny.{outtype.upper()}.gguf").symlink_to(tiny_ggufs[outtype])
    assert locate("org/tiny-GGUF:Q8_0", str(tmp_path / "hub")) == snapshot / "tiny.Q8_0.gguf"
    with pytest.raises(ModelNotFoundError, match="has 2 GGUF files"):
        locate("org/tiny-GGUF", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFoundError, match=r"org/other is not downloaded .*") as caught:
        locate("org/other", str(tmp_path / "hub"))
    assert caught.value.hint is not None and "--include '*Q4_K_M.gguf'" in caught.value.hint


# -- threads --------------------------------------------------------------------------------------------


def test_physical_cores_count_each_core_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two packages of two cores, two hyper-threads each: 8 logical CPUs, 4 physical cores.
    for cpu in range(8):
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(str(cpu // 4))
        (topology / "core_id").write_text(str(cpu % 4 // 2))
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    assert physical_cores(tmp_path) == 4
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})  # taskset to one core's two threads
    assert physical_cores(tmp_path) == 1
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2})
    assert physical_cores(tmp_path / "missing") == 3  # no topology: every allowed CPU
