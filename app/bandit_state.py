"""The bandit in the app: the configured policy in the state the recommendations log puts it in, its choice of
distance for the next recommendation, and the report the Bandit tab shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from app.db import Database
from app.recommendations import arm_counts, shown_counts
from bandit import Choice, Policy, from_counts, make_policy
from recommend import DISTANCES


def current_policy(database: Database, name: str, params: Mapping[str, object]) -> Policy:
    """The configured policy, in the state the feedback table puts it in."""
    return from_counts(make_policy(name, DISTANCES, **params), arm_counts(database))


def choose(policy: Policy, rng: np.random.Generator | None = None) -> Choice:
    """The policy's choice with a fresh, unpredictable generator unless one is given (tests give one)."""
    return policy.choose(rng if rng is not None else np.random.default_rng())


@dataclass(frozen=True)
class ArmReport:
    arm: str
    shown: int  # recommendations that used this distance
    bad: int
    okay: int
    good: int
    value: float  # mean reward so far
    probability: float  # chance that the policy picks this arm next

    @property
    def rated(self) -> int:
        return self.bad + self.okay + self.good


@dataclass(frozen=True)
class BanditReport:
    """What the bandit has learned: per arm, and the exploration rate now (epsilon-greedy; else None)."""

    policy: str
    epsilon: float | None
    arms: list[ArmReport]

    @property
    def n_rated(self) -> int:
        return sum(arm.rated for arm in self.arms)

    @property
    def n_shown(self) -> int:
        return sum(arm.shown for arm in self.arms)


def bandit_report(database: Database, name: str, params: Mapping[str, object]) -> BanditReport:
    policy = current_policy(database, name, params)
    shown = shown_counts(database)
    values, probabilities, counts = policy.values(), policy.probabilities(), policy.counts()
    arms = [
        ArmReport(arm, shown.get(arm, 0), *counts[arm], value=values[arm], probability=probabilities[arm])
        for arm in policy.arms
    ]
    return BanditReport(name, getattr(policy, "epsilon", None), arms)
