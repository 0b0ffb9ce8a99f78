"""The app on a real PostgreSQL server (DATABASE_URL): its state lives there and nowhere else, two hosts (two
gunicorn servers, each with its workers) share the votes and the bandit with the same guarantees as SQLite (one vote
per recommendation, arm values equal to the log's, no acknowledged vote lost when a worker is SIGKILLed), and a
server that cannot be reached or written is answered 503 while reads that need no database go on."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from app import create_app
from app.db import open_database, redacted
from app.migrations import latest_version
from recommend import DISTANCES
from tests.conftest import results_path, vote_body
from tests.test_faults import API, REWARDS, assert_refused, post, rating_for, vote, worker_pids
from tools.serving import DIRECT, gunicorn_server

pytestmark = pytest.mark.usefixtures("served_model_loaded_once")


@pytest.fixture
def pg_app(app_settings: dict, postgres_url: str):
    return create_app({**app_settings, "DATABASE_URL": postgres_url})


def rate(client, recommendation_id: int, rating: str):
    return client.post("/api/feedback", json=vote_body(client.application, recommendation_id, rating), headers=API)


def table_counts(target: str) -> tuple[int, int]:
    with open_database(target) as database:
        return tuple(
            database.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("recommendations", "feedback")
        )


def test_the_app_keeps_its_state_in_postgres(pg_app, demo_catalog, postgres_url: str) -> None:
    client = pg_app.test_client()
    shown = client.post("/api/recommend", data={"sample": demo_catalog.movies[2].imdb_id}, headers=API)
    assert shown.status_code == 201, shown.get_json()
    recommendation_id = shown.get_json()["id"]
    assert (
        client.post("/api/feedback", json=vote_body(pg_app, recommendation_id, "good"), headers=API).status_code == 200
    )
    second = client.post("/api/feedback", json=vote_body(client.application, recommendation_id, "bad"), headers=API)
    assert second.status_code == 409 and "already been rated" in second.get_json()["error"]
    assert client.get("/api/bandit").get_json()["n_rated"] == 1
    assert client.get(results_path(client.application, recommendation_id)).status_code == 200
    assert table_counts(postgres_url) == (1, 1)
    with open_database(postgres_url) as database:
        arm, reward = database.execute(
            "SELECT r.arm, f.reward FROM recommendations AS r JOIN feedback AS f ON f.recommendation_id = r.id"
        ).fetchone()
    assert (arm, reward) == (shown.get_json()["arm"], 1)
    assert not Path(pg_app.config["DATABASE"]).exists(), "with DATABASE_URL set, no SQLite file is made"


def test_an_uploaded_poster_round_trips_through_bytea(pg_app, demo_catalog) -> None:
    client = pg_app.test_client()
    poster = demo_catalog.poster_path(demo_catalog.movies[4]).read_bytes()
    shown = client.post("/api/recommend", data={"image": (io.BytesIO(poster), "p.jpg")}, headers=API)
    assert shown.status_code == 201, shown.get_json()
    image = client.get(results_path(client.application, shown.get_json()["id"], "/query.jpg"))
    assert image.status_code == 200 and image.data[:3] == b"\xff\xd8\xff" and len(image.data) > 500


def test_an_unreachable_server_is_answered_503(pg_app, demo_catalog, postgres_url: str) -> None:
    client = pg_app.test_client()
    recommendation_id = client.post(
        "/api/recommend", data={"sample": demo_catalog.movies[2].imdb_id}, headers=API
    ).get_json()["id"]
    body = vote_body(pg_app, recommendation_id, "good")
    parts = urllib.parse.urlsplit(postgres_url)
    closed_port = parts._replace(netloc=parts.netloc.replace(f":{parts.port}", ":9"))  # discard: nothing listens
    pg_app.config["DATABASE_URL"] = urllib.parse.urlunsplit(closed_port)
    answer = client.post("/api/feedback", json=body, headers=API)
    assert_refused(answer, "the database server cannot be reached")
    health = client.get("/healthz", headers={"Accept": "application/json"})
    assert health.status_code == 503 and "cannot read its database" in health.get_json()["error"]
    assert client.get("/").status_code == 200  # the home page needs no database
    pg_app.config["DATABASE_URL"] = postgres_url
    assert table_counts(postgres_url) == (1, 0)
    assert (
        client.post("/api/feedback", json=vote_body(pg_app, recommendation_id, "good"), headers=API).status_code == 200
    )


def test_a_read_only_server_is_answered_503_and_reads_go_on(pg_app, demo_catalog, postgres_url: str) -> None:
    client = pg_app.test_client()
    recommendation_id = client.post(
        "/api/recommend", data={"sample": demo_catalog.movies[2].imdb_id}, headers=API
    ).get_json()["id"]
    read_only = urllib.parse.quote(" -cdefault_transaction_read_only=on")
    pg_app.config["DATABASE_URL"] = postgres_url + read_only  # appended to the search_path option
    assert_refused(
        client.post("/api/feedback", json=vote_body(pg_app, recommendation_id, "good"), headers=API), "read-only"
    )
    assert_refused(
        client.post("/api/recommend", data={"sample": demo_catalog.movies[3].imdb_id}, headers=API), "read-only"
    )
    assert client.get(results_path(client.application, recommendation_id)).status_code == 200
    assert client.get("/api/bandit").get_json()["n_rated"] == 0
    pg_app.config["DATABASE_URL"] = postgres_url
    assert table_counts(postgres_url) == (1, 0)


def test_an_unreachable_server_at_start_up_is_named_without_its_password(
    demo_catalog_dir: Path, trained, index_dir: Path
) -> None:
    url = "postgresql://posterbench:s3cret-word@127.0.0.1:9/posterbench"
    with pytest.raises(RuntimeError, match="cannot prepare the database at") as refused:
        create_app(
            {
                "SECRET_KEY": "test",
                "CATALOG": str(demo_catalog_dir),
                "MODEL": str(trained[1]),
                "INDEX": str(index_dir),
                "DATABASE_URL": url,
            }
        )
    assert "s3cret-word" not in str(refused.value) and redacted(url) in str(refused.value)
    assert "cannot be reached" in str(refused.value)


def test_init_db_applies_the_migrations_on_postgres(pg_app, postgres_url: str) -> None:
    result = pg_app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "database ready" in result.output
    assert f"schema version {latest_version()}, it was up to date" in result.output
    password = urllib.parse.urlsplit(postgres_url).password
    assert password and password not in result.output


RECOMMENDATIONS = 36
"""Recommendations the two hosts make and then both vote on: host A's worker is killed once 10 votes are
acknowledged, with most of the 72 votes still to come (each costs a request, a worker's CPU)."""


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds gunicorn's workers in Linux's /proc")
def test_two_hosts_share_one_vote_per_recommendation_and_the_bandit_through_a_worker_kill(
    demo_catalog, demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path, tmp_path: Path, postgres_url: str
) -> None:
    settings = {
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(onnx_model_dir),  # as make serve serves it: no TensorFlow to start in each worker
        "INDEX": str(index_dir),
        "DATABASE_URL": postgres_url,
        "SECRET_KEY": "two-hosts-secret",
        "FEEDBACK_LIMIT": "1000000",  # every vote comes from 127.0.0.1
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    acknowledged: dict[int, str] = {}
    keys: dict[int, str] = {}  # id -> key, as /api/recommend answered them
    refused_twice: list[int] = []
    unanswered: list[int] = []
    lock = threading.Lock()

    def voter(url: str, ids: list[int]) -> None:
        for recommendation_id in ids:
            answer = vote(url, recommendation_id, keys[recommendation_id], rating_for(recommendation_id))
            with lock:
                if answer is None:
                    unanswered.append(recommendation_id)
                elif answer[0] == 409:
                    refused_twice.append(recommendation_id)
                else:
                    assert answer[0] == 200, answer
                    assert recommendation_id not in acknowledged, "two hosts both accepted one recommendation's vote"
                    acknowledged[recommendation_id] = rating_for(recommendation_id)

    with (
        gunicorn_server(settings, workers=2, log_dir=tmp_path / "a") as host_a,
        gunicorn_server(settings, workers=2, log_dir=tmp_path / "b") as host_b,
    ):
        ids = []
        for k in range(RECOMMENDATIONS):
            form = urllib.parse.urlencode({"sample": demo_catalog.movies[k % len(demo_catalog)].imdb_id}).encode()
            status, shown = post(f"{(host_a, host_b)[k % 2]}/api/recommend", form, "application/x-www-form-urlencoded")
            assert status == 201, shown
            ids.append(shown["id"])
            keys[shown["id"]] = shown["key"]
        assert len(set(ids)) == RECOMMENDATIONS, "the hosts share one sequence of recommendation ids"
        # Every recommendation is voted on by both hosts at once: exactly one vote on each may win.
        threads = [
            threading.Thread(target=voter, args=(host, ids[k::3])) for host in (host_a, host_b) for k in range(3)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 10 and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(min(worker_pids(host_a.pid)), signal.SIGKILL)  # one of host A's workers, in the middle of it
        for thread in threads:
            thread.join()
        reports = [get_json(f"{host}/api/bandit") for host in (host_a, host_b)]

    assert reports[0] == reports[1], "both hosts see the same bandit"
    with open_database(postgres_url) as database:
        saved = {int(row[0]): int(row[1]) for row in database.execute("SELECT recommendation_id, reward FROM feedback")}
        counted = database.execute("SELECT COUNT(*), COUNT(DISTINCT recommendation_id) FROM feedback").fetchone()
    assert counted[0] == counted[1] == len(saved), "one vote per recommendation"
    assert {rid: REWARDS[rating] for rid, rating in acknowledged.items()} == {
        rid: reward for rid, reward in saved.items() if rid in acknowledged
    }, "every acknowledged vote is saved, with its rating"
    assert set(saved) <= set(acknowledged) | set(unanswered), "only acknowledged or cut-off votes are saved"
    assert set(ids) - set(saved) <= set(unanswered), "a recommendation lacks its vote though an answer came back"
    assert len(refused_twice) + len(acknowledged) + len(unanswered) == 2 * len(ids)
    per_arm = {arm["arm"]: arm for arm in reports[0]["arms"]}
    with open_database(postgres_url) as database:
        rows = database.execute(
            "SELECT r.arm, f.reward, COUNT(*) FROM feedback AS f"
            " JOIN recommendations AS r ON r.id = f.recommendation_id GROUP BY r.arm, f.reward"
        ).fetchall()
    expected = {arm: {"bad": 0, "okay": 0, "good": 0} for arm in DISTANCES}
    for arm, reward, count in rows:
        expected[arm][{-1: "bad", 0: "okay", 1: "good"}[reward]] = count
    for arm in DISTANCES:
        assert {key: per_arm[arm][key] for key in ("bad", "okay", "good")} == expected[arm], arm


def get_json(url: str) -> dict:
    with DIRECT.open(url, timeout=30) as response:
        return json.load(response)
