"""The bandit's memory in SQLite: which distance each recommendation used (and with what probability), and the
one vote it may get. The policy is rebuilt from these tables on every request, so every worker process and every
restart sees the same state, and the arm values can never disagree with the log."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bandit import ARMS, Choice, LoggedDecision, Policy, from_counts, make_policy

RATINGS: dict[str, int] = {"good": 1, "okay": 0, "bad": -1}
RATING_OF_REWARD: dict[int, str] = {reward: rating for rating, reward in RATINGS.items()}


class FeedbackError(ValueError):
    """A vote that cannot be recorded; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Shown:
    """What one recommendation showed: everything the recommendations table keeps but the arm choice."""

    query_kind: str  # upload, sample or imdb
    query_imdb_id: str | None
    query_image: bytes | None
    genres: Mapping[str, float]
    results: list[str]


def arm_counts(database: sqlite3.Connection, arms: tuple[str, ...] = ARMS) -> dict[str, tuple[int, int, int]]:
    """For each arm, how many of its recommendations were rated bad, okay and good."""
    counts = {arm: [0, 0, 0] for arm in arms}
    rows = database.execute(
        "SELECT r.arm, f.reward, COUNT(*) FROM feedback AS f JOIN recommendations AS r ON r.id = f.recommendation_id"
        " GROUP BY r.arm, f.reward"
    )
    for arm, reward, count in rows:
        if arm in counts:
            counts[arm][reward + 1] = count
    return {arm: (bad, okay, good) for arm, (bad, okay, good) in counts.items()}


def current_policy(database: sqlite3.Connection, name: str, params: Mapping[str, object]) -> Policy:
    """The configured policy, in the state the feedback table puts it in."""
    return from_counts(make_policy(name, ARMS, **params), arm_counts(database))


def record_recommendation(database: sqlite3.Connection, policy_name: str, choice: Choice, shown: Shown) -> int:
    """Log a recommendation with the arm that made it and the probability of that arm; returns its id."""
    cursor = database.execute(
        "INSERT INTO recommendations (policy, arm, epsilon, arm_probability, query_kind, query_imdb_id, query_image,"
        " genres, results) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            policy_name,
            choice.arm,
            0.0 if choice.epsilon is None else choice.epsilon,
            choice.probability,
            shown.query_kind,
            shown.query_imdb_id,
            shown.query_image,
            json.dumps(dict(shown.genres)),
            json.dumps(shown.results),
        ),
    )
    database.commit()
    return int(cursor.lastrowid)


def reward_of(rating: object) -> int:
    """+1, 0 or -1 for "good", "okay" or "bad"; anything else is refused."""
    if rating not in RATINGS:
        raise FeedbackError(f"unknown rating {rating!r}: rate a recommendation good, okay or bad", 400)
    return RATINGS[rating]


def record_feedback(database: sqlite3.Connection, recommendation_id: int, rating: object) -> int:
    """Store the one vote a recommendation may get and return its reward. An unknown recommendation (404), a
    second vote (409) or an unknown rating (400) raises FeedbackError and writes nothing."""
    reward = reward_of(rating)
    try:
        with database:  # one transaction: commits on success, rolls back on any error
            found = database.execute("SELECT 1 FROM recommendations WHERE id = ?", (recommendation_id,)).fetchone()
            if found is None:
                raise FeedbackError(f"there is no recommendation {recommendation_id} to rate", 404)
            database.execute(
                "INSERT INTO feedback (recommendation_id, reward) VALUES (?, ?)", (recommendation_id, reward)
            )
    except sqlite3.IntegrityError as error:
        if "UNIQUE" not in str(error) and "PRIMARY KEY" not in str(error):
            raise
        raise FeedbackError(f"recommendation {recommendation_id} has already been rated; one vote each", 409) from None
    return reward


def reward_for(database: sqlite3.Connection, recommendation_id: int) -> int | None:
    row = database.execute("SELECT reward FROM feedback WHERE recommendation_id = ?", (recommendation_id,)).fetchone()
    return None if row is None else int(row[0])


def rating_for(database: sqlite3.Connection, recommendation_id: int) -> str | None:
    """ "good", "okay" or "bad" once the recommendation has been rated, else None."""
    reward = reward_for(database, recommendation_id)
    return None if reward is None else RATING_OF_REWARD[reward]


def decision_log(database: sqlite3.Connection) -> list[LoggedDecision]:
    """Every rated recommendation, oldest first: arm, logged propensity and reward (for offline evaluation)."""
    rows = database.execute(
        "SELECT r.arm, r.arm_probability, f.reward FROM recommendations AS r"
        " JOIN feedback AS f ON f.recommendation_id = r.id ORDER BY f.created, r.id"
    )
    return [LoggedDecision(arm=arm, propensity=float(p), reward=int(reward)) for arm, p, reward in rows]


def choose(policy: Policy, rng: np.random.Generator | None = None) -> Choice:
    """The policy's choice with a fresh, unpredictable generator unless one is given (tests give one)."""
    return policy.choose(rng if rng is not None else np.random.default_rng())
