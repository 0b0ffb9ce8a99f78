"""scraper.links, scraper.addresses and scraper.fetch: IMDb title links, and the downloader that keeps user-pasted
links from reaching anything but IMDb.

The downloader is tested over real loopback HTTP (and HTTPS when openssl is installed), with `overrides` sending IMDb's
host names to a server in this process; the private-address checks inject a resolver and never touch the internet."""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import certifi
import pytest

from scraper import fetch
from scraper.addresses import is_public_address
from scraper.fetch import FetchError, Response, SafeFetcher
from scraper.links import IMDB_IMAGE_HOSTS, IMDB_PAGE_HOSTS, LinkError, imdb_id_from_link

PAGE = b"<!DOCTYPE html><html><head><title>The Shawshank Redemption (1994) - IMDb</title></head></html>"
POSTER_PATH = "/images/M/MV5BMDAyY2FhYjctNDc5OS00MDNlLThiMGUtY2UxYWVkNGY2ZjljXkEyXkFqcGc@._V1_.jpg"
GZIP_TEXT = b"poster " * 2000
BOMB_BYTES = 64 * 1024 * 1024  # what the gzip bomb inflates to
STALL = 5.0  # seconds a stalling route waits at most (the fixture's teardown releases it at once)
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


# -- a loopback server playing IMDb ----------------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Loopback:
    port: int
    seen: list[Seen]
    stop: threading.Event
    sni: list[str | None] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [request.path for request in self.seen]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: Loopback


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        state = self.server.state
        state.seen.append(Seen(self.path, {name.lower(): value for name, value in self.headers.items()}))
        self.close_connection = True
        path = self.path.partition("?")[0]
        route = ROUTES.get(path)
        if route is None and path.startswith("/redirect/chain/"):
            route = _chain
        try:
            if route is None:
                self._send(404, b"<html>404 Error</html>")
            else:
                route(self, state)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client hung up, as it should when a body is too large

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self._send(status, b"", Location=location)


def _chain(h: _Handler, state: Loopback) -> None:
    left = int(h.path.rsplit("/", 1)[1])
    h._redirect("/ok" if left <= 1 else f"/redirect/chain/{left - 1}")


def _declared_too_large(h: _Handler, state: Loopback) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "image/jpeg")
    h.send_header("Content-Length", str(1_000_000_000))
    h.end_headers()
    h.wfile.write(b"\xff" * 1024)
    state.stop.wait(STALL)  # a client that started reading would wait here until its read time-out


def _endless_chunks(h: _Handler, state: Loopback) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "image/jpeg")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = b"%x\r\n%s\r\n" % (16384, b"\xff" * 16384)
    deadline = time.monotonic() + STALL
    while not state.stop.is_set() and time.monotonic() < deadline:
        h.wfile.write(chunk)


def _endless_unframed(h: _Handler, state: Loopback) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n")
    deadline = time.monotonic() + STALL
    while not state.stop.is_set() and time.monotonic() < deadline:
        h.wfile.write(b"\xff" * 16384)


def _small_chunks(h: _Handler, state: Loopback) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for part in (b"first ", b"second ", b"third"):
        h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
    h.wfile.write(b"0\r\n\r\n")


def _stall(h: _Handler, state: Loopback) -> None:
    state.stop.wait(STALL)


def _drip_body(h: _Handler, state: Loopback) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    for _ in range(1000):
        if state.stop.wait(0.05):
            return
        h.wfile.write(b"x")


def _drip_headers(h: _Handler, state: Loopback) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(100):
        if state.stop.wait(0.05):
            return
        h.wfile.write(b"a")
    h.wfile.write(b"\r\nContent-Length: 2\r\n\r\nok")


@cache
def _gzip_bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    return b"".join(packer.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))) + packer.flush()


ROUTES: dict[str, Callable[[_Handler, Loopback], None]] = {
    "/ok": lambda h, s: h._send(200, PAGE),
    "/echo": lambda h, s: h._send(200, json.dumps(s.seen[-1].headers).encode(), "application/json"),
    "/waf": lambda h, s: h._send(202, b"", "text/html"),
    POSTER_PATH: lambda h, s: h._send(200, b"\xff\xd8\xff poster", "image/jpeg"),
    "/redirect/relative": lambda h, s: h._redirect("/ok"),
    "/redirect/absolute": lambda h, s: h._redirect("https://www.imdb.com/ok", 301),
    "/redirect/see-other": lambda h, s: h._redirect("../ok", 303),
    "/redirect/poster": lambda h, s: h._redirect(f"https://m.media-amazon.com{POSTER_PATH}", 307),
    "/redirect/loopback": lambda h, s: h._redirect(f"http://127.0.0.1:{s.port}/ok"),
    "/redirect/localhost": lambda h, s: h._redirect(f"http://localhost:{s.port}/ok", 308),
    "/redirect/evil": lambda h, s: h._redirect("https://evil.example/"),
    "/redirect/scheme-relative": lambda h, s: h._redirect("//evil.example/ok"),
    "/redirect/userinfo": lambda h, s: h._redirect("https://www.imdb.com@evil.example/ok"),
    "/redirect/port": lambda h, s: h._redirect("https://www.imdb.com:8443/ok"),
    "/redirect/metadata": lambda h, s: h._redirect("http://169.254.169.254/latest/meta-data/"),
    "/redirect/mobile": lambda h, s: h._redirect("https://m.imdb.com/ok"),
    "/redirect/mobile-http": lambda h, s: h._redirect("http://m.imdb.com/ok"),
    "/redirect/loop": lambda h, s: h._redirect("/redirect/loop"),
    "/redirect/no-location": lambda h, s: h._send(302, b"moved somewhere"),
    "/big/declared": _declared_too_large,
    "/big/chunked": _endless_chunks,
    "/big/unframed": _endless_unframed,
    "/chunked/small": _small_chunks,
    "/stall": _stall,
    "/drip/body": _drip_body,
    "/drip/headers": _drip_headers,
    "/gzip/small": lambda h, s: h._send(200, gzip.compress(GZIP_TEXT), "text/plain", Content_Encoding="gzip"),
    "/gzip/bomb": lambda h, s: h._send(200, _gzip_bomb(), "text/plain", Content_Encoding="gzip"),
    "/brotli": lambda h, s: h._send(200, b"\x1b\x03", "text/plain", Content_Encoding="br"),
}


def _serve(ssl_context: ssl.SSLContext | None = None) -> Iterator[Loopback]:
    server = _Server(("127.0.0.1", 0), _Handler)
    state = Loopback(port=server.server_address[1], seen=[], stop=threading.Event())
    if ssl_context is not None:
        ssl_context.sni_callback = lambda sock, name, ctx: state.sni.append(name)  # type: ignore[assignment]
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def imdb() -> Iterator[Loopback]:
    yield from _serve()


def fetcher(
    server: Loopback, hosts: frozenset[str] = IMDB_PAGE_HOSTS | IMDB_IMAGE_HOSTS, **options: Any
) -> SafeFetcher:
    """A fetcher whose www.imdb.com and m.media-amazon.com are the loopback server; other hosts are not overridden."""
    options.setdefault("connect_timeout", 2.0)
    options.setdefault("read_timeout", 2.0)
    options.setdefault("deadline", 5.0)
    overrides = {"www.imdb.com": server.origin, "m.media-amazon.com": server.origin}
    return SafeFetcher(hosts, overrides=options.pop("overrides", overrides), **options)


def refused(call: Callable[[], object]) -> FetchError:
    with pytest.raises(FetchError) as caught:
        call()
    assert str(caught.value) == caught.value.message and caught.value.message.endswith(".")
    return caught.value


class _NoConnections:
    """Stands in for urllib3's connection classes: any connection attempt fails the test."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"a connection was attempted: {args} {kwargs}")


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "HTTPConnection", _NoConnections)
    monkeypatch.setattr(fetch, "HTTPSConnection", _NoConnections)


# -- responses -------------------------------------------------------------------------------------------------------


def test_a_page_is_downloaded(imdb: Loopback) -> None:
    page = fetcher(imdb).get("https://www.imdb.com/ok", accept="text/html")
    assert page == Response("https://www.imdb.com/ok", 200, "text/html; charset=utf-8", PAGE)


def test_the_request_names_the_imdb_host_and_asks_for_no_compression(imdb: Loopback) -> None:
    answer = fetcher(imdb, user_agent="PosterBench/test").get("https://WWW.IMDB.COM/echo?q=1#frag", accept="text/html")
    headers = json.loads(answer.body)
    assert headers["host"] == "www.imdb.com"
    assert headers["user-agent"] == "PosterBench/test"
    assert headers["accept"] == "text/html"
    assert headers["accept-encoding"] == "identity"
    assert imdb.paths() == ["/echo?q=1"]


def test_an_image_with_at_sign_in_its_path_is_downloaded_from_the_image_host(imdb: Loopback) -> None:
    image = fetcher(imdb, IMDB_IMAGE_HOSTS).get(f"https://m.media-amazon.com{POSTER_PATH}", accept="image/*")
    assert (image.status, image.content_type, image.body) == (200, "image/jpeg", b"\xff\xd8\xff poster")


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/waf", 202), ("/redirect/no-location", 302)])
def test_statuses_other_than_200_are_returned_not_raised(imdb: Loopback, path: str, status: int) -> None:
    assert fetcher(imdb).get("https://www.imdb.com" + path).status == status


def test_a_chunked_body_is_read_whole(imdb: Loopback) -> None:
    assert fetcher(imdb).get("https://www.imdb.com/chunked/small").body == b"first second third"


def test_a_gzip_body_sent_anyway_is_decompressed(imdb: Loopback) -> None:
    assert fetcher(imdb).get("https://www.imdb.com/gzip/small").body == GZIP_TEXT


def test_an_encoding_it_cannot_read_is_refused(imdb: Loopback) -> None:
    assert refused(lambda: fetcher(imdb).get("https://www.imdb.com/brotli")).kind == "connection"


# -- redirects -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/redirect/relative", "/redirect/absolute", "/redirect/see-other"])
def test_a_redirect_on_an_allowed_host_is_followed(imdb: Loopback, path: str) -> None:
    page = fetcher(imdb).get("https://www.imdb.com" + path)
    assert (page.url, page.status, page.body) == ("https://www.imdb.com/ok", 200, PAGE)
    assert imdb.paths() == [path, "/ok"]


def test_a_redirect_to_another_allowed_host_is_followed(imdb: Loopback) -> None:
    image = fetcher(imdb).get("https://www.imdb.com/redirect/poster")
    assert image.url == f"https://m.media-amazon.com{POSTER_PATH}"
    assert image.content_type == "image/jpeg"


@pytest.mark.parametrize(
    "path",
    [
        "/redirect/loopback",
        "/redirect/localhost",
        "/redirect/evil",
        "/redirect/scheme-relative",
        "/redirect/userinfo",
        "/redirect/port",
        "/redirect/metadata",
    ],
)
def test_a_redirect_off_the_allowed_hosts_is_refused(imdb: Loopback, path: str) -> None:
    error = refused(lambda: fetcher(imdb).get("https://www.imdb.com" + path))
    assert error.kind == "forbidden_host"
    assert f"https://www.imdb.com{path} redirected there" in error.message
    assert imdb.paths() == [path]


def test_a_redirect_to_an_image_host_is_refused_by_the_page_fetcher(imdb: Loopback) -> None:
    error = refused(lambda: fetcher(imdb, IMDB_PAGE_HOSTS).get("https://www.imdb.com/redirect/poster"))
    assert error.kind == "forbidden_host"
    assert "m.media-amazon.com" in error.message


def test_every_hop_is_checked_for_private_addresses(imdb: Loopback) -> None:
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["10.0.0.5"]

    error = refused(lambda: fetcher(imdb, resolve=resolve).get("https://www.imdb.com/redirect/mobile"))
    assert (error.kind, lookups) == ("private_address", ["m.imdb.com"])


def test_a_redirect_to_plain_http_is_refused(imdb: Loopback) -> None:
    error = refused(lambda: fetcher(imdb).get("https://www.imdb.com/redirect/mobile-http"))
    assert error.kind == "bad_scheme"


def test_a_redirect_loop_stops_after_max_redirects(imdb: Loopback) -> None:
    error = refused(lambda: fetcher(imdb, max_redirects=3).get("https://www.imdb.com/redirect/loop"))
    assert error.kind == "too_many_redirects"
    assert imdb.paths() == ["/redirect/loop"] * 4


def test_exactly_max_redirects_are_followed(imdb: Loopback) -> None:
    assert fetcher(imdb, max_redirects=3).get("https://www.imdb.com/redirect/chain/3").status == 200
    error = refused(lambda: fetcher(imdb, max_redirects=3).get("https://www.imdb.com/redirect/chain/4"))
    assert error.kind == "too_many_redirects"
    assert refused(lambda: fetcher(imdb, max_redirects=0).get("https://www.imdb.com/redirect/relative")).kind == (
        "too_many_redirects"
    )


# -- size ------------------------------------------------------------------------------------------------------------


def test_a_body_at_the_cap_passes_and_one_byte_more_does_not(imdb: Loopback) -> None:
    assert fetcher(imdb, max_bytes=len(PAGE)).get("https://www.imdb.com/ok").body == PAGE
    error = refused(lambda: fetcher(imdb).get("https://www.imdb.com/ok", max_bytes=len(PAGE) - 1))
    assert error.kind == "too_large"


def test_a_declared_content_length_over_the_cap_is_refused_before_reading(imdb: Loopback) -> None:
    started = time.monotonic()
    error = refused(lambda: fetcher(imdb, max_bytes=100_000).get("https://www.imdb.com/big/declared"))
    assert error.kind == "too_large"
    assert "954 MiB" in error.message  # 1,000,000,000 bytes
    assert time.monotonic() - started < 1.0  # reading the body would have waited for the 2-second read time-out


@pytest.mark.parametrize("path", ["/big/chunked", "/big/unframed"])
def test_an_endless_body_stops_at_the_cap(imdb: Loopback, path: str) -> None:
    started = time.monotonic()
    error = refused(lambda: fetcher(imdb, max_bytes=100_000).get("https://www.imdb.com" + path))
    assert error.kind == "too_large"
    assert time.monotonic() - started < 2.0


def test_a_gzip_bomb_is_capped_while_decompressing(imdb: Loopback) -> None:
    assert len(_gzip_bomb()) < 1024 * 1024  # small on the wire, 64 MiB inflated
    tracemalloc.start()
    try:
        error = refused(lambda: fetcher(imdb, max_bytes=1024 * 1024).get("https://www.imdb.com/gzip/bomb"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.kind == "too_large"
    assert peak < 16 * 1024 * 1024  # never inflated much past the cap


# -- time ------------------------------------------------------------------------------------------------------------


def test_a_stalled_server_times_out_after_the_read_timeout(imdb: Loopback) -> None:
    started = time.monotonic()
    error = refused(lambda: fetcher(imdb, read_timeout=0.5).get("https://www.imdb.com/stall"))
    elapsed = time.monotonic() - started
    assert error.kind == "timeout"
    assert 0.4 < elapsed < 1.5


@pytest.mark.parametrize("path", ["/drip/body", "/drip/headers"])
def test_a_trickle_that_beats_the_read_timeout_still_meets_the_deadline(imdb: Loopback, path: str) -> None:
    started = time.monotonic()
    error = refused(lambda: fetcher(imdb, read_timeout=0.5, deadline=1.0).get("https://www.imdb.com" + path))
    elapsed = time.monotonic() - started
    assert error.kind == "timeout"
    assert "1-second limit" in error.message
    assert 0.9 < elapsed < 2.0


def test_a_slow_lookup_times_out(no_connections: None) -> None:
    release = threading.Event()

    def resolve(host: str, port: int) -> list[str]:
        release.wait(5)
        return [PUBLIC_V4]

    started = time.monotonic()
    try:
        error = refused(
            lambda: SafeFetcher(IMDB_PAGE_HOSTS, connect_timeout=0.3, resolve=resolve).get(
                "https://www.imdb.com/title/tt0111161/"
            )
        )
    finally:
        release.set()
    assert error.kind == "timeout"
    assert time.monotonic() - started < 1.0


def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens on it
    pages = SafeFetcher(IMDB_PAGE_HOSTS, overrides={"www.imdb.com": f"http://127.0.0.1:{port}"})
    error = refused(lambda: pages.get("https://www.imdb.com/title/tt0111161/"))
    assert error.kind == "connection"
    assert "www.imdb.com" in error.message


# -- hosts and schemes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/",
        "https://imdb.com.evil.example/title/tt0111161/",
        "https://evilimdb.com/",
        "https://www.imdb.com@evil.example/",
        "https://www.imdb.com:secret@evil.example/",
        "https://www.imdb.com:8443/title/tt0111161/",
        "https://www.imdb.com:/title/tt0111161/",
        "https://www.imdb.com./title/tt0111161/",
        "https://www.imdb.c\u03bfm/",  # Greek omicron
        "https://www.xn--imdb-p9a.com/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/",
        "https:///title/tt0111161/",
        "https:www.imdb.com/title/tt0111161/",
        "https://www.imdb.com\\@evil.example/",
        "https://www.imdb.com /title/",
        "https://www.imdb.com/\r\nX-Injected: 1",
        "https://www.imdb.com\uff20evil.example/",
        "https://[::1/",
    ],
)
def test_a_host_that_is_not_allowed_is_refused_before_any_connection(url: str, no_connections: None) -> None:
    lookups: list[str] = []
    pages = SafeFetcher(IMDB_PAGE_HOSTS, resolve=lambda host, port: lookups.append(host) or [PUBLIC_V4])
    assert refused(lambda: pages.get(url)).kind == "forbidden_host"
    assert lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "http://www.imdb.com/title/tt0111161/",
        "ftp://www.imdb.com/title/tt0111161/",
        "file:///etc/passwd",
        "gopher://www.imdb.com/",
        "javascript:alert(1)",
        "www.imdb.com/title/tt0111161/",
    ],
)
def test_a_scheme_other_than_https_is_refused(url: str, no_connections: None) -> None:
    assert refused(lambda: SafeFetcher(IMDB_PAGE_HOSTS).get(url)).kind == "bad_scheme"


def test_an_overridden_host_may_use_http_and_any_case(imdb: Loopback) -> None:
    pages = fetcher(imdb)
    assert pages.get("http://www.imdb.com/ok").status == 200
    assert pages.get("https://www.IMDb.com:443/ok").status == 200


def test_overrides_for_hosts_that_are_not_allowed_are_ignored(imdb: Loopback, no_connections: None) -> None:
    images = SafeFetcher(IMDB_IMAGE_HOSTS, overrides={"www.imdb.com": imdb.origin, "evil.example": imdb.origin})
    assert refused(lambda: images.get("https://evil.example/ok")).kind == "forbidden_host"
    assert refused(lambda: images.get("https://www.imdb.com/ok")).kind == "forbidden_host"
    assert imdb.seen == []


@pytest.mark.parametrize("origin", ["ftp://127.0.0.1:21", "http://127.0.0.1:8765/path", "127.0.0.1:8765", "http://"])
def test_a_malformed_override_is_a_configuration_error(origin: str) -> None:
    with pytest.raises(ValueError, match="override origin"):
        SafeFetcher(IMDB_PAGE_HOSTS, overrides={"www.imdb.com": origin})


def test_fetch_errors_have_known_kinds() -> None:
    with pytest.raises(ValueError, match="unknown FetchError kind"):
        FetchError("Something went wrong.", "weird")


# -- addresses -------------------------------------------------------------------------------------------------------

NOT_PUBLIC = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "240.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.5",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "::ffff:0:7f00:1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::1",
    "2001::1",
    "2001:db8::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "127.000.000.001",
    "localhost",
    "",
]
PUBLIC = [
    PUBLIC_V4,
    "8.8.8.8",
    "1.1.1.1",
    PUBLIC_V6,
    "2606:4700:4700::1111",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_global_addresses_are_public(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["100.64.0.1"],
        [PUBLIC_V4, "10.0.0.5"],
        ["192.168.0.1", PUBLIC_V4],
        [PUBLIC_V6, "fe80::1"],
    ],
)
def test_a_host_resolving_to_any_internal_address_is_refused(answer: list[str], no_connections: None) -> None:
    pages = SafeFetcher(IMDB_PAGE_HOSTS, resolve=lambda host, port: answer)
    error = refused(lambda: pages.get("https://www.imdb.com/title/tt0111161/"))
    assert error.kind == "private_address"
    assert "www.imdb.com" in error.message


@pytest.mark.parametrize(
    ("failure", "kind"), [(socket.gaierror(-2, "Name or service not known"), "dns"), (None, "dns")]
)
def test_lookup_failures_are_dns_errors(failure: OSError | None, kind: str, no_connections: None) -> None:
    def resolve(host: str, port: int) -> list[str]:
        if failure is not None:
            raise failure
        return []

    assert refused(lambda: SafeFetcher(IMDB_PAGE_HOSTS, resolve=resolve).get("https://www.imdb.com/")).kind == kind


class _RecordingConnection:
    """Stands in for urllib3's HTTPSConnection: records where it would connect, then fails as if offline."""

    made: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.made.append((args, kwargs))

    def connect(self) -> None:
        raise ConnectionRefusedError(111, "Connection refused (no network in tests)")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("answer", "connected_to"),
    [
        ([PUBLIC_V4], [PUBLIC_V4]),
        ([PUBLIC_V6], [PUBLIC_V6]),
        (["::ffff:93.184.216.34"], [PUBLIC_V4]),
        ([PUBLIC_V6, PUBLIC_V4], [PUBLIC_V6, PUBLIC_V4]),  # each vetted address is tried in turn
    ],
)
def test_a_public_answer_is_connected_to_by_address_with_tls_checked_against_the_name(
    monkeypatch: pytest.MonkeyPatch, answer: list[str], connected_to: list[str]
) -> None:
    monkeypatch.setattr(_RecordingConnection, "made", [])
    monkeypatch.setattr(fetch, "HTTPSConnection", _RecordingConnection)
    monkeypatch.setattr(fetch, "HTTPConnection", _NoConnections)
    lookups: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return answer

    error = refused(lambda: SafeFetcher(IMDB_PAGE_HOSTS, resolve=resolve).get("https://www.imdb.com/title/tt0111161/"))
    assert error.kind == "connection"
    assert lookups == [("www.imdb.com", 443)]  # looked up once: the connection goes to the vetted address itself
    assert [args for args, _ in _RecordingConnection.made] == [(address, 443) for address in connected_to]
    for _, options in _RecordingConnection.made:
        assert options["server_hostname"] == options["assert_hostname"] == "www.imdb.com"
        assert options["cert_reqs"] == "CERT_REQUIRED"
        assert options["ca_certs"] == certifi.where()


# -- TLS against the host name, while connecting to an address -------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA and a certificate it signed for www.imdb.com (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=PosterBench test CA", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-new", *ec, "-subj", "/CN=www.imdb.com", "-keyout", "leaf.key", "-out", "leaf.csr")
    (folder / "leaf.ext").write_text(
        "subjectAltName=DNS:www.imdb.com\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-out", "leaf.pem", "-extfile", "leaf.ext")  # fmt: skip
    return {"ca": folder / "ca.pem", "cert": folder / "leaf.pem", "key": folder / "leaf.key"}


@pytest.fixture
def imdb_tls(certificates: dict[str, Path]) -> Iterator[Loopback]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["cert"], certificates["key"])
    yield from _serve(context)


def tls_fetcher(server: Loopback) -> SafeFetcher:
    origin = f"https://127.0.0.1:{server.port}"
    return SafeFetcher(IMDB_PAGE_HOSTS, overrides={"www.imdb.com": origin, "m.imdb.com": origin}, deadline=5.0)


def test_tls_sends_the_host_name_and_verifies_the_certificate_for_it(
    imdb_tls: Loopback, certificates: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "_ca_bundle", lambda: str(certificates["ca"]))
    page = tls_fetcher(imdb_tls).get("https://www.imdb.com/ok")
    assert (page.status, page.body) == (200, PAGE)
    assert imdb_tls.sni == ["www.imdb.com"]


def test_tls_refuses_a_certificate_for_another_name(
    imdb_tls: Loopback, certificates: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "_ca_bundle", lambda: str(certificates["ca"]))
    error = refused(lambda: tls_fetcher(imdb_tls).get("https://m.imdb.com/ok"))
    assert error.kind == "connection"
    assert "secure connection to m.imdb.com" in error.message
    assert imdb_tls.seen == []


def test_tls_refuses_a_certificate_from_an_unknown_authority(imdb_tls: Loopback) -> None:
    error = refused(lambda: tls_fetcher(imdb_tls).get("https://www.imdb.com/ok"))
    assert error.kind == "connection"
    assert "certificate verify failed" in error.message
    assert imdb_tls.seen == []


# -- IMDb title links ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "imdb_id"),
    [
        ("https://www.imdb.com/title/tt0111161/", "tt0111161"),
        ("\u200ehttps://www.imdb.com/title/tt0111161/\u200b\ufeff ", "tt0111161"),  # marks a paste brings along
        ("https://www.imdb.com/title/tt0111161", "tt0111161"),
        ("http://www.imdb.com/title/tt0111161/", "tt0111161"),
        ("https://m.imdb.com/title/tt0111161/", "tt0111161"),
        ("https://imdb.com/title/tt0111161/", "tt0111161"),
        ("www.imdb.com/title/tt0111161/", "tt0111161"),
        ("imdb.com/title/tt0111161", "tt0111161"),
        ("m.imdb.com/title/tt0111161/?ref_=m_nv_sr_1", "tt0111161"),
        ("www.imdb.com/title/tt0111161/?from=https://www.google.com/", "tt0111161"),
        ("  https://www.imdb.com/title/tt0111161/ \n", "tt0111161"),
        ("https://www.imdb.com/title/tt0111161/?ref_=nv_sr_srsg_0", "tt0111161"),
        ("https://www.imdb.com/title/tt0111161?ref_=fn_al_tt_1", "tt0111161"),
        ("https://www.imdb.com/title/tt0111161/#cast", "tt0111161"),
        ("https://www.imdb.com/title/tt0111161/reference", "tt0111161"),
        ("https://www.imdb.com/title/tt0111161/reference/", "tt0111161"),
        ("https://www.imdb.com/title/tt0111161/mediaviewer/rm1690056449/", "tt0111161"),
        ("https://www.imdb.com/de/title/tt0111161/", "tt0111161"),
        ("https://www.imdb.com/title/tt15398776/", "tt15398776"),
        ("HTTPS://WWW.IMDB.COM/title/tt0111161/", "tt0111161"),
        ("https://www.imdb.com:443/title/tt0111161/", "tt0111161"),
        ("http://imdb.com:80/title/tt0068646/", "tt0068646"),
    ],
)
def test_imdb_title_links_give_their_id(link: str, imdb_id: str) -> None:
    assert imdb_id_from_link(link) == imdb_id


@pytest.mark.parametrize(
    ("link", "says"),
    [
        ("", "Paste a link to an IMDb title page"),
        ("   ", "Paste a link to an IMDb title page"),
        ("tt0111161", "is an IMDb ID, not a link"),
        ("https://example.com/title/tt0111161/", "That is a link to example.com;"),
        ("https://127.0.0.1/title/tt0111161/", "That is a link to 127.0.0.1;"),
        ("http://127.0.0.1:8765/title/tt0111161/", "That is a link to 127.0.0.1;"),
        ("https://[::1]/title/tt0111161/", "That is a link to [::1];"),
        ("https://169.254.169.254/latest/meta-data/", "That is a link to 169.254.169.254;"),
        ("https://localhost/title/tt0111161/", "That is a link to localhost;"),
        ("https://www.imdb.com@evil.com/title/tt1/", "real destination (evil.com)"),
        ("https://www.imdb.com@evil.com/title/tt0111161/", "real destination (evil.com)"),
        ("https://www.imdb.com:pass@evil.com/title/tt0111161/", "real destination (evil.com)"),
        ("https://evil.com#@www.imdb.com/title/tt0111161/", "That is a link to evil.com;"),
        ("https://evil.com?@www.imdb.com/title/tt0111161/", "That is a link to evil.com;"),
        ("https://evil.com\\@www.imdb.com/title/tt0111161/", "backslashes"),
        ("https://www.imdb.com\\.evil.com/title/tt0111161/", "backslashes"),
        ("https:\\\\www.imdb.com\\title\\tt0111161\\", "backslashes"),
        ("https://www.imdb.com:8080/title/tt0111161/", "names a port"),
        ("http://www.imdb.com:443/title/tt0111161/", "names a port"),
        ("https://www.imdb.com:/title/tt0111161/", "names a port"),
        ("https://www.imdb.c\u03bfm/title/tt0111161/", "only look like"),  # Greek omicron
        ("https://www.\u0456mdb.com/title/tt0111161/", "only look like"),  # Cyrillic i
        ("https://www.imdb.com\u3002evil.com/title/tt0111161/", "only look like"),  # ideographic full stop
        ("https://www.imdb.com\uff20evil.com/title/tt0111161/", "not a valid web link"),  # fullwidth @
        ("https://[::1/title/tt0111161/", "not a valid web link"),
        ("https://www.xn--imdb-p9a.com/title/tt0111161/", "That is a link to www.xn--imdb-p9a.com;"),
        ("https://imdb.com.evil.com/title/tt0111161/", "That is a link to imdb.com.evil.com;"),
        ("https://www.imdb.com.evil.com/title/tt0111161/", "That is a link to www.imdb.com.evil.com;"),
        ("https://evilimdb.com/title/tt0111161/", "That is a link to evilimdb.com;"),
        ("https://www.imdb.com./title/tt0111161/", "That is a link to www.imdb.com.;"),
        ("https://www.imdb.com/name/nm0000209/", "not a film's or series' title page"),
        ("https://www.imdb.com/", "not a film's or series' title page"),
        ("https://www.imdb.com/find/?q=tt0111161", "not a film's or series' title page"),
        ("https://www.imdb.com/list/ls055592025/title/tt0111161/", "not a film's or series' title page"),
        ("https://www.imdb.com/title/tt011116/", "not a film's or series' title page"),
        ("https://www.imdb.com/title/tt123456789/", "not a film's or series' title page"),
        ("https://www.imdb.com/title/tt0111161extra/", "not a film's or series' title page"),
        ("https://www.imdb.com/title/%74t0111161/", "not a film's or series' title page"),
        ("https://www.imdb.com/title/tt\u0660\u0661\u0661\u0661\u0661\u0666\u0661/", "not a film's or series'"),
        ("https://www.imdb.com/title/TT0111161/", "not a film's or series' title page"),
        ("ftp://www.imdb.com/title/tt0111161/", "That is a ftp: link"),
        ("file:///etc/passwd", "That is a file: link"),
        ("javascript:alert(1)//www.imdb.com/title/tt0111161/", "not a web link"),
        ("data:text/html,https://www.imdb.com/title/tt0111161/", "not a web link"),
        ("javascript:1", "That is not a link to a web site;"),  # read as the site "javascript", port 1
        ("a", "That is not a link to a web site;"),
        ("www.imdb.com/title/tt0111161/" + "x" * 2_000, "2,029 characters long, too long for an IMDb link"),
        ("mailto:someone@www.imdb.com", "not a web link"),
        ("//www.imdb.com/title/tt0111161/", "not a web link"),
        ("https://www.imdb.com /title/tt0111161/", "spaces"),
        ("https://www.imdb.com/title/tt0111161/\nhttps://evil.com/", "spaces"),
        ("https://www.imdb.com/title/tt0111161/\x00", "control characters"),
        ("https://www.imdb.com/title/tt0111161/\u202e", "control characters"),  # right-to-left override
        ("https://www.imdb.com/title/\u200btt0111161/", "control characters"),  # zero-width space
        ("https://www.imdb.com/title/tt0111161/?q=\u3000x", "spaces"),  # an ideographic space
    ],
)
def test_other_links_are_refused_with_a_reason(link: str, says: str) -> None:
    with pytest.raises(LinkError) as caught:
        imdb_id_from_link(link)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)
    if "IMDb ID" not in says:
        assert "https://www.imdb.com/title/tt0111161/" in str(caught.value)
