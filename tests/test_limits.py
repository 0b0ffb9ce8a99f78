"""Fair limits: one client cannot hold more than its share of a worker's posters in progress or of its IMDb link
fetches (real fetches, over loopback, from a slowed replica of IMDb), and a client cannot dodge the vote limit by
forging X-Forwarded-For, with or without a trusted proxy in front."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from PIL import Image

from app import create_app
from app.limits import EXTENSION, BusyError, InProgress
from catalog import Catalog
from tests.conftest import vote_body
from tools.replica import ReplicaServer
from tools.replica.search import FailureModes

API = {"X-Requested-With": "pytest"}
OUTSIDE = ["tt98000001", "tt98000002", "tt98000003"]
SLOW_SECONDS = 1.5


@pytest.fixture
def slow_imdb(demo_catalog) -> Iterator[ReplicaServer]:
    movies = [replace(movie, imdb_id=imdb_id) for movie, imdb_id in zip(demo_catalog.movies, OUTSIDE, strict=False)]
    with ReplicaServer(Catalog(demo_catalog.directory, movies), failures=FailureModes(delay=SLOW_SECONDS)) as replica:
        yield replica


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def link(imdb_id: str) -> dict[str, str]:
    return {"imdb_url": f"https://www.imdb.com/title/{imdb_id}/"}


def test_in_progress_counts_per_key_and_in_all() -> None:
    work = InProgress(per_key=1, in_all=2)
    with work.hold("a", "jobs"), work.hold("b", "jobs"):
        with (
            pytest.raises(BusyError, match="you already have one job in progress; wait for it to finish"),
            work.hold("a", "jobs"),
        ):
            pass
        with pytest.raises(BusyError, match="the server already has 2 jobs in progress"), work.hold("c", "jobs"):
            pass
    with work.hold("a", "jobs"), work.hold("c", "jobs"):  # every slot was given back
        pass


def test_one_client_holds_one_imdb_fetch_and_the_worker_two(
    app_settings: dict, slow_imdb: ReplicaServer, demo_catalog
) -> None:
    overrides = {"www.imdb.com": slow_imdb.url, "m.media-amazon.com": slow_imdb.url}
    app = create_app({**app_settings, "IMDB_OVERRIDES": overrides, "IMDB_TIMEOUT_SECONDS": 10})
    answers: dict[str, int] = {}

    def fetch(address: str, imdb_id: str) -> None:
        answers[address] = client_at(app, address).post("/api/recommend", data=link(imdb_id), headers=API).status_code

    first = threading.Thread(target=fetch, args=("192.0.2.1", OUTSIDE[0]))
    second = threading.Thread(target=fetch, args=("192.0.2.2", OUTSIDE[1]))
    first.start()
    second.start()
    limits = app.extensions[EXTENSION]
    while limits.imdb_fetches._counts.total() < 2:  # both fetches are waiting for the slow replica
        threading.Event().wait(0.02)
    again = client_at(app, "192.0.2.1").post("/api/recommend", data=link(OUTSIDE[2]), headers=API)
    assert again.status_code == 429 and again.headers["Retry-After"].isdigit()
    assert "you already have one IMDb link in progress; wait for it to finish" in again.get_json()["error"]
    third = client_at(app, "192.0.2.3").post("/api/recommend", data=link(OUTSIDE[2]), headers=API)
    assert third.status_code == 429 and "the server already has 2" in third.get_json()["error"]
    page = client_at(app, "192.0.2.3")
    with page.session_transaction() as session:
        session["csrf_token"] = "t"
    refused_page = page.post("/recommend", data={**link(OUTSIDE[2]), "csrf_token": "t"})
    assert refused_page.status_code == 429 and "try again in a moment" in refused_page.get_data(as_text=True)
    # A sample reads no poster: it is never held up.
    sample = {"sample": demo_catalog.movies[0].imdb_id}
    assert client_at(app, "192.0.2.1").post("/api/recommend", data=sample, headers=API).status_code == 201
    first.join()
    second.join()
    assert answers == {"192.0.2.1": 201, "192.0.2.2": 201}
    assert client_at(app, "192.0.2.1").post("/api/recommend", data=link(OUTSIDE[2]), headers=API).status_code == 201


def test_one_client_holds_at_most_its_share_of_posters(app) -> None:
    poster = io.BytesIO()
    Image.new("RGB", (200, 300), (120, 30, 60)).save(poster, "JPEG")
    limits = app.extensions[EXTENSION]
    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.1"}):
        from app.security import client_key

        key = client_key()
    with limits.posters.hold(key, "posters"), limits.posters.hold(key, "posters"):
        busy = client_at(app, "192.0.2.1").post(
            "/api/recommend", data={"image": (io.BytesIO(poster.getvalue()), "p.jpg")}, headers=API
        )
        assert busy.status_code == 429 and "you already have 2 posters in progress" in busy.get_json()["error"]
        page_client = client_at(app, "192.0.2.1")
        with page_client.session_transaction() as session:
            session["csrf_token"] = "token"
        page = page_client.post(
            "/recommend", data={"poster": (io.BytesIO(poster.getvalue()), "p.jpg"), "csrf_token": "token"}
        )
        assert page.status_code == 429 and page.headers["Retry-After"].isdigit()  # the page says when, as the API
        assert "You already have 2 posters in progress; wait for one to finish." in page.get_data(as_text=True)
        other = client_at(app, "192.0.2.2").post(
            "/api/recommend", data={"image": (io.BytesIO(poster.getvalue()), "p.jpg")}, headers=API
        )
        assert other.status_code == 201
    freed = client_at(app, "192.0.2.1").post(
        "/api/recommend", data={"image": (io.BytesIO(poster.getvalue()), "p.jpg")}, headers=API
    )
    assert freed.status_code == 201


@pytest.mark.parametrize("proxies", [0, 1])
def test_a_forged_x_forwarded_for_does_not_dodge_the_vote_limit(app_settings: dict, demo_catalog, proxies) -> None:
    """Without a proxy, X-Forwarded-For is ignored; behind one trusted proxy, only the address that proxy appended
    (the last) counts, so a client writing its own first entries is still one client."""
    app = create_app({**app_settings, "FEEDBACK_LIMIT": 2, "FEEDBACK_WINDOW_SECONDS": 600, "TRUSTED_PROXIES": proxies})
    seeder = client_at(app, "192.0.2.50")
    ids = [
        seeder.post("/api/recommend", data={"sample": movie.imdb_id}, headers=API).get_json()["id"]
        for movie in demo_catalog.movies[:4]
    ]
    # The client is 198.51.100.7; with a proxy (10.0.0.2), the proxy appends it to whatever the client sent.
    sender = client_at(app, "10.0.0.2" if proxies else "198.51.100.7")
    statuses = []
    for number, recommendation_id in enumerate(ids[:3]):
        forged = f"203.0.113.{number}"
        chain = f"{forged}, 198.51.100.7" if proxies else forged
        vote = sender.post(
            "/api/feedback", json=vote_body(app, recommendation_id, "good"), headers={**API, "X-Forwarded-For": chain}
        )
        statuses.append(vote.status_code)
    assert statuses == [200, 200, 429]
    # Another real client behind the same proxy (or at its own address) still votes.
    other = client_at(app, "10.0.0.2" if proxies else "198.51.100.8")
    headers = {**API, "X-Forwarded-For": "198.51.100.8"} if proxies else API
    assert other.post("/api/feedback", json=vote_body(app, ids[3], "bad"), headers=headers).status_code == 200
