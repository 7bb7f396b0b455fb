"""Masking secrets in text that is shown or stored: the one function every such place uses.

Two kinds of secret are masked: values the caller knows are secret (an API key it holds),
and what a URL carries for authentication: ``user:password@`` and query parameters such as
``?api_key=...`` or ``&token=...``. Masking happens before any truncation, so a cut can
never leave half a secret behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "****"
MIN_SECRET_LENGTH = 4  # shorter "secrets" would mask ordinary words

# scheme://[userinfo@]host: userinfo runs to the last "@" before the path, query or fragment.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]*@)")
_SECRET_PARAM_WORDS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "sig",
    "credential",
    "session",
    "code",
)
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#\s?]+)=(?P<value>[^&;#\s]*)")


def _is_secret_param(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in _SECRET_PARAM_WORDS)


def _mask_param(match: re.Match[str]) -> str:
    if not _is_secret_param(match["name"]) or not match["value"]:
        return match[0]
    return f"{match['lead']}{match['name']}={MASK}"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every known secret and every URL credential replaced by ``****``."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    if "://" in text:
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    if "=" in text:
        text = _QUERY_PARAM.sub(_mask_param, text)
    return text
