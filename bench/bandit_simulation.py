"""Regret of the bandit policies (bandit/) on simulated users: three arms whose chance of a "good" rating is
0.45, 0.5 and 0.6, rewards +1 / 0 / -1, every recommendation rated.

The chance of "okay" is the same for every arm (`--okay`, default 0.2) and "bad" takes the rest, so the arms'
expected rewards are good - bad = 2 good + okay - 1 (0.10, 0.20, 0.40 by default). Each policy runs `--rounds`
rounds for each of `--seeds` seeds; seed s gives every policy the same users (common random numbers: one uniform
draw per round decides the rating whatever the arm), so policies differ only by their choices. The regret is the
pseudo-regret, the sum over rounds of (best expected reward - expected reward of the arm chosen).

Prints the problem, then per policy the final regret (mean and standard deviation over seeds), the share of the
last 1,000 rounds spent on the best arm, and seconds per run; saves the mean regret curves with a band from the
10th to the 90th percentile over seeds to `--plot`; the last line is one JSON object: {policy: final mean regret}.

    python -m bench.bandit_simulation --rounds 10000 --seeds 20 --plot var/bench/bandit_regret.png
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bandit import make_policy
from bench import at_least, png_file
from recommend import DISTANCES

REPO_ROOT = Path(__file__).resolve().parents[1]

GOOD_CHANCES = (0.45, 0.5, 0.6)
LAST_ROUNDS = 1000
LINE_STYLES = ("-", "--", "-.", ":")


@dataclass(frozen=True)
class Contender:
    """A policy to simulate: its label in the table, its name for make_policy and its parameters."""

    label: str
    name: str
    params: dict[str, object] = field(default_factory=dict)


CONTENDERS = (
    Contender("epsilon-greedy, decay 10", "epsilon_greedy", {"decay": 10}),
    Contender("epsilon-greedy, decay 50 (paper)", "epsilon_greedy", {"decay": 50}),
    Contender("epsilon-greedy, decay 200", "epsilon_greedy", {"decay": 200}),
    Contender("epsilon-greedy, constant 0.1", "epsilon_greedy", {"epsilon": 0.1}),
    Contender("UCB1, c = 1", "ucb1", {"c": 1.0}),
    Contender("Thompson, Dirichlet(1,1,1)", "thompson"),
)


@dataclass(frozen=True)
class Problem:
    """Chances of bad, okay and good for each arm of DISTANCES."""

    good: tuple[float, ...]
    okay: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.okay < 1.0 or any(not 0.0 <= good <= 1.0 - self.okay for good in self.good):
            raise ValueError(f"chances of good {self.good} with okay {self.okay} leave a negative chance of bad")

    @property
    def bad(self) -> tuple[float, ...]:
        return tuple(1.0 - good - self.okay for good in self.good)

    @property
    def expected_rewards(self) -> np.ndarray:
        return np.array(self.good) - np.array(self.bad)

    def rewards(self, arm: int, uniforms: np.ndarray) -> np.ndarray:
        """Ratings of `arm` for users drawn as `uniforms`: +1 below its chance of good, then 0, then -1."""
        return np.where(uniforms < self.good[arm], 1, np.where(uniforms < self.good[arm] + self.okay, 0, -1))


def simulate(contender: Contender, problem: Problem, seed: int, rounds: int) -> tuple[np.ndarray, float]:
    """Arms chosen in each round by one run, and its duration in seconds."""
    started = time.perf_counter()
    users = np.random.default_rng(seed).random(rounds)
    rewards_by_arm = [problem.rewards(arm, users).tolist() for arm in range(len(DISTANCES))]
    arm_index = {arm: index for index, arm in enumerate(DISTANCES)}
    policy = make_policy(contender.name, DISTANCES, **contender.params)
    policy_rng = np.random.default_rng([seed, 1])
    chosen = np.empty(rounds, dtype=np.int8)
    for round_index in range(rounds):
        arm = policy.draw(policy_rng)
        index = arm_index[arm]
        policy.update(arm, rewards_by_arm[index][round_index])
        chosen[round_index] = index
    return chosen, time.perf_counter() - started


def simulate_task(task: tuple[Contender, Problem, int, int]) -> tuple[np.ndarray, float]:
    return simulate(*task)


@dataclass(frozen=True)
class Outcome:
    """Cumulative regret curves (seeds x rounds), best-arm shares of the last rounds, seconds per run."""

    regret: np.ndarray
    best_share: np.ndarray
    seconds: np.ndarray


def run_all(problem: Problem, rounds: int, seeds: int, jobs: int) -> dict[str, Outcome]:
    tasks = [(contender, problem, seed, rounds) for contender in CONTENDERS for seed in range(seeds)]
    if jobs > 1:
        # Ctrl-C reaches this process alone, and leaving the block terminates the workers (concurrent.futures' pool
        # would wait for every queued task first)
        with multiprocessing.Pool(jobs, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
            results = pool.map(simulate_task, tasks, chunksize=1)
    else:
        results = [simulate_task(task) for task in tasks]
    gaps = problem.expected_rewards.max() - problem.expected_rewards
    best = int(np.argmax(problem.expected_rewards))
    outcomes = {}
    for position, contender in enumerate(CONTENDERS):
        runs = results[position * seeds : (position + 1) * seeds]
        chosen = np.stack([arms for arms, _ in runs])
        outcomes[contender.label] = Outcome(
            regret=np.cumsum(gaps[chosen], axis=1),
            best_share=(chosen[:, -LAST_ROUNDS:] == best).mean(axis=1),
            seconds=np.array([seconds for _, seconds in runs]),
        )
    return outcomes


def print_problem(problem: Problem, rounds: int, seeds: int) -> None:
    print(f"{rounds} rounds, {seeds} seeds; chances (bad / okay / good) and expected reward of each arm:")
    for arm, bad, good, expected in zip(DISTANCES, problem.bad, problem.good, problem.expected_rewards, strict=True):
        print(f"  {arm:<10} {bad:.2f} / {problem.okay:.2f} / {good:.2f}   expected reward {expected:+.2f}")
    print(f"best arm: {DISTANCES[int(np.argmax(problem.expected_rewards))]}; regret = pseudo-regret against it\n")


def print_table(outcomes: dict[str, Outcome], rounds: int) -> None:
    last = min(LAST_ROUNDS, rounds)
    header = (
        f"{'policy':<34} {'final regret':>12} {'std':>7} {'median':>7} {f'best arm, last {last}':>20} {'s per run':>10}"
    )
    print(header)
    print("-" * len(header))
    for label, outcome in outcomes.items():
        final = outcome.regret[:, -1]
        print(
            f"{label:<34} {final.mean():>12.1f} {final.std(ddof=1) if len(final) > 1 else 0.0:>7.1f}"
            f" {np.median(final):>7.1f} {outcome.best_share.mean():>20.3f} {outcome.seconds.mean():>10.2f}"
        )


def save_plot(outcomes: dict[str, Outcome], path: Path, log_x: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 5.5))
    for (label, outcome), style in zip(outcomes.items(), LINE_STYLES * len(outcomes), strict=False):
        rounds = np.arange(1, outcome.regret.shape[1] + 1)
        low, high = np.percentile(outcome.regret, [10, 90], axis=0)
        (line,) = axes.plot(rounds, outcome.regret.mean(axis=0), style, label=label, linewidth=1.5)
        axes.fill_between(rounds, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    if log_x:
        axes.set_xscale("log")
    axes.set_xlabel("round (rated recommendations)")
    axes.set_ylabel("cumulative pseudo-regret")
    seeds = next(iter(outcomes.values())).regret.shape[0]
    axes.set_title(f"Bandit regret, chances of good {GOOD_CHANCES}: mean, band 10-90th percentile, {seeds} seeds")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=at_least(1), default=10_000)
    parser.add_argument("--seeds", type=at_least(1), default=20)
    parser.add_argument("--okay", type=float, default=0.2, help="every arm's chance of an 'okay' rating")
    parser.add_argument("--plot", type=png_file, default=REPO_ROOT / "var/bench/bandit_regret.png")
    parser.add_argument("--log-x", action="store_true", help="logarithmic round axis")
    parser.add_argument("--jobs", type=at_least(1), default=min(2, os.cpu_count() or 1), help="worker processes")
    args = parser.parse_args(argv)
    try:
        problem = Problem(good=GOOD_CHANCES, okay=args.okay)
    except ValueError as error:
        parser.error(str(error))

    started = time.perf_counter()
    print_problem(problem, args.rounds, args.seeds)
    outcomes = run_all(problem, args.rounds, args.seeds, args.jobs)
    print_table(outcomes, args.rounds)
    save_plot(outcomes, args.plot, args.log_x)
    print(f"\nplot: {args.plot}; {time.perf_counter() - started:.0f} s wall with {args.jobs} process(es)")
    print(json.dumps({label: round(float(outcome.regret[:, -1].mean()), 2) for label, outcome in outcomes.items()}))


if __name__ == "__main__":
    main()
