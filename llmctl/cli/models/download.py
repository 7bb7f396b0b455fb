"""``llmctl models download``: a Hub repository into the Hugging Face cache, with one overall progress bar."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, app_state
from llmctl.errors import ExitStatus

if TYPE_CHECKING:
    from llmctl.hub.download import DownloadPlan, DownloadResult
    from llmctl.hub.weights import TensorStats

CONFIRM_ABOVE_BYTES = 1_000_000_000  # ask before downloading more than this when someone is at the terminal


def normalize_repo_id(value: str) -> str:
    """``ORG/NAME`` from what a user may paste: ``hf/ORG/NAME`` or the model page's URL."""
    repo = value.strip().rstrip("/")
    for prefix in ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf/", "huggingface/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix) :]
    if not repo or repo.count("/") > 1 or repo.startswith("/") or " " in repo:
        from llmctl.errors import UsageError

        raise UsageError(
            f"{value!r} is not a Hub repository id.", hint="Use ORG/NAME, e.g. Qwen/Qwen2.5-0.5B-Instruct."
        )
    return repo


def download(
    ctx: typer.Context,
    repo_id: Annotated[str, typer.Argument(help="Hub repository: ORG/NAME (hf/ORG/NAME and the page URL work too).")],
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch, tag or commit sha. Default: main.")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            metavar="PATTERN",
            help="Also download files matching this glob, e.g. '*.bin' or '*' for everything (repeatable).",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", metavar="PATTERN", help="Skip files matching this glob (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the files, total size and memory needed; download nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before a download over 1 GB.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Download a model from the Hugging Face Hub.

    Into the standard Hugging Face cache, which transformers and other tools share. By default
    only what llmctl loads: safetensors weights, config, tokenizer and chat-template files (no
    .bin, .pt, .gguf, .onnx unless you --include them). HF_TOKEN is used when set (needed for
    gated models). Run it again after an interruption to resume. Then: llmctl generate -m
    hf/ORG/NAME "..."
    """
    from llmctl.hub.cache import hub_cache_dir
    from llmctl.hub.download import download as run_download
    from llmctl.hub.download import plan_download

    settings = app_state(ctx).settings()
    provider = settings.provider("hf")
    repo = normalize_repo_id(repo_id)
    cache = hub_cache_dir(getattr(provider, "cache_dir", None))
    plan = plan_download(
        repo, cache_dir=cache, revision=revision, include=include or (), exclude=exclude or (), with_stats=dry_run
    )
    if dry_run:
        _show_plan(plan, as_json=as_json)
        return
    for warning in plan.warnings:
        output.warning(warning)
    if not plan.files:
        from llmctl.errors import UsageError

        raise UsageError(f"No files of {repo} match.", hint="Check --include/--exclude; --dry-run lists the files.")
    _announce(plan)
    if not yes and plan.remaining_bytes > CONFIRM_ABOVE_BYTES and sys.stdin.isatty() and not as_json:
        from llmctl.domain import human_bytes

        if not typer.confirm(f"Download {human_bytes(plan.remaining_bytes)}?", default=True, err=True):
            output.status("Nothing downloaded.")
            raise typer.Exit(ExitStatus.FAILURE)
    progress = _progress(quiet=as_json)
    try:
        result = run_download(plan, progress)
    except KeyboardInterrupt:
        output.status("Interrupted. Run the same command again to resume: finished and partial files are kept.")
        raise
    _show_result(result, as_json=as_json)


def _announce(plan: DownloadPlan) -> None:
    from llmctl.domain import human_bytes

    cached = sum(1 for f in plan.files if not f.transfers)
    partial = [f for f in plan.files if f.state == "partial"]
    from llmctl.domain import plural

    line = (
        f"{plan.repo_id}@{plan.revision} (commit {plan.commit_sha[:10]}): {plural(len(plan.files), 'file')}, "
        f"{human_bytes(plan.total_bytes)} → {plan.cache_dir}"
    )
    if cached:
        line += f"; {cached} already downloaded"
    if partial:
        line += f"; resuming {plural(len(partial), 'partial file')}"
    if plan.token_source:
        line += f"; using the token from {plan.token_source}"
    output.status(line)


def _show_plan(plan: DownloadPlan, *, as_json: bool) -> None:
    from llmctl.domain import human_bytes, human_count
    from llmctl.services.models import hardware
    from llmctl.services.models.info import estimate_rows

    machine = hardware.detect() if plan.stats is not None else None
    rows = estimate_rows(plan.stats, machine) if plan.stats is not None else []
    if as_json:
        data = plan.to_json()
        data["parameters"] = plan.stats.parameters if plan.stats else None
        data["parameters_note"] = plan.stats_note
        data["memory"] = [r.to_json() for r in rows]
        data["hardware"] = machine.to_json() if machine else None
        output.print_json(data)
        return
    from llmctl.domain import plural

    console = output.out()
    title = f"{plan.repo_id}@{plan.revision} (commit {plan.commit_sha[:10]}) — dry run, nothing downloaded"
    states = {"cached": "yes", "blob": "yes (another revision)", "partial": "partly", "missing": "no"}
    output.table(
        (output.Column("file"), output.Column("size", justify="right", no_wrap=True), output.Column("in cache")),
        (
            (
                f.path,
                human_bytes(f.size),
                states[f.state] + (f" ({human_bytes(f.partial_bytes)})" if f.state == "partial" else ""),
            )
            for f in plan.files
        ),
        title=title,
    )
    output.section_break()
    console.print(
        f"{plan.repo_id}@{plan.revision} (commit {plan.commit_sha[:10]}), dry run, nothing downloaded: "
        f"total {human_bytes(plan.total_bytes)} in {plural(len(plan.files), 'file')}; "
        f"{human_bytes(plan.remaining_bytes)} to download into {plan.cache_dir}."
    )
    if plan.skipped:
        names = ", ".join(p for p, _ in plan.skipped[:6]) + (" ..." if len(plan.skipped) > 6 else "")
        size = sum(s or 0 for _, s in plan.skipped)
        console.print(
            f"Skipped {plural(len(plan.skipped), 'file')} ({human_bytes(size)}): {names}  (--include PATTERN to add)"
        )
    if plan.gated:
        console.print(
            "Gated model: accept its license on the model page and set HF_TOKEN"
            + (f" (token from {plan.token_source} will be used)." if plan.token_source else " before downloading.")
        )
    if plan.stats is not None:
        note = f" ({plan.stats_note})" if plan.stats_note else ""
        console.print(f"Parameters: {human_count(plan.stats.parameters)}{note}")
        print_memory_table(rows, machine)
    elif plan.stats_note:
        console.print(f"Memory needed: unknown ({plan.stats_note}).")
    for warning in plan.warnings:
        output.warning(warning)


def print_memory_table(rows: list[Any], machine: Any) -> None:
    """Weights per precision and whether they fit RAM and each GPU (shared with ``models info``)."""
    from llmctl.domain import human_bytes

    devices = list(rows[0].fits) if rows else []
    output.section_break()
    output.table(
        (
            output.Column("precision", no_wrap=True),
            output.Column("weights", justify="right", no_wrap=True),
            *(output.Column(f"fits {_device_label(device, machine)}") for device in devices),
        ),
        (
            (row.precision, human_bytes(row.weights_bytes), *("yes" if row.fits[d] else "no" for d in devices))
            for row in rows
        ),
        title="Memory needed (weights; 8-bit/4-bit keep embeddings and norms in 16-bit; 'fits' adds 20% headroom)",
    )
    if machine is not None:
        print_machine(machine)


def print_machine(machine: Any) -> None:
    from llmctl.domain import human_bytes

    gpus = ", ".join(f"{g.device} {g.name} {human_bytes(g.total_bytes)}" for g in machine.gpus)
    output.section_break()
    output.facts(
        [
            ("RAM", f"{human_bytes(machine.ram_total_bytes)} ({human_bytes(machine.ram_available_bytes)} available)"),
            ("GPUs", (gpus or "none") + (f" ({machine.gpu_note})" if machine.gpu_note else "")),
        ],
        title="This machine",
    )


def _device_label(device: str, machine: Any) -> str:
    from llmctl.domain import human_bytes

    if machine is None:
        return device
    if device == "ram":
        return f"RAM ({human_bytes(machine.ram_total_bytes)})"
    if device == "all gpus":
        return f"all GPUs ({human_bytes(sum(g.total_bytes for g in machine.gpus))})"
    gpu = next((g for g in machine.gpus if g.device == device), None)
    return f"{device} ({human_bytes(gpu.total_bytes)})" if gpu else device


def _show_result(result: DownloadResult, *, as_json: bool) -> None:
    from llmctl.domain import human_bytes, human_count
    from llmctl.hub.weights import estimate_weights

    plan = result.plan
    name = f"hf/{plan.repo_id}"
    if as_json:
        output.print_json(
            {
                **plan.to_json(),
                "name": name,
                "snapshot_dir": str(result.snapshot_dir),
                "downloaded_bytes": result.downloaded_bytes,
                "resumed_files": list(result.resumed_files),
                "seconds": round(result.seconds, 3),
                "parameters": result.stats.parameters if result.stats else None,
            }
        )
        return
    speed = result.downloaded_bytes / result.seconds if result.seconds > 0 else 0
    console = output.out()
    console.print(
        f"Downloaded {plan.repo_id} ({plan.commit_sha[:10]}): {human_bytes(result.downloaded_bytes)} in "
        f"{result.seconds:.1f} s ({human_bytes(speed)}/s) → {result.snapshot_dir}"
    )
    if result.resumed_files:
        console.print(f"Resumed: {', '.join(result.resumed_files)}")
    stats: TensorStats | None = result.stats
    if stats is not None:
        console.print(
            f"Parameters: {human_count(stats.parameters)}; weights need about "
            f"{human_bytes(estimate_weights(stats, 'fp16/bf16'))} in 16-bit, "
            f"{human_bytes(estimate_weights(stats, '4-bit'))} in 4-bit (llmctl models info {name})."
        )
    console.print(f'Use it: llmctl generate -m {name} "Hello"')


def _progress(*, quiet: bool) -> Any:
    if quiet:
        return None
    from llmctl.cli.models.download_progress import LineProgress, RichDownloadProgress

    if output.err().is_terminal:
        return RichDownloadProgress(output.err())
    return LineProgress()
