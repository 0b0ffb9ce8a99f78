"""How far the held-out genre figures move by chance, for what the app serves (the index's probabilities, the
model's thresholds): the test posters drawn again with replacement (a bootstrap: which posters happen to be held
out), and the thresholds tuned again on the validation posters drawn again (which posters happen to tune them).
Says whether a gap to a target is larger than the figure's own noise. No network is run. The last line is one JSON
object.

    posterbench bench genre_noise --catalog ../shared/data --model var/runs/<run>/model-default \
        --index var/runs/<run>/index-default [--micro-f1-target 0.62]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FIGURES = ("micro_f1", "macro_f1", "macro_auc")


def f1_scores(truth: np.ndarray, decisions: np.ndarray) -> tuple[float, float]:
    """micro-F1 and macro-F1 (scikit-learn's, zero_division=0) of boolean (n, n_genres) arrays."""
    from model.metrics import micro_and_macro_f1

    micro, macro = micro_and_macro_f1(truth, decisions)
    return float(micro), float(macro)


def figures(truth: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray) -> dict[str, float]:
    """micro-F1, macro-F1 and macro ROC-AUC (over the genres both present and absent in `truth`)."""
    from model.metrics import macro_roc_auc

    micro, macro = f1_scores(truth, probabilities >= thresholds)
    return {"micro_f1": micro, "macro_f1": macro, "macro_auc": macro_roc_auc(truth, probabilities)}


def spread(values: list[float]) -> dict[str, float]:
    """Standard deviation and the 5th and 95th percentiles."""
    low, high = np.percentile(values, [5, 95])
    return {"sd": round(float(np.std(values)), 4), "p5": round(float(low), 4), "p95": round(float(high), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory (split.json, model.json)")
    parser.add_argument("--index", type=Path, required=True, help="the catalog's index built with that model")
    parser.add_argument("--draws", type=int, default=1000, help="bootstrap draws of the test posters (default 1000)")
    parser.add_argument(
        "--tunings", type=int, default=50, help="tunings on validation posters drawn again (default 50)"
    )
    parser.add_argument("--micro-f1-target", type=float, default=0.62, help="the target to compare with (0.62)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.draws < 2 or args.tunings < 2:
        parser.error("--draws and --tunings need at least 2 each")

    from catalog import read_catalog
    from model.artifacts import read_description
    from model.index import FeatureIndex
    from model.metrics import tune_thresholds
    from model.split import SPLIT_FILE, Split

    catalog = read_catalog(args.catalog, check_posters=False)
    index = FeatureIndex.load(args.index, catalog)
    description = read_description(args.model)
    split = Split.load(args.model / SPLIT_FILE)
    parts = ("validation", "test")
    truth = {part: catalog.labels(description.genres, getattr(split, part)).astype(bool) for part in parts}
    probabilities = {
        part: index.probabilities[[index.row(imdb_id) for imdb_id in getattr(split, part)]] for part in truth
    }
    rng = np.random.default_rng(args.seed)
    served = figures(truth["test"], probabilities["test"], description.thresholds)

    n_test = len(truth["test"])
    drawn = [rng.integers(0, n_test, n_test) for _ in range(args.draws)]
    test_draws = [figures(truth["test"][rows], probabilities["test"][rows], description.thresholds) for rows in drawn]
    n_validation = len(truth["validation"])
    retuned = []
    for _ in range(args.tunings):
        rows = rng.integers(0, n_validation, n_validation)
        thresholds = tune_thresholds(truth["validation"][rows], probabilities["validation"][rows])
        retuned.append(f1_scores(truth["test"], probabilities["test"] >= thresholds)[0])

    summary = {
        "served": {name: round(value, 4) for name, value in served.items()},
        "test_posters_drawn_again": {name: spread([draw[name] for draw in test_draws]) for name in FIGURES},
        "thresholds_tuned_again": {"micro_f1": spread(retuned)},
        "n_test": n_test,
        "n_validation": n_validation,
    }
    gap = args.micro_f1_target - served["micro_f1"]
    sd = summary["test_posters_drawn_again"]["micro_f1"]["sd"]
    summary["micro_f1_gap"] = {"target": args.micro_f1_target, "gap": round(gap, 4), "in_sds": round(gap / sd, 2)}

    print(f"{args.model}: the index's probabilities, {n_test} held-out posters, {n_validation} validation posters")
    print("| figure | served | sd, test posters drawn again | 5-95 % | sd, thresholds tuned again | 5-95 % |")
    print("|---|---|---|---|---|---|")
    for name in FIGURES:
        test = summary["test_posters_drawn_again"][name]
        tuned = summary["thresholds_tuned_again"].get(name)
        tuned_cells = f"{tuned['sd']:.4f} | {tuned['p5']:.3f}-{tuned['p95']:.3f}" if tuned else "— | —"
        print(
            f"| {name} | {served[name]:.4f} | {test['sd']:.4f} | {test['p5']:.3f}-{test['p95']:.3f} | {tuned_cells} |"
        )
    print(
        f"micro-F1 target {args.micro_f1_target}: {'met' if gap <= 0 else 'short'} by {abs(gap):.4f}, "
        f"{abs(gap) / sd:.2f} of the test posters' standard deviation"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
