"""The pages, their forms and their path parameters fuzzed with Hypothesis, where the OpenAPI document (and so
tests/test_fuzz_api.py) does not reach: ids of any size and sign or not numbers at all, form fields missing, repeated
or of the wrong kind, bodies of the wrong content type or beyond the upload limit, and any JSON at all sent to the
API. Whatever comes in: no 5xx, and nothing half-saved (a recommendation is logged only when one was shown, a vote
only when one was thanked for).

Each test has a fixed, derandomized budget (EXAMPLES; POSTERBENCH_FUZZ_EXAMPLES=1000 searches longer)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.conftest import key_for

EXAMPLES = int(os.environ.get("POSTERBENCH_FUZZ_EXAMPLES", "40"))
UPLOAD_LIMIT = 64 * 1024  # the fuzzed app's MAX_CONTENT_LENGTH: small, so that a body beyond it is cheap to send
SEEDED = 3
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
API = {"X-Requested-With": "fuzz"}

ids = st.one_of(
    st.integers(),  # any size and sign: 2**70, -1, 0
    st.integers(min_value=1, max_value=SEEDED + 1),  # ids that exist (and one that does not yet)
    st.text(max_size=30),
    st.sampled_from(["1.0", "1e3", "0x1", "١", "%00", "..", "1/feedback", " 1"]),
)
texts = st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda data: data.decode("latin-1")))
files = st.builds(
    lambda data, name: (io.BytesIO(data), name),
    st.one_of(st.binary(max_size=2000), st.just(b"\x89PNG\r\n\x1a\n" + b"\0" * 64), st.just(b"\xff\xd8\xff\xe0")),
    st.text(max_size=300),
)
form_names = st.one_of(st.sampled_from(["sample", "imdb_url", "poster", "rating", "csrf_token"]), st.text(max_size=20))
form_values = st.one_of(texts, files, st.sampled_from(["tt99000001", "good", "okay", "bad", "", "https://imdb.com/"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
feedback_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"id": json_values, "rating": json_values}),
    st.fixed_dictionaries({"id": ids, "rating": st.sampled_from(["good", "okay", "bad"]) | json_values}),
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-16",
        "image/png",
        "",
    ]
)


@pytest.fixture
def fuzzed(app_settings: dict, demo_catalog):
    """The app with a small upload limit, a few recommendations already shown, and a browser's session: a client
    whose page forms carry the session's CSRF token (unless the example leaves it out)."""
    from app import create_app

    closed = "http://127.0.0.1:9"  # a generated IMDb link is refused at once on loopback, never sent outside
    overrides = {"www.imdb.com": closed, "m.imdb.com": closed, "m.media-amazon.com": closed}
    app = create_app({**app_settings, "MAX_CONTENT_LENGTH": UPLOAD_LIMIT, "IMDB_OVERRIDES": overrides})
    client = app.test_client()
    for movie in demo_catalog.movies[:SEEDED]:
        assert client.post("/api/recommend", data={"sample": movie.imdb_id}, headers=API).status_code == 201
    with client.session_transaction() as session:
        session["csrf_token"] = "fuzz-token"
    return app, client


def saved(app) -> tuple[int, int]:
    """(recommendations, votes), after checking that every saved row is whole and every vote has its recommendation."""
    with sqlite3.connect(app.config["DATABASE"]) as database:
        for genres, results in database.execute("SELECT genres, results FROM recommendations"):
            assert len(json.loads(results)) == 5 and json.loads(genres)
        votes = database.execute("SELECT recommendation_id FROM feedback").fetchall()
        shown = database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0]
        assert all(1 <= recommendation_id <= shown for (recommendation_id,) in votes)
        return shown, len(votes)


def page_form(fields: list[tuple[str, object]], with_token: bool) -> MultiDict:
    """The fields as a page's form sends them, with the session's CSRF token when `with_token`."""
    form = MultiDict(fields)
    if with_token:
        form.add("csrf_token", "fuzz-token")
    return form


def path_part(value: int | str) -> str:
    return quote(str(value), safe="")


def key_query(app, recommendation_id: int | str, with_key: bool) -> str:
    """?key=KEY, the recommendation's key as its page's address carries it, when `with_key` and the id is a number;
    else nothing (an address without its key is refused like an unknown id)."""
    if not with_key or not isinstance(recommendation_id, int):
        return ""
    return "?key=" + key_for(app, recommendation_id)


@FUZZ
@given(recommendation_id=ids, suffix=st.sampled_from(["", "/query.jpg", "/scatter.svg"]), with_key=st.booleans())
def test_result_paths_of_any_id_answer_without_a_5xx(fuzzed, recommendation_id, suffix, with_key) -> None:
    app, client = fuzzed
    key = key_query(app, recommendation_id, with_key)
    response = client.get(f"/results/{path_part(recommendation_id)}{suffix}{key}")
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.status_code in (200, 308, 404, 405), response.status_code  # 405: the id "1/feedback"


@FUZZ
@given(name=st.one_of(ids, st.sampled_from(["rewards", "epsilon", "choices"])), imdb_id=ids)
def test_poster_and_bandit_plot_paths_answer_without_a_5xx(fuzzed, name, imdb_id) -> None:
    app, client = fuzzed
    for path in (f"/bandit/{path_part(name)}.svg", f"/posters/{path_part(imdb_id)}.jpg", f"/posters/{imdb_id}.jpg"):
        response = client.get(path)
        assert response.status_code in (200, 308, 404), (path, response.status_code)  # 308: "//" merged


@FUZZ
@given(
    recommendation_id=ids,
    fields=st.lists(
        st.tuples(st.sampled_from(["rating", "csrf_token", "other"]) | form_names, form_values), max_size=5
    ),
    with_token=st.booleans(),
    with_key=st.booleans(),
)
def test_page_votes_of_any_shape_answer_without_a_5xx_and_save_whole(
    fuzzed, recommendation_id, fields, with_token, with_key
) -> None:
    app, client = fuzzed
    form = page_form(fields, with_token)
    before = saved(app)
    key = key_query(app, recommendation_id, with_key)
    response = client.post(f"/results/{path_part(recommendation_id)}/feedback{key}", data=form)
    after = saved(app)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    thanked = response.status_code == 303
    assert after == (before[0], before[1] + int(thanked))


@FUZZ
@given(
    fields=st.lists(st.tuples(form_names, form_values), max_size=6),
    with_token=st.booleans(),
    content_type=st.none() | content_types,
)
def test_recommend_forms_of_any_shape_answer_without_a_5xx_and_save_whole(
    fuzzed, fields, with_token, content_type
) -> None:
    app, client = fuzzed
    form = page_form(fields, with_token)
    before = saved(app)
    sent = {"data": form} if content_type is None else {"data": form, "content_type": content_type}
    response = client.post("/recommend", **sent)
    after = saved(app)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert after == (before[0] + int(response.status_code == 303), before[1])


@FUZZ
@given(
    size=st.integers(min_value=UPLOAD_LIMIT + 1, max_value=4 * UPLOAD_LIMIT),
    where=st.sampled_from(
        ["/recommend", "/api/recommend", "/api/feedback", "/results/1/feedback", "/compare", "/api/compare", "/explain"]
    ),
)
def test_bodies_beyond_the_limit_are_refused_with_413(fuzzed, size, where) -> None:
    app, client = fuzzed
    before = saved(app)
    response = client.post(
        where,
        data={"poster": (io.BytesIO(b"\0" * size), "big.jpg"), "image": (io.BytesIO(b"\0"), "x.jpg")},
        headers=API,
    )
    assert response.status_code == 413, (where, response.status_code)
    assert saved(app) == before


@FUZZ
@given(body=feedback_bodies, content_type=content_types, raw=st.booleans(), with_key=st.booleans())
def test_api_votes_of_any_json_answer_without_a_5xx_and_save_whole(fuzzed, body, content_type, raw, with_key) -> None:
    app, client = fuzzed
    if with_key and isinstance(body, dict) and isinstance(body.get("id"), int) and not isinstance(body["id"], bool):
        body = {**body, "key": key_for(app, body["id"])}
    before = saved(app)
    data = json.dumps(body, allow_nan=True) if not raw else json.dumps(body, allow_nan=True).encode("utf-16")
    response = client.post("/api/feedback", data=data, content_type=content_type, headers=API)
    after = saved(app)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.is_json and set(response.get_json()) >= (
        {"id", "rating"} if response.status_code == 200 else {"error", "status"}
    )
    assert after == (before[0], before[1] + int(response.status_code == 200))


# ---------------------------------------------------------------- the background jobs' pages (app/job_views.py)

job_form_names = st.one_of(
    st.sampled_from(
        ["image", "sample", "imdb_url", "imdb_urls", "target", "genre", "recommendation", "job_poster", "grid"]
    ),
    form_names,
)
job_form_values = st.one_of(
    form_values, st.sampled_from(["tt99000002", "tt99000003", "Horror", "drama", "1", "2", "12", "0", "-3"])
)


def saved_jobs(app) -> int:
    """Jobs in the database, after checking that each has all its posters (2 to 6 for a comparison, 1 else)."""
    with sqlite3.connect(app.config["DATABASE"]) as database:
        rows = database.execute(
            "SELECT jobs.kind, COUNT(job_posters.job_id) FROM jobs LEFT JOIN job_posters ON job_posters.job_id ="
            " jobs.id GROUP BY jobs.id"
        ).fetchall()
    assert all((2 <= count <= 6) if kind == "compare" else count == 1 for kind, count in rows)
    return len(rows)


@FUZZ
@given(job_id=ids, position=ids)
def test_job_paths_of_any_id_answer_without_a_5xx(fuzzed, job_id, position) -> None:
    app, client = fuzzed
    job, number = path_part(job_id), path_part(position)
    for path in (
        f"/jobs/{job}",
        f"/api/jobs/{job}",
        f"/api/jobs/{job}/sheet.png",
        f"/api/jobs/{job}/posters/{number}.jpg",
    ):
        response = client.get(path)
        assert response.status_code in (200, 308, 404), (path, response.status_code)


@FUZZ
@given(
    fields=st.lists(st.tuples(job_form_names, job_form_values), max_size=8),
    with_token=st.booleans(),
    where=st.sampled_from(["/compare", "/explain"]),
)
def test_job_forms_of_any_shape_answer_without_a_5xx_and_save_whole(fuzzed, fields, with_token, where) -> None:
    app, client = fuzzed
    form = page_form(fields, with_token)
    before = saved(app), saved_jobs(app)
    response = client.post(where, data=form)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert (saved(app), saved_jobs(app)) == (before[0], before[1] + int(response.status_code == 303))
