"""A conversation with one model at a time: history, context-window fitting, the provider kept open.

Every turn sends the whole history (system prompt + earlier turns + the new
message) through the same ``Provider.stream`` protocol as ``generate``. Local
models are wrapped in a ``KVCacheProvider`` so the prompt tokens they already
processed are not processed again.

When the history no longer fits the model's context window, the oldest turns
are left out of what the model sees (never the system prompt); they stay in the
saved conversation. The window start only moves forward, so a local model's KV
cache stays valid between drops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from llmctl.config import Settings
from llmctl.domain import GenerationParams, GenerationRequest, Message
from llmctl.errors import ContextLengthError, LlmctlError, UsageError
from llmctl.providers.base import PromptTokens, Provider, ResolvedModel, count_prompt_tokens, for_chat
from llmctl.providers.hosted.openai_tokens import PROXY_ENCODING, chat_tokens, openai_encoding_name
from llmctl.providers.registry import open_provider, resolve
from llmctl.services import interrupts, token_counting
from llmctl.services.calls import Call, CallOutcome
from llmctl.services.chat.conversation import (
    Conversation,
    Turn,
    UsageTotals,
    new_conversation_id,
    usage_totals,
)
from llmctl.services.chat.store import ConversationStore
from llmctl.services.generation import GenerationResult, check_input_size
from llmctl.services.usage.pricing import Price, price_for, unknown_price_hint

# Room kept for the reply when fitting the history: max_tokens, but never more than this share of the window.
REPLY_SHARE_OF_WINDOW = 4
DEFAULT_REPLY_RESERVE = 512
_CHAT_CONTEXT_HINT = "Send a shorter message, or switch to a model with a larger context window: /model MODEL."

ProviderOpener = Callable[[ResolvedModel], Provider]


def open_chat_provider(resolved: ResolvedModel, *, kv_reuse: bool = True) -> Provider:
    """The provider for a chat: one that keeps its KV cache between turns where the backend can."""
    return for_chat(open_provider(resolved), reuse_kv=kv_reuse)


def hosted_prompt_tokens(resolved: ResolvedModel, messages: Sequence[Message]) -> int:
    """Offline: exact for a model with a known OpenAI encoding, else an o200k_base estimate.

    (Anthropic's exact count is an API call; fitting the history every turn does without it.)
    """
    return chat_tokens(openai_encoding_name(resolved.model_id) or PROXY_ENCODING, messages)


@dataclass(frozen=True)
class TurnOutcome:
    """What a finished turn left behind, for the status line."""

    result: GenerationResult
    turn: Turn
    totals: UsageTotals
    saved: bool
    warnings: tuple[str, ...] = ()  # e.g. the usage ledger could not be written


@dataclass(frozen=True)
class ContextFit:
    messages: tuple[Message, ...]
    prompt_tokens: int | None  # None when the model's window is unknown (nothing to fit)
    window: int | None


@dataclass
class ContextState:
    """Which turns the model still sees, and whether the user has been told some were dropped."""

    start: int = 0
    notified: bool = False
    pending_notice: int | None = field(default=None)


def turn_of(user_text: str, resolved: ResolvedModel, call: CallOutcome) -> Turn:
    """The conversation turn a finished call makes (whatever ended it)."""
    result = call.result
    return Turn(
        user=user_text,
        reply=result.completion.text,
        model=resolved.display_name,
        status=result.status,
        finish_reason=result.completion.finish_reason.value,
        usage=result.completion.usage,
        cost_usd=call.cost_usd,
        error=None if result.error is None else result.error.message,
    )


def save_one_shot(
    store: ConversationStore,
    conversation_id: str,
    resolved: ResolvedModel,
    *,
    system: str | None,
    user_text: str,
    call: CallOutcome,
) -> str | None:
    """Keep a ``generate`` call as a one-turn conversation, so ``generate -c`` can go on from it.

    Returns a warning when the store refuses it (the answer was shown; nothing else is lost).
    """
    conversation = Conversation(id=conversation_id, model=resolved.display_name, system=system)
    conversation.turns.append(turn_of(user_text, resolved, call))
    try:
        store.save(conversation)
    except LlmctlError as exc:
        return f"Conversation not saved: {exc.message}"
    return None


class ChatTurn:
    """A turn in flight: iterate ``deltas()``, then ``finish(error)`` with whatever ended the reading.

    ``finish`` stops the stream, records the call (through the one call path, ``Call``), adds
    the turn to the history and saves the conversation: for a finished reply, Ctrl-C, a
    signal, a closed pipe or any exception alike.
    """

    def __init__(self, session: ChatSession, user_text: str, call: Call) -> None:
        self._session = session
        self.user_text = user_text
        self._call = call
        self.warnings = call.warnings  # budget warnings, to show before the reply
        self._finished: TurnOutcome | None = None

    def deltas(self) -> Iterator[str]:
        """The reply's text pieces."""
        return self._call.run.deltas()

    def interrupted(self) -> None:
        self._call.run.interrupted()

    def finish(self, error: BaseException | None = None) -> TurnOutcome:
        """Add the turn to the history (whatever happened), save it and record its usage; once."""
        if self._finished is None:
            with interrupts.held():  # a second signal must not lose the turn between the ledger and the file
                self._finished = self._session._complete(self.user_text, self._call.finish(error))
        return self._finished


class ChatSession:
    """History plus an open provider; one instance per ``llmctl chat`` run."""

    def __init__(
        self,
        settings: Settings,
        model: str | None,
        *,
        params: GenerationParams,
        system: str | None = None,
        conversation: Conversation | None = None,
        store: ConversationStore | None = None,
        opener: ProviderOpener = open_chat_provider,
        record_usage: bool = True,
        ignore_budget: bool = False,
        command: str = "chat",  # the ledger's name for the command making the calls (`generate -c`: generate)
    ) -> None:
        self._settings = settings
        self._command = command
        self._params = params
        self._store = store
        self._opener = opener
        self._record_usage = record_usage
        self._ignore_budget = ignore_budget
        self._price: Price | None = None
        self._price_known = False
        self._window: int | None = None
        self._window_known = False
        resolved = resolve(model if model is not None or conversation is None else conversation.model, settings)
        self._provider = opener(resolved)
        if conversation is None:
            conversation = Conversation(id=new_conversation_id(), model=resolved.display_name, system=system)
        else:
            conversation.model = resolved.display_name
            if system is not None:
                conversation.system = system
        self._conversation = conversation
        self._context = ContextState()
        self.pending_warnings: list[str] = []  # from saves outside a turn (/system, /model), for the CLI
        self.last_save_failed = False

    # -- what the session is ------------------------------------------------------------------

    @property
    def conversation(self) -> Conversation:
        return self._conversation

    @property
    def provider(self) -> Provider:
        return self._provider

    @property
    def model_name(self) -> str:
        return self._provider.resolved.display_name

    @property
    def params(self) -> GenerationParams:
        return self._params

    @property
    def saves_conversations(self) -> bool:
        return self._store is not None

    @property
    def turns_out_of_context(self) -> int:
        return self._context.start

    def take_warnings(self) -> list[str]:
        """Warnings from work outside a turn (a /system or /model change that could not be saved)."""
        warnings, self.pending_warnings = self.pending_warnings, []
        return warnings

    def take_drop_notice(self) -> int | None:
        """How many turns were dropped to fit the window, the first time that happens; else None."""
        notice, self._context.pending_notice = self._context.pending_notice, None
        return notice

    def totals(self) -> UsageTotals:
        return usage_totals(self._conversation.turns)

    def prepare(self) -> None:
        """Load the model (or build the client) now, so the first reply starts promptly."""
        self._provider.prepare()

    def close(self) -> None:
        self._provider.close()

    # -- turns --------------------------------------------------------------------------------

    def start_turn(self, text: str) -> ChatTurn:
        """Fit the history plus ``text`` to the context window and start generating the reply."""
        if not text.strip():
            raise UsageError("Empty message.", hint="Type something, or /help for commands.")
        fit = self.fit_context(text)
        call = Call(
            self._provider,
            GenerationRequest(fit.messages, self._params),
            settings=self._settings,
            command=self._command,
            ignore_budget=self._ignore_budget,
            conversation_id=self._conversation.id,
            prompt_text=text,
            price=self.price(),
            record=self._record_usage,
            keep_text=self._store is not None,  # --no-save: no text on disk, not even in the ledger
        )
        return ChatTurn(self, text, call)

    def price(self) -> Price | None:
        """The current model's price per million tokens (looked up once per model)."""
        if not self._price_known:
            self._price, self._price_known = price_for(self._provider.resolved), True
        return self._price

    def price_hint(self) -> str | None:
        """How to set a price when the current model has none."""
        return unknown_price_hint(self._provider.resolved) if self.price() is None else None

    def retry(self) -> ChatTurn:
        """Regenerate the last reply: the last turn is replaced by the new one."""
        turns = self._conversation.turns
        if not turns:
            raise UsageError("Nothing to retry yet.", hint="Send a message first.")
        last = turns.pop()
        try:
            return self.start_turn(last.user)
        except BaseException:
            turns.append(last)
            raise

    def fit_context(self, text: str) -> ContextFit:
        """The messages to send: drop the oldest turns until the prompt leaves room for a reply."""
        turns = self._conversation.turns
        self._context.start = min(self._context.start, len(turns))
        window = self.context_window()

        def messages_from(start: int) -> tuple[Message, ...]:
            return (*self._conversation.messages(start), Message("user", text))

        if window is None:
            return ContextFit(messages_from(self._context.start), None, None)
        # Before any tokenizing: a pasted file far larger than the window is refused at once.
        check_input_size(messages_from(len(turns)), window, model=self.model_name, hint=_CHAT_CONTEXT_HINT)
        budget = window - min(self._params.max_tokens or DEFAULT_REPLY_RESERVE, window // REPLY_SHARE_OF_WINDOW)
        start = self._context.start
        while True:
            messages = messages_from(start)
            tokens = self._count(messages)
            if tokens <= budget or start >= len(turns):
                break
            start += 1
        if tokens >= window:
            raise ContextLengthError(tokens, window, model=self.model_name, hint=_CHAT_CONTEXT_HINT)
        if start > self._context.start:
            self._context.start = start
            if not self._context.notified:
                self._context.notified = True
                self._context.pending_notice = start
        return ContextFit(messages, tokens, window)

    def context_usage(self) -> tuple[int | None, int | None]:
        """(tokens the history sent next turn takes, the model's window); both None when unknown."""
        window = self.context_window()
        if window is None:
            return None, None
        messages = self._conversation.messages(self._context.start)
        if not messages:
            return 0, window  # before the first message: nothing to count (a chat template refuses [])
        try:
            return self._count(messages), window
        except (LlmctlError, ValueError, TypeError):
            # Some templates refuse a system prompt without a user message; /usage must not end the chat.
            return None, window

    def context_window(self) -> int | None:
        """The model's window: the provider's (a local model's config, an alias's ``context_window``),
        else the one listed for a hosted model."""
        if not self._window_known:
            window = self._provider.context_window()
            if window is None and not self._provider.resolved.spec.local:
                window = token_counting.context_window(self._provider.resolved)
            self._window, self._window_known = window, True
        return self._window

    def _count(self, messages: Sequence[Message]) -> int:
        counted = count_prompt_tokens(self._provider, messages)
        if isinstance(counted, PromptTokens):  # a local model: exact, with its tokenizer and chat template
            return counted.tokens
        return hosted_prompt_tokens(self._provider.resolved, messages)

    def _complete(self, user_text: str, call: CallOutcome) -> TurnOutcome:
        result = call.result
        turn = turn_of(user_text, self._provider.resolved, call)
        self._conversation.turns.append(turn)
        warnings = list(call.warnings)
        saved = self._save(warnings)
        return TurnOutcome(result=result, turn=turn, totals=self.totals(), saved=saved, warnings=tuple(warnings))

    def _save(self, warnings: list[str] | None = None) -> bool:
        """Write the conversation; a store that refuses it is a warning, and the chat goes on."""
        if self._store is None or not self._conversation.turns:
            return False
        try:
            self._store.save(self._conversation)
            self.last_save_failed = False
        except LlmctlError as exc:
            self.last_save_failed = True
            message = f"Conversation not saved: {exc.message}"
            if warnings is not None:
                warnings.append(message)
            else:
                self.pending_warnings.append(message)
            return False
        return True

    # -- commands -----------------------------------------------------------------------------

    def reset(self) -> Conversation:
        """Start a new conversation with the same model and system prompt."""
        self._conversation = Conversation(
            id=new_conversation_id(), model=self._provider.resolved.display_name, system=self._conversation.system
        )
        self._context = ContextState()
        return self._conversation

    def set_system(self, text: str | None) -> None:
        """Change the system prompt for the next turns (the history is kept)."""
        self._conversation.system = text or None
        self._save()

    def switch_model(self, reference: str) -> ResolvedModel:
        """Use another model from the next turn on, keeping the history. Loads it before switching."""
        resolved = resolve(reference, self._settings)
        provider = self._opener(resolved)
        try:
            provider.prepare()
        except BaseException:
            provider.close()
            raise
        self._provider.close()
        self._provider = provider
        self._price_known = self._window_known = False
        self._conversation.model = resolved.display_name
        self._context.start = 0  # a new window size: fit again from the start
        self._save()
        return resolved
