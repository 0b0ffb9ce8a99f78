"""Every operation of the JSON API fuzzed from its OpenAPI document (app/openapi.json, which /api/openapi.json serves)
with Schemathesis, one test per operation, over the WSGI interface: requests
that fit the document and requests that break it (negative mode: wrong types, missing and extra fields, ids of any
size) get no 5xx, every answer conforms to the document (status, content type, body schema), and nothing is
half-saved: a recommendation is logged only when one was answered (201), a vote only when one was recorded (200), a
job (with all its posters) only when one was accepted (202). The fuzzed app's queue is memory://: the jobs submitted
are kept, never run.

The budget is fixed (EXAMPLES per operation and generation mode, derandomized), so a run takes the same cases and
time every time; `POSTERBENCH_FUZZ_EXAMPLES=1000 pytest tests/test_fuzz_api.py` searches longer."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import ignored_auth, positive_data_acceptance

from catalog import Catalog
from tools.replica import ReplicaServer

EXAMPLES = int(os.environ.get("POSTERBENCH_FUZZ_EXAMPLES", "40"))
OUTSIDE = "tt98000001"  # a movie the IMDb replica has and the catalog does not
SEEDED = 3  # recommendations logged before fuzzing, so that votes on ids 1-3 reach the database

schema = schemathesis.openapi.from_path(Path(__file__).resolve().parents[1] / "app/openapi.json")
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
CASES: Counter[tuple[str, int]] = Counter()  # (operation, status) -> cases sent, printed after the run (pytest -s)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def imdb(demo_catalog) -> Iterator[ReplicaServer]:
    """IMDb as the app sees it, over loopback: one movie outside the catalog and the catalog's own."""
    movies = [replace(demo_catalog.movies[0], imdb_id=OUTSIDE), *demo_catalog.movies]
    with ReplicaServer(Catalog(demo_catalog.directory, movies)) as replica:
        yield replica


@pytest.fixture
def fuzzed_app(app_settings: dict, imdb: ReplicaServer, demo_catalog):
    """The app with IMDb's hosts mapped to the replica (a generated link never leaves the machine) and a few
    recommendations already logged."""
    from app import create_app

    overrides = {"www.imdb.com": imdb.url, "m.imdb.com": imdb.url, "m.media-amazon.com": imdb.url}
    settings = {**app_settings, "IMDB_OVERRIDES": overrides, "IMDB_TIMEOUT_SECONDS": 2, "JOBS_URL": "memory://"}
    app = create_app(settings)
    client = app.test_client()
    for movie in demo_catalog.movies[:SEEDED]:
        answer = client.post("/api/recommend", data={"sample": movie.imdb_id}, headers={"X-Requested-With": "t"})
        assert answer.status_code == 201, answer.get_data(as_text=True)
    return app


@pytest.fixture(scope="module", autouse=True)
def count_cases() -> Iterator[None]:
    yield
    print("\nfuzzed API cases (operation, status: count):")
    for (operation, status), count in sorted(CASES.items()):
        print(f"  {operation} {status}: {count}")


def saved_state(app) -> tuple[int, int, int]:
    """(recommendations, votes, jobs) in the app's database, after checking that every saved row is whole."""
    with sqlite3.connect(app.config["DATABASE"]) as database:
        for genres, results, evoked in database.execute("SELECT genres, results, evoked FROM recommendations"):
            assert len(json.loads(results)) == 5 and json.loads(genres) and json.loads(evoked)
        orphans = database.execute(
            "SELECT COUNT(*) FROM feedback WHERE recommendation_id NOT IN (SELECT id FROM recommendations)"
        ).fetchone()[0]
        assert orphans == 0
        posters = dict(
            database.execute("SELECT jobs.id, COUNT(job_posters.job_id) FROM jobs LEFT JOIN job_posters"
                             " ON job_posters.job_id = jobs.id GROUP BY jobs.id").fetchall()
        )  # fmt: skip
        for job_id, kind, params in database.execute("SELECT id, kind, params FROM jobs"):
            assert (2 <= posters[job_id] <= 6) if kind == "compare" else posters[job_id] == 1
            assert isinstance(json.loads(params), dict)
        return (
            database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0],
            database.execute("SELECT COUNT(*) FROM feedback").fetchone()[0],
            len(posters),
        )


# What one answered request may add to the database: (recommendations, votes, jobs), by operation and status.
SAVED_BY = {
    ("POST", "/api/recommend", 201): (1, 0, 0),
    ("POST", "/api/feedback", 200): (0, 1, 0),
    ("POST", "/api/compare", 202): (0, 0, 1),
    ("POST", "/api/explain", 202): (0, 0, 1),
}
# Operations whose document allows any bytes as a poster: only a decodable one is accepted.
TAKES_IMAGES = ("/api/recommend", "/api/compare", "/api/explain")


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_operation_answers_5xx_or_off_the_document_or_saves_half(case, fuzzed_app) -> None:
    case.operation.schema.app = fuzzed_app  # this test's clone of the schema: requests go to the app in process
    before = saved_state(fuzzed_app)
    # X-Requested-With takes any value by design (it is no credential: tests/test_api.py checks the token instead).
    excluded = [ignored_auth]
    if case.operation.path in TAKES_IMAGES:  # the document allows any bytes; only a decodable poster is accepted
        excluded.append(positive_data_acceptance)
    response = case.call_and_validate(app=fuzzed_app, headers={"X-Requested-With": "fuzz"}, excluded_checks=excluded)
    CASES[f"{case.method.upper()} {case.operation.path}", response.status_code] += 1
    after = saved_state(fuzzed_app)
    added = SAVED_BY.get((case.method.upper(), case.operation.path, response.status_code), (0, 0, 0))
    assert tuple(now - then for now, then in zip(after, before, strict=True)) == added
