"""Background jobs (app/jobs.py): comparisons of drafts and heatmaps are submitted (202 and the job's URL), checked
like /api/recommend's posters (the same 4xx, nothing saved), queued in Huey and run by a worker; their state lives in
the app's database, so it survives a new web app; a killed worker's job is run again or failed with a message,
never left running; a finished job expires.

In-process tests run the queue's tasks here (JobQueue.drain); the worker tests start real `posterbench worker`
processes (Huey's consumer) and stop them with SIGTERM and SIGKILL. The demo model is served from its ONNX export,
so that a worker starts in seconds."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import create_app
from app.job_store import WORKER_STOPPED, beat, claim, finish, give_back, read_job, recover_stale
from app.jobs import EXTENSION, sweep
from tools.serving import start_job_worker, wait_until_gone, wait_until_ready

HEADERS = {"X-Requested-With": "pytest"}
WORKER_START_SECONDS = 60


@pytest.fixture
def settings(app_settings: dict, onnx_model_dir: Path) -> dict:
    """The test app's settings with the ONNX model; the queue is the default, a SQLite file beside the database."""
    return {
        **app_settings,
        "MODEL": str(onnx_model_dir),
        "JOB_HEARTBEAT_SECONDS": 0.25,
        "JOB_STALE_SECONDS": 2.0,
        "JOB_POLL_SECONDS": 0.05,
        "INFERENCE_THREADS": 2,  # the in-process tests run the jobs in the web app
    }


@pytest.fixture
def jobs_app(settings: dict):
    return create_app(settings)


def poster_file(catalog, number: int, name: str | None = None) -> tuple[io.BytesIO, str]:
    path = catalog.poster_path(catalog.movies[number])
    return io.BytesIO(path.read_bytes()), name or f"draft-{number}.jpg"


def compare(client, catalog, **extra) -> object:
    data = {"image": [poster_file(catalog, 3), poster_file(catalog, 40)], "sample": catalog.movies[7].imdb_id, **extra}
    return client.post("/api/compare", data=data, headers=HEADERS, content_type="multipart/form-data")


def counts(app) -> tuple[int, int, int, int]:
    """(jobs, job posters, job files, recommendations) in the app's database."""
    with sqlite3.connect(app.config["DATABASE"]) as database:
        return tuple(
            database.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("jobs", "job_posters", "job_files", "recommendations")
        )


def drain(app) -> int:
    return app.extensions[EXTENSION].drain()


def explained(shown) -> dict[str, str]:
    """The fields that ask for a heatmap of a recommendation /api/recommend answered: its id and its key."""
    body = shown.get_json()
    return {"recommendation": str(body["id"]), "recommendation_key": body["key"]}


def job_of(client, answer) -> dict:
    assert answer.status_code == 202, answer.get_data(as_text=True)
    body = answer.get_json()
    assert answer.headers["Location"] == body["job_url"]
    status = client.get(body["job_url"].removeprefix("http://localhost"))
    assert status.status_code == 200
    return status.get_json()


def test_a_comparison_is_queued_run_and_answered(jobs_app, demo_catalog) -> None:
    client = jobs_app.test_client()
    job = job_of(client, compare(client, demo_catalog, target=["horror", "Comedy", "Horror"]))
    assert (job["status"], job["progress"], job["kind"]) == ("queued", 0, "compare")
    assert job["params"] == {"targets": ["Horror", "Comedy"]}  # the model's spelling, each once
    assert drain(jobs_app) == 1
    done = client.get(f"/api/jobs/{job['job']}").get_json()
    assert (done["status"], done["progress"]) == ("done", 1), done
    result = done["result"]
    assert [draft["label"] for draft in result["posters"]][:2] == ["draft-3.jpg", "draft-40.jpg"]
    assert [draft["kind"] for draft in result["posters"]] == ["upload", "upload", "sample"]
    assert result["distance"] == "manhattan"  # the bandit's greedy arm while nothing is rated
    for draft in result["posters"]:
        assert len(draft["recommendations"]) == 5 and 1 <= draft["rating"]["expected"] <= 10
        probabilities = np.array([draft["genres"][genre] for genre in result["genres"]])
        intended = np.array([genre in ("Horror", "Comedy") for genre in result["genres"]], dtype=float)
        assert draft["profile_distance"] == pytest.approx(np.abs(probabilities - intended).mean(), abs=1e-3)
        assert client.get(draft["image_url"].removeprefix("http://localhost")).status_code == 200
    sample = result["posters"][2]
    assert sample["in_catalog"] and sample["image_url"].endswith(f"/posters/{demo_catalog.movies[7].imdb_id}.jpg")
    assert sample["imdb_id"] not in {movie["imdb_id"] for movie in sample["recommendations"]}
    assert [ranking["genre"] for ranking in result["rankings"]] == ["Horror", "Comedy"]
    for ranking in result["rankings"]:
        order = [entry["probability"] for entry in ranking["order"]]
        assert order == sorted(order, reverse=True) and len(order) == 3
    distances = [result["posters"][position - 1]["profile_distance"] for position in result["closest_to_intended"]]
    assert distances == sorted(distances)
    sheet = client.get(result["sheet_url"].removeprefix("http://localhost"))
    assert sheet.status_code == 200 and sheet.mimetype == "image/png"
    assert Image.open(io.BytesIO(sheet.data)).width >= 700
    kept = client.get(f"/api/jobs/{job['job']}/posters/1.png")
    assert kept.mimetype == "image/png" and max(Image.open(io.BytesIO(kept.data)).size) <= 512
    assert client.get(f"/api/jobs/{job['job']}/posters/3.png").status_code == 404  # a catalog movie's: /posters/
    assert client.get(f"/api/jobs/{job['job']}/heatmap.png").status_code == 404
    assert counts(jobs_app) == (1, 3, 1, 0)  # a comparison logs no recommendation
    page = client.get(f"/jobs/{job['job']}").get_data(as_text=True)
    assert "Reads most as Horror" in page and "Download sheet" in page and "draft-40.jpg" in page


def test_a_heatmap_for_a_sample_a_recommendation_and_a_compared_draft(jobs_app, demo_catalog) -> None:
    client = jobs_app.test_client()
    shown = client.post("/api/recommend", data={"image": poster_file(demo_catalog, 5)}, headers=HEADERS)
    compared = job_of(client, compare(client, demo_catalog))
    drain(jobs_app)
    asked = [
        {"sample": demo_catalog.movies[2].imdb_id, "genre": "drama"},
        {**explained(shown), "genre": "Action", "grid": "3"},
        {"job_poster": f"{compared['job']}/2", "genre": "Thriller", "grid": "2"},
    ]
    jobs = [job_of(client, client.post("/api/explain", data=data, headers=HEADERS)) for data in asked]
    assert drain(jobs_app) == 3
    for job, data in zip(jobs, asked, strict=True):
        done = client.get(f"/api/jobs/{job['job']}").get_json()
        assert done["status"] == "done", done
        result = done["result"]
        assert result["genre"] == data["genre"].capitalize()
        grid = int(data.get("grid", 5))  # model.explain.DEFAULT_GRID
        assert result["grid"] == grid and np.array(result["map"]).shape == (grid, grid)
        assert 0 <= result["probability"] <= 1
        heatmap = client.get(result["heatmap_url"].removeprefix("http://localhost"))
        assert heatmap.status_code == 200 and Image.open(io.BytesIO(heatmap.data)).format == "PNG"
    assert jobs[0]["params"] == {"genre": "Drama", "grid": 5}
    page = client.get(f"/jobs/{jobs[2]['job']}").get_data(as_text=True)
    assert "What makes this poster read as Thriller" in page and 'id="heatmap"' in page


def test_a_poster_at_the_aspect_limit_and_a_heatmaps_own_poster_can_be_explained(jobs_app, demo_catalog) -> None:
    """A 5:1 upload's kept thumbnail (1000 x 200 became 182 x 36, 5.06:1) was refused when its recommendation was
    explained (500); a heatmap page's form, which asks for another genre of the same poster by `job_poster`, got 404."""
    client = jobs_app.test_client()
    wide = io.BytesIO()
    Image.open(demo_catalog.poster_path(demo_catalog.movies[5])).convert("RGB").resize((1000, 200)).save(wide, "PNG")
    wide.seek(0)
    shown = client.post("/api/recommend", data={"image": (wide, "banner.png")}, headers=HEADERS)
    assert shown.status_code == 201, shown.get_json()
    first = job_of(
        client,
        client.post("/api/explain", data={**explained(shown), "genre": "Drama", "grid": "2"}, headers=HEADERS),
    )
    again = {"job_poster": f"{first['job']}/1", "genre": "Horror", "grid": "2"}
    second = job_of(client, client.post("/api/explain", data=again, headers=HEADERS))
    assert drain(jobs_app) == 2
    for job in (first, second):
        done = client.get(f"/api/jobs/{job['job']}").get_json()
        assert done["status"] == "done", done
    page = client.get(f"/jobs/{first['job']}").get_data(as_text=True)
    assert f'name="job_poster" value="{first["job"]}/1"' in page  # the form that now works


def test_a_file_name_with_control_characters_is_shown_without_them(
    settings: dict, database_target: str, demo_catalog
) -> None:
    """A NUL in an upload's file name made PostgreSQL refuse the job (500); names are only shown, so such characters
    (and a right-to-left override) are dropped."""
    key = "DATABASE_URL" if "://" in database_target else "DATABASE"
    app = create_app({**settings, key: database_target})
    client = app.test_client()
    drafts = [poster_file(demo_catalog, 3, "a\x00b\u202egpj.exe"), poster_file(demo_catalog, 4, "\x01\x02")]
    job = job_of(client, client.post("/api/compare", data={"image": drafts}, headers=HEADERS))
    assert drain(app) == 1
    done = client.get(f"/api/jobs/{job['job']}").get_json()
    assert [draft["label"] for draft in done["result"]["posters"]] == ["abgpj.exe", "the file"], done


def bad_inputs(catalog) -> list[tuple[str, dict, int, str]]:
    """(operation, form, status, words of the error) that /api/recommend answers alike where it takes the same."""

    def broken() -> tuple[io.BytesIO, str]:
        return io.BytesIO(b"this is not an image"), "holiday.jpg"

    sample = catalog.movies[0].imdb_id
    return [
        ("compare", {"image": [broken(), poster_file(catalog, 1)]}, 400, "We could not read holiday.jpg"),
        ("compare", {"sample": [sample] * 7}, 400, "send 2 to 6 posters"),
        ("compare", {"sample": [sample]}, 400, "this request sent 1"),
        ("compare", {"sample": [sample, sample], "target": "Westerns"}, 400, "unknown genre 'Westerns'"),
        ("compare", {"sample": [sample, "tt0000001"]}, 404, "no movie tt0000001 in the catalog"),
        ("compare", {"image": "not a file", "sample": [sample, sample]}, 400, "as a file"),
        ("explain", {"image": broken(), "genre": "Drama"}, 400, "We could not read holiday.jpg"),
        ("explain", {"sample": sample, "genre": "Musical"}, 400, "unknown genre 'Musical'"),
        ("explain", {"sample": sample}, 400, "send the genre to explain"),
        ("explain", {"sample": "tt0000001", "genre": "Drama"}, 404, "no movie tt0000001 in the catalog"),
        ("explain", {"sample": sample, "recommendation": "1", "genre": "Drama"}, 400, "this request sent 2"),
        ("explain", {"recommendation": "12345", "recommendation_key": "k", "genre": "Drama"}, 404, "no recommendation"),
        ("explain", {"recommendation": "1", "genre": "Drama"}, 400, "send the recommendation's key"),
        ("explain", {"recommendation": "-1", "genre": "Drama"}, 400, "must be a whole number"),
        ("explain", {"recommendation": "0", "recommendation_key": "k", "genre": "Drama"}, 400, "1 or more"),
        ("explain", {"sample": sample, "genre": "Drama", "grid": "40"}, 400, "grid must be 2 to 12"),
        ("explain", {"sample": sample, "genre": ["Drama", "Horror"]}, 400, "send 'genre' once; this request sent it 2"),
        ("explain", {"job_poster": "AAAAAAAAAAAAAAAA/1", "genre": "Drama"}, 404, "no comparison"),
        ("compare", {"sample": [sample, sample], "target": (io.BytesIO(b"Drama"), "t")}, 400, "send 'target' as a"),
        ("explain", {"recommendation": (io.BytesIO(b"1"), "r"), "genre": "Drama"}, 400, "send 'recommendation' as"),
    ]


def test_bad_inputs_get_the_same_4xx_as_recommend_and_save_nothing(jobs_app, demo_catalog) -> None:
    client = jobs_app.test_client()
    for operation, data, status, words in bad_inputs(demo_catalog):
        answer = client.post(f"/api/{operation}", data=data, headers=HEADERS, content_type="multipart/form-data")
        assert (answer.status_code, words in answer.get_json()["error"]) == (status, True), (data, answer.get_json())
    same = {"image": (io.BytesIO(b"this is not an image"), "holiday.jpg")}
    recommend = client.post("/api/recommend", data=same, headers=HEADERS, content_type="multipart/form-data")
    same = {"image": (io.BytesIO(b"this is not an image"), "holiday.jpg"), "genre": "Drama"}
    explain = client.post("/api/explain", data=same, headers=HEADERS, content_type="multipart/form-data")
    assert (explain.status_code, explain.get_json()["error"]) == (recommend.status_code, recommend.get_json()["error"])
    for operation in ("compare", "explain", "recommend"):
        huge = {"image": (io.BytesIO(b"\0" * (11 * 1024 * 1024)), "big.jpg"), "genre": "Drama"}
        answer = client.post(f"/api/{operation}", data=huge, headers=HEADERS, content_type="multipart/form-data")
        assert answer.status_code == 413 and "too large" in answer.get_json()["error"]
    unsigned = client.post("/api/compare", data={"sample": [demo_catalog.movies[0].imdb_id] * 2})
    assert unsigned.status_code == 403
    assert counts(jobs_app) == (0, 0, 0, 0) and drain(jobs_app) == 0


def test_a_client_may_have_so_many_jobs_waiting(settings: dict, demo_catalog) -> None:
    app = create_app({**settings, "JOBS_PER_CLIENT": 1})
    client = app.test_client()
    job_of(client, compare(client, demo_catalog))
    refused = compare(client, demo_catalog)
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert counts(app)[:2] == (1, 3)
    drain(app)
    job_of(client, compare(client, demo_catalog))  # done: the client may submit again


def test_a_job_survives_a_new_web_app_over_the_same_database(settings: dict, demo_catalog) -> None:
    before = create_app(settings)
    job = job_of(before.test_client(), compare(before.test_client(), demo_catalog))
    after = create_app(settings)  # a restarted web worker: the state is in the database, the queue in its file
    assert after.test_client().get(f"/api/jobs/{job['job']}").get_json()["status"] == "queued"
    assert drain(after) == 1
    for app in (before, after):
        assert app.test_client().get(f"/api/jobs/{job['job']}").get_json()["status"] == "done"


def test_an_expired_job_answers_404_and_is_deleted(jobs_app, demo_catalog) -> None:
    client = jobs_app.test_client()
    job = job_of(client, compare(client, demo_catalog))
    drain(jobs_app)
    with sqlite3.connect(jobs_app.config["DATABASE"]) as database:
        database.execute("UPDATE jobs SET finished = '2000-01-01T00:00:00.000Z'")  # finished long ago
    for path in ("", "/sheet.png", "/posters/1.png"):
        assert client.get(f"/api/jobs/{job['job']}{path}").status_code == 404
    assert client.get(f"/jobs/{job['job']}").status_code == 404
    gone = client.post("/api/explain", data={"job_poster": f"{job['job']}/1", "genre": "Drama"}, headers=HEADERS)
    assert gone.status_code == 404
    assert counts(jobs_app)[:3] == (1, 3, 1)  # still there, until the next submission or the worker's sweep
    job_of(client, compare(client, demo_catalog))
    assert counts(jobs_app)[:3] == (1, 3, 0)
    assert client.get("/api/jobs/not-a-job").status_code == 404
    assert client.get("/api/jobs/" + "A" * 16).status_code == 404


def run_stops_mid_job(app, job_id: str) -> int:
    """Play a worker that took the job and then vanished: its run holds the job, and its heartbeat is old."""
    with app.app_context():
        from app.db import get_db

        attempt = claim(get_db(), job_id)
    with sqlite3.connect(app.config["DATABASE"]) as database:
        database.execute("UPDATE jobs SET heartbeat = '2000-01-01T00:00:00.000Z' WHERE id = ?", (job_id,))
    return attempt


def test_a_job_whose_worker_stopped_is_run_again_once_then_failed(jobs_app, demo_catalog) -> None:
    client = jobs_app.test_client()
    job_id = job_of(client, compare(client, demo_catalog))["job"]
    jobs_app.extensions[EXTENSION].huey.flush()  # the dead worker had taken the job's message
    first = run_stops_mid_job(jobs_app, job_id)
    assert first == 1
    again = client.get(f"/api/jobs/{job_id}").get_json()  # reading it finds the worker gone: queued again
    assert again["status"] == "queued"
    jobs_app.extensions[EXTENSION].huey.flush()
    assert run_stops_mid_job(jobs_app, job_id) == 2
    failed = client.get(f"/api/jobs/{job_id}").get_json()
    assert (failed["status"], failed["error"]) == ("failed", WORKER_STOPPED)
    assert "The worker stopped while running this job; please submit it again." in client.get(
        f"/jobs/{job_id}"
    ).get_data(as_text=True)
    with jobs_app.app_context():
        from app.db import get_db

        database = get_db()
        assert not beat(database, job_id, 2)  # a run given up on can write nothing more
        assert not finish(database, job_id, 2, {"late": True}, {"sheet.png": b"late"})
        assert recover_stale(database, 2.0, 2) == ([], [])
    assert counts(jobs_app)[2] == 0


def submitted_seconds_ago(app, job_id: str, seconds: float) -> None:
    """Move the job's submission `seconds` into the past (the sweep sends again only jobs queued for a while), in
    the app's database, SQLite or PostgreSQL."""
    from app.db import get_db

    when = datetime.now(UTC) - timedelta(seconds=seconds)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"  # as SQLite's, PostgreSQL reads it
    with app.app_context():
        get_db().execute("UPDATE jobs SET created = ? WHERE id = ?", (stamp, job_id))


def test_a_queued_job_whose_message_the_queue_lost_is_sent_again_by_the_sweep(jobs_app, demo_catalog) -> None:
    """A broker that restarts empty (Redis without persistence) loses the waiting jobs' messages; the database still
    has them queued, and the workers' sweep sends each again, once it has waited JOB_STALE_SECONDS, and only once."""
    client = jobs_app.test_client()
    queue = jobs_app.extensions[EXTENSION]
    lost = job_of(client, compare(client, demo_catalog))["job"]
    queue.huey.flush()
    sweep(jobs_app)  # just submitted: its message may still be on its way
    assert drain(jobs_app) == 0
    submitted_seconds_ago(jobs_app, lost, 5)
    waiting = job_of(client, compare(client, demo_catalog))["job"]  # its message is in the queue
    submitted_seconds_ago(jobs_app, waiting, 5)
    sweep(jobs_app)
    assert sorted(queue.waiting_ids()) == sorted([lost, waiting]) and queue.huey.pending_count() == 2
    sweep(jobs_app)  # both messages are there now: nothing is sent twice
    assert queue.huey.pending_count() == 2
    assert drain(jobs_app) == 2
    for job_id in (lost, waiting):
        assert client.get(f"/api/jobs/{job_id}").get_json()["status"] == "done"


def test_a_stale_job_read_while_the_queue_is_down_answers_and_runs_once_it_is_back(
    jobs_app, demo_catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a job whose worker died queues it again; when the broker cannot take its message then, the reader
    still gets the job's state (not a 500) and the job is not stranded: the sweep sends it once the broker is back."""
    client = jobs_app.test_client()
    queue = jobs_app.extensions[EXTENSION]
    job_id = job_of(client, compare(client, demo_catalog))["job"]
    queue.huey.flush()  # the dead worker had taken the job's message
    run_stops_mid_job(jobs_app, job_id)

    def broker_down(*args: object) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(queue, "task", broker_down)
        answer = client.get(f"/api/jobs/{job_id}")
        assert answer.status_code == 200 and answer.get_json()["status"] == "queued", answer.get_data(as_text=True)
        submitted_seconds_ago(jobs_app, job_id, 5)
        patched.setattr(queue.huey, "pending", broker_down)
        sweep(jobs_app)  # the sweep cannot send it either, and goes on
    assert queue.huey.pending_count() == 0
    sweep(jobs_app)
    assert drain(jobs_app) == 1
    assert client.get(f"/api/jobs/{job_id}").get_json()["status"] == "done"


def test_a_broker_connection_that_broke_since_its_last_use_is_tried_again(
    jobs_app, demo_catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a PostgreSQL restart each thread's first use of its old connection fails once: a submission tries the
    queue twice before it answers 503."""
    client = jobs_app.test_client()
    queue = jobs_app.extensions[EXTENSION]
    send, calls = queue.task, []

    def fails_once(job_id: str) -> object:
        calls.append(job_id)
        if len(calls) == 1:
            raise ConnectionError("the connection is lost")
        return send(job_id)

    monkeypatch.setattr(queue, "task", fails_once)
    job_id = job_of(client, compare(client, demo_catalog))["job"]
    assert calls == [job_id, job_id] and queue.waiting_ids() == {job_id}


def test_a_job_given_back_by_a_stopping_worker_waits_from_the_start(jobs_app, demo_catalog) -> None:
    client = jobs_app.test_client()
    job_id = job_of(client, compare(client, demo_catalog))["job"]
    with jobs_app.app_context():
        from app.db import get_db

        database = get_db()
        attempt = claim(database, job_id)
        assert beat(database, job_id, attempt, 0.4)
        assert give_back(database, job_id, attempt)
        job = read_job(database, job_id, None)
    assert (job.status, job.progress, job.attempts) == ("queued", 0.0, 0)
    assert client.get(f"/api/jobs/{job_id}").get_json()["progress"] == 0


# ---------------------------------------------------------------- other brokers

REDIS_URL = os.environ.get("POSTERBENCH_TEST_REDIS_URL")


def test_jobs_on_postgresql_queued_in_the_same_database(settings: dict, postgres_url: str, demo_catalog) -> None:
    """With DATABASE_URL, the jobs' state and (by default) their queue are both in PostgreSQL, shared by every host."""
    app = create_app({**settings, "DATABASE_URL": postgres_url})
    assert app.extensions[EXTENSION].url == postgres_url
    client = app.test_client()
    job_id = job_of(client, compare(client, demo_catalog, target="Drama"))["job"]
    assert drain(app) == 1
    done = client.get(f"/api/jobs/{job_id}").get_json()
    assert done["status"] == "done" and done["result"]["rankings"][0]["genre"] == "Drama", done
    lost = job_of(client, compare(client, demo_catalog))["job"]  # a message lost: the sweep finds it in PostgreSQL
    app.extensions[EXTENSION].huey.flush()
    submitted_seconds_ago(app, lost, 5)
    sweep(app)
    assert drain(app) == 1 and client.get(f"/api/jobs/{lost}").get_json()["status"] == "done"
    assert client.get(done["result"]["sheet_url"].removeprefix("http://localhost")).mimetype == "image/png"
    stale = job_of(
        client,
        client.post("/api/explain", data={"job_poster": f"{job_id}/1", "genre": "Drama", "grid": "2"}, headers=HEADERS),
    )
    app.extensions[EXTENSION].huey.flush()
    with app.app_context():
        from app.db import get_db

        database = get_db()
        assert claim(database, stale["job"]) == 1
        database.execute("UPDATE jobs SET heartbeat = now() - interval '1 hour' WHERE id = ?", (stale["job"],))
        assert client.get(f"/api/jobs/{stale['job']}").get_json()["status"] == "queued"
        assert drain(app) == 1 and client.get(f"/api/jobs/{stale['job']}").get_json()["status"] == "done"
        database.execute("UPDATE jobs SET finished = now() - interval '1 day'")
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    job_of(client, compare(client, demo_catalog))  # deletes the expired ones
    with app.app_context():
        from app.db import get_db

        assert get_db().execute("SELECT COUNT(*) FROM job_files").fetchone()[0] == 0


@pytest.mark.skipif(
    not REDIS_URL and not os.environ.get("CI"),
    reason="no Redis server: set POSTERBENCH_TEST_REDIS_URL (redis://127.0.0.1:6379/15)",
)
def test_jobs_queued_in_redis(settings: dict, demo_catalog) -> None:
    """On a real Redis server: in CI (.ci/run starts one) it must run, elsewhere it needs POSTERBENCH_TEST_REDIS_URL."""
    if not REDIS_URL:
        pytest.fail("CI needs a Redis server for the Redis queue: .ci/run starts one (POSTERBENCH_TEST_REDIS_URL)")
    app = create_app({**settings, "JOBS_URL": REDIS_URL})
    app.extensions[EXTENSION].huey.flush()
    client = app.test_client()
    job_id = job_of(client, compare(client, demo_catalog))["job"]
    app.extensions[EXTENSION].huey.flush()  # Redis restarted without persistence: the message is gone
    submitted_seconds_ago(app, job_id, 5)
    sweep(app)
    assert drain(app) == 1
    assert client.get(f"/api/jobs/{job_id}").get_json()["status"] == "done"


# ---------------------------------------------------------------- real workers


@pytest.fixture
def worker_environment(settings: dict) -> dict[str, str]:
    """The environment of `posterbench worker` processes serving `settings`."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("POSTERBENCH_") and name not in ("DATABASE_URL", "OPENBLAS_NUM_THREADS")
    }
    for name, value in settings.items():
        if name != "TESTING":
            environment[f"POSTERBENCH_{name}"] = value if isinstance(value, str) else json.dumps(value)
    return {**environment, "POSTERBENCH_JOB_THREADS": "2", "POSTERBENCH_JOB_NICE": "0"}


@pytest.fixture
def workers(worker_environment: dict, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Starts `posterbench worker` processes (ready when returned); stops those still running at the end."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = tmp_path / "worker.log"
        worker = start_job_worker(worker_environment, log)
        started.append(worker)
        wait_until_ready(worker, log, WORKER_START_SECONDS)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=30)


def wait_for_status(client, job_id: str, wanted: set[str], seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").get_json()
        if job["status"] in wanted:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {seconds} s: {job}")


def test_a_job_waits_for_a_worker_and_outlives_a_stopped_and_a_killed_one(jobs_app, demo_catalog, workers) -> None:
    """A job submitted while no worker runs stays queued; the worker started then takes it and is stopped (SIGTERM,
    as `posterbench serve` stops it): the job is queued again at once; the next is killed (SIGKILL): the job is
    queued again once its heartbeat is stale; a third worker finishes it. A heatmap of 8 x 8 cells (65 passes)
    keeps each worker busy long enough to be stopped, even on a loaded machine."""
    client = jobs_app.test_client()
    asked = {"sample": demo_catalog.movies[4].imdb_id, "genre": "Horror", "grid": "8"}
    job_id = job_of(client, client.post("/api/explain", data=asked, headers=HEADERS))["job"]
    time.sleep(0.5)
    assert client.get(f"/api/jobs/{job_id}").get_json()["status"] == "queued"  # nobody runs it: nothing is lost
    first = workers()
    wait_for_status(client, job_id, {"running"})
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    given_back = client.get(f"/api/jobs/{job_id}").get_json()
    assert given_back["status"] == "queued", given_back
    second = workers()
    wait_for_status(client, job_id, {"running"})
    second.kill()  # no chance to say anything
    second.wait(timeout=30)
    killed = time.monotonic()
    seen = client.get(f"/api/jobs/{job_id}").get_json()["status"]
    assert seen == "running" or time.monotonic() - killed > 1  # running until its heartbeat is stale (2 s)
    wait_for_status(client, job_id, {"queued"}, seconds=10)  # then queued again, for the next worker
    workers()
    done = wait_for_status(client, job_id, {"done", "failed"}, seconds=120)
    assert done["status"] == "done" and np.array(done["result"]["map"]).shape == (8, 8), done
    with sqlite3.connect(jobs_app.config["DATABASE"]) as database:
        assert database.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()[0] == 2


def test_the_worker_that_serve_starts_is_started_again_when_killed(
    jobs_app, demo_catalog, worker_environment: dict, tmp_path: Path
) -> None:
    """`posterbench worker --restart` (what `posterbench serve` starts): its worker killed with SIGKILL (as the
    out-of-memory killer would) is replaced, and the new one runs the jobs; SIGTERM stops both."""
    import re
    import sys

    log = tmp_path / "worker.log"
    with log.open("w") as output:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "posterbench.cli", "worker", "--restart"],
            env=worker_environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def ready_workers(count: int) -> list[int]:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while time.monotonic() < deadline and supervisor.poll() is None:
            found = [int(pid) for pid in re.findall(r"job worker (\d+) ready", log.read_text())]
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{count} job workers not ready:\n{log.read_text()[-3000:]}")

    try:
        (first,) = ready_workers(1)
        assert first != supervisor.pid  # the worker is the supervisor's child
        os.kill(first, signal.SIGKILL)
        second = ready_workers(2)[1]
        assert f"job worker {first} killed by SIGKILL; starting another in 1 s" in log.read_text()
        client = jobs_app.test_client()
        job_id = job_of(client, compare(client, demo_catalog))["job"]
        done = wait_for_status(client, job_id, {"done", "failed"}, seconds=60)
        assert done["status"] == "done", done
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert wait_until_gone(second, 10)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(timeout=30)


def test_the_pages_speak_the_designers_words_and_keep_their_choices(jobs_app, demo_catalog) -> None:
    """A refused comparison said "send 2 to 6 posters ... files 'image', catalog ids 'sample'" and unticked every
    catalog poster; a heatmap of an upload was "the poster of recommendation 1", under the Compare tab; the rankings
    numbered each draft twice ("1. #2 ...")."""
    client = jobs_app.test_client()
    with client.session_transaction() as session:
        session["csrf_token"] = "token"
    ticked = demo_catalog.movies[0].imdb_id
    refused = client.post("/compare", data={"sample": ticked, "csrf_token": "token"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Choose 2 to 6 posters to compare" in page and "you chose 1." in page
    assert f'value="{ticked}" checked' in page and "'sample'" not in page
    broken = [(io.BytesIO(b"not an image"), "a.jpg"), (io.BytesIO(b"nor this"), "b.jpg")]
    page = client.post("/compare", data={"image": broken, "csrf_token": "token"}).get_data(as_text=True)
    assert re.search(r"We could not read a\.jpg[^<]*\. Choose your files again: a browser does not keep them\.", page)
    boxed = client.post(
        "/compare",
        data={
            "imdb_urls": "https://www.imdb.com/title/tt0084058/\nhttps://www.imdb.com/title/tt0084058/ x",
            "csrf_token": "token",
        },
    )
    assert boxed.status_code == 400 and "Line 2 of the IMDb links: That link contains spaces" in boxed.get_data(
        as_text=True
    )
    home = client.post("/recommend", data={"sample": "tt0000001", "csrf_token": "token"}).get_data(as_text=True)
    assert "No movie tt0000001 in the catalog." in home
    shown = client.post("/api/recommend", data={"image": poster_file(demo_catalog, 5, "mine.jpg")}, headers=HEADERS)
    heatmap = job_of(
        client,
        client.post("/api/explain", data={**explained(shown), "genre": "Drama", "grid": "2"}, headers=HEADERS),
    )
    compared = job_of(client, compare(client, demo_catalog, target="Drama"))
    assert drain(jobs_app) == 2
    heatmap_page = client.get(f"/jobs/{heatmap['job']}").get_data(as_text=True)
    assert "the poster you uploaded" in heatmap_page and "recommendation 1" not in heatmap_page
    assert 'aria-current="page">Compare' not in heatmap_page
    compared_page = client.get(f"/jobs/{compared['job']}").get_data(as_text=True)
    assert 'aria-current="page">Compare' in compared_page and "(draft 1)" in compared_page
    assert re.search(r'<li data-position="\d">[^<]*<span class="draft-number">\(draft \d\)', compared_page)
    assert '<li data-position="1">#' not in compared_page


def test_one_poster_gets_one_set_of_genres_on_every_page(jobs_app, demo_catalog) -> None:
    """A comparison's worker read a 512-px JPEG of the upload, the results page the upload itself: the same file's
    Thriller read 21 % on one and 23 % on the other."""
    client = jobs_app.test_client()
    large = io.BytesIO()
    poster = Image.open(demo_catalog.poster_path(demo_catalog.movies[9])).convert("RGB")
    poster.resize((900, 1350), Image.Resampling.LANCZOS).save(large, "JPEG", quality=92)
    files = {"big": large.getvalue(), "plain": demo_catalog.poster_path(demo_catalog.movies[4]).read_bytes()}
    shown = {
        name: client.post("/api/recommend", data={"image": (io.BytesIO(data), f"{name}.jpg")}, headers=HEADERS)
        for name, data in files.items()
    }
    drafts = [(io.BytesIO(data), f"{name}.jpg") for name, data in files.items()]
    compared = job_of(client, client.post("/api/compare", data={"image": drafts}, headers=HEADERS))
    heatmap = job_of(
        client,
        client.post(
            "/api/explain",
            data={"image": (io.BytesIO(files["big"]), "big.jpg"), "genre": "Drama", "grid": "2"},
            headers=HEADERS,
        ),
    )
    assert drain(jobs_app) == 2
    result = client.get(f"/api/jobs/{compared['job']}").get_json()["result"]
    for draft, name in zip(result["posters"], files, strict=True):
        assert draft["genres"] == pytest.approx(shown[name].get_json()["genres"], abs=1e-4), name
    explained = client.get(f"/api/jobs/{heatmap['job']}").get_json()["result"]
    assert explained["probability"] == pytest.approx(shown["big"].get_json()["genres"]["Drama"], abs=1e-4)


def test_a_queued_job_says_how_many_jobs_are_ahead_of_it(jobs_app, demo_catalog) -> None:
    """A queued job showed "Waiting for a worker…" at 0 % with nothing to say how long."""
    client = jobs_app.test_client()
    sample = demo_catalog.movies[2].imdb_id
    jobs = [
        job_of(
            client, client.post("/api/explain", data={"sample": sample, "genre": genre, "grid": "2"}, headers=HEADERS)
        )
        for genre in ("Drama", "Horror", "Comedy")
    ]
    assert [job["ahead"] for job in jobs] == [0, 1, 2]
    assert "(2 jobs ahead of it)" in client.get(f"/jobs/{jobs[2]['job']}").get_data(as_text=True)
    assert drain(jobs_app) == 3
    assert "ahead" not in client.get(f"/api/jobs/{jobs[2]['job']}").get_json()  # done: nothing ahead to say


def test_a_broker_that_is_down_is_logged_once_a_minute_not_at_every_poll() -> None:
    """Huey's consumer logs "Error reading from queue" with a traceback at every poll while the broker is down; the
    worker's log shows one a minute, which says how many it stands for, and everything else as it comes."""
    import logging

    from app.job_queue import RepeatedBrokerErrors

    now = [0.0]
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    handler.addFilter(RepeatedBrokerErrors(60, clock=lambda: now[0]))
    worker_log = logging.getLogger("huey.consumer.Worker-1")
    worker_log.addHandler(handler)
    logging.getLogger("huey.consumer.Scheduler").addHandler(handler)
    try:
        for _ in range(120):  # twelve seconds of polls, ten a second
            worker_log.error("Error reading from queue")
            worker_log.error("Unhandled error during execution of task abc.")  # another error: always shown
            logging.getLogger("huey.consumer.Scheduler").error("Error reading schedule.")
            now[0] += 0.1
        now[0] = 61.0
        worker_log.error("Error reading from queue")
    finally:
        worker_log.removeHandler(handler)
        logging.getLogger("huey.consumer.Scheduler").removeHandler(handler)
    assert sum("schedule" in record.getMessage() for record in records) == 1
    errors = [record.getMessage() for record in records if "reading from queue" in record.getMessage()]
    repeated = "Error reading from queue (and 119 times in the 60 s before, not shown)"
    assert errors == ["Error reading from queue", repeated]
    assert sum("during execution" in record.getMessage() for record in records) == 120


def test_the_heartbeat_thread_outlives_an_unexpected_error(monkeypatch, tmp_path, caplog) -> None:
    """It caught only StorageUnavailableError: any other error (an untranslated driver error) ended the thread
    silently, and every job the worker was running then went stale and was run again elsewhere."""
    import threading

    from app import jobs

    beats: list[tuple[str, int]] = []

    def flaky_beat(database, job_id: str, attempt: int) -> None:
        beats.append((job_id, attempt))
        if len(beats) == 1:
            raise RuntimeError("an error nobody translated")

    monkeypatch.setattr(jobs, "beat", flaky_beat)
    monkeypatch.setitem(jobs.RUNNING, "job-1", 1)
    stop = threading.Event()
    thread = threading.Thread(target=jobs.heartbeats, args=(str(tmp_path / "jobs.sqlite"), 0.01, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(beats) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert len(beats) >= 3 and not thread.is_alive()
    assert "cannot write the heartbeat of job-1" in caplog.text and "an error nobody translated" in caplog.text
