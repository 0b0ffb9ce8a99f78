"""Chooses the distance (Manhattan, Euclidean or cosine) that recommendations use with a bandit policy learning from
users' ratings, and estimates offline how other policies would have fared on the logged ratings. Its arms are the
distances' names, `recommend.DISTANCES` (the default of every policy)."""

from bandit.offline import Estimate, LoggedDecision, ips_estimate, snips_estimate
from bandit.policies import (
    PARAMETERS,
    POLICIES,
    REWARDS,
    UCB1,
    Choice,
    EpsilonGreedy,
    Policy,
    ThompsonSampling,
    from_counts,
    make_policy,
    rebuild,
)

__all__ = [
    "PARAMETERS",
    "POLICIES",
    "REWARDS",
    "UCB1",
    "Choice",
    "Estimate",
    "EpsilonGreedy",
    "LoggedDecision",
    "Policy",
    "ThompsonSampling",
    "from_counts",
    "ips_estimate",
    "make_policy",
    "rebuild",
    "snips_estimate",
]
