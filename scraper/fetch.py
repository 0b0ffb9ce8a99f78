"""Downloads from IMDb's hosts only, with time-outs, a size cap and no way to reach private or loopback addresses: a
guard against server-side request forgery for the links users paste. The links themselves are read by scraper.links
and the addresses vetted by scraper.addresses."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from urllib.parse import quote, urljoin, urlsplit

import certifi
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.ssl_match_hostname import CertificateError

from scraper.addresses import _connectable, is_public_address
from scraper.links import _DEFAULT_PORTS, _authority_problem, has_unsafe_characters

__all__ = ["FETCH_ERROR_KINDS", "FetchError", "Response", "SafeFetcher"]

FETCH_ERROR_KINDS = frozenset(
    {
        "forbidden_host",
        "private_address",
        "bad_scheme",
        "too_large",
        "timeout",
        "too_many_redirects",
        "connection",
        "dns",
    }
)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_REQUEST_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII stays; anything else is %-encoded


class FetchError(Exception):
    """A download that was refused or failed; `kind` is one of FETCH_ERROR_KINDS: "forbidden_host", "private_address",
    "bad_scheme", "too_large", "timeout", "too_many_redirects", "connection", "dns"."""

    def __init__(self, message: str, kind: str) -> None:
        if kind not in FETCH_ERROR_KINDS:
            raise ValueError(
                f"unknown FetchError kind {kind!r}; expected one of {', '.join(sorted(FETCH_ERROR_KINDS))}"
            )
        super().__init__(message)
        self.message = message
        self.kind = kind


@dataclass(frozen=True)
class Response:
    url: str  # the final URL after redirects (the IMDb URL, also when an override served it)
    status: int  # any status: 404 or IMDb's bot wall (202, 403, 405) are for the caller to interpret
    content_type: str  # the Content-Type header as sent ("" when absent), e.g. "text/html; charset=utf-8"
    body: bytes  # decompressed when the server sent gzip or deflate anyway


def _system_resolve(host: str, port: int) -> list[str]:
    """Every address (IPv4 and IPv6) that the system's resolver gives for `host`, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ca_bundle() -> str:
    return certifi.where()


# -- the fetcher -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str
    request_target: str  # path and query, what goes on the request line


@dataclass(frozen=True)
class _Endpoint:
    scheme: str  # how to talk to it: "https" (TLS verified against the URL's host) or "http" (overrides only)
    address: str  # a vetted IP address, or an override's host
    port: int


@dataclass(frozen=True)
class _Redirect:
    location: str


class _Watchdog:
    """Shuts a connection's socket down when the overall deadline passes, which ends any read blocked on it."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.fired = False
        self._sock = sock
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            with contextlib.suppress(OSError):  # the raw socket's shutdown, for TLS sockets too
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


class SafeFetcher:
    """GETs URLs on `allowed_hosts` only, over https to globally routable addresses, within time and size limits.

    `overrides` maps an allowed host to an origin ("http://127.0.0.1:8765") that serves it instead, like curl's
    --resolve: for offline replicas and tests. Overridden hosts are trusted by configuration: they may be reached over
    http and skip the private-address check. Overrides for hosts that are not allowed are ignored, so that one mapping
    can configure fetchers for different hosts. `resolve(host, port)` returns IP address strings (default: the
    system's resolver). Every redirect hop is checked again; non-2xx statuses are returned, not raised."""

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        deadline: float = 20.0,
        max_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 3,
        overrides: Mapping[str, str] | None = None,
        resolve: Callable[[str, int], list[str]] | None = None,
        user_agent: str = "PosterBench/0.1",
    ) -> None:
        hosts = frozenset(allowed_hosts)
        if isinstance(allowed_hosts, str) or not all(isinstance(h, str) and h.isascii() and h for h in hosts):
            raise ValueError("allowed_hosts must be a collection of ASCII host names such as 'www.imdb.com'")
        self.allowed_hosts = frozenset(host.lower() for host in hosts)
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("deadline", deadline),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if max_bytes <= 0 or max_redirects < 0:
            raise ValueError("max_bytes must be positive and max_redirects not negative")
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.deadline = float(deadline)
        self.max_bytes = int(max_bytes)
        self.max_redirects = int(max_redirects)
        self.overrides: dict[str, _Endpoint] = {
            host.lower(): _parse_origin(origin)
            for host, origin in (overrides or {}).items()
            if host.lower() in self.allowed_hosts
        }
        self.resolve: Callable[[str, int], list[str]] = resolve or _system_resolve
        self.user_agent = user_agent

    def get(self, url: str, *, max_bytes: int | None = None, accept: str = "*/*") -> Response:
        """GET `url`, following up to max_redirects redirects, each checked like the first URL.

        Raises FetchError when a URL, host or address is refused, or on time-outs, oversized bodies (over `max_bytes`,
        default the fetcher's), too many redirects and connection or DNS failures."""
        cap = self.max_bytes if max_bytes is None else int(max_bytes)
        if cap <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}")
        ends_at = time.monotonic() + self.deadline
        current, redirects = url, 0
        while True:
            try:
                target = self._check_url(current)
            except FetchError as error:
                if redirects == 0:
                    raise
                raise FetchError(f"{error.message[:-1]}; {url} redirected there.", error.kind) from None
            result = self._exchange(target, self._endpoints(target, ends_at), cap, accept, ends_at)
            if isinstance(result, Response):
                return result
            if redirects >= self.max_redirects:
                raise FetchError(
                    f"Gave up on {url} after {self.max_redirects} redirects: the site kept sending us elsewhere.",
                    "too_many_redirects",
                )
            redirects += 1
            current = urljoin(target.url, result.location)

    # -- checks ------------------------------------------------------------------------------------------------------

    def _check_url(self, url: str) -> _Target:
        if not isinstance(url, str) or has_unsafe_characters(url):
            raise FetchError(
                f"Refusing to download {url!r}: web addresses may not contain spaces, control characters or "
                "backslashes.",
                "forbidden_host",
            )
        try:
            parts = urlsplit(url)
        except ValueError as error:  # a malformed [IPv6] host, or one that turns into other characters under NFKC
            raise FetchError(f"Refusing to download {url}: it is not a valid web address.", "forbidden_host") from error
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise FetchError(f"Refusing to download {url}: only https:// addresses are allowed.", "bad_scheme")
        problem, host = _authority_problem(parts.netloc, scheme, self.allowed_hosts)
        if problem is not None:
            reason = {
                "userinfo": f"it has a user name before an @ sign, which hides that it goes to {host}",
                "port": "it names a port other than the default one",
                "empty": "it has no host name",
                "look_alike": f"its host name {host} has letters outside ASCII that may only look like ordinary ones",
                "not_allowed": f"{host or 'its host'} is not one of the allowed hosts",
            }[problem]
            allowed = ", ".join(sorted(self.allowed_hosts))
            raise FetchError(f"Refusing to download {url}: {reason} (allowed: {allowed}).", "forbidden_host")
        if scheme != "https" and host not in self.overrides:
            raise FetchError(
                f"Refusing to download {url}: only https:// addresses are allowed, not {scheme}://.", "bad_scheme"
            )
        request_target = quote(parts.path or "/", safe=_REQUEST_TARGET_SAFE)
        if parts.query:
            request_target += "?" + quote(parts.query, safe=_REQUEST_TARGET_SAFE)
        return _Target(url=url, scheme=scheme, host=host, request_target=request_target)

    def _endpoints(self, target: _Target, ends_at: float) -> list[_Endpoint]:
        """Where to connect for `target`: its override's origin, or every address its host resolves to, all vetted."""
        override = self.overrides.get(target.host)
        if override is not None:
            return [override]
        addresses = self._resolve(target.host, ends_at)
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise FetchError(
                f"Refusing to connect to {target.host}: it resolves to {', '.join(refused)}, and private, loopback "
                "and other internal addresses are off limits.",
                "private_address",
            )
        return [_Endpoint("https", _connectable(address), 443) for address in addresses]

    def _resolve(self, host: str, ends_at: float) -> list[str]:
        """`self.resolve(host, 443)`, given at most the connect time-out (and what is left of the deadline)."""
        seconds = self._seconds_left(self.connect_timeout, ends_at, host)
        answers: list[list[str]] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                answers.append(list(self.resolve(host, 443)))
            except BaseException as error:  # handed over to the calling thread below
                errors.append(error)

        thread = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            raise FetchError(f"Looking up the address of {host} took longer than {seconds:.3g} seconds.", "timeout")
        if errors and isinstance(errors[0], OSError):
            raise FetchError(f"Could not look up the address of {host}: {errors[0]}.", "dns") from errors[0]
        if errors:
            raise errors[0]
        addresses = [str(address) for address in answers[0]]
        if not addresses:
            raise FetchError(f"Could not look up the address of {host}: the name has no addresses.", "dns")
        return addresses

    def _seconds_left(self, limit: float, ends_at: float, host: str) -> float:
        left = ends_at - time.monotonic()
        if left <= 0:
            raise FetchError(f"Downloading from {host} took longer than the {self.deadline:g}-second limit.", "timeout")
        return min(limit, left)

    # -- one request -------------------------------------------------------------------------------------------------

    def _exchange(
        self, target: _Target, endpoints: list[_Endpoint], cap: int, accept: str, ends_at: float
    ) -> Response | _Redirect:
        conn = self._connect(target, endpoints, ends_at)
        watchdog = None
        response: BaseHTTPResponse | None = None
        try:
            assert conn.sock is not None
            watchdog = _Watchdog(conn.sock, ends_at - time.monotonic())
            read_timeout = self._seconds_left(self.read_timeout, ends_at, target.host)
            conn.timeout = read_timeout  # getresponse() applies it to the socket
            try:
                conn.request(
                    "GET",
                    target.request_target,
                    headers={
                        "Host": target.host,
                        "User-Agent": self.user_agent,
                        "Accept": accept,
                        "Accept-Encoding": "identity",
                        "Connection": "close",
                    },
                    preload_content=False,
                    decode_content=False,
                )
                response = conn.getresponse()
                location = response.headers.get("Location")
                if response.status in _REDIRECTS and location:
                    return _Redirect(location)
                content_type = response.headers.get("Content-Type", "").strip()
                body = self._read_body(response, target, cap, watchdog)
                return Response(url=target.url, status=response.status, content_type=content_type, body=body)
            except FetchError:
                raise
            except (TimeoutError, Urllib3TimeoutError) as error:
                if watchdog.fired:
                    raise self._deadline_error(target) from error
                raise FetchError(
                    f"{target.host} stopped answering for {read_timeout:.3g} seconds while sending {target.url}.",
                    "timeout",
                ) from error
            except (OSError, ValueError, Urllib3HTTPError, HTTPException) as error:
                if watchdog.fired:
                    raise self._deadline_error(target) from error
                raise FetchError(f"The connection to {target.host} failed: {error}.", "connection") from error
        finally:
            if watchdog is not None:
                watchdog.stop()
            if response is not None:
                response.close()
            conn.close()

    def _connect(self, target: _Target, endpoints: list[_Endpoint], ends_at: float) -> HTTPConnection:
        """A connection to the first endpoint that accepts one (TLS verified against the URL's host for https)."""
        failure: FetchError | None = None
        for endpoint in endpoints:
            seconds = self._seconds_left(self.connect_timeout, ends_at, target.host)
            conn: HTTPConnection
            if endpoint.scheme == "https":
                conn = HTTPSConnection(
                    endpoint.address,
                    endpoint.port,
                    timeout=seconds,
                    server_hostname=target.host,
                    assert_hostname=target.host,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=_ca_bundle(),
                )
            else:
                conn = HTTPConnection(endpoint.address, endpoint.port, timeout=seconds)
            try:
                conn.connect()
                return conn
            except NewConnectionError as error:  # before the time-outs: it subclasses ConnectTimeoutError
                failure = FetchError(f"Could not connect to {target.host}: {_reason(error)}.", "connection")
            except (TimeoutError, Urllib3TimeoutError):
                failure = FetchError(
                    f"{target.host} did not accept a connection within {seconds:.3g} seconds.", "timeout"
                )
            except (ssl.SSLError, CertificateError) as error:
                failure = FetchError(f"Could not verify the secure connection to {target.host}: {error}.", "connection")
            except (OSError, Urllib3HTTPError) as error:
                failure = FetchError(f"Could not connect to {target.host}: {error}.", "connection")
            conn.close()
        assert failure is not None, "no endpoints to connect to"
        raise failure

    def _read_body(self, response: BaseHTTPResponse, target: _Target, cap: int, watchdog: _Watchdog) -> bytes:
        """The body, read in chunks and never more than `cap` bytes, before and after decompression."""
        declared = _content_length(response.headers.get("Content-Length"))
        if declared is not None and declared > cap:
            raise FetchError(
                f"The file at {target.url} is {_size(declared)}, more than the {_size(cap)} limit.", "too_large"
            )
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(
                f"{target.host} sent {target.url} compressed as {encoding!r}, which this downloader does not read.",
                "connection",
            )
        inflater = zlib.decompressobj(wbits=32 + zlib.MAX_WBITS) if encoding not in ("", "identity") else None
        parts: list[bytes] = []
        raw_total = total = 0
        while True:
            chunk = response.read(_CHUNK, decode_content=False)
            if watchdog.fired:
                raise self._deadline_error(target)
            if not chunk:
                break
            raw_total += len(chunk)
            if inflater is not None:
                try:
                    chunk = inflater.decompress(chunk, cap - total + 1)  # at most one byte over the cap
                except zlib.error as error:
                    raise FetchError(f"{target.host} sent a damaged compressed body: {error}.", "connection") from error
            total += len(chunk)
            if total > cap or raw_total > cap:
                raise FetchError(f"The file at {target.url} is larger than the {_size(cap)} limit.", "too_large")
            parts.append(chunk)
        if inflater is not None and not inflater.eof:
            raise FetchError(f"{target.host} sent a compressed body that ends too early.", "connection")
        return b"".join(parts)

    def _deadline_error(self, target: _Target) -> FetchError:
        return FetchError(
            f"Downloading {target.url} took longer than the {self.deadline:g}-second limit.",
            "timeout",
        )


def _parse_origin(origin: str) -> _Endpoint:
    parts = urlsplit(origin)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or (port is not None and port <= 0)
    ):
        raise ValueError(f"override origin {origin!r} must look like 'http://127.0.0.1:8765' (scheme, host, port)")
    return _Endpoint(scheme, parts.hostname, port or int(_DEFAULT_PORTS[scheme]))


def _content_length(value: str | None) -> int | None:
    """The Content-Length header's value (repeats allowed when equal), or None when absent or unreadable."""
    if value is None:
        return None
    values = {item.strip() for item in value.split(",")}
    if len(values) != 1:
        return None
    (number,) = values
    return int(number) if number.isdigit() and number.isascii() else None


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _reason(error: NewConnectionError) -> str:
    text = str(error)
    return text.partition("Failed to establish a new connection: ")[2] or text
