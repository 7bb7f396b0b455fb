"""A loopback fake of the Hugging Face Hub HTTP API, for tests that drive the real `huggingface_hub` client.

`HubServer` is a stdlib `ThreadingHTTPServer` on ``127.0.0.1`` (port 0, daemon threads, context manager) that
serves repositories registered in memory, speaking the endpoints and headers that `huggingface_hub` 2.4 uses for
downloads (checked against the installed sources: ``file_download.py``, ``_snapshot_download.py``, ``hf_api.py``,
``utils/_http.py``, ``utils/_pagination.py``, ``constants.py``).

Usage::

    with HubServer() as hub:
        repo = hub.add_repo(
            "org/tiny-llama",
            files={"config.json": b"{}", "model.safetensors": weights},
            extra_revisions={"v1": {"config.json": b'{"old": true}'}},
        )
        configure_huggingface_hub(monkeypatch, hub.url, tmp_path / "hf_home")  # see below
        path = snapshot_download("org/tiny-llama", allow_patterns=["*.json"])
        assert hub.requests_for("GET", "/resolve/")[0].headers.get("range") is None
        assert repo.revisions["main"].commit_sha in path

Pointing the client at the server (``HF_ENDPOINT``)
---------------------------------------------------
`huggingface_hub` reads ``HF_ENDPOINT`` **once, at import time**, into ``huggingface_hub.constants.ENDPOINT`` and
``constants.HUGGINGFACE_CO_URL_TEMPLATE`` (resolve URLs are built from the template). The same holds for
``HF_HUB_OFFLINE`` (``constants.HF_HUB_OFFLINE``, checked by a request hook that blocks *every* request),
``HF_HOME``/``HF_HUB_CACHE``, ``HF_TOKEN_PATH``, ``HF_HUB_DISABLE_XET`` and ``HF_HUB_DISABLE_PROGRESS_BARS``.
In a pytest process the library is almost always imported before a test sets its environment (by conftest,
transformers, or an earlier test), so ``monkeypatch.setenv("HF_ENDPOINT", ...)`` alone is silently ignored and
the client goes to https://huggingface.co (or is blocked, when the suite runs with ``HF_HUB_OFFLINE=1``).

Robust options, in order of preference:

1. Pass the endpoint explicitly: ``snapshot_download(..., endpoint=url)``, ``hf_hub_download(..., endpoint=url)``,
   ``HfApi(endpoint=url)``. ``hf_hub_url`` swaps the import-time endpoint prefix for the given one, so this works
   whatever ``HF_ENDPOINT`` was at import. Production code (llmctl) should therefore read
   ``os.environ.get("HF_ENDPOINT")`` at call time and pass it as ``endpoint=`` (None means the default).
   ``HF_HUB_OFFLINE`` still has to be patched on ``constants`` though: there is no per-call override.
2. Patch the module attributes for the test: `configure_huggingface_hub` sets the environment variables *and*
   the matching ``huggingface_hub.constants`` attributes (``ENDPOINT``, ``HUGGINGFACE_CO_URL_TEMPLATE``,
   ``HF_HUB_OFFLINE``, caches, token path, Xet switch) and disables the progress bars, all via ``monkeypatch``
   so everything is restored afterwards. `HfApi()` reads ``constants.ENDPOINT`` when it is instantiated, and
   ``hf_hub_download`` formats ``constants.HUGGINGFACE_CO_URL_TEMPLATE`` per call, so calls made without
   ``endpoint=`` reach the server too.
3. Run the code under test in a subprocess with ``HF_ENDPOINT`` in its environment (a fresh import honours it).

Do not ``importlib.reload(huggingface_hub.constants)``: values derived at import elsewhere (for example
``utils._http._HUB_ORIGINS``, function default arguments) keep the old endpoint.

Protocol notes (what the server implements)
-------------------------------------------
* ``GET /api/{models,datasets,spaces}/{repo_id}`` and ``.../revision/{rev}`` - repo info: ``id``, ``sha``,
  ``siblings`` (``rfilename``; ``size``/``blobId``/``lfs{sha256,size,pointerSize}`` only with ``?blobs=true``,
  i.e. ``model_info(files_metadata=True)``, as on the real Hub), ``gated`` (False/"auto"/"manual"), ``private``,
  ``safetensors{parameters,total}`` parsed from ``*.safetensors`` headers, ``config`` (architectures/model_type
  from ``config.json``), ``usedStorage``, ``lastModified``; ``?expand=`` filters the keys.
* ``GET /api/{type}s/{repo_id}/tree/{rev}[/{path}]?recursive=&expand=`` - entries ``{type: file|directory, oid,
  size, path, lfs{oid,size,pointerSize}}``, paginated with a GitHub-style ``Link: <...>; rel="next"`` header
  (`HubServer.tree_page_size`).
* ``POST /api/{type}s/{repo_id}/paths-info/{rev}`` (form ``paths=...&expand=...``), ``GET .../refs``,
  ``GET /api/whoami-v2``.
* ``HEAD``/``GET /[{type}s/]{repo_id}/resolve/{rev}/{path}`` (rev: branch, tag, full or 7+ char commit sha) -
  headers ``X-Repo-Commit``, ``ETag`` (git blob sha1; for LFS files the pointer's), ``X-Linked-Etag`` (sha256) +
  ``X-Linked-Size`` for LFS files - the client prefers them and names the cache blob after it -, ``Content-Length``,
  ``Accept-Ranges: bytes``, ``Content-Disposition``; ``Range`` (``a-b``, ``a-``, ``-n``) gives ``206`` with
  ``Content-Range``, an unsatisfiable one ``416``. No Xet headers are ever sent, so the plain HTTP path is used.
  With ``cdn_redirects=True`` LFS files answer ``302`` to ``http://localhost:{port}/_cdn/{sha256}`` - another
  origin for the client, which then stops following on HEAD and drops ``Authorization`` on GET, like the real
  CDN redirect.
* Errors carry ``X-Error-Code`` / ``X-Error-Message`` (and a JSON ``{"error": ...}`` body on non-HEAD requests),
  which is what ``hf_raise_for_status`` maps: ``RepoNotFound`` (404, or 401 for a private repo without a valid
  token) -> ``RepositoryNotFoundError``; ``RevisionNotFound`` (404) -> ``RevisionNotFoundError``;
  ``EntryNotFound`` (404, with ``X-Repo-Commit``) -> ``RemoteEntryNotFoundError``; ``GatedRepo`` (401 without a
  token, 403 with a token other than `HubServer.valid_token`) -> ``GatedRepoError``. Gated repos, like on the
  Hub, still answer info/tree requests; only ``resolve`` is refused.

Faults and records
------------------
* `HubServer.interrupt_next_get` - the next GET(s) of a file send ``after_bytes`` of the body, then the server
  shuts the socket; the ``Range`` of each following GET is kept in `InterruptPlan.following_ranges`.
* `HubServer.fail_next` - answer matching requests with any status / ``X-Error-Code``.
* `HubServer.requests` / `HubServer.requests_for` - every request (method, decoded path, query, lower-case
  headers, body); `HubServer.errors` - tracebacks raised inside the handler (should stay empty).

What huggingface_hub 2.4 does with a broken download (so tests assert the right thing):
the resume happens *inside* the same ``hf_hub_download`` call - ``http_get`` catches the dropped connection,
sleeps 1 s and re-requests with ``Range: bytes=<written>-`` (up to 5 retries in a row without progress). It only
counts bytes already written, and it writes in ``constants.DOWNLOAD_CHUNK_SIZE`` (10 MiB) pieces, so a cut in the
first 10 MiB is retried from byte 0 with no ``Range`` (patch ``DOWNLOAD_CHUNK_SIZE`` to see a ranged resume on a
small file). If the call finally fails, its temp file (``blobs/<etag>.<random>.incomplete``) is deleted: the
next call starts again from 0. There is no cross-call resume from an ``.incomplete`` file any more.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import json
import math
import re
import socket
import threading
import traceback
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import parse_qs, quote, unquote, urlencode

if TYPE_CHECKING:
    import pytest

__all__ = [
    "FailurePlan",
    "HubFile",
    "HubRepo",
    "HubRevision",
    "HubServer",
    "InterruptPlan",
    "RecordedRequest",
    "configure_huggingface_hub",
    "iter_cache_files",
]

RepoType = Literal["model", "dataset", "space"]
Gated = Literal[False, "auto", "manual"]

DEFAULT_VALID_TOKEN = "hf_llmctl_test_token"
_TIMESTAMP = "2024-01-01T00:00:00.000Z"
_LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files above 10 MB with LFS whatever .gitattributes says
# Patterns of the default .gitattributes the Hub creates for a new model repo (plus gguf).
_LFS_SUFFIXES = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gguf", ".gz", ".h5", ".joblib", ".lfs", ".mlmodel",
    ".model", ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt", ".pth",
    ".rar", ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst",
)  # fmt: skip
_TYPE_PLURALS: dict[str, RepoType] = {"models": "model", "datasets": "dataset", "spaces": "space"}
_RESOLVE_PREFIXES: dict[RepoType, str] = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_SHA_PREFIX = re.compile(r"[0-9a-f]{7,40}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_API_ACTIONS = frozenset({"revision", "tree", "paths-info", "refs"})
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------------------------
# Repository model
# ---------------------------------------------------------------------------------------------------------------


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _default_is_lfs(path: str, size: int) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return size >= _LFS_THRESHOLD or name.endswith(_LFS_SUFFIXES) or ".tar." in name or "tfevents" in name


@dataclass(frozen=True)
class HubFile:
    """One file of a revision, with the hashes the Hub reports for it."""

    path: str
    content: bytes
    lfs: bool
    sha256: str
    git_oid: str  # git blob id of what git stores: the file itself, or its LFS pointer

    @classmethod
    def build(cls, path: str, content: bytes, lfs: bool | None = None) -> HubFile:
        is_lfs = _default_is_lfs(path, len(content)) if lfs is None else lfs
        sha256 = hashlib.sha256(content).hexdigest()
        stored = _lfs_pointer(sha256, len(content)) if is_lfs else content
        return cls(path=path, content=content, lfs=is_lfs, sha256=sha256, git_oid=_git_blob_oid(stored))

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def pointer_size(self) -> int:
        return len(_lfs_pointer(self.sha256, self.size))

    @property
    def etag(self) -> str:
        """The value the client uses as blob name in the cache (``blobs/<etag>``)."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass(frozen=True)
class HubRevision:
    name: str
    commit_sha: str
    files: Mapping[str, HubFile]

    def directories(self) -> set[str]:
        dirs: set[str] = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return dirs


@dataclass
class HubRepo:
    repo_id: str
    repo_type: RepoType
    default_branch: str
    revisions: dict[str, HubRevision]  # branch name -> revision
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> commit sha
    gated: Gated = False
    private: bool = False
    info_extra: dict[str, Any] = field(default_factory=dict)

    def resolve(self, revision: str | None) -> HubRevision | None:
        """Branch name, tag name, full commit sha or a unique sha prefix (7+ hex chars) -> revision."""
        rev = self.default_branch if revision is None else revision
        if rev in self.revisions:
            return self.revisions[rev]
        target = self.tags.get(rev)
        if target is None and _SHA_PREFIX.fullmatch(rev):
            matches = {r.commit_sha for r in self.revisions.values() if r.commit_sha.startswith(rev)}
            target = matches.pop() if len(matches) == 1 else None
        if target is None:
            return None
        return next((r for r in self.revisions.values() if r.commit_sha == target), None)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. `headers` keys are lower-case."""

    method: str
    path: str  # percent-decoded path, without the query string
    raw_path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class InterruptPlan:
    """Cut the next GET of a file after `after_bytes` body bytes by closing the connection.

    `times` interruptions are made (each on a GET whose body is longer than `after_bytes`). After every
    interruption the ``Range`` header of the next GET of that file (None if absent) is appended to
    `following_ranges`.
    """

    repo_type: RepoType
    repo_id: str
    filename: str
    after_bytes: int
    times: int = 1
    fired: int = 0
    following_ranges: list[str | None] = field(default_factory=list)
    _awaiting_followup: bool = False

    @property
    def following_range(self) -> str | None:
        return self.following_ranges[0] if self.following_ranges else None

    @property
    def exhausted(self) -> bool:
        return self.fired >= self.times


@dataclass
class FailurePlan:
    """Answer the next `times` requests whose decoded path contains `path_contains` with an error."""

    path_contains: str
    status: int = 500
    method: str | None = None
    times: int = 1
    error_code: str | None = None
    message: str = "Internal Error - We're working hard to fix this as soon as possible!"
    fired: int = 0


# ---------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # we join our own connection threads in HubServer.stop()

    def __init__(self, hub: HubServer, address: tuple[str, int]) -> None:
        self.hub = hub
        self._conn_lock = threading.Lock()
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._conn_counter = 0
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection-level errors (client gone, socket shut down by stop()) are expected: stay quiet."""

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._conn_counter += 1
            thread = threading.Thread(
                target=self._run_connection,
                args=(request, client_address),
                name=f"hub-server-{self.server_address[1]}-conn-{self._conn_counter}",
                daemon=True,
            )
            self._connections[thread] = request
        thread.start()

    def _run_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.pop(threading.current_thread(), None)

    def close_connections(self, timeout: float) -> list[threading.Thread]:
        """Shut down every open client socket (unblocks keep-alive reads); return threads still alive after join."""
        with self._conn_lock:
            items = list(self._connections.items())
        for _, sock in items:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread, _ in items:
            thread.join(timeout)
        return [t for t, _ in items if t.is_alive()]


_RangeResult = tuple[int, int] | Literal["unsatisfiable"] | None


def _parse_range(value: str, size: int) -> _RangeResult:
    """Single byte range -> (start, end) inclusive; None to ignore the header (serve 200); or unsatisfiable."""
    match = _RANGE.fullmatch(value)
    if match is None:
        return None  # malformed or multiple ranges: ignored, as RFC 9110 allows
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub; every response carries Content-Length
    server_version = "FakeHub/1.0"
    timeout = 30  # socket timeout, so an idle keep-alive connection cannot pin a thread forever
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per request.
    disable_nagle_algorithm = True

    # -- entry points ----------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def hub(self) -> HubServer:
        return cast(_HTTPServer, self.server).hub

    # -- dispatch --------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        raw_path, _, query_string = self.path.partition("?")
        request = RecordedRequest(
            method=self.command,
            path=unquote(raw_path),
            raw_path=raw_path,
            query=parse_qs(query_string, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self.hub._record(request)
        self._request = request
        self._head = self.command == "HEAD"
        try:
            failure = self.hub._take_failure(request)
            if failure is not None:
                self._error(failure.status, failure.error_code, failure.message)
                return
            segments = raw_path.split("/")[1:]
            if segments[:1] == ["api"]:
                self._route_api(segments[1:])
            elif segments[:1] == ["_cdn"]:
                self._route_cdn(segments[1:])
            else:
                self._route_resolve(segments)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # pragma: no cover - surfaced through HubServer.errors
            self.hub._errors.append(traceback.format_exc())
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._error(500, None, "fake hub crashed, see HubServer.errors")

    # -- helpers ---------------------------------------------------------------------------------------------

    def _send(self, status: int, headers: Mapping[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if not any(k.lower() == "content-length" for k in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not self._head:
            self.wfile.write(body)

    def _json(self, payload: Any, headers: Mapping[str, str] | None = None, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self._send(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body)

    def _error(self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None) -> None:
        # Header values must be latin-1 for http.server; the JSON body keeps the exact message.
        error_headers = {"X-Error-Message": message.encode("latin-1", "replace").decode("latin-1"), **(headers or {})}
        if code is not None:
            error_headers["X-Error-Code"] = code
        self._json({"error": message}, error_headers, status=status)

    def _token(self) -> str | None:
        auth = self._request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _has_valid_token(self) -> bool:
        token = self._token()
        return token is not None and token == self.hub.valid_token

    def _lookup_repo(self, repo_type: RepoType, repo_id: str) -> HubRepo | None:
        """Find the repo, answering the error itself (RepoNotFound) when missing or private without a token."""
        repo = self.hub._get_repo(repo_type, repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if repo.private and not self._has_valid_token():
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        return repo

    def _lookup_revision(self, repo: HubRepo, revision: str | None) -> HubRevision | None:
        rev = repo.resolve(revision)
        if rev is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return rev

    def _split_repo_id(self, repo_type: RepoType, segments: list[str]) -> tuple[str, list[str]]:
        """`org/name/rest...` or legacy `name/rest...` -> (repo_id, rest), preferring a registered repo."""
        parts = [unquote(s) for s in segments]
        if len(parts) >= 2 and self.hub._get_repo(repo_type, f"{parts[0]}/{parts[1]}") is not None:
            return f"{parts[0]}/{parts[1]}", segments[2:]
        if parts and self.hub._get_repo(repo_type, parts[0]) is not None:
            return parts[0], segments[1:]
        if len(parts) >= 2 and parts[1] not in _API_ACTIONS:
            return f"{parts[0]}/{parts[1]}", segments[2:]
        return (parts[0] if parts else ""), segments[1:]

    # -- /api ------------------------------------------------------------------------------------------------

    def _route_api(self, segments: list[str]) -> None:
        if segments == ["whoami-v2"]:
            self._whoami()
            return
        repo_type = _TYPE_PLURALS.get(segments[0]) if segments else None
        if repo_type is None or len(segments) < 2:
            self._error(404, None, "Sorry, we can't find the page you are looking for.")
            return
        repo_id, rest = self._split_repo_id(repo_type, segments[1:])
        method = self.command
        if method in ("GET", "HEAD") and rest == []:
            self._repo_info(repo_type, repo_id, None)
        elif method in ("GET", "HEAD") and len(rest) == 2 and rest[0] == "revision":
            self._repo_info(repo_type, repo_id, unquote(rest[1]))
        elif method in ("GET", "HEAD") and len(rest) >= 2 and rest[0] == "tree":
            self._tree(repo_type, repo_id, unquote(rest[1]), unquote("/".join(rest[2:])).strip("/"))
        elif method == "POST" and len(rest) == 2 and rest[0] == "paths-info":
            self._paths_info(repo_type, repo_id, unquote(rest[1]))
        elif method in ("GET", "HEAD") and rest == ["refs"]:
            self._refs(repo_type, repo_id)
        else:
            self._error(404, None, "Sorry, we can't find the page you are looking for.")

    def _whoami(self) -> None:
        if not self._has_valid_token():
            self._error(401, None, "Invalid credentials in Authorization header")
            return
        self._json(
            {
                "type": "user",
                "id": "0" * 24,
                "name": self.hub.username,
                "fullname": "llmctl test user",
                "isPro": False,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "read"}},
            }
        )

    def _query_flag(self, name: str) -> bool:
        values = self._request.query.get(name, [])
        return bool(values) and values[-1].lower() in ("1", "true", "yes")

    def _repo_info(self, repo_type: RepoType, repo_id: str, revision: str | None) -> None:
        repo = self._lookup_repo(repo_type, repo_id)
        if repo is None:
            return
        rev = self._lookup_revision(repo, revision)
        if rev is None:
            return
        expand = [v for values in self._request.query.get("expand", []) for v in values.split(",") if v]
        expand += self._request.query.get("expand[]", [])
        self._json(_repo_info_payload(repo, rev, blobs=self._query_flag("blobs"), expand=expand))

    def _tree(self, repo_type: RepoType, repo_id: str, revision: str, path: str) -> None:
        repo = self._lookup_repo(repo_type, repo_id)
        if repo is None:
            return
        rev = self._lookup_revision(repo, revision)
        if rev is None:
            return
        dirs = rev.directories()
        if path and path not in dirs:
            self._error(404, "EntryNotFound", f'{path} does not exist on "{revision}"')
            return
        recursive = self._query_flag("recursive")
        expand = self._query_flag("expand")
        prefix = f"{path}/" if path else ""

        def wanted(candidate: str) -> bool:
            if not candidate.startswith(prefix):
                return False
            return recursive or "/" not in candidate[len(prefix) :]

        entries = [_dir_entry(rev, d, expand) for d in sorted(dirs) if wanted(d)]
        entries += [_file_entry(rev, f, expand) for p, f in sorted(rev.files.items()) if wanted(p)]

        page_size = self.hub.tree_page_size
        cursor_values = self._request.query.get("cursor", [])
        start = int(base64.urlsafe_b64decode(cursor_values[-1]).decode()) if cursor_values else 0
        page = entries[start : start + page_size]
        headers: dict[str, str] = {}
        if start + page_size < len(entries):
            params = {k: v[-1] for k, v in self._request.query.items() if k != "cursor"}
            params["cursor"] = base64.urlsafe_b64encode(str(start + page_size).encode()).decode()
            next_url = f"{self.hub.url}{self._request.raw_path}?{urlencode(params)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._json(page, headers)

    def _paths_info(self, repo_type: RepoType, repo_id: str, revision: str) -> None:
        repo = self._lookup_repo(repo_type, repo_id)
        if repo is None:
            return
        rev = self._lookup_revision(repo, revision)
        if rev is None:
            return
        form = parse_qs(self._request.body.decode(), keep_blank_values=True)
        expand = form.get("expand", ["false"])[-1].lower() in ("1", "true")
        dirs = rev.directories()
        result: list[dict[str, Any]] = []
        for raw in form.get("paths", []):
            path = raw.strip("/")
            if path in rev.files:
                result.append(_file_entry(rev, rev.files[path], expand))
            elif path in dirs:
                result.append(_dir_entry(rev, path, expand))
        self._json(result)

    def _refs(self, repo_type: RepoType, repo_id: str) -> None:
        repo = self._lookup_repo(repo_type, repo_id)
        if repo is None:
            return
        payload: dict[str, Any] = {
            "branches": [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": rev.commit_sha}
                for name, rev in repo.revisions.items()
            ],
            "converts": [],
            "tags": [
                {"name": name, "ref": f"refs/tags/{name}", "targetCommit": sha} for name, sha in repo.tags.items()
            ],
        }
        if self._request.query.get("include_prs"):
            payload["pullRequests"] = []
        self._json(payload)

    # -- /{repo_id}/resolve/{rev}/{path} ---------------------------------------------------------------------

    def _route_resolve(self, segments: list[str]) -> None:
        if self.command not in ("GET", "HEAD") or "resolve" not in segments:
            self._error(404, None, "Sorry, we can't find the page you are looking for.")
            return
        repo_type: RepoType = "model"
        if segments and segments[0] in ("datasets", "spaces"):
            repo_type = _TYPE_PLURALS[segments[0]]
            segments = segments[1:]
        idx = segments.index("resolve")
        if idx == 0 or len(segments) < idx + 3:
            self._error(404, None, "Sorry, we can't find the page you are looking for.")
            return
        repo_id = "/".join(unquote(s) for s in segments[:idx])
        revision = unquote(segments[idx + 1])
        filename = unquote("/".join(segments[idx + 2 :]))

        repo = self._lookup_repo(repo_type, repo_id)
        if repo is None:
            return
        rev = self._lookup_revision(repo, revision)
        if rev is None:
            return
        if repo.gated and not self._has_valid_token():
            kind = "dataset" if repo_type == "dataset" else "model"
            if self._token() is None:
                message = (
                    f"Access to {kind} {repo_id} is restricted. You must have access to it and be authenticated "
                    "to access it. Please log in."
                )
                self._error(401, "GatedRepo", message)
            else:
                message = (
                    f"Access to {kind} {repo_id} is restricted and you are not in the authorized list. "
                    f"Visit {self.hub.url}/{_RESOLVE_PREFIXES[repo_type]}{repo_id} to ask for access."
                )
                self._error(403, "GatedRepo", message)
            return
        file = rev.files.get(filename)
        if file is None:
            self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": rev.commit_sha})
            return

        headers = {
            "X-Repo-Commit": rev.commit_sha,
            "ETag": f'"{file.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream" if file.lfs else "text/plain; charset=utf-8",
            "Content-Disposition": _content_disposition(filename),
            "Vary": "Origin, Accept-Encoding",
        }
        if file.lfs:
            headers["ETag"] = f'"{file.git_oid}"'  # the Hub's own ETag is the pointer's; clients use X-Linked-Etag
            headers["X-Linked-Etag"] = f'"{file.sha256}"'
            headers["X-Linked-Size"] = str(file.size)
            if self.hub.cdn_redirects:
                query = urlencode({"repo_type": repo_type, "repo_id": repo_id, "filename": filename})
                location = f"{self.hub.cdn_url}/_cdn/{file.sha256}?{query}"
                body = f"Found. Redirecting to {location}".encode()
                self._send(302, {**headers, "Location": location, "Content-Type": "text/plain"}, body)
                return
        self._send_file(file.content, headers, (repo_type, repo_id, filename))

    def _route_cdn(self, segments: list[str]) -> None:
        query = self._request.query
        key = (
            cast(RepoType, query.get("repo_type", ["model"])[-1]),
            query.get("repo_id", [""])[-1],
            query.get("filename", [""])[-1],
        )
        content = self.hub._blob(segments[0]) if len(segments) == 1 else None
        if self.command not in ("GET", "HEAD") or content is None:
            self._send(404, {"Content-Type": "application/xml"}, b"<Error><Code>NoSuchKey</Code></Error>")
            return
        headers = {
            "ETag": f'"{hashlib.md5(content).hexdigest()}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": _content_disposition(key[2] or segments[0]),
        }
        self._send_file(content, headers, key)

    def _send_file(self, content: bytes, headers: Mapping[str, str], key: tuple[RepoType, str, str]) -> None:
        size = len(content)
        range_header = self._request.range
        parsed = _parse_range(range_header, size) if range_header is not None else None
        if parsed == "unsatisfiable":
            self._send(416, {**headers, "Content-Range": f"bytes */{size}", "Content-Type": "text/plain"})
            return
        status, start, end = 200, 0, size - 1
        if isinstance(parsed, tuple):
            status, (start, end) = 206, parsed
        body = content[start : end + 1]
        out = {**headers, "Content-Length": str(len(body))}
        if status == 206:
            out["Content-Range"] = f"bytes {start}-{end}/{size}"
        cut = None if self._head else self.hub._on_get(key, range_header, len(body))
        self.send_response(status)
        for name, value in out.items():
            self.send_header(name, value)
        self.end_headers()
        if self._head:
            return
        if cut is None:
            self.wfile.write(body)
            return
        # Interrupt: promise the whole body, send a part, then drop the connection.
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _content_disposition(filename: str) -> str:
    base = filename.rsplit("/", 1)[-1]
    ascii_base = base.encode("ascii", "replace").decode("ascii").replace('"', "_")
    return f"inline; filename*=UTF-8''{quote(base)}; filename=\"{ascii_base}\";"


def _last_commit(rev: HubRevision) -> dict[str, str]:
    return {"id": rev.commit_sha, "title": f"Upload {rev.name}", "date": _TIMESTAMP}


def _file_entry(rev: HubRevision, file: HubFile, expand: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "file", "oid": file.git_oid, "size": file.size, "path": file.path}
    if file.lfs:
        entry["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": file.pointer_size}
    if expand:
        entry["lastCommit"] = _last_commit(rev)
    return entry


def _dir_entry(rev: HubRevision, path: str, expand: bool) -> dict[str, Any]:
    oid = hashlib.sha1(f"tree {rev.commit_sha} {path}".encode()).hexdigest()
    entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
    if expand:
        entry["lastCommit"] = _last_commit(rev)
    return entry


def _safetensors_parameters(content: bytes) -> dict[str, int] | None:
    if len(content) < 8:
        return None
    header_len = int.from_bytes(content[:8], "little")
    if header_len > len(content) - 8:
        return None
    try:
        header = json.loads(content[8 : 8 + header_len])
        counts: dict[str, int] = {}
        for name, info in header.items():
            if name != "__metadata__":
                counts[info["dtype"]] = counts.get(info["dtype"], 0) + math.prod(info["shape"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return counts


def _repo_info_payload(repo: HubRepo, rev: HubRevision, *, blobs: bool, expand: list[str]) -> dict[str, Any]:
    siblings: list[dict[str, Any]] = []
    parameters: dict[str, int] = {}
    has_safetensors = False
    for path, file in sorted(rev.files.items()):
        sibling: dict[str, Any] = {"rfilename": path}
        if blobs:
            sibling.update(size=file.size, blobId=file.git_oid)
            if file.lfs:
                sibling["lfs"] = {"sha256": file.sha256, "size": file.size, "pointerSize": file.pointer_size}
        siblings.append(sibling)
        if path.endswith(".safetensors"):
            counts = _safetensors_parameters(file.content)
            if counts is not None:
                has_safetensors = True
                for dtype, n in counts.items():
                    parameters[dtype] = parameters.get(dtype, 0) + n
    payload: dict[str, Any] = {
        "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
        "id": repo.repo_id,
        "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
        "sha": rev.commit_sha,
        "lastModified": _TIMESTAMP,
        "createdAt": _TIMESTAMP,
        "private": repo.private,
        "disabled": False,
        "gated": repo.gated,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": sum(f.size for f in rev.files.values()),
    }
    if repo.repo_type == "model":
        payload["modelId"] = repo.repo_id
        if has_safetensors:
            payload["safetensors"] = {"parameters": parameters, "total": sum(parameters.values())}
        config_file = rev.files.get("config.json")
        if config_file is not None:
            try:
                config = json.loads(config_file.content)
            except ValueError:
                config = None
            if isinstance(config, dict):
                payload["config"] = {k: config[k] for k in ("architectures", "model_type") if k in config}
    payload.update(repo.info_extra)
    if expand:
        payload = {k: v for k, v in payload.items() if k in expand or k in ("_id", "id")}
    return payload


# ---------------------------------------------------------------------------------------------------------------
# Public server
# ---------------------------------------------------------------------------------------------------------------


class HubServer:
    """Fake Hugging Face Hub on a loopback port. Use as a context manager, or call `start()` / `stop()`."""

    def __init__(
        self,
        *,
        valid_token: str = DEFAULT_VALID_TOKEN,
        username: str = "llmctl-tester",
        tree_page_size: int = 1000,
        cdn_redirects: bool = False,
    ) -> None:
        self.valid_token = valid_token
        self.username = username
        self.tree_page_size = tree_page_size
        self.cdn_redirects = cdn_redirects
        self._lock = threading.Lock()
        self._repos: dict[tuple[RepoType, str], HubRepo] = {}
        self._blobs: dict[str, bytes] = {}
        self._requests: list[RecordedRequest] = []
        self._interrupts: list[InterruptPlan] = []
        self._failures: list[FailurePlan] = []
        self._errors: list[str] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._thread_name = ""

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> HubServer:
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(self, ("127.0.0.1", 0))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"hub-server-{self.port}",
            daemon=True,
        )
        self._thread_name = self._thread.name
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close open keep-alive connections and join every server thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        stuck = httpd.close_connections(timeout)
        httpd.server_close()
        thread.join(timeout)
        self._httpd = None
        self._thread = None
        if stuck or thread.is_alive():
            raise RuntimeError(f"hub server threads did not stop: {[t.name for t in stuck]}")

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("HubServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Endpoint for ``HF_ENDPOINT`` / ``endpoint=``, e.g. ``http://127.0.0.1:43121``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_url(self) -> str:
        """Same server under another origin (``localhost``), used for LFS redirects when `cdn_redirects`."""
        return f"http://localhost:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # -- repositories ----------------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        revision: str = "main",
        commit_sha: str | None = None,
        gated: bool | Gated = False,
        private: bool = False,
        extra_revisions: Mapping[str, Mapping[str, bytes]] | None = None,
        tags: Mapping[str, str] | None = None,
        lfs: Iterable[str] | None = None,
        repo_type: RepoType = "model",
        info_extra: Mapping[str, Any] | None = None,
    ) -> HubRepo:
        """Register (or replace) a repository.

        `files` is the content of branch `revision` (the default branch); `extra_revisions` maps other branch
        names to their files. Commit shas are derived from the content unless `commit_sha` is given for the
        default branch. `tags` maps a tag name to a branch name or commit sha. `gated=True` means ``"auto"``.
        `lfs` lists the paths stored with LFS; by default the Hub's rule is used (default ``.gitattributes``
        patterns such as ``*.safetensors``/``*.bin``, or files of 10 MB and more). `info_extra` is merged into
        the repo info JSON (e.g. ``{"pipeline_tag": "text-generation", "library_name": "transformers"}``).
        """
        if commit_sha is not None and not _FULL_SHA.fullmatch(commit_sha):
            raise ValueError(f"commit_sha must be 40 lowercase hex characters, got {commit_sha!r}")
        lfs_set = set(lfs) if lfs is not None else None
        branches = {revision: files, **(extra_revisions or {})}
        revisions: dict[str, HubRevision] = {}
        for name, branch_files in branches.items():
            built = {
                p.strip("/"): HubFile.build(p.strip("/"), c, None if lfs_set is None else p in lfs_set)
                for p, c in branch_files.items()
            }
            sha = commit_sha if name == revision and commit_sha is not None else _commit_sha(repo_id, name, built)
            revisions[name] = HubRevision(name=name, commit_sha=sha, files=built)
        gated_value: Gated = "auto" if gated is True else gated
        repo = HubRepo(
            repo_id=repo_id,
            repo_type=repo_type,
            default_branch=revision,
            revisions=revisions,
            gated=gated_value,
            private=private,
            info_extra=dict(info_extra or {}),
        )
        for tag, target in (tags or {}).items():
            resolved = repo.resolve(target)
            if resolved is None:
                raise ValueError(f"tag {tag!r} points to unknown revision {target!r}")
            repo.tags[tag] = resolved.commit_sha
        with self._lock:
            self._repos[(repo_type, repo_id)] = repo
            for rev in revisions.values():
                for f in rev.files.values():
                    if f.lfs:
                        self._blobs[f.sha256] = f.content
        return repo

    def add_repo_from_dir(self, repo_id: str, path: str | Path, **kwargs: Any) -> HubRepo:
        """Serve the files of a folder (e.g. a model written by ``save_pretrained``); `.git` is skipped."""
        root = Path(path)
        files = {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts
        }
        return self.add_repo(repo_id, files, **kwargs)

    def repo(self, repo_id: str, repo_type: RepoType = "model") -> HubRepo:
        found = self._get_repo(repo_type, repo_id)
        if found is None:
            raise KeyError(repo_id)
        return found

    def resolve_url(self, repo_id: str, filename: str, revision: str = "main", repo_type: RepoType = "model") -> str:
        prefix = _RESOLVE_PREFIXES[repo_type]
        return f"{self.url}/{prefix}{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"

    # -- faults ----------------------------------------------------------------------------------------------

    def interrupt_next_get(
        self, repo_id: str, filename: str, *, after_bytes: int, times: int = 1, repo_type: RepoType = "model"
    ) -> InterruptPlan:
        """Make the next `times` GETs of `filename` send `after_bytes` body bytes, then drop the connection.

        Plans queue up per file: a second plan applies once the first is exhausted.
        """
        if after_bytes < 0 or times < 1:
            raise ValueError("after_bytes must be >= 0 and times >= 1")
        plan = InterruptPlan(
            repo_type=repo_type, repo_id=repo_id, filename=filename, after_bytes=after_bytes, times=times
        )
        with self._lock:
            self._interrupts.append(plan)
        return plan

    def fail_next(
        self,
        path_contains: str,
        *,
        status: int = 500,
        method: str | None = None,
        times: int = 1,
        error_code: str | None = None,
        message: str | None = None,
    ) -> FailurePlan:
        """Answer the next `times` matching requests with `status` (note: the client retries 429/5xx with
        exponential backoff starting at 1 s, on metadata calls made with retries enabled)."""
        plan = FailurePlan(
            path_contains=path_contains, status=status, method=method, times=times, error_code=error_code
        )
        if message is not None:
            plan.message = message
        with self._lock:
            self._failures.append(plan)
        return plan

    def clear_faults(self) -> None:
        with self._lock:
            self._interrupts.clear()
            self._failures.clear()

    # -- records ---------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, method: str | None = None, path_contains: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path_contains is None or path_contains in r.path)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of exceptions raised inside request handlers (should stay empty)."""
        return list(self._errors)

    def threads(self) -> list[threading.Thread]:
        """Live threads started by this server (serve loop and connection handlers)."""
        name = self._thread_name
        if not name:
            return []
        return [
            t for t in threading.enumerate() if (t.name == name or t.name.startswith(f"{name}-conn-")) and t.is_alive()
        ]

    # -- internal hooks used by the handler ------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _get_repo(self, repo_type: RepoType, repo_id: str) -> HubRepo | None:
        with self._lock:
            return self._repos.get((repo_type, repo_id))

    def _blob(self, sha256: str) -> bytes | None:
        with self._lock:
            return self._blobs.get(sha256)

    def _take_failure(self, request: RecordedRequest) -> FailurePlan | None:
        with self._lock:
            for plan in self._failures:
                if plan.fired >= plan.times:
                    continue
                if plan.path_contains in request.path and (plan.method is None or plan.method == request.method):
                    plan.fired += 1
                    return plan
        return None

    def _on_get(self, key: tuple[RepoType, str, str], range_header: str | None, body_len: int) -> int | None:
        """Record follow-up ranges and decide whether to cut this GET; return the byte count to send, or None."""
        with self._lock:
            plans = [p for p in self._interrupts if (p.repo_type, p.repo_id, p.filename) == key]
            for plan in plans:
                if plan._awaiting_followup:
                    plan.following_ranges.append(range_header)
                    plan._awaiting_followup = False
            for plan in plans:
                if not plan.exhausted:
                    if plan.after_bytes >= body_len:
                        return None
                    plan.fired += 1
                    plan._awaiting_followup = True
                    return plan.after_bytes
        return None


def _commit_sha(repo_id: str, revision: str, files: Mapping[str, HubFile]) -> str:
    digest = hashlib.sha1(f"{repo_id}\x00{revision}".encode())
    for path, file in sorted(files.items()):
        digest.update(f"\x00{path}\x00{file.git_oid}".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Client configuration
# ---------------------------------------------------------------------------------------------------------------


def configure_huggingface_hub(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: str | Path) -> Path:
    """Point an already-imported `huggingface_hub` at `endpoint`, online, with a private cache; return the hub cache.

    Sets the environment (``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE=0``,
    ``HF_HUB_DISABLE_XET=1``, ...) for subprocesses and late importers, *and* the `huggingface_hub.constants`
    attributes the library captured at import time; removes any token from the environment and points the token
    file into `hf_home`, so only tokens passed explicitly are sent. Progress bars and tqdm's monitor thread are
    disabled. Everything is undone by `monkeypatch`.
    """
    from huggingface_hub import constants
    from tqdm.std import tqdm as std_tqdm

    home = Path(hf_home)
    hub_cache = home / "hub"
    env = {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(hub_cache),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "TRANSFORMERS_OFFLINE",
        "HUGGINGFACE_HUB_CACHE",
        "HUGGINGFACE_CO_STAGING",
        "HF_XET_CACHE",
        "HF_ASSETS_CACHE",
        "HF_OIDC_ID_TOKEN",
        "HF_OIDC_RESOURCE",
    ):
        monkeypatch.delenv(name, raising=False)

    endpoint = endpoint.rstrip("/")
    attributes: dict[str, Any] = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(hub_cache),
        "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_PROGRESS_BARS": True,
    }
    for name, value in attributes.items():
        monkeypatch.setattr(constants, name, value)
    tqdm_module = importlib.import_module("huggingface_hub.utils.tqdm")  # the package imports lazily
    monkeypatch.setattr(tqdm_module, "progress_bar_states", {"_global": False})
    # tqdm starts its "tqdm_monitor" thread in `__new__`, even for disabled bars, and snapshot_download leaves two
    # bars to the garbage collector: the thread would outlive the test. No monitor, no stray thread.
    monkeypatch.setattr(std_tqdm, "monitor_interval", 0)
    return hub_cache


def iter_cache_files(hub_cache: Path) -> Iterator[Path]:
    """All regular files under a hub cache (handy to assert that no ``*.incomplete`` file is left)."""
    return (p for p in hub_cache.rglob("*") if p.is_file() and not p.is_symlink())
