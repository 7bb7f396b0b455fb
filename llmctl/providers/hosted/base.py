"""What the OpenAI and Anthropic adapters share: the endpoint they talk to and what a listing returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from llmctl.provider_specs import HostedSettings
from llmctl.providers.base import ResolvedModel
from llmctl.providers.hosted.credentials import ApiKey, resolve_api_key
from llmctl.redaction import redact

if TYPE_CHECKING:  # hosted_stream imports httpx2; listing models (RemoteModel) must not pay for it
    from llmctl.providers.hosted.stream import StreamStalled, StreamWatch

VENDOR_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic"}


@dataclass(frozen=True)
class Endpoint:
    """One configured hosted provider, with its key resolved."""

    provider_name: str
    settings: HostedSettings
    key: ApiKey

    @classmethod
    def open(cls, provider_name: str, settings: HostedSettings) -> Endpoint:
        return cls(provider_name, settings, resolve_api_key(provider_name, settings))

    @property
    def kind(self) -> str:
        return self.settings.kind

    @property
    def official(self) -> bool:
        """True for the vendor's own API (no base_url configured)."""
        return self.settings.base_url is None

    @property
    def label(self) -> str:
        """How messages name it: ``OpenAI``, or ``my-vllm (http://host:8000/v1)``."""
        if self.official:
            return VENDOR_NAMES[self.kind]
        return f"{self.provider_name} ({redact(self.settings.base_url or '')})"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for the SDK client: the SDK does the retrying and the timing out."""
        options: dict[str, Any] = {
            "api_key": self.key.value,
            "timeout": self.settings.timeout,
            "max_retries": self.settings.max_retries,
        }
        if self.settings.base_url is not None:
            options["base_url"] = self.settings.base_url
        return options


@dataclass(frozen=True)
class RemoteModel:
    """One model as a provider's model-listing endpoint describes it."""

    id: str
    provider: str
    display_name: str | None = None
    owned_by: str | None = None
    created: str | None = None  # ISO date
    context_window: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Closable(Protocol):
    def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closable)
SettingsT = TypeVar("SettingsT", bound=HostedSettings)


class HostedProvider(Generic[ClientT, SettingsT]):
    """The lifecycle both vendor adapters share: resolve the key and build the SDK client once, on prepare()."""

    accepts_images = True  # both vendor wires take images with a user message (base64)

    def __init__(self, resolved: ResolvedModel, settings: SettingsT, stalled: type[StreamStalled]) -> None:
        self._resolved = resolved
        self._settings = settings
        self._endpoint: Endpoint | None = None
        self._client: ClientT | None = None
        from llmctl.providers.hosted.stream import StreamWatch

        self._watch: StreamWatch = StreamWatch(stalled)

    @property
    def resolved(self) -> ResolvedModel:
        return self._resolved

    def _make_client(self, endpoint: Endpoint) -> ClientT:
        raise NotImplementedError

    def prepare(self) -> None:
        if self._client is None:
            self._endpoint = Endpoint.open(self._resolved.provider_name, self._settings)
            self._client = self._make_client(self._endpoint)

    def _endpoint_or_fail(self) -> Endpoint:
        if self._endpoint is None:
            raise RuntimeError("prepare() was not called")
        return self._endpoint

    def _start_watch(self, *, stream: bool) -> None:
        """Limit the call about to be made: idle time only for a stream (a whole answer arrives at once)."""
        settings = self._settings
        idle = (settings.idle_timeout or settings.timeout) if stream else None
        self._watch.start(idle_s=idle, total_s=settings.total_timeout)

    def context_window(self) -> int | None:
        model = self._resolved.model_settings
        return model.context_window if model is not None else None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
