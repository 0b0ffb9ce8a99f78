"""The app's log of what it showed and what users thought of it: the one module that reads and writes the
`recommendations` table (every recommendation shown, with the distance, i.e. the bandit's arm, that made it and the
probability with which it was chosen) and the `feedback` table (the one vote each may get, rate-limited per client).
The bandit's state is rebuilt from these tables (app.bandit_state), so every worker process on every host, and every
restart, sees the same state."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import reprlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.db import MAX_ROW_ID, Database, DuplicateRowError, Row
from app.errors import RequestError
from bandit import Choice, LoggedDecision
from recommend import DISTANCES

RATINGS: dict[str, int] = {"good": 1, "okay": 0, "bad": -1}
RATING_OF_REWARD: dict[int, str] = {reward: rating for rating, reward in RATINGS.items()}


class FeedbackError(RequestError):
    """A vote that cannot be recorded; `status` is the HTTP status that says why."""


@dataclass(frozen=True)
class Shown:
    """What one recommendation showed: everything the recommendations table keeps but the arm choice."""

    query_kind: str  # upload, sample or imdb
    query_imdb_id: str | None
    query_image: bytes | None
    genres: Mapping[str, float]
    evoked: Mapping[str, object]  # decade, year, rating, looks_like_poster (app.poster_pipeline.evoked_json)
    results: list[str]
    key_salt: str = field(default_factory=lambda: secrets.token_urlsafe(12))  # see recommendation_key


def record_recommendation(database: Database, policy_name: str, choice: Choice, shown: Shown) -> int:
    """Log a recommendation with the arm that made it and the probability of that arm, and the random salt of its
    key (recommendation_key); returns its id. Its key is recommendation_key(secret, id, shown.key_salt): no need to
    read the row again."""
    return database.insert(
        "INSERT INTO recommendations (policy, arm, epsilon, explored, arm_probability, query_kind, query_imdb_id,"
        " query_image, genres, evoked, results, key_salt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            policy_name,
            choice.arm,
            0.0 if choice.epsilon is None else choice.epsilon,
            int(choice.explored),
            choice.probability,
            shown.query_kind,
            shown.query_imdb_id,
            shown.query_image,
            json.dumps(dict(shown.genres)),
            json.dumps(dict(shown.evoked)),
            json.dumps(shown.results),
            shown.key_salt,
        ),
    )


KEY_LENGTH = 22
"""Characters of a recommendation's key: 16 bytes (128 bits) of a keyed hash, URL-safe base64."""


def recommendation_key(secret: str | bytes, recommendation_id: int, salt: str | None) -> str:
    """The key of recommendation `recommendation_id`: a keyed hash of its id and its row's random `salt` (None for
    rows from before migration 4: the id alone) that only the app can make, with a key of its own derived from its
    SECRET_KEY. The results page's address and the API's answer carry it, and seeing the poster that was sent, its
    plot, a heatmap of it, or voting on it needs it: the ids count up, so without a key anyone could see anyone's
    upload and take their vote. The salt keeps an old link to id N from opening another database's row N."""
    secret_bytes = secret if isinstance(secret, bytes) else str(secret).encode()
    if salt is None:  # a row from before the salts: the key its links were given then, by the secret itself
        digest = hmac.new(secret_bytes, f"recommendation {recommendation_id}".encode(), hashlib.sha256).digest()
    else:
        keys_secret = hmac.new(secret_bytes, b"posterbench recommendation keys", hashlib.sha256).digest()
        digest = hmac.new(keys_secret, f"recommendation {recommendation_id} {salt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode()[:KEY_LENGTH]


def is_recommendation_key(secret: str | bytes, shown: Row | None, key: object) -> bool:
    """Whether `key` (as sent: any JSON value or form text, or None) is the key of the recommendation row `shown`
    (find_recommendation's; None, an unknown id, has none)."""
    if shown is None or not isinstance(key, str) or not key.isascii():
        return False
    return hmac.compare_digest(key.encode(), row_key(secret, shown).encode())


def row_key(secret: str | bytes, shown: Row) -> str:
    """The key of the recommendation row `shown`."""
    return recommendation_key(secret, int(shown["id"]), shown["key_salt"])


def find_recommendation(database: Database, recommendation_id: int) -> Row | None:
    """The recommendations table's row `recommendation_id` (every column), or None when there is none."""
    if not is_row_id(recommendation_id):
        return None
    return database.execute("SELECT * FROM recommendations WHERE id = ?", (recommendation_id,)).fetchone()


def shown_counts(database: Database) -> dict[str, int]:
    """For each arm (distance), how many recommendations used it."""
    return dict(database.execute("SELECT arm, COUNT(*) FROM recommendations GROUP BY arm").fetchall())


def arm_counts(database: Database, arms: tuple[str, ...] = DISTANCES) -> dict[str, tuple[int, int, int]]:
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


def is_row_id(value: int) -> bool:
    """Whether `value` could be a table's id at all (1 to MAX_ROW_ID): any other names no row."""
    return 0 < value <= MAX_ROW_ID


def reward_of(rating: object) -> int:
    """+1, 0 or -1 for "good", "okay" or "bad"; anything else (a list, a number, null) is refused."""
    if not isinstance(rating, str) or rating not in RATINGS:
        if rating is None:
            raise FeedbackError("send a rating: rate a recommendation good, okay or bad", 400)
        raise FeedbackError(f"unknown rating {reprlib.repr(rating)}: rate a recommendation good, okay or bad", 400)
    return RATINGS[rating]


@dataclass(frozen=True)
class RateLimit:
    """At most `votes` votes per client in any `seconds`-long window."""

    votes: int
    seconds: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RateLimit:
        """The limit the app is configured with: FEEDBACK_LIMIT votes in FEEDBACK_WINDOW_SECONDS."""
        return cls(config["FEEDBACK_LIMIT"], config["FEEDBACK_WINDOW_SECONDS"])


def record_feedback(
    database: Database,
    recommendation_id: int,
    rating: object,
    client: str = "",
    limit: RateLimit | None = None,
) -> int:
    """Store the one vote a recommendation may get and return its reward. An unknown recommendation (404), a
    second vote (409), an unknown rating (400) or a client over `limit` (429) raises FeedbackError and writes
    nothing. `client` is an opaque key of the voter (security.client_key), counted for the limit."""
    reward = reward_of(rating)
    if not is_row_id(recommendation_id):
        raise no_recommendation(recommendation_id)
    try:
        # One transaction, rolled back on any error; one client's votes take turns, so the limit's count and the
        # insert see the same table.
        with database.transaction(lock=f"votes of {client}"):
            found = database.execute("SELECT 1 FROM recommendations WHERE id = ?", (recommendation_id,)).fetchone()
            if found is None:
                raise no_recommendation(recommendation_id)
            if database.execute("SELECT 1 FROM feedback WHERE recommendation_id = ?", (recommendation_id,)).fetchone():
                raise DuplicateRowError(recommendation_id)  # said before the limit: 409, whoever is over it
            if limit is not None:
                check_rate(database, client, limit)
            database.execute(
                "INSERT INTO feedback (recommendation_id, reward, client) VALUES (?, ?, ?)",
                (recommendation_id, reward, client),
            )
    except DuplicateRowError:
        raise FeedbackError(f"recommendation {recommendation_id} has already been rated; one vote each", 409) from None
    return reward


def no_recommendation(recommendation_id: int) -> FeedbackError:
    return FeedbackError(f"there is no recommendation {recommendation_id} to rate", 404)


def check_rate(database: Database, client: str, limit: RateLimit) -> None:
    recent = database.execute(
        f"SELECT COUNT(*) FROM feedback WHERE client = ? AND created > {database.dialect.seconds_ago}",
        (client, float(limit.seconds)),
    ).fetchone()[0]
    if recent >= limit.votes:
        raise FeedbackError(
            f"you have rated {recent} recommendations in the last {limit.seconds:g} seconds; please wait a little"
            " before rating more",
            429,
            retry_after=math.ceil(limit.seconds),  # by then every vote counted here has left the window
        )


def reward_for(database: Database, recommendation_id: int) -> int | None:
    row = database.execute("SELECT reward FROM feedback WHERE recommendation_id = ?", (recommendation_id,)).fetchone()
    return None if row is None else int(row[0])


def rating_for(database: Database, recommendation_id: int) -> str | None:
    """ "good", "okay" or "bad" once the recommendation has been rated, else None."""
    reward = reward_for(database, recommendation_id)
    return None if reward is None else RATING_OF_REWARD[reward]


def decision_log(database: Database) -> list[LoggedDecision]:
    """Every rated recommendation, oldest first: arm, logged propensity and reward (for offline evaluation)."""
    rows = database.execute(
        "SELECT r.arm, r.arm_probability, f.reward FROM recommendations AS r"
        " JOIN feedback AS f ON f.recommendation_id = r.id ORDER BY f.created, r.id"
    )
    return [LoggedDecision(arm=arm, propensity=float(p), reward=int(reward)) for arm, p, reward in rows]


def epsilon_history(database: Database) -> list[float]:
    """Epsilon-greedy's exploration rate at each recommendation it made, oldest first."""
    rows = database.execute("SELECT epsilon FROM recommendations WHERE policy = 'epsilon_greedy' ORDER BY id")
    return [float(epsilon) for (epsilon,) in rows]
