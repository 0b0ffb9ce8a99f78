"""CLEMS on MULAN scene (the authors' split and the MULAN split) and yeast (MULAN split), beside the reference
numbers of ../shared/specs/clems.md and a binary-relevance random forest.

One CLEMS model per cost and regressor. In the summary rows each column comes from the model trained for that
column's cost (Hamming loss from the Hamming model, rank loss from the rank model, example-F1 from the F1 model,
accuracy from the Jaccard model), as in the authors' table; the MULAN-split references are whole models (the
port's Hamming and Jaccard models) and are compared with ours model by model. Prints fit and predict seconds of
each model (wall, and the process's CPU seconds, which exceed wall when both threads work and fall short of it
when other processes take the cores), and as its last line one JSON object: the first regressor's own-cost
numbers per split (means over the seeds when --seeds is above 1).

    python -m bench.clems_benchmark ../shared/benchmarks/multilabel
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
COST_OF_METRIC = {"hamming": "hamming", "rank_loss": "rank", "example_f1": "f1", "accuracy": "jaccard"}
LOWER_IS_BETTER = {"hamming", "rank_loss"}
METRIC_HEADERS = {
    "hamming": "Hamming",
    "rank_loss": "rank loss",
    "example_f1": "ex. F1",
    "accuracy": "accuracy",
    "micro_f1": "micro-F1",
    "macro_f1": "macro-F1",
}
JSON_METRICS = ("example_f1", "hamming", "accuracy", "rank_loss")
TOLERANCE = 0.01
BR_METHOD = "binary relevance, random forest"
OWN_COST = "CLEMS, own cost per column"


@dataclass(frozen=True)
class Reference:
    """Published or ported numbers, and the method of ours they are compared with (None: shown only)."""

    label: str
    scores: dict[str, float]
    compare_with: str | None


def clems_method(cost: str, regressor: str) -> str:
    return f"CLEMS {cost} cost, {regressor}"


def references(split_name: str, regressor: str) -> list[Reference]:
    """The numbers of ../shared/specs/clems.md for one split."""
    if split_name == "scene_authors_split":
        return [
            Reference(
                "binary relevance (authors' README)",
                {"hamming": 0.0907, "rank_loss": 1.1844, "example_f1": 0.5742, "accuracy": 0.5627},
                BR_METHOD,
            ),
            Reference(
                "CLEMS, own cost per column (authors' README)",
                {"hamming": 0.0825, "rank_loss": 0.6553, "example_f1": 0.7690, "accuracy": 0.7600},
                f"{OWN_COST}, {regressor}",
            ),
        ]
    if split_name == "scene_mulan_split":
        return [
            Reference(
                "binary relevance RF (port)",
                {"micro_f1": 0.688, "macro_f1": 0.681, "example_f1": 0.571, "hamming": 0.091, "accuracy": 0.561},
                BR_METHOD,
            ),
            Reference(
                "CLEMS Jaccard cost (port)",
                {"micro_f1": 0.772, "macro_f1": 0.780, "example_f1": 0.786, "hamming": 0.083, "accuracy": 0.764},
                clems_method("jaccard", regressor),
            ),
            Reference(
                "CLEMS Hamming cost (port)",
                {"micro_f1": 0.778, "macro_f1": 0.782, "example_f1": 0.783, "hamming": 0.0775, "accuracy": 0.771},
                clems_method("hamming", regressor),
            ),
            Reference(
                "scikit-multilearn, MLkNN k=5",
                {"micro_f1": 0.730, "macro_f1": 0.731, "example_f1": 0.694, "hamming": 0.091, "accuracy": 0.676},
                None,
            ),
        ]
    return []


@dataclass
class Measurement:
    """Scores and timings of one fitted model, with notes on its probabilities."""

    scores: dict[str, float]
    fit_seconds: float
    fit_cpu_seconds: float
    predict_seconds: float
    predict_cpu_seconds: float
    note: str = ""


def timed(function: Callable[[], object]) -> tuple[object, float, float]:
    """function(), its wall seconds and the process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def measure_binary_relevance(split, n_trees: int, n_jobs: int, seed: int) -> Measurement:
    """One random-forest classifier per label (the spec's baseline: 500 trees, depth 10, sqrt features)."""
    from sklearn.ensemble import RandomForestClassifier

    from embedding.costs import multilabel_scores

    def fit() -> list:
        return [
            RandomForestClassifier(
                n_estimators=n_trees, max_depth=10, max_features="sqrt", random_state=seed + label, n_jobs=n_jobs
            ).fit(split.x_train, split.y_train[:, label])
            for label in range(split.y_train.shape[1])
        ]

    forests, fit_wall, fit_cpu = timed(fit)
    predictions, predict_wall, predict_cpu = timed(
        lambda: np.column_stack([forest.predict(split.x_test) for forest in forests])
    )
    return Measurement(multilabel_scores(split.y_test, predictions), fit_wall, fit_cpu, predict_wall, predict_cpu)


def measure_clems(split, cost: str, regressor: str, n_trees: int, n_jobs: int, seed: int) -> Measurement:
    """Fit CLEMS for one cost; scores of its hard predictions, and how its probabilities relate to them."""
    from embedding.clems import CLEMS
    from embedding.costs import multilabel_scores

    model = CLEMS(cost, n_estimators=n_trees, regressor=regressor, random_state=seed, n_jobs=n_jobs)
    _, fit_wall, fit_cpu = timed(lambda: model.fit(split.x_train, split.y_train))
    predictions, predict_wall, predict_cpu = timed(lambda: model.predict(split.x_test))
    probabilities = model.predict_proba(split.x_test)
    votes = model.tree_vote_shares(split.x_test)

    def rows_agreeing(shares: np.ndarray) -> float:
        return float(np.mean(((shares > 0.5) == predictions).all(axis=1)))

    def brier(shares: np.ndarray) -> float:
        return float(np.mean((shares - split.y_test) ** 2))

    note = (
        f"rows where probability > 0.5 gives predict(): {rows_agreeing(probabilities):.3f} "
        f"(tree votes: {rows_agreeing(votes):.3f}); Brier {brier(probabilities):.4f} (tree votes {brier(votes):.4f}); "
        f"SMACOF stress {model.stress_:.4g} after {model.smacof_n_iter_} iterations"
    )
    return Measurement(multilabel_scores(split.y_test, predictions), fit_wall, fit_cpu, predict_wall, predict_cpu, note)


def mean_scores(measurements: list[Measurement]) -> dict[str, float]:
    return {metric: float(np.mean([m.scores[metric] for m in measurements])) for metric in measurements[0].scores}


def spread_scores(measurements: list[Measurement]) -> dict[str, float]:
    return {metric: float(np.std([m.scores[metric] for m in measurements])) for metric in measurements[0].scores}


def own_cost_scores(means: dict[str, dict[str, float]], regressor: str) -> dict[str, float]:
    """Each metric from the model trained for its cost."""
    return {metric: means[clems_method(cost, regressor)][metric] for metric, cost in COST_OF_METRIC.items()}


def format_row(label: str, scores: dict[str, float], timings: str = "") -> str:
    cells = [f"{scores[metric]:>9.4f}" if metric in scores else f"{'-':>9}" for metric in METRIC_HEADERS]
    return f"{label:<52.52} {' '.join(cells)}  {timings}".rstrip()


def comparison_line(reference: Reference, ours: dict[str, float]) -> str:
    differences = {metric: ours[metric] - value for metric, value in reference.scores.items()}
    off = [metric for metric, difference in differences.items() if abs(difference) > TOLERANCE]
    better = [m for m in off if (differences[m] < 0) == (m in LOWER_IS_BETTER)]
    verdict = (
        "yes" if not off else f"no: {', '.join(off)} off (better than the reference: {', '.join(better) or 'none'})"
    )
    details = ", ".join(f"{metric} {difference:+.4f}" for metric, difference in differences.items())
    return f"{reference.compare_with} vs {reference.label}: {details}; within {TOLERANCE} on every metric: {verdict}"


def print_split(split, runs: dict[str, list[Measurement]], regressors: list[str], n_seeds: int) -> dict:
    """Print one split's table; returns the mean scores of every method, own-cost rows included."""
    print(
        f"\n== {split.name}: train {len(split.y_train)} rows, test {len(split.y_test)} rows, "
        f"{split.x_train.shape[1]} features, {split.y_train.shape[1]} labels, "
        f"{len(np.unique(split.y_train, axis=0))} distinct training label vectors"
        + (f"; means over {n_seeds} seeds (sd on the line below each)" if n_seeds > 1 else "")
    )
    header = " ".join(f"{name:>9}" for name in METRIC_HEADERS.values())
    print(f"{'method':<52} {header}  fit s (cpu s)  predict s (cpu s)")
    split_references = references(split.name, regressors[0])
    for reference in split_references:
        print(format_row(f"reference: {reference.label}", reference.scores))
    means = {}
    for method, measurements in runs.items():
        means[method] = mean_scores(measurements)
        timings = (
            f"{np.mean([m.fit_seconds for m in measurements]):6.1f} "
            f"({np.mean([m.fit_cpu_seconds for m in measurements]):5.1f})  "
            f"{np.mean([m.predict_seconds for m in measurements]):6.2f} "
            f"({np.mean([m.predict_cpu_seconds for m in measurements]):5.2f})"
        )
        print(format_row(method, means[method], timings))
        if n_seeds > 1:
            print(format_row("  sd over seeds", spread_scores(measurements)))
    for regressor in regressors:
        means[f"{OWN_COST}, {regressor}"] = own_cost_scores(means, regressor)
        print(format_row(f"{OWN_COST}, {regressor}", means[f"{OWN_COST}, {regressor}"]))
    for reference in split_references:
        if reference.compare_with is not None:
            print(comparison_line(reference, means[reference.compare_with]))
    for method, measurements in runs.items():
        for seed_index, measurement in enumerate(measurements):
            if measurement.note:
                print(f"  {method}" + (f" (seed {seed_index})" if n_seeds > 1 else "") + f": {measurement.note}")
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "data_dir",
        nargs="?",
        type=Path,
        default=REPO_ROOT.parent / "shared/benchmarks/multilabel",
        help="directory of the MULAN files (default: ../shared/benchmarks/multilabel beside the repository)",
    )
    parser.add_argument("--trees", type=int, default=500, help="trees per forest (default 500, as the spec)")
    parser.add_argument("--jobs", type=int, default=2, help="threads per fit (default 2, the target's 2 cores)")
    parser.add_argument("--seed", type=int, default=0, help="first random seed")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds to average over (default 1)")
    parser.add_argument(
        "--regressors",
        default="per_dimension,multi_output",
        help="comma-separated CLEMS regressors; the first is the one the JSON line reports",
    )
    parser.add_argument(
        "--splits",
        default="scene_authors_split,scene_mulan_split,yeast_mulan_split",
        help="comma-separated splits to run (default all three)",
    )
    args = parser.parse_args()
    from bench.mulan import mulan_split, scene_authors_split

    regressors = args.regressors.split(",")
    seeds = range(args.seed, args.seed + args.seeds)
    print(
        f"CLEMS benchmark: {args.trees} trees, depth 10, {args.jobs} threads per fit, seeds {list(seeds)}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start, data {args.data_dir}"
    )
    summary: dict[str, dict[str, float]] = {}
    loaders = {
        "scene_authors_split": lambda: scene_authors_split(args.data_dir),
        "scene_mulan_split": lambda: mulan_split(args.data_dir, "scene"),
        "yeast_mulan_split": lambda: mulan_split(args.data_dir, "yeast"),
    }
    wanted = args.splits.split(",")
    unknown = set(wanted) - set(loaders)
    if unknown:
        parser.error(f"unknown split(s) {sorted(unknown)}: choose from {list(loaders)}")
    for split in (loaders[name]() for name in loaders if name in wanted):
        runs = {BR_METHOD: [measure_binary_relevance(split, args.trees, args.jobs, seed) for seed in seeds]}
        for regressor in regressors:
            for cost in COST_OF_METRIC.values():
                runs[clems_method(cost, regressor)] = [
                    measure_clems(split, cost, regressor, args.trees, args.jobs, seed) for seed in seeds
                ]
        means = print_split(split, runs, regressors, args.seeds)
        own_cost = means[f"{OWN_COST}, {regressors[0]}"]
        summary[split.name] = {metric: round(own_cost[metric], 4) for metric in JSON_METRICS}
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
