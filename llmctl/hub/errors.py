"""huggingface_hub's exceptions, said as what went wrong and what to do about it."""

from __future__ import annotations

import errno

from llmctl.errors import AuthenticationError, LlmctlError, ModelNotFoundError, ProviderError

HUB_URL = "https://huggingface.co"


def model_page(repo_id: str, endpoint: str | None) -> str:
    return f"{(endpoint or HUB_URL).rstrip('/')}/{repo_id}"


def offline_error() -> ProviderError:
    return ProviderError(
        "Hugging Face offline mode is on (HF_HUB_OFFLINE=1), so llmctl cannot reach the Hub to download.",
        hint="Run the download with HF_HUB_OFFLINE=0 (or unset it); models already downloaded keep working offline.",
    )


def gated_without_token(repo_id: str, endpoint: str | None) -> AuthenticationError:
    return AuthenticationError(
        f"{repo_id} is a gated model: downloading it needs a Hugging Face token of an account that accepted "
        "its license.",
        hint=f"Accept the license on {model_page(repo_id, endpoint)}, create a read token at "
        f"{HUB_URL}/settings/tokens, and set it in HF_TOKEN (export HF_TOKEN=hf_...).",
    )


def hub_error(
    exc: BaseException,
    *,
    repo_id: str,
    revision: str | None,
    endpoint: str | None,
    has_token: bool,
    filename: str | None = None,
) -> LlmctlError:
    """The LlmctlError for an exception raised while talking to the Hub (or writing the cache)."""
    if isinstance(exc, LlmctlError):
        return exc
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    page = model_page(repo_id, endpoint)
    if isinstance(exc, OfflineModeIsEnabled):
        return offline_error()
    if isinstance(exc, GatedRepoError):
        status = exc.response.status_code if exc.response is not None else None
        if has_token and status == 403:
            return AuthenticationError(
                f"{repo_id} is a gated model and your Hugging Face token has no access to it (403).",
                hint=f"Accept the license on {page} while logged in with the account of that token "
                "(approval can take a while for some models), then run the download again.",
            )
        return gated_without_token(repo_id, endpoint)
    if isinstance(exc, RevisionNotFoundError):
        return ModelNotFoundError(
            f"{repo_id} has no revision {revision!r}.",
            hint=f"Use a branch, tag or commit sha listed on {page}/tree/main (or leave out --revision for main).",
        )
    if isinstance(exc, RepositoryNotFoundError):
        private = "" if has_token else " (or it is private and no HF_TOKEN is set)"
        return ModelNotFoundError(
            f"Repository {repo_id} does not exist on the Hugging Face Hub{private}.",
            hint=f"Check the name (ORG/NAME, as in {HUB_URL}/ORG/NAME); "
            + ("make sure your token can read it." if has_token else "for a private repo set HF_TOKEN."),
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        message = getattr(exc, "server_message", None) or str(exc).splitlines()[0]
        return ProviderError(
            f"The Hugging Face Hub answered {status} for {filename or repo_id}: {message}",
            hint="Try again in a moment; a re-run resumes where this one stopped.",
        )
    if isinstance(exc, httpx2.ConnectError | httpx2.TimeoutException | ConnectionError | TimeoutError):
        return ProviderError(
            f"Could not reach the Hugging Face Hub at {endpoint or HUB_URL}"
            + (f" while downloading {filename}" if filename else "")
            + f": {type(exc).__name__}: {exc}",
            hint="Check the network connection (and HTTPS_PROXY, HF_ENDPOINT if you use them), then run the "
            "same command again to resume: finished and partial files are kept.",
        )
    if isinstance(exc, httpx2.HTTPError):
        return ProviderError(
            f"The connection to the Hugging Face Hub at {endpoint or HUB_URL} failed"
            + (f" while downloading {filename}" if filename else "")
            + f": {type(exc).__name__}: {exc}",
            hint="Run the same command again to resume: finished and partial files are kept.",
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ProviderError(
            f"The disk filled up while downloading {filename or repo_id}: {exc.strerror}.",
            hint="Free some space and run the same command again: it resumes where it stopped.",
        )
    if isinstance(exc, OSError):
        return ProviderError(f"Downloading {filename or repo_id} failed: {exc}")
    return ProviderError(f"Downloading {filename or repo_id} failed: {type(exc).__name__}: {exc}")
