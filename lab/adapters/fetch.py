"""Downloads with a pinned checksum, a content-addressed cache and bounded retries.

Only a transient failure is retried (a timeout, HTTP 5xx or 429); an offline host (no DNS, no
route, connection refused) or a missing file (HTTP 404) fails at once, with one line that says
where the file was looked for and what to set."""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.common import waits
from lab.common.errors import UsageError
from lab.common.redact import redact
from lab.model import paths
from lab.model.config import LocalFile

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
Opener = Callable[..., Any]  # urllib.request.urlopen's shape: (url, timeout=...) -> response


class FetchError(UsageError):
    """A pinned file that is neither cached nor downloadable (or not what was pinned)."""


class ChecksumMismatch(FetchError):
    pass


class _Transient(Exception):
    """A failure worth another attempt (timeout, 5xx, 429)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _candidates(sha256: str) -> list[Path]:
    return [paths.cache_root() / "downloads" / sha256, *sorted(paths.VENDOR_DIR.glob("*"))]


def _cached(sha256: str) -> bytes | None:
    """A file whose content has this checksum, from the cache or the repo's pinned inputs."""
    for path in _candidates(sha256):
        try:
            if path.is_file():
                data = path.read_bytes()
                if _sha256(data) == sha256:
                    return data
        except OSError as exc:
            log.warning("cannot read %s (%s); skipping it", path, exc.strerror)
    return None


def local_files(sha256: str) -> tuple[LocalFile, ...]:
    """The files here a pinned `sha256` may name, each with its real sha256: the cached
    download of that name (if there is one) and every vendored input. Reads, never downloads;
    a file that cannot be read is left out."""
    found = []
    for path in _candidates(sha256):
        try:
            if path.is_file() and path.stat().st_size <= MAX_DOWNLOAD_BYTES:
                found.append(LocalFile(_shown(path), _sha256(path.read_bytes())))
        except OSError as exc:
            log.warning("cannot read %s (%s); skipping it", path, exc.strerror)
    return tuple(found)


def _shown(path: Path) -> str:
    """`path` relative to the repository when it is in it (labs/vendor/...), else whole."""
    try:
        return str(path.relative_to(paths.REPO))
    except ValueError:
        return str(path)


def is_cached(sha256: str) -> bool:
    """Whether a file with this checksum is in the cache or the repo's pinned inputs."""
    return _cached(sha256) is not None


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, TimeoutError)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason = getattr(exc, "reason", None) or exc
    return str(getattr(reason, "strerror", None) or reason) or type(reason).__name__


def fetch_pinned(
    url: str,
    sha256: str,
    timeout_s: float = 15,
    opener: Opener = urllib.request.urlopen,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """The bytes at `url` whose sha256 must equal `sha256` (cache first, then the network)."""
    data = _cached(sha256)
    if data is not None:
        return data
    cache = paths.cache_root() / "downloads"

    def download() -> bytes:
        log.info("downloading %s", redact(url))
        try:
            with opener(url, timeout=timeout_s) as resp:
                body: bytes = resp.read(MAX_DOWNLOAD_BYTES)
                return body
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if _is_transient(exc):
                raise _Transient(exc) from exc
            raise

    try:
        data = waits.retry_call(waits.DOWNLOAD, download, on=(_Transient,), sleep=sleep)
    except (_Transient, urllib.error.URLError, OSError, ValueError) as exc:
        cause = exc.__cause__ if isinstance(exc, _Transient) and exc.__cause__ else exc
        raise FetchError(
            redact(
                f"cannot download {url} ({_reason(cause)}), and no file with sha256 "
                f"{sha256} is in {cache} or {paths.VENDOR_DIR}; offline, put the file at "
                f"{cache / sha256} (NETLAB_CACHE sets the cache directory), else check the "
                "lab's URL and sha256"
            )
        ) from None
    got = _sha256(data)
    if got != sha256:
        raise ChecksumMismatch(
            redact(
                f"{url}: sha256 {got} != pinned {sha256}; update the pin if the "
                "upstream file changed on purpose"
            )
        )
    try:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / sha256).write_bytes(data)
    except OSError as exc:
        log.warning("cannot cache %s in %s (%s)", redact(url), cache, exc.strerror)
    return data
