"""The web app end to end over a real model and a real SQLite database: upload or sample in,
five recommendations out, and clear answers for bad input."""

from __future__ import annotations

import io
import json
import re
import sqlite3

import pytest
from PIL import Image

from app import create_app


def results_page_for(client, data: dict) -> tuple[str, int]:
    response = client.post("/recommend", data=data, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    recommendation_id = int(re.fullmatch(r"/results/(\d+)", location).group(1))
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
    assert f"/results/{recommendation_id}/query.jpg" in page
    thumbnail = client.get(f"/results/{recommendation_id}/query.jpg")
    assert thumbnail.mimetype == "image/jpeg" and Image.open(io.BytesIO(thumbnail.data)).size[1] <= 268

    with sqlite3.connect(app.config["DATABASE"]) as database:
        arm, kind, results, genres = database.execute(
            "SELECT arm, query_kind, results, genres FROM recommendations WHERE id = ?", (recommendation_id,)
        ).fetchone()
    assert (arm, kind) == ("euclidean", "upload") and json.loads(results) == shown
    probabilities = json.loads(genres)
    assert set(probabilities) == {"Action", "Comedy", "Drama", "Horror", "Romance", "Thriller"}
    model = app.extensions["posterbench"].model
    thresholds = dict(zip(model.genres, model.thresholds, strict=True))
    predicted = {genre for genre, p in probabilities.items() if p > thresholds[genre]}
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
        ({"sample": "tt0000000"}, 404, "no movie tt0000000"),
    ],
)
def test_bad_input_gets_a_clear_answer_and_saves_nothing(client, app, data, status, message) -> None:
    response = client.post("/recommend", data=data, content_type="multipart/form-data")
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    with sqlite3.connect(app.config["DATABASE"]) as database:
        assert database.execute("SELECT COUNT(*) FROM recommendations").fetchone()[0] == 0


def test_an_oversized_upload_is_refused_politely(client, app) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/recommend",
        data={"poster": (io.BytesIO(b"\0" * (limit + 1)), "huge.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "too large: posters up to 10 MB" in response.get_data(as_text=True)


def test_unknown_results_are_404(client) -> None:
    assert client.get("/results/999").status_code == 404


def test_healthz_reports_the_catalog(client, demo_catalog) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok", "movies": len(demo_catalog)}


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
