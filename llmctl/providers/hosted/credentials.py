"""API keys for hosted providers: from an environment variable or a command, never shown.

Where a key comes from, in order:

1. ``api_key_cmd``: a command (run without a shell) whose first line of output is the key;
2. ``api_key_env``: the environment variable that holds it;
3. the vendor's usual variable (``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``) for the
   vendor's own endpoint, or for the built-in provider names with a ``base_url``;
4. a server of our own (a named provider with a ``base_url`` and neither of the
   above): no key at all. The SDKs insist on one, so a placeholder is sent.

The key's value is kept out of ``repr`` and every message; only where it came
from is ever named.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmctl.errors import AuthenticationError, ConfigError
from llmctl.provider_specs import HostedSettings, spec_for
from llmctl.redaction import redact

NO_AUTH_PLACEHOLDER = "not-needed"
KEY_CMD_TIMEOUT_S = 30.0

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class ApiKey:
    """A key and where it came from (for messages: never the value itself)."""

    value: str = field(repr=False)
    source: str  # "$OPENAI_API_KEY", "providers.x.api_key_cmd", or "none"
    env_var: str | None = None
    placeholder: bool = False

    def describe(self) -> str:
        """Where the key came from, in words."""
        if self.placeholder:
            return "no key (none is configured)"
        if self.env_var:
            return f"the API key from ${self.env_var}"
        return f"the API key printed by {self.source}"


def default_key_env(provider_name: str, settings: HostedSettings) -> str | None:
    """The variable read when the config names none; None for a server of our own."""
    if settings.base_url is None or provider_name == settings.kind:
        return spec_for(settings).key_env_var
    return None


def resolve_api_key(
    provider_name: str,
    settings: HostedSettings,
    environ: Mapping[str, str] | None = None,
    run: Runner = subprocess.run,
) -> ApiKey:
    """The key to send to provider ``provider_name``, or an error saying how to configure one."""
    environ = os.environ if environ is None else environ
    if settings.api_key_cmd:
        return ApiKey(
            _run_key_command(provider_name, settings.api_key_cmd, run), f"providers.{provider_name}.api_key_cmd"
        )

    explicit = settings.api_key_env
    var = explicit or default_key_env(provider_name, settings)
    if var is None:
        return ApiKey(NO_AUTH_PLACEHOLDER, "none", placeholder=True)
    value = environ.get(var, "").strip()
    if value:
        return ApiKey(value, f"${var}", env_var=var)
    if explicit is None and settings.base_url is not None:
        # The built-in name pointed at a gateway or local server: it may need no key.
        return ApiKey(NO_AUTH_PLACEHOLDER, "none", placeholder=True)

    state = "is empty" if var in environ else "is not set"
    where = (
        f"providers.{provider_name}.api_key_env names ${var}, which" if explicit else f"the environment variable {var}"
    )
    message = f"No API key for provider {provider_name!r}: {where} {state}."
    raise AuthenticationError(
        message,
        hint=f"Export it (export {var}=...), or set providers.{provider_name}.api_key_env to the variable that "
        f"holds the key, or providers.{provider_name}.api_key_cmd to a command that prints it.",
    )


def _run_key_command(provider_name: str, command: str, run: Runner) -> str:
    """Run ``api_key_cmd``. Its command line and its output can hold secrets (a password manager's
    arguments, a token it echoes on failure, a key pasted where the command belongs), so no message
    repeats any of it: only the config key and what happened (not found, exit status, timeout)."""
    where = f"providers.{provider_name}.api_key_cmd"
    try:
        argv = shlex.split(command)
    except ValueError:
        raise ConfigError(
            f"{where} is not a valid command line (unbalanced quotes).", hint="Check its quoting."
        ) from None
    if not argv:
        raise ConfigError(f"{where} is empty.", hint="Set it to a command that prints the key, or remove it.")
    argv[0] = os.path.expanduser(argv[0])  # no shell runs it, so `~/bin/get-key` needs expanding here
    hint = f"Run the command in {where} yourself to see what it says, or fix {where} in the config."
    kwargs: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,  # never let it swallow a prompt piped to llmctl
        "capture_output": True,  # its stderr is not shown: it may echo the secret or its arguments
        "text": True,
        "timeout": KEY_CMD_TIMEOUT_S,
        "check": False,
    }
    try:
        done = run(argv, **kwargs)
    except FileNotFoundError:
        raise AuthenticationError(f"{where}: its program was not found.", hint=hint) from None
    except subprocess.TimeoutExpired:
        raise AuthenticationError(
            f"{where}: the command did not finish within {KEY_CMD_TIMEOUT_S:g} s.", hint=hint
        ) from None
    except OSError as exc:
        raise AuthenticationError(
            f"{where}: the command cannot be run ({exc.strerror or type(exc).__name__}).", hint=hint
        ) from None
    if done.returncode != 0:
        raise AuthenticationError(f"{where}: the command failed with exit status {done.returncode}.", hint=hint)
    key = next((line.strip() for line in (done.stdout or "").splitlines() if line.strip()), "")
    if not key:
        raise AuthenticationError(f"{where}: the command printed no key.", hint=hint)
    return key


def scrub(text: str, key: ApiKey | None) -> str:
    """``text`` with the key's value masked, should a server echo it back, and URL credentials masked."""
    return redact(text, () if key is None or key.placeholder else (key.value,))
