"""The web app end to end over a real model and a real SQLite database: upload or sample in,
five recommendations out, and clear answers for bad input."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from app import create_app
from tests.conftest import png_header_only, results_path

pytestmark = pytest.mark.usefixtures("served_model_loaded_once")


def results_page_for(client, data: dict) -> tuple[str, int]:
    response = client.post("/recommend", data=data, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    recommendation_id = int(re.fullmatch(r"/results/(\d+)\?key=[A-Za-z0-9_-]{22}", location).group(1))
    return client.get(location).get_data(as_text=True), recommendation_id


def test_home_offers_upload_and_clickable_samples(client, demo_catalog) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'type="file" name="poster"' in page
    samples = re.findall(r'name="sample" value="(tt\d+)"', page)
    assert len(samples) == 12 and set(samples) <= {movie.imdb_id for movie in demo_catalog}


def test_uploading_a_poster_shows_genres_and_five_catalog_movies(client, app, demo_catalog) -> None:
    movie = demo_catalog.movies[7]
    poster = demo_catalog.poster_path(movie).read_bytes()
    page, recommendation_id = results_page_for(client, {"poster": (io.BytesIO(poster), "my poster.jpg")})
    shown = re.findall(r'<h3><a href="https://www.imdb.com/title/(tt\d+)/"', page)
    assert len(shown) == 5 and len(set(shown)) == 5 and set(shown) <= {m.imdb_id for m in demo_catalog}
    for genre in ("Action", "Comedy", "Drama", "Horror", "Romance", "Thriller"):
        assert f'<span class="name">{genre}</span>' in page
    assert results_path(app, recommendation_id, "/query.jpg") in page.replace("&amp;", "&")
    thumbnail = client.get(results_path(app, recommendation_id, "/query.jpg"))
    assert thumbnail.mimetype == "image/jpeg" and Image.open(io.BytesIO(thumbnail.data)).size[1] <= 268
    assert thumbnail.headers["Cache-Control"] == "private, no-store"  # a person's upload: no shared cache keeps it
    assert client.get(results_path(app, recommendation_id)).headers["Cache-Control"] == "private, no-store"

    with sqlite3.connect(app.config["DATABASE"]) as database:
        arm, kind, results, genres = database.execute(
            "SELECT arm, query_kind, results, genres FROM recommendations WHERE id = ?", (recommendation_id,)
        ).fetchone()
    assert arm in ("manhattan", "euclidean", "cosine") and kind == "upload" and json.loads(results) == shown
    assert f"Compared by <strong>{arm}</strong> distance" in page
    probabilities = json.loads(genres)
    assert set(probabilities) == {"Action", "Comedy", "Drama", "Horror", "Romance", "Thriller"}
    predicted = {genre for genre, p in probabilities.items() if p > 0.5} or {max(probabilities, key=probabilities.get)}
    highlighted = set(re.findall(r'<li class="genre likely">\s*<span class="name">(\w+)</span>', page))
    assert highlighted == predicted


def test_a_sample_is_never_recommended_to_itself(client, demo_catalog) -> None:
    sample = demo_catalog.movies[3]
    page, _ = results_page_for(client, {"sample": sample.imdb_id})
    shown = re.findall(r'<h3><a href="https://www.imdb.com/title/(tt\d+)/"', page)
    assert len(shown) == 5 and sample.imdb_id not in shown
    assert sample.title in page


def test_catalog_posters_are_served_locally(client, demo_catalog) -> None:
    movie = demo_catalog.movies[0]
    response = client.get(f"/posters/{movie.imdb_id}.jpg")
    assert response.status_code == 200 and response.data == demo_catalog.poster_path(movie).read_bytes()
    assert client.get("/posters/tt0000000.jpg").status_code == 404
    assert client.get("/posters/..%2Fmovies.csv.jpg").status_code == 404


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"poster": (io.BytesIO(b"GIF89a broken"), "broken.gif")}, 400, "We could not read broken.gif"),
        ({"poster": (io.BytesIO(b""), "")}, 400, "Choose a poster image to upload"),
        ({}, 400, "Choose a poster image to upload"),
        ({"sample": "tt0000000"}, 404, "No movie tt0000000 in the catalog."),  # a sentence on the page
    ],
)
def test_bad_input_gets_a_clear_answer_and_saves_nothing(client, app, data, status, message) -> None:
    response = client.post("/recommend", data=data, content_type="multipart/form-data")
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0] == 0


def test_unknown_results_are_404(client, app) -> None:
    assert client.get(results_path(app, 999)).status_code == 404


def test_healthz_reports_the_catalog(client, demo_catalog) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok", "movies": len(demo_catalog), "precision": "float32"}


def test_init_db_keeps_existing_data(runner, client, app, demo_catalog) -> None:
    results_page_for(client, {"sample": demo_catalog.movies[0].imdb_id})
    result = runner.invoke(args=["init-db"])
    assert "database ready" in result.output
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0] == 1


def test_the_app_refuses_to_start_without_its_settings(tmp_path, demo_catalog_dir, trained) -> None:
    with pytest.raises(RuntimeError, match="POSTERBENCH_SECRET_KEY"):
        create_app({"DATABASE": str(tmp_path / "db.sqlite")})
    with pytest.raises(RuntimeError, match="set POSTERBENCH_INDEX"):
        create_app(
            {
                "SECRET_KEY": "x",
                "DATABASE": str(tmp_path / "db.sqlite"),
                "CATALOG": str(demo_catalog_dir),
                "MODEL": str(trained[1]),
            }
        )


def test_feedback_is_taken_once_and_teaches_the_bandit(client, app, demo_catalog) -> None:
    page, recommendation_id = results_page_for(client, {"sample": demo_catalog.movies[5].imdb_id})
    assert page.count('name="rating"') == 3
    with sqlite3.connect(app.config["DATABASE"]) as database:
        (arm, probability, epsilon) = database.execute(
            "SELECT arm, arm_probability, epsilon FROM recommendations WHERE id = ?", (recommendation_id,)
        ).fetchone()
    assert (probability, epsilon) == (pytest.approx(1 / 3), 1.0)  # nothing rated yet: a uniformly random arm

    response = client.post(results_path(app, recommendation_id, "/feedback"), data={"rating": "good"})
    assert response.status_code == 303 and response.headers["Location"] == results_path(app, recommendation_id)
    page = client.get(results_path(app, recommendation_id)).get_data(as_text=True)
    assert "you rated these suggestions good" in page.lower() and 'name="rating"' not in page

    again = client.post(results_path(app, recommendation_id, "/feedback"), data={"rating": "bad"})
    assert (
        again.status_code == 409
        and f"Recommendation {recommendation_id} has already been rated; one vote each." in again.get_data(as_text=True)
    )
    assert client.post(results_path(app, recommendation_id, "/feedback"), data={"rating": "meh"}).status_code == 400
    missing = client.post(results_path(app, 9999, "/feedback"), data={"rating": "good"})
    assert missing.status_code == 404 and "No recommendation 9999" in missing.get_data(as_text=True)
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT recommendation_id, reward FROM feedback").fetchall() == [(recommendation_id, 1)]

    _, second = results_page_for(client, {"sample": demo_catalog.movies[6].imdb_id})
    with sqlite3.connect(app.config["DATABASE"]) as database:
        (second_arm, second_probability, second_epsilon) = database.execute(
            "SELECT arm, arm_probability, epsilon FROM recommendations WHERE id = ?", (second,)
        ).fetchone()
    assert second_epsilon == pytest.approx(50 / 51)  # one vote so far, decay 50
    greedy_share = 1 - second_epsilon + second_epsilon / 3
    assert second_probability == pytest.approx(greedy_share if second_arm == arm else second_epsilon / 3)


def test_a_bad_bandit_setting_stops_the_app_at_start(demo_catalog_dir, trained, index_dir, tmp_path) -> None:
    settings = {
        "SECRET_KEY": "test",
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(trained[1]),
        "INDEX": str(index_dir),
        "DATABASE": str(tmp_path / "db.sqlite"),
    }
    with pytest.raises(ValueError, match="unknown bandit policy 'greedy'"):
        create_app({**settings, "BANDIT_POLICY": "greedy"})


def test_settings_from_the_environment_keep_text_as_text_and_check_numbers(
    monkeypatch, demo_catalog, demo_catalog_dir, onnx_model_dir, index_dir, tmp_path
) -> None:
    """Flask reads each POSTERBENCH_ variable as JSON where it can: a secret key of digits became a number, and every
    page with a form answered 500. Numbers out of their bounds once started the app and failed later."""
    for name, value in {
        "SECRET_KEY": "12345678901234567890",
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(onnx_model_dir),  # the trained model's ONNX export, as the app serves it
        "INDEX": str(index_dir),
        "DATABASE": str(tmp_path / "0123"),
        "FEEDBACK_LIMIT": "7",
    }.items():
        monkeypatch.setenv(f"POSTERBENCH_{name}", value)
    for name in ("POSTERBENCH_DATABASE_URL", "DATABASE_URL", "POSTERBENCH_JOBS_URL", "POSTERBENCH_CLEMS"):
        monkeypatch.delenv(name, raising=False)
    app = create_app()
    assert app.config["SECRET_KEY"] == "12345678901234567890" and app.config["DATABASE"] == str(tmp_path / "0123")
    assert app.config["FEEDBACK_LIMIT"] == 7
    with monkeypatch.context() as written_so:  # a whole number written as a float, as text: still the number
        written_so.setenv("POSTERBENCH_MAX_CONTENT_LENGTH", "2e7")
        written_so.setenv("POSTERBENCH_FEEDBACK_LIMIT", '"+5"')
        config = create_app().config
        assert (config["MAX_CONTENT_LENGTH"], config["FEEDBACK_LIMIT"]) == (20_000_000, 5)
    response = app.test_client().get("/")
    assert response.status_code == 200 and 'name="csrf_token"' in response.get_data(as_text=True)
    for name, value, message in [
        ("FEEDBACK_LIMIT", "many", "POSTERBENCH_FEEDBACK_LIMIT must be a whole number of at least 1: 'many'"),
        ("SAMPLE_COUNT", "-3", "POSTERBENCH_SAMPLE_COUNT must be a whole number of at least 1: -3"),
        ("MAX_CONTENT_LENGTH", "2.5", "POSTERBENCH_MAX_CONTENT_LENGTH must be a whole number of at least 1: 2.5"),
        ("IMDB_TIMEOUT_SECONDS", "[1]", "POSTERBENCH_IMDB_TIMEOUT_SECONDS must be a number of at least 0.1: [1]"),
        ("TRUSTED_PROXIES", "true", "POSTERBENCH_TRUSTED_PROXIES must be a whole number of at least 0: True"),
        ("JOB_ATTEMPTS", "0", "POSTERBENCH_JOB_ATTEMPTS must be a whole number of at least 1: 0"),
        ("FEEDBACK_WINDOW_SECONDS", "NaN", "POSTERBENCH_FEEDBACK_WINDOW_SECONDS must be a number of at least 1: nan"),
        ("JOB_STALE_SECONDS", "Infinity", "POSTERBENCH_JOB_STALE_SECONDS must be a number of at least 0.5: inf"),
    ]:
        with monkeypatch.context() as bad:
            bad.setenv(f"POSTERBENCH_{name}", value)
            with pytest.raises(RuntimeError) as refused:
                create_app()
            assert str(refused.value) == message


def test_the_app_uses_the_clems_genres_when_configured(
    app, client, demo_catalog, demo_catalog_dir, trained, index_dir
) -> None:
    from embedding.pipeline import fit_clems
    from model.index import FeatureIndex, model_fingerprint

    clems_dir = Path(app.config["DATABASE"]).parent / "clems"
    index = FeatureIndex.load(index_dir, demo_catalog)
    # 4 trees: the test checks that the app serves CLEMS's probabilities, not how good they are
    clems = fit_clems(demo_catalog, trained[1], index, clems_dir, cost="hamming", n_estimators=4)
    embedded = create_app({**app.config, "CLEMS": str(clems_dir)})
    embedded.test_client_class = type(client)  # sends the CSRF token, as the page's form does
    sample = demo_catalog.movies[4]
    _, recommendation_id = results_page_for(embedded.test_client(), {"sample": sample.imdb_id})
    with sqlite3.connect(app.config["DATABASE"]) as database:
        (genres,) = database.execute("SELECT genres FROM recommendations WHERE id = ?", (recommendation_id,)).fetchone()
    expected = clems.predict_proba(index.features[[demo_catalog.position(sample.imdb_id)]])[0]
    assert list(json.loads(genres).values()) == pytest.approx(expected.tolist(), abs=1e-4)

    source = clems_dir / "source.json"  # the model it was fitted for, which the app checks at start
    assert json.loads(source.read_text()) == {"model_fingerprint": model_fingerprint(trained[1])}
    source.write_text(json.dumps({"model_fingerprint": "0123456789abcdef"}))  # as if the model were trained again
    with pytest.raises(RuntimeError, match="fitted on the feature vectors of other weights .* fit it again"):
        create_app({**app.config, "CLEMS": str(clems_dir)})


def test_a_catalog_with_nothing_else_to_recommend_answers_422_and_logs_nothing(
    app_settings, demo_catalog, tmp_path
) -> None:
    """A one-movie catalog and a click on its sample: no movie is left to recommend. The empty recommendation was
    logged, and could be voted on, teaching the bandit about a distance that chose nothing."""
    from app import create_app
    from app.resources import load_model
    from catalog import read_catalog, write_catalog
    from model.index import build_index

    only = demo_catalog.movies[0]
    write_catalog(tmp_path / "one", [only], [(only.poster, demo_catalog.poster_path(only).read_bytes())])
    one = read_catalog(tmp_path / "one")
    served = Path(app_settings["MODEL"])  # the trained demo model's ONNX export: `posterbench index` indexes with it
    build_index(one, load_model(str(served)), served, tmp_path / "one-index", progress=False)
    settings = {**app_settings, "CATALOG": str(tmp_path / "one"), "INDEX": str(tmp_path / "one-index")}
    client = create_app(settings).test_client()
    response = client.post("/api/recommend", data={"sample": only.imdb_id}, headers={"X-Requested-With": "test"})
    assert response.status_code == 422
    assert response.get_json()["error"] == "the catalog holds no other movie to recommend for this poster"
    with sqlite3.connect(settings["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM recommendations").fetchone() == (0,)


def test_the_scatter_plot_draws_a_point_without_a_poster_it_cannot_read(app_settings, demo_catalog, tmp_path) -> None:
    """The plot read catalog posters with Image.open and caught only OSError: a poster file replaced by a
    decompression bomb (or anything Pillow refuses otherwise) made scatter.svg answer 500."""
    import shutil

    from app import create_app

    shutil.copytree(demo_catalog.directory, tmp_path / "catalog")
    client = create_app({**app_settings, "CATALOG": str(tmp_path / "catalog")}).test_client()
    answer = client.post(
        "/api/recommend", data={"sample": demo_catalog.movies[2].imdb_id}, headers={"X-Requested-With": "t"}
    )
    assert answer.status_code == 201
    bomb = png_header_only(30_000, 30_000)  # 900 million pixels: a bomb to Pillow
    recommended = [movie["imdb_id"] for movie in answer.get_json()["recommendations"]]
    (tmp_path / "catalog" / demo_catalog.get(recommended[0]).poster).write_bytes(bomb)
    (tmp_path / "catalog" / demo_catalog.get(recommended[1]).poster).write_bytes(b"GIF89a" + b"\0" * 20)
    plot = client.get(answer.get_json()["results_url"].replace("?key=", "/scatter.svg?key="))
    assert plot.status_code == 200 and plot.mimetype == "image/svg+xml"
    assert plot.get_data(as_text=True).count("<image") == 3  # five points, three with their posters


def test_a_missing_clems_directory_stops_the_app_at_start(app, tmp_path) -> None:
    with pytest.raises(RuntimeError, match="holds no CLEMS model"):
        create_app({**app.config, "CLEMS": str(tmp_path / "nowhere")})


def test_an_upload_is_decoded_for_the_network_as_the_index_decodes_it(app, demo_catalog) -> None:
    """A large JPEG is decoded at a reduced scale; the app decoded uploads at the thumbnail's scale, the index at the
    network's, so an upload of a catalog poster at 900 x 1350 gave another vector than the index holds for it."""
    import numpy as np

    from app.poster_pipeline import THUMBNAIL_SIZE, image_query
    from app.resources import get_resources
    from model.images import load_poster

    buffer = io.BytesIO()
    poster = Image.open(demo_catalog.poster_path(demo_catalog.movies[0])).convert("RGB")
    poster.resize((900, 1350), Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=95)
    with app.app_context():
        model = get_resources().model
        query = image_query(get_resources(), buffer.getvalue(), "upload", None, "the file")
        indexed = model.predict(load_poster(buffer.getvalue(), model.input_size)[np.newaxis])
    np.testing.assert_array_equal(query.prediction.features, indexed.features)
    shown = Image.open(io.BytesIO(query.thumbnail))
    assert THUMBNAIL_SIZE[1] - 1 <= shown.height <= THUMBNAIL_SIZE[1]  # the thumbnail still at full size


def test_what_a_picture_unlike_the_posters_evokes_stays_within_what_the_page_shows() -> None:
    """The year and rating heads are linear: a picture far from the catalog's posters gave "about 989" under bars
    that said 1980s at 100 %, and an IMDb rating "10.0 (80 % within 10.0 to 10.0)"."""
    from dataclasses import replace

    import numpy as np

    from app.poster_pipeline import evoked_json
    from model.artifacts import Description, Prediction
    from model.poster_detector import PosterDetector
    from model.presets import DEMO

    description = Description(DEMO, ("Drama",), np.array([0.5]), (1970, 1980, 1990, 2000), (-1.5, 1.3))
    far = Prediction(
        genres=np.array([[0.5]]),
        features=np.zeros((1, 4)),
        decades=np.array([[0.0, 1.0, 0.0, 0.0]]),
        year=np.array([989.0]),
        rating=np.array([14.2]),
        poster_score=np.array([0.0]),
    )
    evoked = evoked_json(far, description, PosterDetector())
    assert evoked["year"] == 1980 and evoked["rating"] == {"expected": 10.0, "low": 8.5, "high": 10.0, "coverage": 0.8}
    two_decades = replace(far, decades=np.array([[0.0, 0.5, 0.45, 0.05]]), year=np.array([2031.0]))
    assert evoked_json(two_decades, description, PosterDetector())["year"] == 1999  # the 1980s and 1990s hold 95 %
    usual = replace(far, year=np.array([1984.3]), rating=np.array([6.1]))
    assert evoked_json(usual, description, PosterDetector())["year"] == 1984.3  # a year within them is as it was
