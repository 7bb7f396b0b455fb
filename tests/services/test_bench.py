"""What the benchmark's numbers rest on: exact token counts, run counts, the arithmetic, the JSON.

Never wall-clock thresholds: a busy machine may make any run slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    GenerationParams,
    TextDelta,
    Usage,
)
from llmctl.errors import ContextLengthError, UsageError
from llmctl.provider_specs import OpenAIProviderSettings
from llmctl.providers.base import ResolvedModel
from llmctl.providers.hf.provider import HuggingFaceProvider
from llmctl.providers.registry import open_provider, resolve
from llmctl.services.bench.measure import hosted_prompt
from llmctl.services.bench.run import (
    BenchOptions,
    RunMeasurement,
    exact_prompt_ids,
    run_bench,
    summarize,
    with_load_overrides,
)
from tests.fakes import FakeBackend
from tests.tiny_models import build_tiny_model


def local(folder: Path) -> ResolvedModel:
    return resolve(str(folder), Settings())


# -- the prompt ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 7, 64, 200])
def test_prompt_has_exactly_the_requested_tokens(count: int, tiny_models: dict[str, Path]) -> None:
    provider = open_provider(local(tiny_models["llama"]))
    assert isinstance(provider, HuggingFaceProvider)
    tokenizer = provider.loaded.tokenizer
    ids = exact_prompt_ids(tokenizer, count)
    assert len(ids) == count
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.eos_token_id not in ids[1:], "no end-of-sequence inside the prompt"


def test_prompt_without_bos_is_all_text() -> None:
    class NoBos:
        bos_token_id = None

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            assert not add_special_tokens
            return [5, 6, 7]

    assert exact_prompt_ids(NoBos(), 8) == [5, 6, 7, 5, 6, 7, 5, 6]


def test_hosted_prompt_grows_with_the_requested_size() -> None:
    assert len(hosted_prompt(400).split()) > 2 * len(hosted_prompt(100).split())


# -- local runs ---------------------------------------------------------------------------------


def test_local_runs_have_exact_counts(tiny_models: dict[str, Path]) -> None:
    phases: list[str] = []
    report = run_bench(
        local(tiny_models["llama"]),
        BenchOptions(runs=3, warmup=1, prompt_tokens=24, max_tokens=10),
        on_progress=phases.append,
    )
    assert len(report.runs) == 3
    assert len(report.warmup_runs) == 1
    for run in report.runs:
        assert run.prompt_tokens == 24
        assert run.output_tokens == 10
        assert run.finish_reason is FinishReason.LENGTH
        assert run.ttft_s is not None and 0 < run.ttft_s <= run.total_s
        assert run.prefill_tokens_per_s is not None and run.decode_tokens_per_s is not None
    ttft = report.stat("ttft_s")
    assert ttft is not None and ttft.count == 3 and ttft.min <= ttft.median <= ttft.max
    assert phases == [
        "Importing the backend",
        f"Loading {tiny_models['llama']}",
        "Warm-up 1/1",
        "Run 1/3",
        "Run 2/3",
        "Run 3/3",
    ]
    assert report.environment.device == "cpu"
    assert report.peak_rss_bytes is not None and report.peak_rss_bytes > 10 * 2**20
    assert report.peak_gpu_bytes is None


def test_every_run_decodes_max_tokens_even_when_the_model_wants_to_stop(tmp_path: Path) -> None:
    """A model whose first greedy token is end-of-sequence: plain generation stops at once, bench does not."""
    folder = build_tiny_model("llama", tmp_path / "eager-to-stop")
    provider = open_provider(local(folder))
    assert isinstance(provider, HuggingFaceProvider)
    ids = exact_prompt_ids(provider.loaded.tokenizer, 16)
    first = _greedy_first_token(provider, ids)
    config_file = folder / "generation_config.json"
    config = json.loads(config_file.read_text())
    config["eos_token_id"] = first
    config_file.write_text(json.dumps(config))

    plain = open_provider(local(folder))
    assert isinstance(plain, HuggingFaceProvider)
    finished = [
        e for e in plain.stream_ids(ids, GenerationParams(temperature=0, max_tokens=8)) if isinstance(e, Finished)
    ]
    assert finished[0].usage.output_tokens == 1, "the model really stops after one token without forcing"

    report = run_bench(local(folder), BenchOptions(runs=2, warmup=0, prompt_tokens=16, max_tokens=8))
    assert [run.output_tokens for run in report.runs] == [8, 8]


def _greedy_first_token(provider: HuggingFaceProvider, ids: list[int]) -> int:
    import torch

    with torch.inference_mode():
        logits = provider.loaded.model(torch.tensor([ids])).logits
    return int(logits[0, -1].argmax())


def test_prompt_and_output_must_fit_the_context_window(tiny_models: dict[str, Path]) -> None:
    # The tiny models have a 256-token window.
    with pytest.raises(ContextLengthError) as raised:
        run_bench(local(tiny_models["llama"]), BenchOptions(runs=1, warmup=0, prompt_tokens=250, max_tokens=10))
    assert raised.value.context_window == 256


def test_dtype_override_reaches_the_loaded_model(tiny_models: dict[str, Path]) -> None:
    report = run_bench(
        local(tiny_models["llama"]), BenchOptions(runs=1, warmup=0, prompt_tokens=8, max_tokens=3, dtype="bfloat16")
    )
    assert report.environment.dtype == "bfloat16"
    assert report.options.dtype == "bfloat16"
    assert report.runs[0].output_tokens == 3


def test_load_overrides_keep_the_alias_settings() -> None:
    settings = Settings.model_validate(
        {"models": {"mine": {"provider": "hf", "id": "org/repo", "dtype": "float16", "context_window": 1024}}}
    )
    resolved = with_load_overrides(resolve("mine", settings), "8bit", None)
    assert resolved.model_settings is not None
    assert resolved.model_settings.quantization == "8bit"
    assert resolved.model_settings.dtype == "float16"
    assert resolved.model_settings.context_window == 1024
    assert resolved.alias == "mine"


def test_quantize_is_refused_for_an_api_model() -> None:
    with pytest.raises(UsageError, match="local models"):
        with_load_overrides(resolve("openai/gpt-4o-mini", Settings()), "4bit", None)


@pytest.mark.parametrize("options", [BenchOptions(runs=0), BenchOptions(warmup=-1), BenchOptions(max_tokens=0)])
def test_nonsense_options_are_usage_errors(options: BenchOptions, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(UsageError):
        run_bench(local(tiny_models["llama"]), options)


# -- hosted runs, through the Provider protocol only -----------------------------------------------


def answers_like_an_api(fake: FakeBackend, usage: Usage | None) -> FakeBackend:
    """Every call: text deltas without token counts (a role-only empty one first), usage at the end."""
    fake.answer_every_call(
        TextDelta(""), "Once ", "upon ", "a ", "time", Finished(usage or Usage(), FinishReason.LENGTH)
    )
    return fake


def api_model() -> ResolvedModel:
    return ResolvedModel("openai", "openai", "gpt-4o-mini", OpenAIProviderSettings())


def test_hosted_warmups_are_called_but_not_counted(fake_provider: FakeBackend) -> None:
    provider = answers_like_an_api(fake_provider, Usage(input_tokens=90, output_tokens=4, source=CountSource.PROVIDER))
    report = run_bench(
        api_model(), BenchOptions(runs=3, warmup=2, prompt_tokens=100, max_tokens=4), open_provider=provider.open
    )
    assert len(provider.requests) == 5
    assert len(report.runs) == 3 and len(report.warmup_runs) == 2
    assert provider.prepared == 1 and provider.closed == 1
    assert provider.requests[0].params.max_tokens == 4
    assert provider.requests[0].params.temperature == 0
    assert all(run.prompt_tokens == 90 and run.output_tokens == 4 for run in report.runs)
    assert report.environment.device == "remote API"


def test_hosted_ttft_is_the_first_nonempty_text_and_decode_counts_the_rest(fake_provider: FakeBackend) -> None:
    ticks = iter(float(t) for t in range(100))
    report = run_bench(
        api_model(),
        BenchOptions(runs=1, warmup=0, prompt_tokens=50, max_tokens=4),
        open_provider=answers_like_an_api(
            fake_provider, Usage(input_tokens=50, output_tokens=4, source=CountSource.PROVIDER)
        ).open,
        clock=lambda: next(ticks),
    )
    # clock calls: import start/end (0, 1), load (2, 3), run start 4, first text 5, run end 6.
    run = report.runs[0]
    assert report.import_s == 1 and report.load_s == 1
    assert run.ttft_s == 1 and run.total_s == 2
    assert run.prefill_tokens_per_s == 50
    assert run.decode_tokens_per_s == 3


def test_unknown_api_usage_stays_unknown(fake_provider: FakeBackend) -> None:
    report = run_bench(
        api_model(),
        BenchOptions(runs=2, warmup=0),
        open_provider=answers_like_an_api(fake_provider, None).open,
    )
    assert all(run.prompt_tokens is None and run.output_tokens is None for run in report.runs)
    assert report.stat("decode_tokens_per_s") is None
    assert report.stat("ttft_s") is not None
    data = report.to_json()
    assert data["summary"]["decode_tokens_per_s"] is None
    assert data["runs"][0]["output_tokens"] is None


# -- arithmetic and JSON ------------------------------------------------------------------------


def test_rates_follow_the_documented_formulas() -> None:
    run = RunMeasurement(ttft_s=0.5, total_s=2.5, prompt_tokens=100, output_tokens=9, finish_reason=FinishReason.LENGTH)
    assert run.prefill_tokens_per_s == 200
    assert run.decode_tokens_per_s == 4  # 8 tokens after the first, in 2 s
    single = RunMeasurement(
        ttft_s=0.5, total_s=0.5, prompt_tokens=10, output_tokens=1, finish_reason=FinishReason.LENGTH
    )
    assert single.decode_tokens_per_s is None


def test_summary_is_median_min_max_of_known_values() -> None:
    stat = summarize([3.0, None, 1.0, 10.0, 2.0])
    assert stat is not None
    assert (stat.median, stat.min, stat.max, stat.count) == (2.5, 1.0, 10.0, 4)
    assert summarize([None, None]) is None


def test_json_has_the_documented_shape(tiny_models: dict[str, Path]) -> None:
    report = run_bench(local(tiny_models["mistral"]), BenchOptions(runs=2, warmup=0, prompt_tokens=12, max_tokens=4))
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {
        "model", "provider", "kind", "settings", "environment", "import_s", "load_s",
        "summary", "runs", "warmup_runs", "memory", "recorded", "prompt_cache", "compile",
    }  # fmt: skip
    assert data["settings"] == {
        "runs": 2, "warmup": 0, "prompt_tokens": 12, "max_tokens": 4, "quantize": None, "dtype": None,
        "compile": False,
    }  # fmt: skip
    assert data["compile"] is None  # not compiled: no compile figures at all
    assert set(data["summary"]) == {"ttft_s", "prefill_tokens_per_s", "decode_tokens_per_s", "total_s"}
    assert set(data["summary"]["decode_tokens_per_s"]) == {"median", "min", "max", "count"}
    assert [r["output_tokens"] for r in data["runs"]] == [4, 4]
    assert data["kind"] == "huggingface" and data["recorded"] == 0
    assert data["memory"]["peak_rss_bytes"] > 0


# -- hosted runs over the real wire ---------------------------------------------------------------


def test_openai_bench_goes_through_the_sdk_and_takes_the_api_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.wire.openai_server import OpenAIServer, Reply

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bench")
    reply = Reply(chunks=["Once", " upon", " a", " time", " there", " was"], usage=(120, 6))
    with OpenAIServer(api_key="sk-test-bench", default=reply) as server:
        settings = Settings.model_validate({"providers": {"openai": {"base_url": server.base_url, "max_retries": 0}}})
        report = run_bench(
            resolve("openai/gpt-4o-mini", settings), BenchOptions(runs=2, warmup=1, prompt_tokens=120, max_tokens=6)
        )
        bodies = [r.json for r in server.requests_to("/v1/chat/completions")]
    assert len(bodies) == 3
    assert all(body["stream"] is True and body["max_tokens"] == 6 and body["temperature"] == 0 for body in bodies)
    assert [(run.prompt_tokens, run.output_tokens) for run in report.runs] == [(120, 6), (120, 6)]
    assert all(run.ttft_s is not None and run.decode_tokens_per_s is not None for run in report.runs)
    assert report.kind == "openai" and report.environment.device == "remote API"


def test_anthropic_bench_goes_through_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.wire.anthropic_server import AnthropicServer, Reply

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-bench")
    with AnthropicServer(api_key="sk-ant-bench", default=Reply(chunks=["A", " b", " c"], usage=(40, 3))) as server:
        settings = Settings.model_validate(
            {"providers": {"anthropic": {"base_url": server.base_url, "max_retries": 0}}}
        )
        report = run_bench(
            resolve("anthropic/claude-haiku-4-5", settings),
            BenchOptions(runs=1, warmup=0, prompt_tokens=40, max_tokens=3),
        )
        assert len(server.requests_to("/v1/messages")) == 1
    assert (report.runs[0].prompt_tokens, report.runs[0].output_tokens) == (40, 3)


# -- a server's prompt cache must not pass for prefill speed ------------------------------------------------


def test_every_hosted_call_begins_with_a_prompt_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.wire.openai_server import OpenAIServer, Reply

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bench")
    with OpenAIServer(api_key="sk-test-bench", default=Reply(usage=(120, 6))) as server:
        settings = Settings.model_validate({"providers": {"openai": {"base_url": server.base_url, "max_retries": 0}}})
        report = run_bench(resolve("openai/gpt-4o-mini", settings), BenchOptions(runs=3, warmup=1, prompt_tokens=120))
        prompts = [r.json["messages"][-1]["content"] for r in server.requests_to("/v1/chat/completions")]
    assert len(prompts) == 4
    first_lines = [prompt.splitlines()[0] for prompt in prompts]
    assert len(set(first_lines)) == 4  # a cache matches on the beginning: each one differs there
    assert len({prompt.split("\n", 1)[1] for prompt in prompts}) == 1  # and only there: same size, same text
    assert report.prompt_varied and report.to_json()["prompt_cache"]["prompt_varied_per_run"] is True
    assert "could not serve it" in (report.prompt_cache_note() or "")


def test_a_benchmark_never_repeats_another_ones_prompt(fake_provider: FakeBackend) -> None:
    api = answers_like_an_api(fake_provider, None)
    for _ in range(2):
        run_bench(api_model(), BenchOptions(runs=2, warmup=0), open_provider=api.open)
    prompts = [request.messages[-1].content for request in api.requests]
    assert len(set(prompts)) == 4


@pytest.mark.parametrize(
    ("usage", "share", "says"),
    [
        (Usage(100, 4, CountSource.PROVIDER, cached_input_tokens=80), 0.8, "80% of prompt tokens cached"),
        (Usage(100, 4, CountSource.PROVIDER, cached_input_tokens=0), 0.0, "reported none cached"),
        (Usage(100, 4, CountSource.PROVIDER), None, "reports no cached tokens"),
    ],
)
def test_the_cached_share_the_api_reports_is_shown(
    fake_provider: FakeBackend, usage: Usage, share: float | None, says: str
) -> None:
    api = answers_like_an_api(fake_provider, usage)
    report = run_bench(api_model(), BenchOptions(runs=2, warmup=0), open_provider=api.open)
    assert report.cached_share() == share
    assert says in (report.prompt_cache_note() or "")
    assert report.to_json()["runs"][0]["cached_prompt_tokens"] == usage.cached_input_tokens


def test_local_benchmarks_have_no_prompt_cache_note(tiny_models: dict[str, Path]) -> None:
    report = run_bench(local(tiny_models["llama"]), BenchOptions(runs=1, warmup=0, prompt_tokens=8, max_tokens=2))
    assert report.prompt_cache_note() is None and not report.prompt_varied
