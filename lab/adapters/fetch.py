"""Downloads with a pinned checksum, a content-addressed cache and bounded retries."""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request

from lab import paths, waits

log = logging.getLogger(__name__)


class ChecksumMismatch(Exception):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cached(sha256: str) -> bytes | None:
    """A file whose content has this checksum, from the cache or the repo's pinned inputs."""
    candidates = [paths.cache_root() / "downloads" / sha256, *sorted(paths.VENDOR_DIR.glob("*"))]
    for path in candidates:
        if path.is_file():
            data = path.read_bytes()
            if _sha256(data) == sha256:
                return data
    return None


def is_cached(sha256: str) -> bool:
    """Whether a file with this checksum is in the cache or the repo's pinned inputs."""
    return _cached(sha256) is not None


def fetch_pinned(url: str, sha256: str, timeout_s: float = 30) -> bytes:
    """The bytes at `url` whose sha256 must equal `sha256` (cache first, then the network)."""
    data = _cached(sha256)
    if data is not None:
        return data

    def download() -> bytes:
        log.info("downloading %s", url)
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body: bytes = resp.read()
            return body

    data = waits.retry_call(waits.DOWNLOAD, download, on=(urllib.error.URLError, TimeoutError))
    got = _sha256(data)
    if got != sha256:
        raise ChecksumMismatch(
            f"{url}: sha256 {got} != pinned {sha256}; update the pin if the "
            "upstream file changed on purpose"
        )
    target = paths.cache_root() / "downloads" / sha256
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data
