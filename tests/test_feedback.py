"""The bandit's memory in a real SQLite file and on a real PostgreSQL server (every test that takes `database` or
`database_target` runs on both): votes are refused cleanly when they must be, the policy is rebuilt from the tables
alone, the logged propensities support IPS, and concurrent voters are each counted once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.bandit_state import choose, current_policy
from app.db import Database, StorageUnavailableError, init_db, open_database
from app.migrations import latest_version
from app.recommendations import (
    FeedbackError,
    RateLimit,
    Shown,
    arm_counts,
    decision_log,
    record_feedback,
    record_recommendation,
    reward_for,
)
from bandit import Choice, ips_estimate
from recommend import DISTANCES

SHOWN = Shown(
    query_kind="sample", query_imdb_id="tt0000001", query_image=None, genres={"Drama": 0.9}, evoked={}, results=[]
)


@pytest.fixture
def database(database_target: str) -> Iterator[Database]:
    init_db(database_target)
    with open_database(database_target) as opened:
        yield opened


def recommendation(database: Database, arm: str = "cosine", probability: float = 1 / 3) -> int:
    return record_recommendation(database, "epsilon_greedy", Choice(arm, probability, 1.0), SHOWN)


def table_sizes(database: Database) -> tuple[int, int]:
    return tuple(
        database.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("recommendations", "feedback")
    )


def test_a_vote_is_stored_with_its_reward(database) -> None:
    shown = recommendation(database)
    assert reward_for(database, shown) is None
    assert record_feedback(database, shown, "good") == 1
    assert reward_for(database, shown) == 1
    assert arm_counts(database)["cosine"] == (0, 0, 1)


@pytest.mark.parametrize(
    ("rating", "target", "status", "message"),
    [
        ("great", "existing", 400, "unknown rating 'great'"),
        (None, "existing", 400, "send a rating: rate a recommendation good, okay or bad"),
        ("good", "missing", 404, "no recommendation 999"),
        ("bad", "rated", 409, "already been rated"),
    ],
)
def test_bad_votes_are_refused_and_write_nothing(database, rating, target, status, message) -> None:
    shown = recommendation(database)
    if target == "rated":
        record_feedback(database, shown, "okay")
    before = table_sizes(database), arm_counts(database)
    with pytest.raises(FeedbackError, match=message) as refused:
        record_feedback(database, 999 if target == "missing" else shown, rating)
    assert refused.value.status == status
    assert (table_sizes(database), arm_counts(database)) == before


def test_the_policy_is_rebuilt_from_the_tables_alone(database) -> None:
    rewards = {"manhattan": ["bad", "bad", "okay"], "euclidean": ["good", "okay"], "cosine": ["good", "good", "bad"]}
    for arm, ratings in rewards.items():
        for rating in ratings:
            record_feedback(database, recommendation(database, arm), rating)
    recommendation(database, "manhattan")  # an unrated recommendation counts nowhere
    policy = current_policy(database, "epsilon_greedy", {"decay": 8})
    assert policy.n_rated == 8
    assert policy.values() == pytest.approx({"manhattan": -2 / 3, "euclidean": 0.5, "cosine": 1 / 3})
    probabilities = policy.probabilities()  # epsilon = 8 / (8 + 8): half exploration, half euclidean
    assert probabilities == pytest.approx({"manhattan": 1 / 6, "euclidean": 1 / 6 + 1 / 2, "cosine": 1 / 6})
    choice = choose(policy, np.random.default_rng(0))
    assert choice.epsilon == pytest.approx(0.5)
    assert choice.probability == pytest.approx(probabilities[choice.arm])


def test_the_first_choice_is_uniformly_random(database) -> None:
    policy = current_policy(database, "epsilon_greedy", {})
    assert policy.probabilities() == pytest.approx(dict.fromkeys(DISTANCES, 1 / 3))
    picked = {choose(policy, np.random.default_rng(seed)).arm for seed in range(30)}
    assert picked == set(DISTANCES)


def test_logged_propensities_give_an_inverse_propensity_estimate(database) -> None:
    rng = np.random.default_rng(4)
    success = {"manhattan": 0.2, "euclidean": 0.5, "cosine": 0.8}
    for _ in range(900):
        arm = DISTANCES[rng.integers(3)]
        record_feedback(
            database, recommendation(database, arm, 1 / 3), "good" if rng.random() < success[arm] else "bad"
        )
    log = decision_log(database)
    assert len(log) == 900 and [decision.propensity for decision in log] == pytest.approx([1 / 3] * 900)
    estimate = ips_estimate(log, {"cosine": 1.0})
    assert abs(estimate.value - (2 * 0.8 - 1)) < 4 * estimate.standard_error


def test_an_old_database_gains_the_policy_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE recommendations (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT, arm TEXT NOT NULL,"
            " epsilon REAL NOT NULL, arm_probability REAL NOT NULL, query_kind TEXT NOT NULL, query_imdb_id TEXT,"
            " query_image BLOB, genres TEXT NOT NULL, results TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO recommendations (arm, epsilon, arm_probability, query_kind, genres, results)"
            " VALUES ('cosine', 1, 0.5, 'sample', '{}', '[]')"
        )
    old.close()
    later = list(range(2, latest_version() + 1))
    assert init_db(path) == later, "an unversioned database is adopted at version 1, then only later ones applied"
    with open_database(path) as database:
        assert database.execute("SELECT policy, arm FROM recommendations").fetchone()[:] == ("epsilon_greedy", "cosine")
        assert recommendation(database) == 2
        stored = [tuple(row) for row in database.execute("SELECT version, name FROM schema_migrations")]
        assert stored[0] == (1, "recommendations_and_feedback") and [v for v, _ in stored] == [1, *later]


VOTERS = 8
VOTES_EACH = 500
CONTESTED = 50  # recommendations every voter tries to rate: exactly one vote on each may win


def processes() -> multiprocessing.context.BaseContext:
    """Separate processes for the concurrency tests, each with its own connections: forked from a server that imported
    this module once (forkserver), rather than each started anew (spawn), importing this module and the app again
    for each of the 88 processes these tests start."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


BUSY_RETRIES = 20  # per vote: what a client does with the 503 and Retry-After the app answers when SQLite is busy


def vote(target: str, first: int, start, results) -> None:
    """Cast this voter's votes, retrying one the database refused as busy, as a client retries the app's 503; puts
    ("counted", accepted, refused) or ("failed", error) on `results`, so the test hears of a failure at once."""
    try:
        connection = open_database(target)
        start.wait()
        accepted = refused = 0
        rng = np.random.default_rng(first)
        own = list(range(first, first + VOTES_EACH))
        contested = list(range(1, CONTESTED + 1))
        for recommendation_id in rng.permutation(own + contested):
            for retry in range(BUSY_RETRIES + 1):
                try:
                    record_feedback(connection, int(recommendation_id), "good" if recommendation_id % 2 else "bad")
                    accepted += 1
                except StorageUnavailableError as error:
                    if error.reason != "the database is busy" or retry == BUSY_RETRIES:
                        raise
                    continue
                except FeedbackError as error:
                    assert error.status == 409, error
                    refused += 1
                break
        connection.close()
        results.put(("counted", accepted, refused))
    except BaseException as error:  # noqa: BLE001 - the test reports whatever went wrong
        results.put(("failed", repr(error), 0))


def test_concurrent_voters_are_each_counted_exactly_once(database_target: str) -> None:
    init_db(database_target)
    connection = open_database(database_target)
    if connection.dialect.name == "sqlite":
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    total = CONTESTED + VOTERS * VOTES_EACH
    with connection.transaction():
        for number in range(total):
            connection.execute(
                "INSERT INTO recommendations (arm, epsilon, arm_probability, query_kind, genres, results)"
                " VALUES (?, 1, 0.5, 'sample', '{}', '[]')",
                (DISTANCES[number % 3],),
            )
    context = processes()
    start, results = context.Barrier(VOTERS), context.Queue()
    voters = [
        context.Process(target=vote, args=(database_target, CONTESTED + 1 + n * VOTES_EACH, start, results))
        for n in range(VOTERS)
    ]
    for voter in voters:
        voter.start()
    outcomes = [results.get(timeout=120) for _ in voters]
    for voter in voters:
        voter.join(timeout=30)
        assert voter.exitcode == 0
    assert [outcome for outcome, *_ in outcomes] == ["counted"] * VOTERS, outcomes
    assert sum(accepted for _, accepted, _ in outcomes) == total
    assert sum(refused for _, _, refused in outcomes) == (VOTERS - 1) * CONTESTED
    assert connection.execute("SELECT COUNT(*), COUNT(DISTINCT recommendation_id) FROM feedback").fetchone()[:] == (
        total,
        total,
    )
    counts = arm_counts(connection)
    expected = {arm: [0, 0, 0] for arm in DISTANCES}
    for recommendation_id in range(1, total + 1):
        expected[DISTANCES[(recommendation_id - 1) % 3]][2 if recommendation_id % 2 else 0] += 1
    assert counts == {arm: tuple(value) for arm, value in expected.items()}
    connection.close()


def initialise(target: str, start, outcomes) -> None:
    start.wait()
    try:
        outcomes.put(("applied", init_db(target)))
    except Exception as error:  # noqa: BLE001 - the test reports whatever went wrong
        outcomes.put(("failed", repr(error)))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_workers_starting_together_all_initialise_a_new_database(kind: str, tmp_path: Path, request) -> None:
    """gunicorn's workers each run init_db at start-up; on a new database they must not lock each other out, and
    each migration must run exactly once."""
    context = processes()
    new_target = request.getfixturevalue("new_postgres_url") if kind == "postgresql" else None
    for attempt in range(5 if kind == "sqlite" else 2):
        target = new_target() if new_target else str(tmp_path / f"new-{attempt}.sqlite")
        start, outcomes = context.Barrier(VOTERS), context.Queue()
        workers = [context.Process(target=initialise, args=(target, start, outcomes)) for _ in range(VOTERS)]
        for worker in workers:
            worker.start()
        results = [outcomes.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert [worker.exitcode for worker in workers] == [0] * VOTERS
        assert [outcome for outcome, _ in results] == ["applied"] * VOTERS, results
        every_version = list(range(1, latest_version() + 1))
        assert sorted(version for _, applied in results for version in applied) == every_version, "one migrates"
        with open_database(target) as database:
            assert [row[0] for row in database.execute("SELECT version FROM schema_migrations")] == every_version
            if kind == "sqlite":
                assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


RATE_LIMIT = RateLimit(votes=30, seconds=60)


def vote_as_one_client(target: str, ids: list[int], start, results) -> None:
    with open_database(target) as connection:
        start.wait()
        statuses = []
        for recommendation_id in ids:
            try:
                record_feedback(connection, recommendation_id, "good", client="one-address", limit=RATE_LIMIT)
                statuses.append(200)
            except FeedbackError as error:
                statuses.append(error.status)
    results.put(statuses)


def test_one_clients_concurrent_votes_stop_exactly_at_the_rate_limit(database_target: str) -> None:
    """Votes from one client reach the limit exactly, however many workers (processes) they arrive through."""
    init_db(database_target)
    with open_database(database_target) as connection:
        ids = [recommendation(connection) for _ in range(VOTERS * 10)]
    context = processes()
    start, results = context.Barrier(VOTERS), context.Queue()
    voters = [
        context.Process(target=vote_as_one_client, args=(database_target, ids[n::VOTERS], start, results))
        for n in range(VOTERS)
    ]
    for voter in voters:
        voter.start()
    statuses = [status for _ in voters for status in results.get(timeout=120)]
    for voter in voters:
        voter.join(timeout=30)
    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == RATE_LIMIT.votes, "over or under the limit"
    with open_database(database_target) as connection:
        assert table_sizes(connection) == (len(ids), RATE_LIMIT.votes)
