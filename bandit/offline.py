"""Off-policy evaluation: what mean reward another (stationary) policy would have earned, estimated from the app's
log of decisions, the probabilities with which they were made, and their rewards."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np

from bandit.policies import REWARDS

PROBABILITY_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class LoggedDecision:
    """One rated recommendation: the arm used, the probability the logging policy had of choosing it, the reward."""

    arm: str
    propensity: float
    reward: int


@dataclass(frozen=True)
class Estimate:
    """An estimated mean reward, its standard error (nan when n = 1) and the number of decisions behind it."""

    value: float
    standard_error: float
    n: int


def _weights_and_rewards(log: Sequence[LoggedDecision], target: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Importance weights target(arm) / propensity and rewards of the log, after checking both inputs."""
    if not log:
        raise ValueError("cannot estimate from an empty log")
    for arm, probability in target.items():
        if isinstance(probability, bool) or not isinstance(probability, Real) or not 0.0 <= probability <= 1.0:
            raise ValueError(f"target probability of {arm!r} must be in [0, 1], got {probability!r}")
    total = math.fsum(target.values())
    if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise ValueError(f"target probabilities must sum to 1, got {total!r} for {dict(target)!r}")
    weights = np.empty(len(log))
    rewards = np.empty(len(log))
    for row, decision in enumerate(log):
        if not 0.0 < decision.propensity <= 1.0:  # also refuses nan
            raise ValueError(
                f"decision {row} ({decision.arm!r}) has propensity {decision.propensity!r}; it must be in (0, 1]"
            )
        if decision.reward not in REWARDS:
            raise ValueError(f"decision {row} ({decision.arm!r}) has reward {decision.reward!r}; it must be -1, 0 or 1")
        weights[row] = target.get(decision.arm, 0.0) / decision.propensity
        rewards[row] = decision.reward
    return weights, rewards


def ips_estimate(log: Sequence[LoggedDecision], target: Mapping[str, float]) -> Estimate:
    """Inverse-propensity estimate of the mean reward of the stationary policy `target` (arm -> probability; arms
    left out have probability 0), e.g. {"cosine": 1.0} for "always cosine": the mean of reward * target(arm) /
    propensity. Unbiased whenever each logged propensity is the probability the logging policy really had at that
    time, even if the logging policy was learning (as the app's is) and so changed from one decision to the next;
    the standard error is the sample standard deviation of those terms over sqrt(n)."""
    weights, rewards = _weights_and_rewards(log, target)
    terms = weights * rewards
    n = len(terms)
    standard_error = float(terms.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(value=float(terms.mean()), standard_error=standard_error, n=n)


def snips_estimate(log: Sequence[LoggedDecision], target: Mapping[str, float]) -> Estimate:
    """Self-normalised inverse-propensity estimate: sum(w * reward) / sum(w) with w = target(arm) / propensity.
    Slightly biased but never outside [-1, 1] and usually of lower variance than `ips_estimate`; its standard error
    is the delta-method one, sqrt(sum(w^2 (reward - value)^2)) / sum(w). Refuses a log in which the target policy
    would never have made any of the logged decisions (all weights 0)."""
    weights, rewards = _weights_and_rewards(log, target)
    total_weight = weights.sum()
    if total_weight <= 0.0:
        raise ValueError("the target policy gives probability 0 to every logged arm: nothing to estimate from")
    value = float((weights * rewards).sum() / total_weight)
    n = len(weights)
    standard_error = float(np.sqrt(np.sum(weights**2 * (rewards - value) ** 2)) / total_weight) if n > 1 else math.nan
    return Estimate(value=value, standard_error=standard_error, n=n)
