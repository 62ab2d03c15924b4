"""DNS, TCP and HTTP(S) from this host, each bounded (the preflight's NetProbe, and the HTTP
client its pin checks use)."""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message

from lab.hosts.pins import Answer

USER_AGENT = "k8s-netlab-preflight"


class NetProbe:
    def resolve(self, host: str, timeout: float) -> list[str]:
        """IPv4/IPv6 addresses of `host`; getaddrinfo has no timeout, so it runs in a daemon
        thread that is abandoned after `timeout`."""
        box: dict[str, object] = {}

        def lookup() -> None:
            try:
                infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
                box["addresses"] = list(dict.fromkeys(str(i[4][0]) for i in infos))
            except OSError as exc:
                box["error"] = exc

        thread = threading.Thread(target=lookup, daemon=True, name=f"resolve {host}")
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"no answer within {timeout:.0f}s")
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["addresses"]  # type: ignore[return-value]

    def connect(self, address: str, port: int, timeout: float) -> None:
        with socket.create_connection((address, port), timeout=timeout):
            pass

    def fetch(self, url: str, timeout: float) -> int:
        """The HTTP status of a GET for the first byte (proxies from the environment apply)."""
        request = urllib.request.Request(
            url, headers={"User-Agent": USER_AGENT, "Range": "bytes=0-0"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except urllib.error.URLError as exc:
            reason = exc.reason
            raise OSError(str(reason)) from None


def https_proxy() -> str:
    """The proxy urllib would use for https:// (HTTPS_PROXY/https_proxy), or ""."""
    return urllib.request.getproxies().get("https", "")


class HttpClient:
    """One HTTP(S) request with urllib (the environment's proxies apply; redirects followed):
    the status, the headers (lower-case names), the body up to `limit` bytes and the URL it
    came from. An HTTP error status is an answer; no answer at all is OSError."""

    def request(
        self, method: str, url: str, headers: Mapping[str, str], timeout: float, limit: int
    ) -> Answer:
        request = urllib.request.Request(
            url, method=method, headers={"User-Agent": USER_AGENT, **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read(limit) if limit else b""
                return Answer(
                    int(response.status), _lower(response.headers), body, response.geturl()
                )
        except urllib.error.HTTPError as exc:
            body = exc.read(min(limit, 64 * 1024)) if limit else b""
            return Answer(int(exc.code), _lower(exc.headers), body, exc.geturl() or url)
        except urllib.error.URLError as exc:
            raise OSError(str(exc.reason)) from None
        except (TimeoutError, http.client.HTTPException) as exc:
            raise OSError(str(exc) or type(exc).__name__) from None


def _lower(headers: Message | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers.items() if headers is not None else ())}
