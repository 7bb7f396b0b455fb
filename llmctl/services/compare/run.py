"""Run a comparison: every model on every case, hosted models at once, local models one at a time.

Each hosted model gets a thread of its own (the calls wait on the network, not on this machine);
all local models share one thread, one model after another, so two never compete for memory.
Within a model, cases (and their ``runs``) go one after another, so a model's timings are never
skewed by its own concurrent calls. Each call goes through :func:`run_one`: budget, run, record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from llmctl.config import Settings
from llmctl.domain import GenerationParams, GenerationRequest, RunStatus
from llmctl.errors import AuthenticationError, ConfigError, LlmctlError, MissingDependencyError, ModelNotFoundError
from llmctl.providers.base import Provider, ResolvedModel, unsupported_params
from llmctl.providers.registry import open_provider, resolve
from llmctl.services import calls
from llmctl.services.compare.cases import Case
from llmctl.services.compare.checks import NOT_JUDGED, CheckResult, Verdict, failed_call_results, run_checks
from llmctl.services.compare.memory import MemoryFit, memory_fit
from llmctl.services.generation import GenerationResult, GenerationRun, build_messages
from llmctl.services.models import hardware

# Errors that every further call on the model would repeat: the model's other calls are not made.
_CANNOT_START = (AuthenticationError, MissingDependencyError, ModelNotFoundError, ConfigError)
ProviderOpener = Callable[[ResolvedModel], Provider]


@dataclass(frozen=True)
class CallOutcome:
    """One call made (or refused by a budget): its result, its cost, what to tell the user."""

    result: GenerationResult | None  # None: refused before the call (a spent budget)
    cost_usd: float | None  # None: unknown, never 0
    warnings: tuple[str, ...] = ()
    error: str | None = None
    cannot_start: bool = False  # the model cannot answer any call (no key, not downloaded, budget spent)
    hint: str | None = None  # how to fix the error, when it says

    @property
    def text(self) -> str:
        return "" if self.result is None else self.result.completion.text


def run_one(
    settings: Settings,
    resolved: ResolvedModel,
    provider: Provider,
    request: GenerationRequest,
    *,
    command: str = "compare",
    ignore_budget: bool = False,
    prompt_text: str | None = None,
    stop: threading.Event | None = None,
    detach_on_stop: bool = False,
) -> CallOutcome:
    """One call through the shared call path (``services.calls.Call``: budget, run, record once).

    ``stop`` ends the call between pieces of the answer, as interrupted. ``detach_on_stop`` (hosted
    models): the answer is read on a daemon thread, so ``stop`` ends the call at once even while the
    server is silent, instead of at the client's timeout.
    """
    try:
        call = calls.Call(
            provider, request, settings=settings, command=command, ignore_budget=ignore_budget, prompt_text=prompt_text
        )
    except LlmctlError as exc:  # a spent budget: nothing was called, nothing is recorded
        return CallOutcome(None, None, error=exc.message, cannot_start=True, hint=exc.hint)
    with call:
        if detach_on_stop and stop is not None:
            _read_detached(call.run, stop)
        else:
            _read(call.run, stop)
    recorded = call.outcome
    result = recorded.result
    notes = call.warnings + recorded.warnings
    error: str | None = None
    if result.status is RunStatus.INTERRUPTED:
        error = RunStatus.INTERRUPTED
    elif result.error is not None:
        error = result.error.message
    cannot_start = isinstance(result.error, _CANNOT_START)
    hint = None if result.error is None else result.error.hint
    return CallOutcome(result, recorded.cost_usd, notes, error, cannot_start, hint)


def _read(run: GenerationRun, stop: threading.Event | None) -> None:
    """Read the answer to its end (the run keeps the text, and any error); ``stop`` ends it between pieces."""
    try:
        for _ in run.deltas():
            if stop is not None and stop.is_set():
                run.interrupted()
                break
    except LlmctlError:
        pass  # held by the run, recorded with it


def _read_detached(run: GenerationRun, stop: threading.Event) -> None:
    """``_read`` on a daemon thread; on ``stop`` the run ends as interrupted without waiting for it."""
    done = threading.Event()
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            _read(run, stop)
        except BaseException as exc:  # a bug: re-raised in the lane below
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=pump, name="compare-call", daemon=True).start()
    while not done.wait(0.05):
        if stop.is_set():
            run.interrupted()
            return
    if failure:
        raise failure[0]


@dataclass(frozen=True)
class Call:
    """One case run once on one model, with its checks."""

    model: str
    case: str
    run: int  # 1-based
    outcome: CallOutcome
    checks: tuple[CheckResult, ...] = ()
    verdict: Verdict | None = None  # the judge's, when the case has a judge check

    @property
    def ok(self) -> bool:
        return self.outcome.error is None

    @property
    def passed(self) -> bool:
        return self.ok and all(check.passed for check in self.checks)


@dataclass
class ModelEntry:
    """One ``-m`` of the comparison: what it resolved to and every call made on it."""

    reference: str
    name: str
    provider: str | None = None
    local: bool = False
    resolved: ResolvedModel | None = None
    error: str | None = None  # why it could not run at all (or stopped: the first failure to start)
    hint: str | None = None  # how to fix that
    memory: MemoryFit | None = None
    calls: list[Call] = field(default_factory=list)


@dataclass(frozen=True)
class CompareOptions:
    params: GenerationParams
    runs: int = 1
    ignore_budget: bool = False
    flags: frozenset[str] = frozenset()  # the GenerationParams fields the user set by flag (not by config)


@dataclass
class Comparison:
    """What ``compare`` measured: the models (in the order given) and the cases they ran."""

    models: list[ModelEntry]
    cases: list[Case]
    runs: int
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False


def prepare_models(references: Sequence[str], settings: Settings) -> list[ModelEntry]:
    """Resolve every ``-m``; one that cannot be resolved keeps its error and the others still run."""
    entries = []
    machine: hardware.Hardware | None = None  # looked at once, and only when a local model is compared
    for reference in references:
        entry = ModelEntry(reference=reference, name=reference)
        try:
            resolved = resolve(reference, settings)
        except LlmctlError as exc:
            entry.error, entry.hint = exc.message, exc.hint
        else:
            entry.resolved, entry.name, entry.provider = resolved, resolved.display_name, resolved.provider_name
            entry.local = resolved.spec.local
            if entry.local:
                machine = machine or hardware.detect()
                entry.memory = memory_fit(resolved, machine)
        entries.append(entry)
    return entries


def run_comparison(
    settings: Settings,
    entries: list[ModelEntry],
    cases: Sequence[Case],
    options: CompareOptions,
    *,
    opener: ProviderOpener = open_provider,
    stop: threading.Event | None = None,
    on_call: Callable[[Call], None] | None = None,
) -> Comparison:
    """Run every case ``options.runs`` times on every entry that resolved; fill in ``entry.calls``.

    ``stop`` ends the comparison early (Ctrl-C): calls in flight end as interrupted and are recorded.
    ``on_call`` is told of each call as it completes (from the model's thread).
    """
    stop = stop or threading.Event()
    comparison = Comparison(entries, list(cases), options.runs)
    runnable = [entry for entry in entries if entry.resolved is not None and entry.error is None]
    local = [entry for entry in runnable if entry.local]
    hosted = [entry for entry in runnable if not entry.local]
    lanes: list[list[ModelEntry]] = [[entry] for entry in hosted] + ([local] if local else [])
    warnings: list[str] = []
    lock = threading.Lock()

    def lane(models: list[ModelEntry]) -> None:
        for entry in models:
            for warning in _run_model(settings, entry, cases, options, opener, stop, on_call):
                with lock:
                    warnings.append(warning)

    if lanes:
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="compare") as pool:
            futures = [pool.submit(lane, models) for models in lanes]
            _wait_interruptibly(futures, stop)
        for future in futures:
            future.result()  # a bug in a lane surfaces here, not silently
    comparison.warnings = list(dict.fromkeys(warnings))
    comparison.interrupted = stop.is_set()
    return comparison


def _wait_interruptibly(futures: list[Future[None]], stop: threading.Event) -> None:
    """Wait for the lanes; Ctrl-C sets ``stop``, so each lane ends its call (recorded) and makes no more."""
    pending = set(futures)
    while pending:
        try:
            _, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
        except KeyboardInterrupt:
            stop.set()


def _run_model(
    settings: Settings,
    entry: ModelEntry,
    cases: Sequence[Case],
    options: CompareOptions,
    opener: ProviderOpener,
    stop: threading.Event,
    on_call: Callable[[Call], None] | None,
) -> list[str]:
    assert entry.resolved is not None
    warnings: list[str] = []
    try:
        provider = opener(entry.resolved)
    except LlmctlError as exc:
        entry.error, entry.hint = exc.message, exc.hint
        return warnings
    warnings.extend(ignored_params_warning(provider, entry.name, options.flags))
    try:
        for case in cases:
            for run in range(1, options.runs + 1):
                if stop.is_set():
                    return warnings
                request = GenerationRequest(
                    build_messages(case.prompt, case.system), options.params, response_schema=case.schema
                )
                outcome = run_one(
                    settings,
                    entry.resolved,
                    provider,
                    request,
                    ignore_budget=options.ignore_budget,
                    prompt_text=case.prompt,
                    stop=stop,
                    # A local model stops between tokens; a detached torch thread would abort the process at exit.
                    detach_on_stop=not entry.local,
                )
                warnings.extend(outcome.warnings)
                call = _checked(Call(entry.name, case.name, run, outcome), case)
                entry.calls.append(call)
                if on_call is not None:
                    on_call(call)
                if outcome.cannot_start:
                    # A model that cannot start (no key, not downloaded, budget spent) fails every call
                    # the same way: one failed call says so, without a ledger row for each case.
                    entry.error, entry.hint = outcome.error, outcome.hint
                    return warnings
    finally:
        provider.close()
    return warnings


def ignored_params_warning(provider: Provider, model: str, flags: frozenset[str]) -> list[str]:
    """Say so when a flag the user set does not reach this model (Anthropic's API takes no temperature):
    the comparison then differs in more than the model."""
    ignored = unsupported_params(provider)
    names = [f"--{name.replace('_', '-')}" for name in sorted(ignored & flags)]
    return [f"{model} does not take {', '.join(names)}; ignored for it."] if names else []


def _checked(call: Call, case: Case) -> Call:
    if case.checks.empty:
        return call
    if call.outcome.error is not None:
        return replace(call, checks=tuple(failed_call_results(case.checks, call.outcome.error)))
    usage = call.outcome.result.completion.usage if call.outcome.result is not None else None
    results = run_checks(case.checks, call.outcome.text, None if usage is None else usage.output_tokens)
    if case.checks.judge is not None:
        results.append(NOT_JUDGED)  # failed until the judge says otherwise: never a pass by omission
    return replace(call, checks=tuple(results))


def single_case(prompt: str, system: str | None) -> Case:
    """``compare "PROMPT"``: the prompt as a suite of one case without checks."""
    return Case(name="prompt", prompt=prompt, system=system)
