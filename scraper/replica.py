"""An offline replica of IMDb's title pages and poster images, rendered from a catalog and served over loopback
HTTP, for tests and demos of the scraper without touching the network (`python -m scraper.replica CATALOG_DIR`)."""

from __future__ import annotations

import argparse
import json
import mimetypes
import re
import threading
from collections.abc import Iterable, Mapping
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from catalog import Catalog, Movie, read_catalog

VARIANTS: tuple[str, ...] = ("full", "no_poster", "unrated", "json_ld_only", "og_image_only")
"""full: every source; no_poster: no primaryImage nor JSON-LD image, og:image is IMDb's logo; unrated: no rating;
json_ld_only: no __NEXT_DATA__; og_image_only: neither __NEXT_DATA__ nor JSON-LD."""
DEFAULT_IMAGE_BASE = "https://m.media-amazon.com"
LOGO_IMAGE = "https://m.media-amazon.com/images/G/01/imdb/images/social/imdb_logo.png"
"""IMDb's og:image for a title without a poster."""
_TITLE_PATH = re.compile(r"/title/(tt\d{7,8})(?:/(?:reference/?)?)?")
_NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><meta charset="utf-8"><title>404 Error - IMDb</title></head>
<body id="styleguide-v2"><div id="__next"><main role="main"><div class="error-page">
<h1>404 Error</h1><p>The requested URL was not found on our server.</p></div></main></div></body></html>
"""


def title_page_html(movie: Movie, image_url: str | None, *, variant: str = "full") -> str:
    """A title page shaped like IMDb's (head meta, JSON-LD, hero DOM, `__NEXT_DATA__`) for a catalog movie.

    `image_url` is the poster's URL (None: the title has no poster); `variant` is one of VARIANTS.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown title page variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    poster = None if variant == "no_poster" else image_url
    rated = variant != "unrated" and movie.rating is not None
    parts = [_head(movie, poster, rated, with_json_ld=variant != "og_image_only"), _hero(movie, poster, rated)]
    if variant not in ("json_ld_only", "og_image_only"):
        parts.append(_next_data_script(movie, poster, rated))
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _head(movie: Movie, poster: str | None, rated: bool, *, with_json_ld: bool) -> str:
    title_url = f"https://www.imdb.com/title/{movie.imdb_id}/"
    year = f" ({movie.year})" if movie.year is not None else ""
    og_title = movie.title + year + (f" ⭐ {movie.rating}" if rated else "")
    og_title += f" | {', '.join(movie.genres)}" if movie.genres else ""
    description = f"{movie.title}{year}: a {', '.join(movie.genres).lower() or 'feature'} film."
    og_image = poster or LOGO_IMAGE
    json_ld = f"  {_json_ld_script(movie, poster, rated)}\n" if with_json_ld else ""
    return f"""<!DOCTYPE html>
<html lang="en-US" xmlns:og="http://opengraphprotocol.org/schema/">
<head>
  <meta charset="utf-8">
  <title>{escape(movie.title + year, quote=False)} - IMDb</title>
  <meta name="description" content="{escape(description)}">
  <meta property="og:url" content="{escape(title_url)}">
  <meta property="og:site_name" content="IMDb">
  <meta property="og:title" content="{escape(og_title)}">
  <meta property="og:type" content="video.movie">
  <meta property="og:image" content="{escape(og_image)}">
  <meta property="og:image:height" content="{1500 if poster else 1000}">
  <meta property="og:image:width" content="1000">
  <meta property="og:locale" content="en_US">
  <meta property="twitter:image" content="{escape(og_image)}">
  <link rel="canonical" href="{escape(title_url)}">
  <meta property="imdb:pageType" content="title">
  <meta property="imdb:subPageType" content="main">
  <meta property="imdb:pageConst" content="{escape(movie.imdb_id)}">
{json_ld}</head>
"""


def _json_ld_script(movie: Movie, poster: str | None, rated: bool) -> str:
    """IMDb's JSON-LD, whose strings are HTML-entity-escaped; datePublished is a (later) regional release date."""
    work: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Movie",
        "url": f"https://www.imdb.com/title/{movie.imdb_id}/",
        "name": _entities(movie.title),
    }
    if poster:
        work["image"] = _entities(poster)
    work["description"] = _entities(f"{movie.title}, a replica of an IMDb title page.")
    if rated:
        work["aggregateRating"] = {"@type": "AggregateRating", "bestRating": 10, "worstRating": 1}
        work["aggregateRating"]["ratingValue"] = movie.rating
        if movie.votes is not None:
            work["aggregateRating"]["ratingCount"] = movie.votes
    work["genre"] = [_entities(genre) for genre in movie.genres]
    if movie.year is not None:
        work["datePublished"] = f"{movie.year + 1}-03-02"
    return f'<script type="application/ld+json">{_script_json(work)}</script>'


def _next_data_script(movie: Movie, poster: str | None, rated: bool) -> str:
    genres = {"genres": [{"text": genre, "id": genre} for genre in movie.genres]}
    if rated:
        ratings = {"aggregateRating": movie.rating, "voteCount": movie.votes}
    else:
        ratings = {"aggregateRating": None, "voteCount": movie.votes if movie.rating is None else 0}
    image = None
    if poster:
        caption = {"plainText": movie.title + (f" ({movie.year})" if movie.year is not None else "")}
        image = {"id": _media_id(movie), "url": poster, "caption": caption}
    above = {
        "id": movie.imdb_id,
        "titleText": {"text": movie.title},
        "originalTitleText": {"text": movie.title},
        "titleType": {"id": "movie", "text": "Movie", "isSeries": False, "isEpisode": False, "canHaveEpisodes": False},
        "releaseYear": {"year": movie.year, "endYear": None} if movie.year is not None else None,
        "ratingsSummary": ratings,
        "genres": genres,
        "primaryImage": image,
    }
    page_props = {"tconst": movie.imdb_id, "aboveTheFoldData": above, "mainColumnData": {"id": movie.imdb_id}}
    page_props["mainColumnData"]["genres"] = genres
    data = {"props": {"pageProps": page_props}, "page": "/title/[tconst]", "query": {"tconst": movie.imdb_id}}
    data["buildId"] = "replica"
    return f'<script id="__NEXT_DATA__" type="application/json">{_script_json(data)}</script>\n'


def _hero(movie: Movie, poster: str | None, rated: bool) -> str:
    """The visible hero section: title, year, rating bar, poster (or a placeholder icon) and genre chips."""
    id_ = escape(movie.imdb_id)
    year = (
        ""
        if movie.year is None
        else (
            '     <li role="presentation" class="ipc-inline-list__item"><a class="ipc-link ipc-link--baseAlt '
            f'ipc-link--inherit-color" href="/title/{id_}/releaseinfo?ref_=tt_ov_rdat">{movie.year}</a></li>\n'
        )
    )
    chips = "".join(
        f'       <a class="ipc-chip ipc-chip--on-baseAlt" href="/interest/in{index:07d}/?ref_=tt_ov_in_{index}">'
        f'<span class="ipc-chip__text">{escape(genre)}</span></a>\n'
        for index, genre in enumerate(movie.genres, start=1)
    )
    return f"""<body id="styleguide-v2">
<div id="__next">
 <main role="main">
  <section class="ipc-page-background ipc-page-background--base sc-c41b9732-0 NeSef" data-testid="hero-parent">
   <div class="sc-491663c0-3 bdjVSf">
    <h1 textlength="{len(movie.title)}" data-testid="hero__pageTitle" class="sc-d8941411-0 dxeMrU"><span \
class="hero__primary-text" data-testid="hero__primary-text">{escape(movie.title)}</span></h1>
    <ul class="ipc-inline-list ipc-inline-list--show-dividers sc-d8941411-2 cdJsTz baseAlt" role="presentation">
{year}    </ul>
{_rating_bar(movie) if rated else ""}   </div>
   <div class="sc-491663c0-4 yjUiO">
{_poster(movie, poster)}    <div class="sc-491663c0-10 rbXFE">
     <div class="ipc-chip-list--baseAlt ipc-chip-list sc-e6498a9c-4 dfXgRi" data-testid="interests">
      <div class="ipc-chip-list__scroller">
{chips}      </div>
     </div>
    </div>
   </div>
  </section>
 </main>
</div>
"""


def _rating_bar(movie: Movie) -> str:
    return f"""    <div data-testid="hero-rating-bar__aggregate-rating" class="sc-3a4309f8-0 fjtZsE">
     <a class="ipc-btn ipc-btn--single-padding ipc-btn--center-align-content ipc-btn--default-height ipc-text-button \
sc-acdbf0f3-2 bEFqOO" aria-label="View User Ratings" href="/title/{escape(movie.imdb_id)}/ratings/?ref_=tt_ov_rat">
      <span class="ipc-btn__text"><div class="sc-acdbf0f3-3 dTiYRw">
       <div data-testid="hero-rating-bar__aggregate-rating__score" class="sc-acdbf0f3-1 kCTJoV"><span \
class="sc-acdbf0f3-0 haeNJV">{movie.rating}</span><span>/<!-- -->10</span></div>
       <div class="sc-acdbf0f3-4 eVZpvn"></div><div class="sc-acdbf0f3-6 kzGfxd">{_abbreviated(movie.votes)}</div>
      </div></span>
     </a>
    </div>
"""


def _poster(movie: Movie, poster: str | None) -> str:
    classes = "ipc-media ipc-media--poster-27x40 ipc-image-media-ratio--poster-27x40 ipc-media--baseAlt"
    if poster:
        alt = movie.title + (f" ({movie.year})" if movie.year is not None else "")
        media = (
            f'<img alt="{escape(alt)}" class="ipc-image" loading="eager" src="{escape(poster)}" '
            f'srcset="{escape(poster)} 190w" sizes="50vw, (min-width: 480px) 34vw" width="190">'
        )
    else:
        media = '<svg class="ipc-icon ipc-icon--movie ipc-media__icon" width="24" height="24" role="presentation"/>'
    overlay = (
        f'<a class="ipc-lockup-overlay ipc-focusable" href="/title/{escape(movie.imdb_id)}/mediaviewer/'
        f'{_media_id(movie)}/?ref_=tt_ov_i" aria-label="{escape(f"View ’{movie.title}’ Poster")}">'
        '<div class="ipc-lockup-overlay__screen"></div></a>'
        if poster
        else ""
    )
    return f"""    <div class="ipc-poster ipc-poster--baseAlt ipc-poster--dynamic-width ipc-sub-grid-item \
ipc-sub-grid-item--span-2" role="group" data-testid="hero-media__poster">
     <div class="{classes} ipc-media--poster-l ipc-poster__poster-image ipc-media__img" style="width:100%">{media}</div>
     {overlay}
    </div>
"""


def _media_id(movie: Movie) -> str:
    return "rm" + movie.imdb_id[2:].rjust(9, "0")


def _abbreviated(votes: int | None) -> str:
    """IMDb's rounded vote count: 950, 7.4K, 105K, 2.9M."""
    if votes is None or votes < 1_000:
        return str(votes or 0)
    for scale, suffix in ((1_000_000, "M"), (1_000, "K")):
        if votes >= scale:
            value = votes / scale
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(votes)


def _entities(text: str) -> str:
    """HTML-entity-escape a string the way IMDb's JSON-LD does (&apos; and &quot; included)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")).replace(
        "'", "&apos;"
    )


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: no "</" (so no "</script>") and no "<!--"; both only occur inside strings."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


class ReplicaServer:
    """Serves a catalog as IMDb would over http://127.0.0.1:<port> (a daemon thread); a context manager.

    Routes: `GET /title/<id>/` (also without the slash, with a query string, and `/title/<id>/reference`): the
    title page of a catalog movie (200), 404 for other ids, and for ids in `bot_wall` the AWS WAF challenge
    (202, empty body, `x-amzn-waf-action: challenge`); `GET <image_host_path><id>.jpg`: the poster file.
    Pages name posters as `image_base + image_host_path + <id>.jpg` (IMDb's image host by default, which a client
    maps to this server). `variants` maps ids to a `title_page_html` variant (default "full").
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        image_host_path: str = "/images/M/",
        bot_wall: Iterable[str] = (),
        variants: Mapping[str, str] | None = None,
        image_base: str | None = None,
        port: int = 0,
    ) -> None:
        if not (image_host_path.startswith("/") and image_host_path.endswith("/")):
            raise ValueError(f"image_host_path {image_host_path!r} must start and end with '/'")
        self.variants = dict(variants or {})
        unknown = sorted({variant for variant in self.variants.values() if variant not in VARIANTS})
        if unknown:
            raise ValueError(f"unknown variant(s) {', '.join(unknown)}; expected one of {', '.join(VARIANTS)}")
        self.catalog = catalog
        self.image_host_path = image_host_path
        self.image_base = (image_base or DEFAULT_IMAGE_BASE).rstrip("/")
        """Read per request, so it may be set to `url` once started (see `main`)."""
        self.bot_wall = frozenset(bot_wall)
        self.port = port
        self._image_path = re.compile(re.escape(image_host_path) + r"(tt\d{7,8})\.jpg")
        self._requests: list[str] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, once started."""
        if self._server is None:
            raise RuntimeError("the replica server is not running; call start() or use it in a with block")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[str]:
        """The paths (with query strings) of the requests served so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def poster_url(self, imdb_id: str) -> str:
        """The poster URL the title pages name (on `image_base`, not necessarily this server)."""
        return f"{self.image_base}{self.image_host_path}{imdb_id}.jpg"

    def start(self) -> ReplicaServer:
        if self._server is None:
            self._server = _Server(("127.0.0.1", self.port), _Handler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="imdb-replica", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _record(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)

    def _respond(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a GET of `path` (no query string)."""
        if match := _TITLE_PATH.fullmatch(path):
            return self._title(match.group(1))
        if match := self._image_path.fullmatch(path):
            return self._image(match.group(1))
        return _not_found()

    def _title(self, imdb_id: str) -> tuple[int, dict[str, str], bytes]:
        if imdb_id in self.bot_wall:
            return 202, {"Content-Type": "text/html; charset=utf-8", "x-amzn-waf-action": "challenge"}, b""
        if imdb_id not in self.catalog:
            return _not_found()
        movie = self.catalog.get(imdb_id)
        page = title_page_html(movie, self.poster_url(imdb_id), variant=self.variants.get(imdb_id, "full"))
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode("utf-8")

    def _image(self, imdb_id: str) -> tuple[int, dict[str, str], bytes]:
        if imdb_id not in self.catalog:
            return _not_found()
        path = self.catalog.poster_path(self.catalog.get(imdb_id))
        try:
            body = path.read_bytes()
        except OSError:
            return _not_found()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return 200, {"Content-Type": content_type, "Cache-Control": "max-age=31536000"}, body


def _not_found() -> tuple[int, dict[str, str], bytes]:
    return 404, {"Content-Type": "text/html; charset=utf-8"}, _NOT_FOUND_PAGE.encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], replica: ReplicaServer):
        self.replica = replica
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "Server"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        replica = self.server.replica
        replica._record(self.path)
        status, headers, body = replica._respond(urlsplit(self.path).path)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and demos do not want a line per request on stderr."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scraper.replica", description=__doc__)
    parser.add_argument("catalog", type=Path, metavar="CATALOG_DIR", help="catalog directory to serve")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks one)")
    parser.add_argument(
        "--image-base", help="host the pages name posters on (default: this server, so a browser shows them)"
    )
    args = parser.parse_args(argv)
    catalog = read_catalog(args.catalog)
    with ReplicaServer(catalog, image_base=args.image_base, port=args.port) as server:
        if args.image_base is None:
            server.image_base = server.url
        print(f"Serving {len(catalog)} titles at {server.url}, e.g. {server.url}/title/{catalog.movies[0].imdb_id}/")
        print("Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print()


if __name__ == "__main__":
    main()
