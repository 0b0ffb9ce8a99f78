"""The replica's HTTP server: routes search pages, "50 more" (GraphQL), title pages and poster images on
127.0.0.1, with the failure modes switchable while it serves."""

from __future__ import annotations

import dataclasses
import json
import mimetypes
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from catalog import Catalog, Movie
from catalog.movie import IMDB_ID
from scraper.search import PAPER_GENRES
from tools.replica.pages import _TITLE_PATH, DEFAULT_IMAGE_BASE, VARIANTS, abbreviate_votes, title_page_html
from tools.replica.search import (
    _PAGE_ROUTES,
    _POSTER_SIZES,
    _SEARCH_PATH,
    _SEE_MORE_SCRIPT,
    _V1_IMAGE,
    DEFAULT_PAGE_SIZE,
    DEFAULT_RESULT_CAP,
    MAX_COUNT,
    SEARCH_TEMPLATES,
    SEE_MORE_SCRIPT_PATH,
    Answer,
    FailureModes,
    _caption,
    _certificate,
    _decode_cursor,
    _encode_cursor,
    _hash,
    _is_browser_user_agent,
    _json_answer,
    _not_found,
    _plot,
    _Query,
    _runtime_minutes,
    _runtime_text,
    _SearchPage,
    _transformed_jpeg,
    _wall_answer,
    _year_of,
    fill_template,
    poster_key,
)


class ReplicaServer:
    """Serves a catalog as IMDb would over http://127.0.0.1:<port> (a daemon thread); a context manager.

    Routes: `GET /search/title/?title_type=feature&genres=<slug>&sort=num_votes,desc[&release_date=A,B][&count=N]`:
    an advanced title search page (the first `count`, default `page_size`, results, `__NEXT_DATA__` and a "50 more"
    button whose script pages through `GET /graphql?operationName=AdvancedTitleSearch&variables=<json>`); no
    result past `result_cap` is ever returned. `GET /title/<id>/` (also without the slash, with a query string, and
    `/title/<id>/reference`): the title page of a catalog movie, 404 for other ids, and for ids in `bot_wall` the AWS
    WAF challenge (202, empty body, `x-amzn-waf-action: challenge`). `GET <image_host_path><id>.jpg`: the poster file;
    `GET <image_host_path><key>@._V1_<modifiers>.jpg` (`poster_key`): the poster as a JPEG, scaled to the `UX<w>`
    / `UY<h>` (or `SX`/`SY`) and cropped to the `CR<x>,<y>,<w>,<h>` asked for. Title pages name posters as
    `image_base + image_host_path + <id>.jpg`, search pages as `image_base + image_host_path + <key>@._V1_....jpg`
    (IMDb's image host by default, which a client maps to this server). `variants` maps ids to a `title_page_html`
    variant (default "full"). `failures` (see FailureModes) can be changed while serving with `configure`;
    `require_browser_user_agent` answers 403 to clients that do not send a desktop browser's User-Agent.
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
        result_cap: int = DEFAULT_RESULT_CAP,
        page_size: int = DEFAULT_PAGE_SIZE,
        failures: FailureModes | None = None,
        require_browser_user_agent: bool = False,
    ) -> None:
        if not (image_host_path.startswith("/") and image_host_path.endswith("/")):
            raise ValueError(f"image_host_path {image_host_path!r} must start and end with '/'")
        if result_cap < 1 or not 1 <= page_size <= MAX_COUNT:
            raise ValueError(f"result_cap must be positive and page_size between 1 and {MAX_COUNT}")
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
        self.result_cap = result_cap
        self.page_size = page_size
        self.require_browser_user_agent = require_browser_user_agent
        self._image_path = re.compile(re.escape(image_host_path) + rf"({IMDB_ID.pattern})\.jpg")
        self._keys = {poster_key(movie.imdb_id): movie.imdb_id for movie in catalog}
        self._genre_names = {genre.lower(): genre for genre in (*PAPER_GENRES, *(g for m in catalog for g in m.genres))}
        self._see_more_script = _SEE_MORE_SCRIPT.read_bytes()
        self._failures = failures or FailureModes()
        self._wall_from = self._failures.wall_after
        self._page_requests = 0
        self._requests: list[str] = []
        self._counts: Counter[str] = Counter()
        self._results: dict[_Query, list[Movie]] = {}
        self._images: dict[tuple[str, str], bytes] = {}
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

    @property
    def request_counts(self) -> dict[str, int]:
        """How many requests each route got: "search", "graphql", "title", "image", "script" and "other"."""
        with self._lock:
            return dict(self._counts)

    @property
    def failures(self) -> FailureModes:
        with self._lock:
            return self._failures

    def configure(self, **changes: Any) -> FailureModes:
        """Change failure modes (FailureModes fields) while serving; `wall_after` counts page requests from now."""
        with self._lock:
            self._failures = dataclasses.replace(self._failures, **changes)
            if "wall" in changes or "wall_after" in changes:
                self._wall_from = self._page_requests + self._failures.wall_after
            return self._failures

    def poster_url(self, imdb_id: str) -> str:
        """The poster URL the title pages name (on `image_base`, not necessarily this server)."""
        return f"{self.image_base}{self.image_host_path}{imdb_id}.jpg"

    def original_image_url(self, imdb_id: str) -> str:
        """The full-size `_V1_` URL of a title's poster, as search results and `__NEXT_DATA__` name it."""
        at = "@@" if _hash(imdb_id, "at") % 7 == 0 else "@"
        return f"{self.image_base}{self.image_host_path}{poster_key(imdb_id)}{at}._V1_.jpg"

    def search_results(self, genre: str, first_year: int | None = None, last_year: int | None = None) -> list[Movie]:
        """Every catalog movie a feature search for `genre` (and years) matches, by votes, before the result cap."""
        name = self._genre_names.get(genre.lower(), genre)
        return list(self._matching(_Query((name,), first_year, last_year, feature=True, descending=True)))

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

    # -- routing -----------------------------------------------------------------------------------------------------

    def _route(self, path: str) -> str:
        if _SEARCH_PATH.fullmatch(path):
            return "search"
        if path == "/graphql":
            return "graphql"
        if _TITLE_PATH.fullmatch(path):
            return "title"
        if path == SEE_MORE_SCRIPT_PATH:
            return "script"
        if path.startswith(self.image_host_path):
            return "image"
        return "other"

    def _admit(self, target: str, route: str, user_agent: str) -> tuple[FailureModes, Answer | None]:
        """Record a request; the failure modes to serve it under, and the wall's answer when the wall is up."""
        with self._lock:
            self._requests.append(target)
            self._counts[route] += 1
            failures = self._failures
            walled = failures.wall is not None and self._page_requests >= self._wall_from
            if route in _PAGE_ROUTES:
                self._page_requests += 1
        if route in ("script", "other"):
            return failures, None
        if walled and failures.wall is not None:
            return failures, _wall_answer(failures.wall)
        if self.require_browser_user_agent and not _is_browser_user_agent(user_agent):
            return failures, _wall_answer("forbidden")
        return failures, None

    def _answer(self, target: str, user_agent: str = "") -> tuple[Answer, float]:
        """The response to a GET of `target` (path and query), and how long to wait before sending it."""
        parts = urlsplit(target)
        route = self._route(parts.path)
        failures, wall = self._admit(target, route, user_agent)
        delay = failures.delay + (failures.graphql_latency if route == "graphql" else 0.0)
        if wall is not None:
            return wall, delay
        return self._respond(parts.path, parts.query, failures), delay

    def _respond(self, path: str, query: str, failures: FailureModes) -> Answer:
        """(status, headers, body) for a GET of `path` with `query`, wall aside."""
        if _SEARCH_PATH.fullmatch(path) and query:
            return self._search_page(parse_qs(query, keep_blank_values=True), failures)
        if path == "/graphql":
            return self._graphql(parse_qs(query, keep_blank_values=True), failures)
        if path == SEE_MORE_SCRIPT_PATH:
            headers = {"Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "max-age=600"}
            return 200, headers, self._see_more_script
        if match := _TITLE_PATH.fullmatch(path):
            return self._title(match.group(1), failures)
        if match := self._image_path.fullmatch(path):
            return self._image(match.group(1), failures)
        if path.startswith(self.image_host_path) and (match := _V1_IMAGE.fullmatch(path[len(self.image_host_path) :])):
            return self._sized_image(match.group("key"), match.group("modifiers"), failures)
        return _not_found()

    # -- title pages and images --------------------------------------------------------------------------------------

    def _title(self, imdb_id: str, failures: FailureModes) -> Answer:
        if imdb_id in self.bot_wall:
            return _wall_answer("challenge")
        if imdb_id not in self.catalog:
            return _not_found()
        movie = self.catalog.get(imdb_id)
        variant = "no_poster" if imdb_id in failures.no_poster else self.variants.get(imdb_id, "full")
        page = title_page_html(movie, self.poster_url(imdb_id), variant=variant)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode("utf-8")

    def _image(self, imdb_id: str, failures: FailureModes) -> Answer:
        if imdb_id not in self.catalog or imdb_id in failures.no_poster:
            return _not_found()
        path = self.catalog.poster_path(self.catalog.get(imdb_id))
        try:
            body = path.read_bytes()
        except OSError:
            return _not_found()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return 200, {"Content-Type": content_type, "Cache-Control": "max-age=31536000"}, body

    def _sized_image(self, key: str, modifiers: str, failures: FailureModes) -> Answer:
        imdb_id = self._keys.get(key, key)
        if imdb_id not in self.catalog or imdb_id in failures.no_poster:
            return _not_found()
        with self._lock:
            body = self._images.get((imdb_id, modifiers))
        if body is None:
            try:
                body = _transformed_jpeg(self.catalog.poster_path(self.catalog.get(imdb_id)), modifiers)
            except OSError:
                return _not_found()
            with self._lock:
                if len(self._images) >= 512:
                    self._images.clear()
                self._images[(imdb_id, modifiers)] = body
        return 200, {"Content-Type": "image/jpeg", "Cache-Control": "max-age=31536000"}, body

    # -- search ------------------------------------------------------------------------------------------------------

    def _matching(self, query: _Query) -> list[Movie]:
        with self._lock:
            cached = self._results.get(query)
        if cached is None:
            found = [movie for movie in self.catalog if query.matches(movie)]
            sign = -1 if query.descending else 1
            cached = sorted(found, key=lambda movie: (sign * (movie.votes or 0), movie.imdb_id))
            with self._lock:
                self._results[query] = cached
        return cached

    def _query_from_url(self, params: dict[str, list[str]]) -> _Query:
        genres = tuple(
            self._genre_names.get(slug.strip().lower(), slug.strip())
            for value in params.get("genres", [])
            for slug in value.split(",")
            if slug.strip()
        )
        dates = (params.get("release_date", [""])[0].split(",") + [""])[:2]
        title_types = {kind for value in params.get("title_type", ["feature"]) for kind in value.split(",")}
        sort = params.get("sort", ["num_votes,desc"])[0].lower()
        first_year, last_year = _year_of(dates[0]), _year_of(dates[1])
        return _Query(genres, first_year, last_year, "feature" in title_types, not sort.endswith("asc"))

    def _query_from_variables(self, variables: Mapping[str, Any]) -> _Query:
        genres = (variables.get("genreConstraint") or {}).get("allGenreIds") or []
        dates = (variables.get("releaseDateConstraint") or {}).get("releaseDateRange") or {}
        types = (variables.get("titleTypeConstraint") or {}).get("anyTitleTypeIds") or []
        return _Query(
            tuple(self._genre_names.get(str(genre).lower(), str(genre)) for genre in genres),
            _year_of(dates.get("start")),
            _year_of(dates.get("end")),
            "movie" in types,
            str(variables.get("sortOrder", "DESC")).upper() != "ASC",
        )

    def _page(self, query: _Query, start: int, size: int) -> tuple[list[Movie], int, bool]:
        """(results from `start`, at most `size`, never past the cap; the uncapped total; whether more follow)."""
        matching = self._matching(query)
        reachable = matching[: self.result_cap]
        page = reachable[start : start + size]
        return page, len(matching), start + len(page) < len(reachable)

    def _search_page(self, params: dict[str, list[str]], failures: FailureModes) -> Answer:
        query = self._query_from_url(params)
        try:
            count = min(MAX_COUNT, max(1, int(params.get("count", [str(self.page_size)])[0])))
        except ValueError:
            count = self.page_size
        movies, total, more = self._page(query, 0, count)
        page = _SearchPage(self, query, movies, total, more, failures)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.html().encode("utf-8")

    def _graphql(self, params: dict[str, list[str]], failures: FailureModes) -> Answer:
        if params.get("operationName", [""])[0] != "AdvancedTitleSearch":
            return _json_answer(400, {"errors": [{"message": "unknown operationName"}]})
        try:
            variables = json.loads(params.get("variables", ["{}"])[0])
            if not isinstance(variables, dict):
                raise ValueError("variables must be an object")
            start = _decode_cursor(variables.get("after"))
            first = min(MAX_COUNT, max(1, int(variables.get("first") or self.page_size)))
        except (ValueError, TypeError) as error:
            return _json_answer(400, {"errors": [{"message": f"bad variables: {error}"}]})
        query = self._query_from_variables(variables)
        movies, total, more = self._page(query, start, first)
        edges = [{"node": {"title": self._graphql_title(movie, failures)}} for movie in movies]
        end_cursor = _encode_cursor(start + len(movies) - 1) if movies else None
        search = {"edges": edges, "pageInfo": {"hasNextPage": more, "endCursor": end_cursor}, "total": total}
        return _json_answer(200, {"data": {"advancedTitleSearch": search}})

    def _image_of(self, movie: Movie, failures: FailureModes) -> dict[str, Any] | None:
        if movie.imdb_id in failures.no_poster:
            return None
        return {"url": self.original_image_url(movie.imdb_id), "width": 1000, "height": 1473}

    def _graphql_title(self, movie: Movie, failures: FailureModes) -> dict[str, Any]:
        """A result as IMDb's GraphQL names its fields (`titleText.text`, `ratingsSummary`, `titleGenres`...)."""
        image = self._image_of(movie, failures)
        runtime, certificate = _runtime_minutes(movie.imdb_id), _certificate(movie.imdb_id)
        return {
            "id": movie.imdb_id,
            "titleText": {"text": movie.title},
            "originalTitleText": {"text": movie.title},
            "titleType": {"id": "movie", "text": "Movie", "canHaveEpisodes": False},
            "releaseYear": {"year": movie.year, "endYear": None} if movie.year is not None else None,
            "runtime": {"seconds": runtime * 60} if runtime else None,
            "certificate": {"rating": certificate} if certificate else None,
            "ratingsSummary": {"aggregateRating": movie.rating, "voteCount": movie.votes or 0},
            "titleGenres": {"genres": [{"genre": {"text": genre}} for genre in movie.genres]},
            "plot": {"plotText": {"plainText": _plot(movie)}},
            "primaryImage": image and {**image, "caption": {"plainText": _caption(movie)}},
        }

    def _next_data_item(self, movie: Movie, failures: FailureModes) -> dict[str, Any]:
        """A result as the search page's `__NEXT_DATA__` has it (flat: `titleText`, `ratingSummary`, `genres`...)."""
        image = self._image_of(movie, failures)
        runtime, certificate = _runtime_minutes(movie.imdb_id), _certificate(movie.imdb_id)
        return {
            "titleId": movie.imdb_id,
            "titleText": movie.title,
            "originalTitleText": movie.title,
            "titleType": {"id": "movie", "text": "Movie", "canHaveEpisodes": False},
            "releaseYear": movie.year,
            "endYear": None,
            "releaseDate": {"day": 1 + _hash(movie.imdb_id, "day") % 28, "month": 1 + _hash(movie.imdb_id, "m") % 12}
            | {"year": movie.year},
            "runtime": runtime * 60 if runtime else None,
            "certificate": certificate,
            "ratingSummary": {"aggregateRating": movie.rating, "voteCount": movie.votes or 0},
            "metascore": None,
            "genres": list(movie.genres),
            "plot": _plot(movie),
            "primaryImage": image and {**image, "caption": _caption(movie)},
            "principalCredits": [],
            "series": None,
        }

    def _item_html(self, movie: Movie, position: int, failures: FailureModes) -> str:
        """One result's <li>, as the "50 more" script renders it from `_graphql_title`."""
        spans = [str(movie.year)] if movie.year is not None else []
        runtime, certificate = _runtime_minutes(movie.imdb_id), _certificate(movie.imdb_id)
        spans += ([_runtime_text(runtime)] if runtime else []) + ([certificate] if certificate else [])
        metadata = "".join(fill_template(SEARCH_TEMPLATES["metadata"], {"text": escape(text)}) for text in spans)
        rating = ""
        if movie.rating is not None:
            values = {"rating": f"{movie.rating:.1f}", "votes": abbreviate_votes(movie.votes or 0)}
            rating = fill_template(SEARCH_TEMPLATES["rating"], values)
        values = {
            "id": escape(movie.imdb_id),
            "n": str(position),
            "title": escape(movie.title),
            "metadata": metadata,
            "rating": rating,
            "poster": self._poster_html(movie, failures),
            "plot": escape(_plot(movie)),
        }
        return fill_template(SEARCH_TEMPLATES["item"], values)

    def _poster_html(self, movie: Movie, failures: FailureModes) -> str:
        if movie.imdb_id in failures.no_poster:
            return SEARCH_TEMPLATES["poster_none"]
        original = self.original_image_url(movie.imdb_id)
        sized = [(width, original.replace("._V1_.jpg", suffix)) for width, suffix in _POSTER_SIZES]
        values = {
            "alt": escape(_caption(movie)),
            "src": escape(sized[0][1]),
            "srcset": escape(", ".join(f"{url} {width}w" for width, url in sized)),
        }
        return fill_template(SEARCH_TEMPLATES["poster_image"], values)


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
        (status, headers, body), delay = self.server.replica._answer(self.path, self.headers.get("User-Agent", ""))
        if delay:
            time.sleep(delay)
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
