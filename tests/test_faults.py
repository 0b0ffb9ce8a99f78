"""Faults: a worker SIGKILLed in the middle of feedback writes loses no acknowledged vote and leaves the database
whole; a database that cannot be written or opened is answered 503 with a clear message while the app keeps
serving; a damaged model, index or CLEMS file, or a damaged ONNX export of the model, stops the app at start-up
with an error naming the file.

How each fault is made, so that it works when the tests run as root (CI), where chmod stops nobody:
- read-only: app.db.connect opens the database through SQLite's `mode=ro` URI, so SQLite itself refuses every
  write ("attempt to write a readonly database"), whoever the process runs as.
- unopenable: the database file is replaced by a directory; nobody can open a directory as a database file
  ("unable to open database file").
- locked: the test holds an EXCLUSIVE transaction and the busy time-out is cut to 0.2 s ("database is locked").
- disk full: app.db.connect caps the database at the pages it already has (PRAGMA max_page_count), so the write
  that needs one more page gets SQLite's real SQLITE_FULL ("database or disk is full"). A real full filesystem
  needs a mount, which CI's containers may not allow.
- SIGKILL: os.kill on a gunicorn worker found among the master's children in /proc (Linux only).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from app import create_app
from app import db as app_db
from tests.conftest import results_path, vote_body
from tools.serving import DIRECT, gunicorn_server

API = {"X-Requested-With": "pytest"}
OPENAPI = json.loads((Path(__file__).resolve().parents[1] / "app" / "openapi.json").read_text())


def assert_documented(path: str, method: str, answer) -> None:
    """The API's document lists the status that `answer` came with among `method path`'s responses."""
    assert str(answer.status_code) in OPENAPI["paths"][path][method]["responses"], (path, method, answer.status_code)


RATINGS = ("good", "okay", "bad")
REWARDS = {"good": 1, "okay": 0, "bad": -1}


# ---------------------------------------------------------------- a worker killed in the middle of feedback writes


def worker_pids(master: int) -> set[int]:
    """The processes whose parent is `master` (gunicorn's workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == master:
            found.add(int(stat.parent.name))
    return found


def post(url: str, body: bytes, content_type: str) -> tuple[int, dict] | None:
    """(status, JSON answer), or None when the connection broke before an answer came (a killed worker)."""
    request = urllib.request.Request(url, data=body, headers={**API, "Content-Type": content_type}, method="POST")
    try:
        with DIRECT.open(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except (OSError, http.client.HTTPException):
        return None


def vote(url: str, recommendation_id: int, key: str, rating: str) -> tuple[int, dict] | None:
    """A vote over HTTP on the recommendation with that id and key (as /api/recommend answered them)."""
    body = json.dumps({"id": recommendation_id, "key": key, "rating": rating}).encode()
    return post(f"{url}/api/feedback", body, "application/json")


def rating_for(recommendation_id: int) -> str:
    return RATINGS[recommendation_id % 3]


def served_settings(demo_catalog_dir: Path, model_dir: Path, index_dir: Path, database: Path) -> dict[str, str]:
    return {
        "CATALOG": str(demo_catalog_dir),
        "MODEL": str(model_dir),
        "INDEX": str(index_dir),
        "DATABASE": str(database),
        "SECRET_KEY": "faults-test-secret",
        "FEEDBACK_LIMIT": "1000000",  # every vote comes from 127.0.0.1
    }


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds gunicorn's workers in Linux's /proc")
def test_a_worker_killed_while_votes_are_written_loses_no_acknowledged_vote(
    demo_catalog, demo_catalog_dir, onnx_model_dir, index_dir, tmp_path: Path
) -> None:
    database = tmp_path / "posterbench.sqlite"
    settings = served_settings(demo_catalog_dir, onnx_model_dir, index_dir, database)
    acknowledged: dict[int, str] = {}  # id -> rating, answered 200
    keys: dict[int, str] = {}  # id -> key, as /api/recommend answered them
    unanswered: list[int] = []  # the connection broke: saved or not, never half
    lock = threading.Condition()  # notified at each acknowledged vote

    def voter(ids: list[int]) -> None:
        for recommendation_id in ids:
            answer = vote(url, recommendation_id, keys[recommendation_id], rating_for(recommendation_id))
            with lock:
                if answer is None:
                    unanswered.append(recommendation_id)
                else:
                    assert answer[0] == 200, answer
                    acknowledged[recommendation_id] = rating_for(recommendation_id)
                    lock.notify_all()

    def vote_concurrently(ids: list[int], threads: int = 4) -> list[threading.Thread]:
        started = [threading.Thread(target=voter, args=(ids[k::threads],)) for k in range(threads)]
        for thread in started:
            thread.start()
        return started

    with gunicorn_server(settings, workers=2, log_dir=tmp_path) as url:
        ids = []
        for k in range(60):
            form = urllib.parse.urlencode({"sample": demo_catalog.movies[k % len(demo_catalog)].imdb_id}).encode()
            status, shown = post(f"{url}/api/recommend", form, "application/x-www-form-urlencoded")
            assert status == 201, shown
            ids.append(shown["id"])
            keys[shown["id"]] = shown["key"]
        workers = worker_pids(url.pid)
        assert len(workers) == 2, workers

        first, later = ids[:45], ids[45:]
        threads = vote_concurrently(first)
        with lock:
            lock.wait_for(lambda: len(acknowledged) >= 10, timeout=60)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # in the middle of the voting: some of its requests are half done
        for thread in threads:
            thread.join()
        deadline = time.monotonic() + 60
        while not (worker_pids(url.pid) - workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        replacement = worker_pids(url.pid) - workers
        assert victim not in worker_pids(url.pid) and replacement, "gunicorn did not replace the killed worker"

        # Votes go on; an unanswered vote sent again is either new (200) or was saved before the kill (409).
        lost = list(unanswered)
        unanswered.clear()
        for thread in vote_concurrently(later):
            thread.join()
        assert not unanswered, "votes failed with no worker being killed"
        retried = {
            recommendation_id: vote(url, recommendation_id, keys[recommendation_id], rating_for(recommendation_id))
            for recommendation_id in lost
        }
        assert all(answer is not None and answer[0] in (200, 409) for answer in retried.values()), retried
    assert len(acknowledged) >= 10

    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = connection.execute("SELECT recommendation_id, reward FROM feedback").fetchall()
        per_arm = dict.fromkeys(("manhattan", "euclidean", "cosine"), (0, 0, 0))
        for arm, bad, okay, good in connection.execute(
            "SELECT r.arm, SUM(f.reward = -1), SUM(f.reward = 0), SUM(f.reward = 1) FROM feedback AS f"
            " JOIN recommendations AS r ON r.id = f.recommendation_id GROUP BY r.arm"
        ):
            per_arm[arm] = (bad, okay, good)
    connection.close()
    saved = dict(rows)
    assert len(saved) == len(rows), "a recommendation has two votes"
    assert {i: REWARDS[rating] for i, rating in acknowledged.items()}.items() <= saved.items(), (
        "an acknowledged vote was lost"
    )
    assert sorted(saved) == sorted(ids), "every vote is saved once in the end (acknowledged, or retried)"
    assert all(reward == REWARDS[rating_for(i)] for i, reward in saved.items())

    # A restarted app's bandit counts the feedback table exactly (made anew over the database, here: what is tested
    # is what it reads from the table, and gunicorn's workers make the app the same way).
    bandit = create_app(settings).test_client().get("/api/bandit").get_json()
    assert bandit["n_rated"] == len(ids)
    assert {arm["arm"]: (arm["bad"], arm["okay"], arm["good"]) for arm in bandit["arms"]} == per_arm


MALFORMED_CHUNKS = {
    "a chunk cut short, the client done sending": b"9\r\nabc",
    "a chunk size that is no number": b"zz\r\nabc\r\n0\r\n\r\n",
    "a chunk extension with a NUL": b"2;\x00\r\nab\r\n0\r\n\r\n",
    "a trailer line without a colon": b"2\r\nab\r\n0\r\nnot a header\r\n\r\n",
}


def raw_post(url: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    """(status, body) of one request written byte for byte on a socket: urllib cannot send a malformed body."""
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, port), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        connection.shutdown(socket.SHUT_WR)  # all of it sent: a body cut short ends here
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), content.decode(errors="replace")


def test_a_malformed_chunked_body_is_a_400_under_gunicorn(
    demo_catalog, demo_catalog_dir, onnx_model_dir, index_dir, tmp_path: Path
) -> None:
    """gunicorn reads a chunked body only as the app reads it, so its framing errors used to reach the crash handler:
    a 500 on every route that reads a body. A vote saved before stays saved."""
    settings = served_settings(demo_catalog_dir, onnx_model_dir, index_dir, tmp_path / "posterbench.sqlite")
    with gunicorn_server(settings, workers=1, log_dir=tmp_path) as url:
        form = urllib.parse.urlencode({"sample": demo_catalog.movies[0].imdb_id}).encode()
        status, shown = post(f"{url}/api/recommend", form, "application/x-www-form-urlencoded")
        assert status == 201 and vote(url, shown["id"], shown["key"], "good")[0] == 200
        chunked = {**API, "Transfer-Encoding": "chunked"}
        for what, body in MALFORMED_CHUNKS.items():
            for path, content_type in (("/api/feedback", "application/json"), ("/recommend", "multipart/form-data")):
                headers = {
                    **chunked,
                    "Content-Type": content_type + ("; boundary=x" if "multipart" in content_type else ""),
                }
                status, answer = raw_post(url, path, headers, body)
                said = "malformed" in answer or "could not understand" in answer  # ours, or Werkzeug's own 400
                assert status == 400 and said, (what, path, status, answer[:300])
        with DIRECT.open(f"{url}/api/bandit") as response:
            assert json.load(response)["n_rated"] == 1
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


# ---------------------------------------------------------------- a database that cannot be written or opened


def recommend(client, imdb_id: str) -> int:
    answer = client.post("/api/recommend", data={"sample": imdb_id}, headers=API)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def counts(database: str) -> tuple[int, int]:
    with sqlite3.connect(database) as connection:
        found = tuple(
            connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("recommendations", "feedback")
        )
    connection.close()
    return found


def assert_refused(answer, reason: str) -> None:
    """A 503 that says why, that nothing was saved and when to try again."""
    assert answer.status_code == 503
    assert answer.headers["Retry-After"].isdigit()
    if answer.is_json:
        body = answer.get_json()
        assert body["status"] == 503
        message = body["error"]
    else:
        message = answer.get_data(as_text=True)
        assert "<html" in message.lower() and "Traceback" not in message
    assert reason in message and "Nothing was saved" in message and "try again later" in message, message


def read_only_connect(path: str) -> sqlite3.Connection:
    """app.db.connect over SQLite's read-only URI: SQLite refuses the writes itself, even to root."""
    connection = sqlite3.connect(
        Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=1, detect_types=sqlite3.PARSE_DECLTYPES
    )
    connection.row_factory = sqlite3.Row
    return connection


def test_a_read_only_database_is_answered_503_and_reads_go_on(app, client, demo_catalog, monkeypatch, caplog) -> None:
    database = app.config["DATABASE"]
    recommendation_id = recommend(client, demo_catalog.movies[3].imdb_id)
    before = counts(database)
    monkeypatch.setattr(app_db, "connect", read_only_connect)
    with caplog.at_level(logging.ERROR):
        page_vote = client.post(results_path(app, recommendation_id, "/feedback"), data={"rating": "good"})
        assert_refused(page_vote, "read-only")
        assert_refused(
            client.post("/api/feedback", json=vote_body(app, recommendation_id, "good"), headers=API), "read-only"
        )
        refused = client.post("/api/recommend", data={"sample": demo_catalog.movies[5].imdb_id}, headers=API)
        assert_refused(refused, "read-only")
        assert_documented("/api/recommend", "post", refused)
        assert_refused(client.post("/recommend", data={"sample": demo_catalog.movies[5].imdb_id}), "read-only")
    logged = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(logged) == 4 and all("read-only" in record.getMessage() for record in logged)
    assert all("readonly database" in record.getMessage() for record in logged), "the log names SQLite's cause"
    # Reads still work: the home page, the results page, the API's bandit and the health check.
    assert client.get("/").status_code == 200
    assert client.get(results_path(app, recommendation_id)).status_code == 200
    assert client.get("/api/bandit").get_json()["n_rated"] == 0
    assert client.get("/healthz").status_code == 200
    monkeypatch.undo()
    assert counts(database) == before, "a refused write saved something"
    assert client.post("/api/feedback", json=vote_body(app, recommendation_id, "good"), headers=API).status_code == 200


def test_an_unopenable_database_is_answered_503_and_healthz_says_so(app, client, demo_catalog) -> None:
    database = Path(app.config["DATABASE"])
    recommendation_id = recommend(client, demo_catalog.movies[3].imdb_id)
    body, page_vote = vote_body(app, recommendation_id, "bad"), results_path(app, recommendation_id, "/feedback")
    aside = database.with_name("aside")
    aside.mkdir()
    for file in database.parent.glob(database.name + "*"):
        file.rename(aside / file.name)
    database.mkdir()  # a directory where the database file was: no one can open it, root neither
    try:
        vote = client.post("/api/feedback", json=body, headers=API)
        assert_refused(vote, "the database file cannot be opened")
        assert_refused(client.post(page_vote, data={"rating": "bad"}), "cannot be opened")
        bandit = client.get("/api/bandit")
        assert_refused(bandit, "cannot be opened")
        health = client.get("/healthz", headers={"Accept": "application/json"})
        assert health.status_code == 503 and "cannot read its database" in health.get_json()["error"]
        for path, method, answer in (("/api/feedback", "post", vote), ("/api/bandit", "get", bandit)):
            assert_documented(path, method, answer)
        assert_documented("/healthz", "get", health)
        assert client.get("/").status_code == 200  # the home page needs no database
    finally:
        database.rmdir()
        for file in aside.iterdir():
            file.rename(database.parent / file.name)
    assert counts(str(database)) == (1, 0)
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("replacement", "reason"),
    [
        (b"not a database, only garbage " * 200, "the database file is damaged"),
        (b"", "the database has lost its tables"),  # deleted while the app ran: SQLite makes an empty file
    ],
)
def test_a_database_replaced_while_the_app_runs_is_answered_503_and_healthz_says_so(
    app, client, demo_catalog, replacement, reason
) -> None:
    """The health check ran SELECT 1, which reads no page of the file: a damaged database answered 200 "ok"; a
    deleted one ("no such table") answered 500 on every route. Both are JSON on /healthz, as its document says."""
    database = Path(app.config["DATABASE"])
    vote = vote_body(app, recommendation_id=recommend(client, demo_catalog.movies[3].imdb_id), rating="good")
    aside = database.with_name("aside")
    aside.mkdir()
    for file in database.parent.glob(database.name + "*"):
        file.rename(aside / file.name)
    database.write_bytes(replacement)
    try:
        health = client.get("/healthz")
        assert health.status_code == 503 and reason in health.get_json()["error"]
        assert_documented("/healthz", "get", health)
        assert_refused(client.get("/api/bandit"), reason)
        assert_refused(
            client.post("/api/recommend", data={"sample": demo_catalog.movies[5].imdb_id}, headers=API), reason
        )
        assert_refused(client.post("/api/feedback", json=vote, headers=API), reason)
    finally:
        for file in database.parent.glob(database.name + "*"):
            file.unlink()
        for file in aside.iterdir():
            file.rename(database.parent / file.name)
        aside.rmdir()
    assert counts(str(database)) == (1, 0)
    assert client.get("/healthz").status_code == 200


def test_a_database_locked_past_the_busy_timeout_is_answered_503(app, client, demo_catalog, monkeypatch) -> None:
    database = app.config["DATABASE"]
    recommendation_id = recommend(client, demo_catalog.movies[3].imdb_id)
    monkeypatch.setattr(app_db, "BUSY_TIMEOUT_SECONDS", 0.2)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        answer = client.post("/api/feedback", json=vote_body(app, recommendation_id, "okay"), headers=API)
        assert_refused(answer, "the database is busy")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert counts(database) == (1, 0)


def test_a_full_disk_is_answered_503_and_keeps_what_was_acknowledged(app, client, demo_catalog, monkeypatch) -> None:
    database = app.config["DATABASE"]
    app.config["FEEDBACK_LIMIT"] = 1_000_000  # every vote comes from one client
    first = recommend(client, demo_catalog.movies[3].imdb_id)
    with sqlite3.connect(database) as connection:  # 400 recommendations to vote on, written before the disk fills
        columns = "policy, arm, epsilon, explored, arm_probability, query_kind, query_imdb_id, genres, results"
        for _ in range(399):
            connection.execute(
                f"INSERT INTO recommendations ({columns}) SELECT {columns} FROM recommendations WHERE id = ?", (first,)
            )
    connection.close()
    original = app_db.connect

    def full_disk_connect(path: str) -> sqlite3.Connection:
        connection = original(path)
        (pages,) = connection.execute("PRAGMA page_count").fetchone()
        connection.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page
        return connection

    monkeypatch.setattr(app_db, "connect", full_disk_connect)
    answers = []
    for recommendation_id in range(first, first + 400):
        answer = client.post("/api/feedback", json=vote_body(app, recommendation_id, "good"), headers=API)
        answers.append(answer.status_code)
        if answer.status_code != 200:
            assert_refused(answer, "the disk is full")
            break
    assert answers[-1] == 503, "the votes never filled the capped database"
    recommendations = [
        client.post("/api/recommend", data={"sample": demo_catalog.movies[5].imdb_id}, headers=API) for _ in range(40)
    ]
    refused = [answer for answer in recommendations if answer.status_code != 201]
    assert refused, "the recommendations never filled the capped database"
    assert_refused(refused[0], "the disk is full")
    assert client.get("/healthz").status_code == 200
    monkeypatch.undo()
    assert counts(database) == (400 + len(recommendations) - len(refused), answers.count(200))
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    connection.close()


# ---------------------------------------------------------------- damaged artifacts at start-up


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(len(path.read_bytes()) // 3, 1)])


def scramble_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:256] = b"\xa5" * min(256, len(data))
    path.write_bytes(bytes(data))


def write_text(text: str):
    return lambda path: path.write_text(text)


@pytest.fixture(scope="module")
def clems_dir(demo_catalog, trained, index_dir, tmp_path_factory) -> Path:
    from embedding.pipeline import fit_clems
    from model.index import FeatureIndex

    directory = tmp_path_factory.mktemp("faults") / "clems"
    fit_clems(
        demo_catalog, trained[1], FeatureIndex.load(index_dir, demo_catalog), directory, cost="hamming", n_estimators=20
    )
    return directory


DAMAGES = {
    "truncated weights": ("MODEL", "model.weights.h5", truncate, "make train"),
    "scrambled weights": ("MODEL", "model.weights.h5", scramble_header, "make train"),
    "model.json not JSON": ("MODEL", "model.json", write_text("{not json"), "make train"),
    "model.json of the wrong shape": ("MODEL", "model.json", write_text("[1, 2]"), "make train"),
    "truncated features": ("INDEX", "features.npy", truncate, "make index"),
    "scrambled probabilities": ("INDEX", "probabilities.npy", scramble_header, "make index"),
    "index.json not JSON": ("INDEX", "index.json", write_text('{"imdb_ids": ['), "make index"),
    "index.json of the wrong shape": ("INDEX", "index.json", write_text("[]"), "make index"),
    "clems.json not JSON": ("CLEMS", "clems.json", truncate, "make clems"),
    "truncated clems.npz": ("CLEMS", "clems.npz", truncate, "make clems"),
}


@pytest.mark.parametrize("case", DAMAGES)
def test_a_damaged_artifact_stops_the_app_at_start_naming_the_file(
    case: str, app_settings: dict, trained, clems_dir: Path, tmp_path: Path
) -> None:
    setting, name, damage, remedy = DAMAGES[case]
    # the Keras model's own files (the app serves them when there is no export; ONNX_DAMAGES covers the export)
    sources = {"MODEL": trained[1], "INDEX": app_settings["INDEX"], "CLEMS": clems_dir}
    copy = shutil.copytree(sources[setting], tmp_path / setting.lower())
    damage(copy / name)
    with pytest.raises(RuntimeError) as raised:
        create_app({**app_settings, "CLEMS": str(clems_dir), setting: str(copy)})
    message = str(raised.value)
    assert f"{copy / name} is damaged" in message and remedy in message, message


ONNX_DAMAGES = {
    "truncated model.onnx": ("model.onnx", truncate, "is damaged"),
    "scrambled model.onnx": ("model.onnx", scramble_header, "is damaged"),
    "truncated model.onnx.data": ("model.onnx.data", truncate, "is damaged"),
    "scrambled model.onnx.data": ("model.onnx.data", scramble_header, "is damaged"),
    "model.onnx.json not JSON": ("model.onnx.json", write_text("{not json"), "is damaged"),
    "model.onnx.json of the wrong shape": ("model.onnx.json", write_text("[]"), "is damaged"),
    "model.onnx.data deleted": ("model.onnx.data", Path.unlink, "is missing"),
}


@pytest.mark.parametrize("case", ONNX_DAMAGES)
def test_a_damaged_onnx_export_stops_the_app_at_start_naming_the_file(
    case: str, app_settings: dict, onnx_model_dir: Path, tmp_path: Path
) -> None:
    name, damage, what = ONNX_DAMAGES[case]
    copy = shutil.copytree(onnx_model_dir, tmp_path / "model")
    create_app({**app_settings, "MODEL": str(copy)})  # whole, it serves
    damage(copy / name)
    with pytest.raises(RuntimeError) as raised:
        create_app({**app_settings, "MODEL": str(copy)})
    message = str(raised.value)
    assert f"{copy / name} {what}" in message and f"export-onnx --model {copy}" in message, message


def test_gunicorn_with_a_damaged_model_exits_with_the_reason_in_its_log(
    demo_catalog_dir, onnx_model_dir, index_dir, tmp_path: Path
) -> None:
    """The model the app serves, its ONNX export, damaged (a damaged Keras model's message is tested in-process
    above; under gunicorn its worker would spend seconds importing TensorFlow before it failed the same way)."""
    model = shutil.copytree(onnx_model_dir, tmp_path / "model")
    truncate(model / "model.onnx.data")
    settings = served_settings(demo_catalog_dir, model, index_dir, tmp_path / "posterbench.sqlite")
    with (
        pytest.raises(RuntimeError, match="gunicorn exited with") as raised,
        gunicorn_server(settings, workers=1, log_dir=tmp_path),
    ):
        pytest.fail("gunicorn served a damaged model")
    said = str(raised.value)
    assert f"{model / 'model.onnx.data'} is damaged" in said and f"export-onnx --model {model}" in said, said
