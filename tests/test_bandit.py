"""The bandit policies (exploration schedule, value updates, tie handling, exact choice probabilities, learning,
rebuilding from counts, refusals) and the off-policy estimators IPS and SNIPS."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from bandit import (
    POLICIES,
    UCB1,
    EpsilonGreedy,
    LoggedDecision,
    Policy,
    ThompsonSampling,
    from_counts,
    ips_estimate,
    make_policy,
    rebuild,
    snips_estimate,
)
from bandit.policies import thompson_win_probabilities
from recommend import DISTANCES

CHI_SQUARE_999 = {1: 10.83, 2: 13.82}  # 0.999 quantiles of the chi-square distribution by degrees of freedom
OKAY = 0.2
EASY_GOOD = (0.2, 0.45, 0.7)  # chance of "good" per arm of DISTANCES; cosine is best


def reward_chances(good: float) -> tuple[float, float, float]:
    """Chances of bad, okay, good of a synthetic arm."""
    return (1.0 - good - OKAY, OKAY, good)


def sample_reward(arm: str, goods: tuple[float, ...], rng: np.random.Generator) -> int:
    return int(rng.choice((-1, 0, 1), p=reward_chances(goods[DISTANCES.index(arm)])))


# epsilon-greedy


def test_epsilon_follows_the_papers_schedule_over_rated_recommendations() -> None:
    policy = EpsilonGreedy(decay=50)
    assert policy.epsilon == 1.0
    policy.update("cosine", 1, times=50)
    assert policy.epsilon == pytest.approx(0.5)
    policy.update("manhattan", -1, times=100)
    assert policy.epsilon == pytest.approx(0.25)
    assert EpsilonGreedy(decay=10).epsilon == 1.0
    assert from_counts(EpsilonGreedy(decay=10), {"euclidean": (10, 10, 10)}).epsilon == pytest.approx(0.25)


def test_choosing_without_a_rating_changes_nothing() -> None:
    policy = from_counts(EpsilonGreedy(), {"cosine": (1, 2, 3)})
    before = (policy.counts(), policy.epsilon, policy.probabilities())
    rng = np.random.default_rng(0)
    for _ in range(20):
        policy.choose(rng)
    assert (policy.counts(), policy.epsilon, policy.probabilities()) == before


def test_constant_epsilon_does_not_decay() -> None:
    policy = EpsilonGreedy(epsilon=0.1)
    policy.update("cosine", 1, times=1000)
    assert policy.epsilon == 0.1
    assert policy.probabilities() == pytest.approx(
        {"manhattan": 0.1 / 3, "euclidean": 0.1 / 3, "cosine": 0.9 + 0.1 / 3}
    )


def test_first_pull_is_uniform() -> None:
    policy = EpsilonGreedy()
    assert policy.probabilities() == pytest.approx(dict.fromkeys(DISTANCES, 1 / 3))
    choice = policy.choose(np.random.default_rng(1))
    assert choice.epsilon == 1.0 and choice.probability == pytest.approx(1 / 3)


def test_value_is_the_running_mean_not_the_papers_equation_3() -> None:
    rewards = [1, 1, -1, 0, 1]
    running_mean, papers_equation_3 = 0.0, 0.0
    policy = EpsilonGreedy()
    for n, reward in enumerate(rewards, start=1):
        running_mean += (reward - running_mean) / n
        papers_equation_3 = ((n - 1) / n * papers_equation_3 + 1 / n) * reward
        policy.update("cosine", reward)
    assert running_mean == pytest.approx(0.4)  # by hand: 1, 1, 1/3, 1/4, 2/5
    assert papers_equation_3 == pytest.approx(0.2)  # by hand: 1, 1, -1, 0, 1/5
    assert policy.values() == pytest.approx({"manhattan": 0.0, "euclidean": 0.0, "cosine": 0.4})


def test_ties_between_best_arms_split_the_greedy_share() -> None:
    policy = from_counts(EpsilonGreedy(decay=50), {"manhattan": (1, 0, 3), "euclidean": (0, 2, 2), "cosine": (1, 0, 0)})
    assert policy.values()["manhattan"] == policy.values()["euclidean"] == 0.5
    epsilon = 50 / 59
    assert policy.probabilities() == pytest.approx(
        {
            "manhattan": epsilon / 3 + (1 - epsilon) / 2,
            "euclidean": epsilon / 3 + (1 - epsilon) / 2,
            "cosine": epsilon / 3,
        }
    )
    rng = np.random.default_rng(4)
    assert {policy.draw(rng) for _ in range(300)} == set(DISTANCES)


def test_an_unrated_arm_is_worth_zero_and_beats_a_losing_one() -> None:
    policy = from_counts(EpsilonGreedy(epsilon=0.0), {"manhattan": (2, 0, 0), "euclidean": (3, 0, 1)})
    assert policy.values() == {"manhattan": -1.0, "euclidean": -0.5, "cosine": 0.0}
    assert policy.probabilities() == {"manhattan": 0.0, "euclidean": 0.0, "cosine": 1.0}


# UCB1


def test_ucb1_plays_every_arm_once_first() -> None:
    policy = UCB1()
    assert policy.probabilities() == pytest.approx(dict.fromkeys(DISTANCES, 1 / 3))
    policy.update("manhattan", 1)
    assert policy.probabilities() == {"manhattan": 0.0, "euclidean": 0.5, "cosine": 0.5}
    policy.update("cosine", -1)
    assert policy.probabilities() == {"manhattan": 0.0, "euclidean": 1.0, "cosine": 0.0}


def test_ucb1_index_by_hand() -> None:
    # n = 4; rescaled means 1, 0, 0.5; bonuses sqrt(2 ln 4 / n_a): 1.177 (n_a = 2), 1.665 (n_a = 1)
    counts = {"manhattan": (0, 0, 2), "euclidean": (1, 0, 0), "cosine": (0, 1, 0)}
    assert from_counts(UCB1(), counts).probabilities() == {"manhattan": 1.0, "euclidean": 0.0, "cosine": 0.0}
    # c = 2 doubles the bonuses: cosine's 0.5 + 3.330 passes manhattan's 1 + 2.355
    assert from_counts(UCB1(c=2.0), counts).probabilities() == {"manhattan": 0.0, "euclidean": 0.0, "cosine": 1.0}
    revisited = {"manhattan": (0, 0, 50), "euclidean": (0, 1, 0), "cosine": (0, 1, 0)}
    assert from_counts(UCB1(), revisited).probabilities() == {"manhattan": 0.0, "euclidean": 0.5, "cosine": 0.5}
    assert from_counts(UCB1(c=0.0), revisited).probabilities() == {"manhattan": 1.0, "euclidean": 0.0, "cosine": 0.0}


# Thompson sampling


def test_thompson_probabilities_are_deterministic_and_symmetric() -> None:
    assert ThompsonSampling().probabilities() == dict.fromkeys(DISTANCES, 1 / 3)
    counts = {"manhattan": (3, 2, 5), "euclidean": (3, 2, 5), "cosine": (5, 2, 3)}
    first = from_counts(ThompsonSampling(), counts).probabilities()
    assert from_counts(ThompsonSampling(), counts).probabilities() == first
    assert first["manhattan"] == first["euclidean"] > first["cosine"] > 0
    assert sum(first.values()) == pytest.approx(1.0)
    hopeless = from_counts(ThompsonSampling(DISTANCES[:2]), {"manhattan": (200, 20, 20), "euclidean": (20, 20, 200)})
    assert hopeless.probabilities()["euclidean"] > 0.999
    assert 0 < hopeless.probabilities()["manhattan"] < 1e-3
    untried_arm_still_has_a_chance = from_counts(ThompsonSampling(), hopeless.counts()).probabilities()["cosine"]
    assert 0.01 < untried_arm_still_has_a_chance < 0.1


def test_thompson_estimates_once_per_state_though_the_app_rebuilds_the_policy_per_request() -> None:
    """The app rebuilds its policy from the log for every request; the estimate (about 80 ms, more when contended)
    was cached on the policy object, so every recommendation paid it."""
    thompson_win_probabilities.cache_clear()
    counts = {"manhattan": (4, 1, 6), "euclidean": (3, 2, 5), "cosine": (5, 2, 3)}
    first = from_counts(ThompsonSampling(), counts).probabilities()
    assert from_counts(ThompsonSampling(), counts).probabilities() == first
    assert thompson_win_probabilities.cache_info()[:2] == (1, 1)  # (hits, misses)
    voted = {**counts, "cosine": (5, 2, 4)}
    assert from_counts(ThompsonSampling(), voted).probabilities() != first
    assert from_counts(ThompsonSampling(draws=200_000), counts).probabilities() != first
    assert thompson_win_probabilities.cache_info()[:2] == (1, 3)


def test_thompson_probabilities_agree_with_brute_force_sampling() -> None:
    counts = {"manhattan": (3, 2, 5), "euclidean": (4, 2, 5), "cosine": (3, 3, 5)}
    estimated = np.array(list(from_counts(ThompsonSampling(), counts).probabilities().values()))
    rng = np.random.default_rng(7)
    draws = 600_000
    sampled = np.stack([rng.dirichlet(np.add(counts[arm], 1.0), size=draws) for arm in DISTANCES])
    winners = np.argmax(sampled[:, :, 2] - sampled[:, :, 0], axis=0)
    frequencies = np.bincount(winners, minlength=len(DISTANCES)) / draws
    assert np.abs(estimated - frequencies).max() < 3e-3  # sampling error of the brute force alone: sd < 7e-4


# every policy


def chi_square(observed: np.ndarray, expected_shares: np.ndarray) -> tuple[float, int]:
    possible = expected_shares > 0
    assert observed[~possible].sum() == 0, "an arm of probability 0 was chosen"
    expected = expected_shares[possible] * observed.sum()
    return float(np.sum((observed[possible] - expected) ** 2 / expected)), int(possible.sum()) - 1


PROBABILITY_CASES: dict[str, tuple[Callable[[], Policy], dict[str, tuple[int, int, int]]]] = {
    "epsilon-greedy, tie, epsilon 1/2": (
        partial(EpsilonGreedy, decay=6),
        {"manhattan": (0, 0, 2), "euclidean": (0, 0, 2), "cosine": (2, 0, 0)},
    ),
    "epsilon-greedy, constant epsilon": (
        partial(EpsilonGreedy, epsilon=0.3),
        {"cosine": (0, 1, 3), "euclidean": (1, 1, 1)},
    ),
    "ucb1, two arms unplayed": (UCB1, {"cosine": (1, 0, 0)}),
    "ucb1, three-way tie": (UCB1, dict.fromkeys(DISTANCES, (1, 1, 1))),
    "thompson, close arms": (
        ThompsonSampling,
        {"manhattan": (3, 2, 5), "euclidean": (4, 2, 5), "cosine": (3, 3, 5)},
    ),
    "thompson, one arm ahead": (ThompsonSampling, {"manhattan": (5, 2, 2), "euclidean": (2, 2, 5)}),
}


@pytest.mark.parametrize("case", PROBABILITY_CASES)
def test_probabilities_match_choice_frequencies(case: str) -> None:
    make, counts = PROBABILITY_CASES[case]
    policy = from_counts(make(), counts)
    probabilities = policy.probabilities()
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(2024)
    observed = dict.fromkeys(DISTANCES, 0)
    for _ in range(4000):
        choice = policy.choose(rng)
        assert choice.probability == probabilities[choice.arm]
        observed[choice.arm] += 1
    statistic, degrees = chi_square(np.array(list(observed.values())), np.array(list(probabilities.values())))
    if degrees:
        assert statistic < CHI_SQUARE_999[degrees], (observed, probabilities)


def test_choice_reports_epsilon_only_for_epsilon_greedy() -> None:
    rng = np.random.default_rng(3)
    assert make_policy("epsilon_greedy", decay=10).choose(rng).epsilon == 1.0
    assert make_policy("ucb1").choose(rng).epsilon is None
    assert make_policy("thompson").choose(rng).epsilon is None


def test_choice_says_whether_it_explored() -> None:
    rng = np.random.default_rng(4)
    learned = {"manhattan": (0, 0, 9), "euclidean": (9, 0, 0), "cosine": (9, 0, 0)}
    greedy = from_counts(make_policy("epsilon_greedy", epsilon=0.0), learned)
    assert not any(greedy.choose(rng).explored for _ in range(50))
    uniform = from_counts(make_policy("epsilon_greedy", epsilon=1.0), learned)
    assert all(uniform.choose(rng).explored for _ in range(50))  # even when the draw lands on the best arm
    decaying = [from_counts(make_policy("epsilon_greedy", decay=9), learned).choose(rng) for _ in range(4000)]
    share = sum(choice.explored for choice in decaying) / len(decaying)
    assert share == pytest.approx(9 / (27 + 9), abs=0.03)  # epsilon = decay / (n + decay)
    ucb = from_counts(make_policy("ucb1"), learned).choose(rng)
    assert ucb.explored == (ucb.arm != "manhattan")


@pytest.mark.parametrize("name", POLICIES)
def test_each_policy_learns_the_best_arm(name: str) -> None:
    policy = make_policy(name)
    rng = np.random.default_rng(11)
    picks = []
    for _ in range(3000):
        arm = policy.draw(rng)
        policy.update(arm, sample_reward(arm, EASY_GOOD, rng))
        picks.append(arm)
    assert picks[-500:].count("cosine") / 500 > 0.85
    values = policy.values()
    assert max(values, key=values.get) == "cosine"
    assert policy.n_rated == 3000


@pytest.mark.parametrize("name", POLICIES)
def test_rebuild_and_from_counts_give_the_incremental_state(name: str) -> None:
    rng = np.random.default_rng(5)
    log = [(str(rng.choice(DISTANCES)), int(rng.choice((-1, 0, 1)))) for _ in range(300)]
    incremental = make_policy(name)
    for arm, reward in log:
        incremental.update(arm, reward)
    rebuilt = rebuild(make_policy(name), reversed(log))
    loaded_policy = from_counts(make_policy(name), incremental.counts())
    for policy in (rebuilt, loaded_policy):
        assert policy.counts() == incremental.counts()
        assert policy.values() == incremental.values()
        assert policy.probabilities() == incremental.probabilities()
        assert policy.n_rated == 300
    bad, okay, good = incremental.counts()["cosine"]
    assert incremental.values()["cosine"] == pytest.approx((good - bad) / (bad + okay + good))


def test_update_times_counts_repeated_rewards() -> None:
    once = UCB1()
    once.update("euclidean", 0, times=3)
    thrice = UCB1()
    for _ in range(3):
        thrice.update("euclidean", 0)
    assert once.counts() == thrice.counts() == {"manhattan": (0, 0, 0), "euclidean": (0, 3, 0), "cosine": (0, 0, 0)}
    once.update("euclidean", 1, times=0)
    assert once.n_rated == 3


# refusals


@pytest.mark.parametrize("reward", [2, -2, 0.5, 1.0, True, "1", None])
def test_update_refuses_rewards_other_than_minus_one_zero_one(reward: object) -> None:
    with pytest.raises(ValueError, match="reward must be -1, 0 or 1"):
        EpsilonGreedy().update("cosine", reward)


def test_update_refuses_unknown_arms_and_bad_repeat_counts() -> None:
    policy = ThompsonSampling()
    with pytest.raises(ValueError, match="unknown arm 'hamming'.*manhattan, euclidean, cosine"):
        policy.update("hamming", 1)
    with pytest.raises(ValueError, match="times must be a non-negative integer"):
        policy.update("cosine", 1, times=-1)
    with pytest.raises(ValueError, match="times must be a non-negative integer"):
        policy.update("cosine", 1, times=1.5)
    assert policy.n_rated == 0


def test_make_policy_refuses_unknown_names_and_parameters() -> None:
    with pytest.raises(ValueError, match="choose one of epsilon_greedy, ucb1, thompson"):
        make_policy("softmax")
    with pytest.raises(ValueError, match="unknown parameter.*decay.*'ucb1'.*its parameters are c"):
        make_policy("ucb1", decay=3)
    with pytest.raises(ValueError, match="its parameters are decay, epsilon"):
        make_policy("epsilon_greedy", alpha=0.1)
    assert isinstance(make_policy("epsilon_greedy", ("a", "b"), decay=5), EpsilonGreedy)
    assert make_policy("epsilon_greedy", ("a", "b"), decay=5).arms == ("a", "b")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("epsilon_greedy", {"decay": 0}, "decay must be in"),
        ("epsilon_greedy", {"decay": -5}, "decay must be in"),
        ("epsilon_greedy", {"decay": math.nan}, "decay must be a finite number"),
        ("epsilon_greedy", {"decay": "50"}, "decay must be a finite number"),
        ("epsilon_greedy", {"epsilon": 1.5}, "epsilon must be in"),
        ("ucb1", {"c": -1}, "c must be in"),
        ("thompson", {"prior": (1, 1)}, "prior must be three positive numbers"),
        ("thompson", {"prior": (1, 0, 1)}, "prior must be in"),
        ("thompson", {"draws": 10}, "draws must be an integer of at least 1000"),
    ],
)
def test_policies_refuse_bad_parameters(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_policy(name, **params)


@pytest.mark.parametrize("arms", [(), ("cosine", "cosine"), ("cosine", 3)])
def test_policies_refuse_bad_arm_lists(arms: tuple) -> None:
    with pytest.raises(ValueError, match="arm"):
        EpsilonGreedy(arms)


def test_from_counts_and_rebuild_refuse_bad_input_without_partial_updates() -> None:
    policy = EpsilonGreedy()
    with pytest.raises(ValueError, match="unknown arm"):
        from_counts(policy, {"cosine": (1, 1, 1), "hamming": (0, 0, 1)})
    with pytest.raises(ValueError, match="must be non-negative integers"):
        from_counts(policy, {"cosine": (1, 1, 1), "euclidean": (0, -1, 1)})
    with pytest.raises(ValueError, match=r"must be \(#bad, #okay, #good\)"):
        from_counts(policy, {"cosine": (1, 1)})
    assert policy.n_rated == 0
    policy.update("cosine", 1)
    with pytest.raises(ValueError, match="expected a fresh policy"):
        from_counts(policy, {"cosine": (1, 1, 1)})
    with pytest.raises(ValueError, match="expected a fresh policy"):
        rebuild(policy, [("cosine", 1)])


# off-policy estimates


def test_ips_and_snips_by_hand() -> None:
    log = [LoggedDecision("cosine", 0.5, 1), LoggedDecision("manhattan", 0.25, -1), LoggedDecision("cosine", 0.5, 0)]
    ips = ips_estimate(log, {"cosine": 1.0})  # terms 2, 0, 0
    assert ips.value == pytest.approx(2 / 3)
    assert ips.standard_error == pytest.approx(math.sqrt(4 / 3) / math.sqrt(3))
    assert ips.n == 3
    snips = snips_estimate(log, {"cosine": 1.0})  # weights 2, 0, 2
    assert snips.value == pytest.approx(0.5)
    assert snips.standard_error == pytest.approx(math.sqrt(4 * 0.25 + 4 * 0.25) / 4)
    mixed = ips_estimate(log, {"cosine": 0.5, "manhattan": 0.5})  # terms 1, -2, 0
    assert mixed.value == pytest.approx(-1 / 3)


def simulated_log(
    n: int, logging: dict[str, float], goods: tuple[float, ...], rng: np.random.Generator
) -> list[LoggedDecision]:
    arms = rng.choice(DISTANCES, size=n, p=list(logging.values()))
    return [LoggedDecision(str(arm), logging[str(arm)], sample_reward(str(arm), goods, rng)) for arm in arms]


def true_value(good: float) -> float:
    bad, _, good = reward_chances(good)
    return good - bad


def test_ips_is_unbiased_for_always_the_best_arm_under_uniform_logging() -> None:
    rng = np.random.default_rng(9)
    log = simulated_log(6000, dict.fromkeys(DISTANCES, 1 / 3), EASY_GOOD, rng)
    truth = true_value(EASY_GOOD[2])
    estimate = ips_estimate(log, {"cosine": 1.0})
    assert estimate.n == 6000
    assert abs(estimate.value - truth) < 4 * estimate.standard_error
    assert 0.01 < estimate.standard_error < 0.03  # sd of 3 * reward * [arm is cosine], over sqrt(6000)
    replications = [
        ips_estimate(simulated_log(200, dict.fromkeys(DISTANCES, 1 / 3), EASY_GOOD, rng), {"cosine": 1.0})
        for _ in range(300)
    ]
    values = np.array([replication.value for replication in replications])
    assert abs(values.mean() - truth) < 4 * values.std(ddof=1) / math.sqrt(len(values))
    assert np.mean([replication.standard_error for replication in replications]) == pytest.approx(
        values.std(), rel=0.15
    )


def test_snips_under_skewed_logging() -> None:
    rng = np.random.default_rng(10)
    logging = {"manhattan": 0.6, "euclidean": 0.3, "cosine": 0.1}
    log = simulated_log(8000, logging, EASY_GOOD, rng)
    target = {"euclidean": 0.5, "cosine": 0.5}
    truth = 0.5 * true_value(EASY_GOOD[1]) + 0.5 * true_value(EASY_GOOD[2])
    snips = snips_estimate(log, target)
    ips = ips_estimate(log, target)
    assert abs(snips.value - truth) < 4 * snips.standard_error
    assert abs(ips.value - truth) < 4 * ips.standard_error
    assert snips.standard_error < ips.standard_error
    same_policy = snips_estimate(log, logging)  # equal weights: the plain mean of the rewards
    assert same_policy.value == pytest.approx(np.mean([decision.reward for decision in log]))


@pytest.mark.parametrize("propensity", [0.0, -0.1, 1.5, math.nan])
def test_estimates_refuse_impossible_propensities(propensity: float) -> None:
    log = [LoggedDecision("cosine", 0.5, 1), LoggedDecision("cosine", propensity, 0)]
    for estimator in (ips_estimate, snips_estimate):
        with pytest.raises(ValueError, match=r"decision 1 \('cosine'\) has propensity .*it must be in \(0, 1\]"):
            estimator(log, {"cosine": 1.0})


def test_estimates_refuse_empty_logs_bad_targets_and_rewards() -> None:
    log = [LoggedDecision("cosine", 0.5, 1)]
    for estimator in (ips_estimate, snips_estimate):
        with pytest.raises(ValueError, match="empty log"):
            estimator([], {"cosine": 1.0})
        with pytest.raises(ValueError, match="must sum to 1"):
            estimator(log, {"cosine": 0.5})
        with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
            estimator(log, {"cosine": 1.5, "euclidean": -0.5})
        with pytest.raises(ValueError, match="reward 2"):
            estimator([LoggedDecision("cosine", 0.5, 2)], {"cosine": 1.0})
    with pytest.raises(ValueError, match="probability 0 to every logged arm"):
        snips_estimate(log, {"manhattan": 1.0})
    assert math.isnan(ips_estimate(log, {"cosine": 1.0}).standard_error)
