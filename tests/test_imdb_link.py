"""A pasted IMDb link, end to end over real loopback HTTP: the app reads an offline replica of IMDb's title pages
(IMDB_OVERRIDES maps IMDb's hosts to it), downloads the poster and recommends; links elsewhere, unknown titles, the
bot wall and titles without a poster get clear answers and save nothing."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

import scraper.fetch
from app import create_app
from catalog import Catalog, Movie
from tests.conftest import png_header_only
from tools.replica import ReplicaServer

OUTSIDE = ["tt98000001", "tt98000002", "tt98000003", "tt98000004"]  # movies IMDb has and the catalog does not
NO_POSTER, BOT_WALLED = OUTSIDE[2], OUTSIDE[3]


@pytest.fixture
def imdb(demo_catalog) -> Iterator[ReplicaServer]:
    """IMDb as the app sees it: the catalog's first movies under other ids, one without a poster, one walled."""
    movies = [replace(movie, imdb_id=imdb_id) for movie, imdb_id in zip(demo_catalog.movies, OUTSIDE, strict=False)]
    outside = Catalog(demo_catalog.directory, movies)
    with ReplicaServer(outside, bot_wall=[BOT_WALLED], variants={NO_POSTER: "no_poster"}) as replica:
        yield replica


@pytest.fixture
def linked_client(app, client, imdb: ReplicaServer):
    overrides = {"www.imdb.com": imdb.url, "m.media-amazon.com": imdb.url}
    linked = create_app({**app.config, "IMDB_OVERRIDES": overrides, "IMDB_TIMEOUT_SECONDS": 5})
    linked.test_client_class = type(client)
    return linked.test_client()


def saved_recommendations(app) -> list[tuple]:
    with sqlite3.connect(app.config["DATABASE"]) as database:
        return database.execute(
            "SELECT query_kind, query_imdb_id, query_image IS NOT NULL FROM recommendations"
        ).fetchall()


def test_a_pasted_link_downloads_the_poster_and_recommends(linked_client, imdb, app, demo_catalog) -> None:
    response = linked_client.post("/recommend", data={"imdb_url": f"https://m.imdb.com/title/{OUTSIDE[0]}/?ref_=x"})
    assert response.status_code == 303, response.get_data(as_text=True)
    page = linked_client.get(response.headers["Location"]).get_data(as_text=True)
    assert len(re.findall(r'<li class="card">', page)) == 5
    assert f"{OUTSIDE[0]} on IMDb" in page and re.search(r"/results/\d+/query.jpg", page)
    assert imdb.requests == [f"/title/{OUTSIDE[0]}/", f"/images/M/{OUTSIDE[0]}.jpg"]
    assert saved_recommendations(app) == [("imdb", OUTSIDE[0], 1)]


def test_a_link_to_a_catalog_movie_uses_the_local_poster(linked_client, imdb, app, demo_catalog) -> None:
    movie = demo_catalog.movies[2]
    response = linked_client.post("/recommend", data={"imdb_url": f"www.imdb.com/title/{movie.imdb_id}/"})
    assert response.status_code == 303
    page = linked_client.get(response.headers["Location"]).get_data(as_text=True)
    shown = re.findall(r'<h3><a href="https://www.imdb.com/title/(tt\d+)/"', page)
    assert len(shown) == 5 and movie.imdb_id not in shown
    assert imdb.requests == []  # nothing fetched: catalog posters are local
    assert saved_recommendations(app) == [("imdb", movie.imdb_id, 0)]


@pytest.mark.parametrize(
    ("link", "status", "message"),
    [
        ("https://example.com/title/tt0111161/", 400, "paste a link to an IMDb title page"),
        ("http://127.0.0.1:5000/title/tt0111161/", 400, "paste a link to an IMDb title page"),
        ("https://www.imdb.com/name/nm0000151/", 400, "but not a film"),
        ("https://www.imdb.com/title/tt97999999/", 404, "IMDb has no title tt97999999"),
        (f"https://www.imdb.com/title/{BOT_WALLED}/", 502, "upload the image instead"),
        (f"https://www.imdb.com/title/{NO_POSTER}/", 422, "IMDb has no poster for"),
    ],
)
def test_bad_links_get_a_clear_answer_and_save_nothing(linked_client, imdb, app, link, status, message) -> None:
    response = linked_client.post("/recommend", data={"imdb_url": link})
    text = response.get_data(as_text=True)
    assert response.status_code == status
    assert message.lower() in text.lower()
    assert f'value="{link}"' in text  # the form keeps what was pasted
    assert saved_recommendations(app) == []
    if status == 400:
        assert imdb.requests == []  # refused before any request


def test_the_bot_wall_message_explains_what_happened(linked_client) -> None:
    text = linked_client.post("/recommend", data={"imdb_url": f"https://www.imdb.com/title/{BOT_WALLED}/"}).get_data(
        as_text=True
    )
    assert "IMDb refused" in text


def test_without_overrides_a_link_never_reaches_the_replica(app, client, imdb, monkeypatch) -> None:
    """The default settings fetch only from IMDb's real hosts over HTTPS, every address vetted: even when IMDb's
    name resolves to loopback, where the replica listens, nothing is fetched and nothing saved."""
    monkeypatch.setattr(scraper.fetch, "_system_resolve", lambda host, port: ["127.0.0.1"])
    response = client.post("/recommend", data={"imdb_url": f"https://www.imdb.com/title/{OUTSIDE[0]}/"})
    assert response.status_code == 502
    assert "resolves to 127.0.0.1" in response.get_data(as_text=True)  # refused before connecting, not unreachable
    assert imdb.requests == []
    assert saved_recommendations(app) == []


def test_a_links_page_and_poster_share_one_deadline(imdb, demo_catalog) -> None:
    """Each download used to get its own deadline, so a link took up to twice what the time-out promised."""
    from app.imdb import ImdbError, fetch_imdb_poster

    imdb.configure(delay=0.5)
    overrides = {"www.imdb.com": imdb.url, "m.media-amazon.com": imdb.url}
    link = f"https://www.imdb.com/title/{OUTSIDE[0]}/"
    settings = {"overrides": overrides, "timeout": 5.0, "max_bytes": 10_000_000}
    assert fetch_imdb_poster(link, **settings).image  # its own deadline: 10 s
    with pytest.raises(ImdbError, match=f"did not send the page and poster of {OUTSIDE[0]}") as late:
        fetch_imdb_poster(link, **settings, ends_at=time.monotonic() + 0.8)  # the page in 0.5 s, the poster not
    assert late.value.status == 504 and f"/title/{OUTSIDE[0]}/" in imdb.requests[-2:]


def test_the_links_of_a_comparison_share_one_deadline(app, client, imdb) -> None:
    """Four links, each in time alone (a page and a poster, 0.6 s each, against a 4 s deadline), are not in time
    together: a comparison's links used to take a deadline each, a web thread for up to six times two time-outs."""
    overrides = {"www.imdb.com": imdb.url, "m.media-amazon.com": imdb.url}
    linked = create_app({**app.config, "IMDB_OVERRIDES": overrides, "IMDB_TIMEOUT_SECONDS": 2})
    linked.test_client_class = type(client)
    imdb.configure(delay=0.6)
    links = [f"https://www.imdb.com/title/{imdb_id}/" for imdb_id in OUTSIDE[:2]]
    headers = {"X-Requested-With": "pytest"}
    assert linked.test_client().post("/api/compare", data={"imdb_url": links}, headers=headers).status_code == 202
    answer = linked.test_client().post("/api/compare", data={"imdb_url": [*links, *links]}, headers=headers)
    assert answer.status_code == 504 and "within 4 seconds (the time a request gives IMDb" in answer.get_json()["error"]


def test_a_page_the_reader_fails_on_in_an_unforeseen_way_is_a_502(linked_client, app, monkeypatch, caplog) -> None:
    """The page comes from the network: whatever the reader raises about it is IMDb's answer we cannot use (502,
    logged with its traceback), not our crash (500)."""
    from app import imdb as app_imdb

    def unforeseen(html: str, imdb_id: str | None = None):
        raise KeyError("a case the reader has not met")

    monkeypatch.setattr(app_imdb, "read_title_page", unforeseen)
    response = linked_client.post(
        "/api/recommend",
        data={"imdb_url": f"https://www.imdb.com/title/{OUTSIDE[0]}/"},
        headers={"X-Requested-With": "pytest"},
    )
    assert response.status_code == 502 and "could not read IMDb's page" in response.get_json()["error"]
    assert any(record.exc_info and record.exc_info[0] is KeyError for record in caplog.records)
    assert saved_recommendations(app) == []


UNREADABLE_POSTERS = {
    "tt0000003": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="15"><rect width="10" height="15"/></svg>',
    "tt0000004": png_header_only(6000, 9000),
}


@pytest.mark.parametrize(
    ("imdb_id", "problem"),
    [
        ("tt0000003", "IMDb's poster for tt0000003 is not an image we can read (JPEG, PNG, WEBP, GIF)"),
        ("tt0000004", "IMDb's poster for tt0000004 is too large: 6000 x 9000 pixels; the limit is"),
    ],
    ids=["svg", "png_declaring_too_many_pixels"],
)
def test_an_imdb_poster_we_cannot_read_is_blamed_on_imdb_not_on_an_upload(
    app, client, tmp_path, imdb_id, problem
) -> None:
    """decode_poster calls any bytes "the uploaded file": IMDb's poster was said to be an upload the user never sent."""
    for poster_id, data in UNREADABLE_POSTERS.items():
        (tmp_path / f"{poster_id}.img").write_bytes(data)
    movies = [Movie(i, f"Title {i}", 2001, ("Drama",), 7.0, 100, f"{i}.img") for i in UNREADABLE_POSTERS]
    with ReplicaServer(Catalog(tmp_path, movies)) as replica:
        overrides = {"www.imdb.com": replica.url, "m.media-amazon.com": replica.url}
        linked = create_app({**app.config, "IMDB_OVERRIDES": overrides, "IMDB_TIMEOUT_SECONDS": 5})
        linked.test_client_class = type(client)
        answer = linked.test_client().post(
            "/api/recommend",
            data={"imdb_url": f"https://www.imdb.com/title/{imdb_id}/"},
            headers={"X-Requested-With": "pytest"},
        )
        assert replica.requests == [f"/title/{imdb_id}/", f"/images/M/{imdb_id}.jpg"]
    error = answer.get_json()["error"]
    assert answer.status_code == 502 and error.startswith(problem), error
    assert "uploaded" not in error
    assert saved_recommendations(app) == []


def test_a_read_time_out_names_its_own_seconds_not_the_deadlines(app, client, imdb) -> None:
    """A title page that never came gave up after one read time-out (0.8 s here) but said the deadline (1.6 s) had."""
    overrides = {"www.imdb.com": imdb.url, "m.media-amazon.com": imdb.url}
    linked = create_app({**app.config, "IMDB_OVERRIDES": overrides, "IMDB_TIMEOUT_SECONDS": 0.8})
    linked.test_client_class = type(client)
    imdb.configure(delay=2.0)
    answer = linked.test_client().post(
        "/api/recommend",
        data={"imdb_url": f"https://www.imdb.com/title/{OUTSIDE[0]}/"},
        headers={"X-Requested-With": "pytest"},
    )
    error = answer.get_json()["error"]
    assert answer.status_code == 504 and error.startswith(f"IMDb did not send the page of {OUTSIDE[0]} in time: "), (
        error
    )
    assert "stopped answering for 0.8 seconds" in error and "1.6 seconds" not in error
    assert saved_recommendations(app) == []
