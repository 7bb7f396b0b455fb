"""GGUF models for ``models info`` and ``models list``: read from the file's header (no llama.cpp import),
and found in the Hugging Face cache as ``llamacpp/ORG/REPO:QUANT``."""

from __future__ import annotations

from pathlib import Path

from llmctl.config import Settings
from llmctl.domain import human_bytes
from llmctl.providers.base import ResolvedModel
from llmctl.providers.llamacpp import files as gguf_files
from llmctl.providers.llamacpp.gguf_file import GgufFileError, GgufHeader, read_gguf_header
from llmctl.providers.llamacpp.llama import LlamaCppOptions
from llmctl.services.models import hardware as hw
from llmctl.services.models.catalog import ModelEntry
from llmctl.services.models.info import EstimateRow, ModelDetails

GGUF_PROVIDER = "llamacpp"
UNQUANTIZED = ("F32", "F16", "BF16", "F64")


def _cache_dir(settings: object) -> str | None:
    return getattr(settings, "cache_dir", None)


def describe_gguf(resolved: ResolvedModel, *, machine: hw.Hardware | None) -> ModelDetails:
    """``models info`` for a GGUF file: what its header declares, and whether it fits this machine."""
    path = gguf_files.locate(resolved.model_id, _cache_dir(resolved.provider_settings))
    header = read_gguf_header(path)
    options = LlamaCppOptions.for_model(resolved, header)
    repo_id = None if Path(resolved.model_id).is_absolute() else gguf_files.split_selector(resolved.model_id)[0]
    kv_bytes = header.kv_cache_bytes(options.n_ctx)
    needed = header.tensor_bytes + kv_bytes
    fits: dict[str, bool] = {}
    if machine is not None and machine.ram_total_bytes is not None:
        fits["ram"] = needed <= machine.ram_total_bytes
    precision = header.quantization or "?"
    notes = [
        f"Memory: {human_bytes(header.tensor_bytes)} of weights (mapped as stored) + "
        f"{human_bytes(kv_bytes)} of KV cache for n_ctx {options.n_ctx} (f16)."
    ]
    if header.context_length and options.n_ctx < header.context_length:
        notes.append(
            f"The model's own window is {header.context_length} tokens; llmctl uses {options.n_ctx} "
            "(raise n_ctx in [providers.llamacpp] for more, at the KV-cache cost above)."
        )
    return ModelDetails(
        name=resolved.display_name,
        provider=resolved.provider_name,
        kind=resolved.kind,
        model_id=resolved.model_id,
        source="hf-cache" if repo_id else "file",
        location=str(path),
        repo_id=repo_id,
        revision=path.parent.name if repo_id else None,
        architecture=header.architecture,
        model_type=header.name,
        parameters=header.parameters,
        parameters_by_dtype=header.elements_by_type,
        checkpoint_dtype=precision,
        checkpoint_quantization=None if precision in UNQUANTIZED else precision,
        context_window=options.n_ctx,
        has_chat_template=header.chat_template is not None,
        chat_template_source="GGUF metadata (tokenizer.chat_template)" if header.chat_template else None,
        files=[(path.name, header.file_size)],
        size_bytes=header.file_size,
        estimates=[EstimateRow(precision, header.tensor_bytes, needed, fits)],
        hardware=machine,
        notes=notes,
    )


def cached_gguf_entries(settings: Settings) -> list[ModelEntry]:
    """One row per GGUF model file in the Hugging Face cache, named so that ``-m`` picks exactly it."""
    provider = settings.provider(GGUF_PROVIDER)
    cache = gguf_files.hub_cache_dir(_cache_dir(provider))
    if not cache.is_dir():
        return []
    entries = []
    for repo_folder in sorted(cache.glob("models--*")):
        repo_id = repo_folder.name.removeprefix("models--").replace("--", "/")
        snapshot = gguf_files.cached_snapshot(cache, repo_id)
        if snapshot is None:
            continue
        names = gguf_files.model_files(gguf_files.snapshot_gguf_names(snapshot))
        for name in names:
            entry = _entry(settings, repo_id, snapshot / name, name, single=len(names) == 1)
            if entry is not None:
                entries.append(entry)
    return entries


def _entry(settings: Settings, repo_id: str, path: Path, name: str, *, single: bool) -> ModelEntry | None:
    quantization = gguf_files.quantization_in_name(name)
    selector = "" if single else f":{quantization or name}"
    reference = f"{GGUF_PROVIDER}/{repo_id}{selector}"
    header: GgufHeader | None
    note = None
    try:
        header = read_gguf_header(path)
    except (GgufFileError, OSError) as exc:
        header, note = None, str(exc).split("\n", 1)[0]
    return ModelEntry(
        name=reference,
        provider=GGUF_PROVIDER,
        kind="llamacpp",
        model_id=f"{repo_id}{selector}",
        source="hf-cache",
        description=note,
        location=str(path),
        architecture=header.architecture if header else None,
        context_window=header.context_length if header else None,
        size_bytes=header.file_size if header else None,
        is_default=settings.default_model == reference,
        parameters=header.parameters if header else None,
        quantization=(header.quantization if header else None) or quantization,
    )
