"""The JSON API over a real model and a real SQLite database: recommend, rate once, read the bandit, and an
OpenAPI document that describes every route and the answers' shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import math
import re
import sqlite3

import pytest
from werkzeug.test import EnvironBuilder

from app import create_app

HEADERS = {"X-Requested-With": "pytest"}


pytestmark = pytest.mark.usefixtures("served_model_loaded_once")


def recommend_sample(client, imdb_id: str, headers: dict = HEADERS):
    return client.post("/api/recommend", data={"sample": imdb_id}, headers=headers)


def recommend_upload(client, poster: bytes, name: str):
    data = {"image": (io.BytesIO(poster), name)}
    return client.post("/api/recommend", data=data, headers=HEADERS, content_type="multipart/form-data")


def vote_of(shown: dict, rating: str) -> dict:
    """The body of POST /api/feedback for a recommendation as /api/recommend answered it (its id and key)."""
    return {"id": shown["id"], "key": shown["key"], "rating": rating}


def required_keys(document: dict, schema: str) -> set[str]:
    return set(document["components"]["schemas"][schema]["required"])


@pytest.fixture
def openapi(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_openapi_document_describes_every_api_route(app, openapi) -> None:
    assert openapi["openapi"].startswith("3.1")
    routes = {
        (re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule), method.lower())  # /api/jobs/<job_id> -> {job_id}
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") or rule.rule == "/healthz"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in openapi["paths"].items() for method in item}
    assert documented == routes
    # any request's declared body beyond the limit is refused before it is read (app/limits.py)
    assert all("413" in operation["responses"] for item in openapi["paths"].values() for operation in item.values())
    assert openapi["servers"] == [{"url": "http://localhost"}]
    # a Host that is no IDNA name: the document names it as the API's other links do (it was a 500)
    # (called as gunicorn calls it: the test client itself decodes the Host, and fails)
    environ = EnvironBuilder("/api/openapi.json", environ_overrides={"HTTP_HOST": "xn--zz"}).get_environ()
    statuses = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses == ["200 OK"] and json.loads(body)["servers"] == [{"url": "http://xn--zz"}]


def test_the_health_check_answers_its_errors_in_json_and_a_body_it_does_not_read_is_not_a_file(app, client) -> None:
    """/healthz's errors were HTML pages (its document says JSON), and a large body on it was "That file is too
    large: posters up to 10 MB"."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    answer = client.get("/healthz", data=b"x" * (limit + 1))
    assert answer.status_code == 413 and answer.is_json
    assert answer.get_json()["error"] == "That request's body is too large: 10 MB at most, and this address reads none."
    assert client.post("/healthz").get_json()["status"] == 405


def test_recommend_by_upload_answers_as_documented(client, app, openapi, demo_catalog) -> None:
    response = recommend_upload(client, demo_catalog.poster_path(demo_catalog.movies[9]).read_bytes(), "p.jpg")
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert required_keys(openapi, "Recommendation") <= set(body)
    assert body["arm"] in ("manhattan", "euclidean", "cosine") and isinstance(body["explored"], bool)
    assert set(body["genres"]) == {"Action", "Comedy", "Drama", "Horror", "Romance", "Thriller"}
    assert all(0.0 <= p <= 1.0 for p in body["genres"].values())
    assert abs(sum(body["decade"].values()) - 1) < 1e-3 and all(key.endswith("0s") for key in body["decade"])
    assert required_keys(openapi, "ExpectedRating") <= set(body["rating"])
    assert 1 <= body["rating"]["low"] <= body["rating"]["expected"] <= body["rating"]["high"] <= 10
    assert 1900 < body["year"] < 2100
    assert body["looks_like_poster"] == {"value": True, "score": body["looks_like_poster"]["score"]}
    movies = body["recommendations"]
    assert len(movies) == 5 and all(required_keys(openapi, "Movie") <= set(movie) for movie in movies)
    catalog_ids = {movie.imdb_id for movie in demo_catalog}
    assert {movie["imdb_id"] for movie in movies} <= catalog_ids
    assert client.get(movies[0]["poster_url"].removeprefix("http://localhost")).status_code == 200
    with sqlite3.connect(app.config["DATABASE"]) as database:
        arm, explored = database.execute(
            "SELECT arm, explored FROM recommendations WHERE id = ?", (body["id"],)
        ).fetchone()
    assert (arm, bool(explored)) == (body["arm"], body["explored"])


def test_a_picture_that_is_no_poster_is_flagged(client, openapi) -> None:
    """Uniform noise and a blank page get recommendations, but are flagged as not looking like a poster."""
    import numpy as np
    from PIL import Image

    for picture in (
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (268, 182, 3), dtype=np.uint8)),
        Image.new("RGB", (640, 480), "white"),
    ):
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        response = client.post(
            "/api/recommend",
            data={"image": (io.BytesIO(buffer.getvalue()), "p.png")},
            headers=HEADERS,
            content_type="multipart/form-data",
        )
        assert response.status_code == 201
        body = response.get_json()
        assert body["looks_like_poster"]["value"] is False and body["looks_like_poster"]["score"] < 0.01
        assert len(body["recommendations"]) == 5
        page = client.get(body["results_url"].removeprefix("http://localhost")).get_data(as_text=True)
        assert "does not look like a movie poster" in page


def test_feedback_is_taken_once_and_shows_in_the_bandit(client, openapi, demo_catalog) -> None:
    shown = recommend_sample(client, demo_catalog.movies[0].imdb_id).get_json()
    vote = client.post("/api/feedback", json=vote_of(shown, "good"), headers=HEADERS)
    assert vote.status_code == 200 and vote.get_json() == {"id": shown["id"], "rating": "good", "reward": 1}
    again = client.post("/api/feedback", json=vote_of(shown, "bad"), headers=HEADERS)
    assert again.status_code == 409 and "already been rated" in again.get_json()["error"]

    bandit = client.get("/api/bandit").get_json()
    assert required_keys(openapi, "Bandit") <= set(bandit)
    assert bandit["policy"] == "epsilon_greedy" and bandit["n_rated"] == 1
    assert bandit["epsilon"] == pytest.approx(50 / 51)
    arms = {arm["arm"]: arm for arm in bandit["arms"]}
    assert all(required_keys(openapi, "Arm") <= set(arm) for arm in arms.values())
    assert arms[shown["arm"]] | {"probability": None} == {
        "arm": shown["arm"],
        "count": 1,
        "rated": 1,
        "good": 1,
        "okay": 0,
        "bad": 0,
        "value": 1.0,
        "probability": None,
    }
    assert sum(arm["probability"] for arm in arms.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"id": 999, "key": "KEY", "rating": "good"}, 404, "no recommendation 999"),
        ({"id": 1, "key": "KEY", "rating": "great"}, 400, "unknown rating 'great'"),
        ({"id": "1", "key": "KEY", "rating": "good"}, 400, "send a JSON object"),
        ({"key": "KEY", "rating": "good"}, 400, "send a JSON object"),
        ({"id": 1, "rating": "good"}, 400, "send a JSON object"),
        ({"id": 1, "key": "a" * 22, "rating": "good"}, 404, "no recommendation 1 with that key"),
        ({"id": 1, "key": ["KEY"], "rating": "good"}, 400, "send a JSON object"),  # a key is a string
        ({"id": 1, "key": None, "rating": "good"}, 400, "send a JSON object"),
        ([1, "good"], 400, "send a JSON object"),
    ],
)
def test_bad_feedback_is_refused_with_a_json_error(client, app, demo_catalog, body, status, message) -> None:
    shown = recommend_sample(client, demo_catalog.movies[0].imdb_id).get_json()
    assert shown["id"] == 1
    if isinstance(body, dict) and body.get("key") == "KEY":  # the right key: only the id or the rating is wrong
        body = {**body, "key": shown["key"]}
    response = client.post("/api/feedback", json=body, headers=HEADERS)
    assert response.status_code == status
    assert message in response.get_json()["error"] and response.get_json()["status"] == status
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_vote_sent_without_the_json_content_type_is_told_to_send_it(client, app, demo_catalog, content_type) -> None:
    """get_json reads a body only under a JSON content type: a valid vote sent as text/plain or as a form was told to
    send the JSON object it had sent."""
    shown = recommend_sample(client, demo_catalog.movies[0].imdb_id).get_json()
    body = json.dumps(vote_of(shown, "good"))
    response = client.post("/api/feedback", data=body, content_type=content_type, headers=HEADERS)
    error = response.get_json()["error"]
    assert response.status_code == 400 and error.startswith("send a JSON object"), error
    sent = content_type or "no Content-Type"
    assert f"with the header Content-Type: application/json (this request's body came as {sent}, not read)" in error
    bad_json = client.post("/api/feedback", data="{not json", content_type="application/json", headers=HEADERS)
    assert bad_json.status_code == 400 and "Content-Type" not in bad_json.get_json()["error"]  # it had the type
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0


def test_a_recommend_request_sent_as_json_is_told_the_endpoint_reads_form_fields(client, app) -> None:
    """A JSON body's fields are no form fields: the answer said "this request sent 0" without saying why."""
    response = client.post("/api/recommend", json={"sample": "tt0000001"}, headers=HEADERS)
    error = response.get_json()["error"]
    assert (
        response.status_code == 400
        and "this request sent 0 (its body is application/json: this endpoint reads" in error
    )
    assert "multipart/form-data or application/x-www-form-urlencoded fields, not JSON)" in error
    empty_form = client.post("/api/recommend", data={}, headers=HEADERS, content_type="multipart/form-data")
    assert empty_form.get_json()["error"].endswith("this request sent 0")
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0] == 0


def test_json_nested_past_the_decoders_depth_is_a_400(client, app, demo_catalog) -> None:
    """Python's JSON decoder gives up on deep nesting with a RecursionError, which Flask's get_json(silent=True) did not
    catch: 2 KB of brackets answered 500."""
    recommend_sample(client, demo_catalog.movies[0].imdb_id)
    for body in ("[" * 100_000 + "]" * 100_000, '{"id": ' * 5_000 + "1" + "}" * 5_000):
        response = client.post("/api/feedback", data=body, content_type="application/json", headers=HEADERS)
        assert response.status_code == 400 and "send a JSON object" in response.get_json()["error"]
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0


def test_an_upload_of_a_catalog_poster_is_recommended_its_own_movie_first(client, demo_catalog) -> None:
    """As the README says, whether or not the model's genres and decades for it match its movie's own."""
    for movie in demo_catalog.movies[:12]:
        answer = recommend_upload(client, demo_catalog.poster_path(movie).read_bytes(), "copy.jpg")
        assert answer.status_code == 201
        assert answer.get_json()["recommendations"][0]["imdb_id"] == movie.imdb_id, movie


def test_bad_recommend_requests_get_json_errors_and_save_nothing(client, app) -> None:
    cases = [
        ({}, 400, "send exactly one of a poster as the multipart field 'image'"),
        ({"sample": "tt0000001", "imdb_url": ""}, 400, "this request sent 2"),
        ({"image": "not a file"}, 400, "send the poster as a file"),
        ({"image": (io.BytesIO(b"not an image"), "x.png")}, 400, "not an image we can read"),
        ({"imdb_url": "https://example.org/title/tt0111161/"}, 400, "That is a link to example.org"),
        ({"sample": "tt0000001"}, 404, "no movie tt0000001 in the catalog"),
        ({"sample": (io.BytesIO(b"tt0000001"), "id.txt")}, 400, "send 'sample' as a form field, not as a file"),
        ({"imdb_url": (io.BytesIO(b"https://www.imdb.com/title/tt0111161/"), "")}, 400, "send 'imdb_url' as a form"),
        ({"sample": "tt0000001", **{f"f{n}": "x" for n in range(1500)}}, 413, "too many fields"),
        ({"sample": ""}, 400, "send a catalog movie's IMDb id as 'sample' (tt and 7 or 8 digits); this one is empty"),
        ({"sample": "tt" + "9" * 100_000}, 404, "no movie 'tt99999999999999999999999999999999999999…' in the catalog"),
        ({"sample": "tt\x00\u202e1"}, 404, "no movie 'tt\\x00\\u202e1' in the catalog"),  # escaped, not echoed
        ({"sample": ["tt0000001", "tt0000002"]}, 400, "send 'sample' once; this request sent it 2 times"),
        ({"image": [(io.BytesIO(b"a"), "a.jpg"), (io.BytesIO(b"b"), "b.jpg")]}, 400, "send 'image' once; this"),
    ]
    for data, status, message in cases:
        response = client.post("/api/recommend", data=data, headers=HEADERS, content_type="multipart/form-data")
        assert response.status_code == status, data
        assert message in response.get_json()["error"]
    big = client.post(
        "/api/recommend",
        data={"image": (io.BytesIO(b"\0" * (11 * 1024 * 1024)), "big.jpg")},
        headers=HEADERS,
        content_type="multipart/form-data",
    )
    assert big.status_code == 413 and "too large" in big.get_json()["error"]
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0] == 0


def test_a_chunked_vote_over_the_limit_is_413_not_a_bad_body(client, app) -> None:
    """Werkzeug stops a chunked body (no Content-Length; gunicorn marks it terminated) at MAX_CONTENT_LENGTH without
    saying so: the cut JSON answered 400 "send a JSON object", where the document declares 413."""
    from werkzeug.test import EnvironBuilder

    limit = app.config["MAX_CONTENT_LENGTH"]
    for size, status in ((limit + 1000, 413), (200, 404)):
        body = b'{"id": 999, "key": "' + b"k" * (size - 40) + b'", "rating": "good"}'
        environ = EnvironBuilder("/api/feedback", method="POST", data=body, headers=HEADERS).get_environ()
        environ.update({"CONTENT_TYPE": "application/json", "wsgi.input_terminated": True})
        del environ["CONTENT_LENGTH"]
        answer = client.open(environ)
        assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["error"] == "there is no recommendation 999 with that key to rate"
    environ = EnvironBuilder("/api/feedback", method="POST", data=b"[" * (limit + 5), headers=HEADERS).get_environ()
    environ.update({"CONTENT_TYPE": "application/json", "wsgi.input_terminated": True})
    del environ["CONTENT_LENGTH"]
    refused = client.open(environ)
    assert (
        refused.status_code == 413 and refused.get_json()["error"] == "That request's body is too large: 10 MB at most."
    )


def test_a_form_that_cannot_be_parsed_is_refused_for_what_it_is(client, app, demo_catalog) -> None:
    """Werkzeug reads a malformed form as an empty one: the answer was "this request sent 0" to a request that sent
    a poster (a file name that is not UTF-8) or a sample (a body without its closing boundary)."""
    poster = demo_catalog.poster_path(demo_catalog.movies[0]).read_bytes()
    part = b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="\xff\xfe.jpg"\r\n\r\n'
    unclosed = (
        b'--XyZ\r\nContent-Disposition: form-data; name="sample"\r\n\r\n' + demo_catalog.movies[0].imdb_id.encode()
    )
    multipart = "multipart/form-data; boundary=XyZ"
    for body, kind in ((part + poster + b"\r\n--XyZ--\r\n", multipart), (unclosed, multipart)):
        for path in ("/api/recommend", "/api/compare", "/api/explain"):
            answer = client.post(path, data=body, content_type=kind, headers=HEADERS)
            assert answer.status_code == 400 and answer.get_json()["error"] == (
                "The request's form could not be read: its field or file names are not UTF-8, or its body is cut "
                "short or lacks its closing boundary. Nothing was read from it."
            )
    urlencoded = client.post(
        "/api/recommend",
        data=b"sample=tt0000001&note=%FF\xff",
        content_type="application/x-www-form-urlencoded",
        headers=HEADERS,
    )
    assert urlencoded.status_code == 400 and urlencoded.get_json()["error"] == (
        "The request's form could not be read: it is not URL-encoded UTF-8 text. Nothing was read from it."
    )
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0] == 0


def test_state_changing_calls_need_the_header_or_the_token(client, app, demo_catalog) -> None:
    sample = demo_catalog.movies[0].imdb_id
    bare = recommend_sample(client, sample, headers={})
    assert bare.status_code == 403 and "X-Requested-With" in bare.get_json()["error"]
    assert client.post("/api/feedback", json={"id": 1, "rating": "good"}).status_code == 403
    assert client.get("/api/bandit").status_code == 200  # reading needs nothing

    guarded = create_app({**app.config, "API_TOKEN": "s3cret"})
    guest = guarded.test_client()
    assert recommend_sample(guest, sample).status_code == 401  # the header alone no longer suffices
    assert recommend_sample(guest, sample, {"Authorization": "Bearer wrong"}).status_code == 401
    assert recommend_sample(guest, sample, {"Authorization": "Bearer s3cret"}).status_code == 201
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0] == 1


def test_api_votes_are_rate_limited(client, app, demo_catalog) -> None:
    limited = create_app({**app.config, "FEEDBACK_LIMIT": 1})
    api = limited.test_client()
    shown = [recommend_sample(api, movie.imdb_id).get_json() for movie in demo_catalog.movies[:2]]
    assert api.post("/api/feedback", json=vote_of(shown[0], "bad"), headers=HEADERS).status_code == 200
    flood = api.post("/api/feedback", json=vote_of(shown[1], "bad"), headers=HEADERS)
    assert flood.status_code == 429 and "please wait" in flood.get_json()["error"]
    assert flood.headers["Retry-After"] == str(math.ceil(app.config["FEEDBACK_WINDOW_SECONDS"]))
    again = api.post("/api/feedback", json=vote_of(shown[0], "good"), headers=HEADERS)  # over the limit, and rated
    assert again.status_code == 409 and "already been rated" in again.get_json()["error"]


def test_a_recommendation_is_seen_rated_and_explained_only_with_its_key(app, client, demo_catalog, tmp_path) -> None:
    """The ids count up: without the key that /api/recommend answers (and the results page's address carries),
    nobody can see another person's upload, its plot or a heatmap of it, or take their vote."""
    answer = recommend_upload(client, demo_catalog.poster_path(demo_catalog.movies[5]).read_bytes(), "draft.jpg")
    shown = answer.get_json()
    assert answer.status_code == 201 and re.fullmatch(r"[A-Za-z0-9_-]{22}", shown["key"])
    assert shown["results_url"] == f"http://localhost/results/{shown['id']}?key={shown['key']}"
    stranger = app.test_client()  # no cookie, no key: the id alone
    page = f"/results/{shown['id']}"
    for path in (page, f"{page}/query.jpg", f"{page}/scatter.svg", f"{page}?key={'A' * 22}", f"{page}?key="):
        refused = stranger.get(path)
        assert refused.status_code == 404 and b"draft.jpg" not in refused.data, path
    for path in (page, f"{page}/query.jpg", f"{page}/scatter.svg"):
        assert stranger.get(f"{path}?key={shown['key']}").status_code == 200, path
    assert stranger.post("/api/feedback", json={"id": shown["id"], "rating": "bad"}, headers=HEADERS).status_code == 400
    wrong = stranger.post("/api/feedback", json={**vote_of(shown, "bad"), "key": "B" * 22}, headers=HEADERS)
    assert wrong.status_code == 404 and "with that key" in wrong.get_json()["error"]
    explain = {"recommendation": str(shown["id"]), "genre": "Drama"}
    assert stranger.post("/api/explain", data=explain, headers=HEADERS).status_code == 400
    assert (
        stranger.post("/api/explain", data={**explain, "recommendation_key": "C" * 22}, headers=HEADERS).status_code
        == 404
    )
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0
        assert database.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    assert client.post("/api/feedback", json=vote_of(shown, "good"), headers=HEADERS).status_code == 200
    other = create_app({**app.config, "SECRET_KEY": "another secret"}).test_client()  # keys come from the secret
    assert other.get(f"{page}?key={shown['key']}").status_code == 404
    fresh = create_app({**app.config, "DATABASE": str(tmp_path / "fresh.sqlite")})  # the same secret, a new database
    again = fresh.test_client().post("/api/recommend", data={"sample": demo_catalog.movies[1].imdb_id}, headers=HEADERS)
    assert again.get_json()["id"] == shown["id"] and again.get_json()["key"] != shown["key"]
    assert fresh.test_client().get(f"{page}?key={shown['key']}").status_code == 404  # an old link opens no new row


def test_a_recommendation_saved_before_keys_had_salts_keeps_the_key_its_links_were_given(app, client, demo_catalog):
    """Rows from before migration 4 have no salt: their key stays the one the code before gave them, a keyed hash of
    the id alone by SECRET_KEY itself (computed here as that code did), so the links people kept still open."""
    shown = recommend_sample(client, demo_catalog.movies[0].imdb_id).get_json()
    with sqlite3.connect(app.config["DATABASE"]) as database:
        database.execute("UPDATE recommendations SET key_salt = NULL")  # as migration 4 leaves the rows before it
    digest = hmac.new(app.config["SECRET_KEY"].encode(), f"recommendation {shown['id']}".encode(), hashlib.sha256)
    old_key = base64.urlsafe_b64encode(digest.digest()[:16]).decode()[:22]
    assert old_key != shown["key"]
    assert client.get(f"/results/{shown['id']}?key={old_key}").status_code == 200
    assert client.get(f"/results/{shown['id']}?key={shown['key']}").status_code == 404
    vote = client.post("/api/feedback", json={"id": shown["id"], "key": old_key, "rating": "good"}, headers=HEADERS)
    assert vote.status_code == 200
