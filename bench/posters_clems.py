"""CLEMS on the real posters: the genre model alone against model + CLEMS (fit on the model's 100-dim
feature vectors of the training split), on the model's held-out test split, for each cost. The paper's
Table II layout (per genre) for the Hamming-cost model, and one JSON object as the last line.

    python -m bench.posters_clems --catalog ../shared/data --model var/runs/<run>/model-default \
        --index var/runs/<run>/index-default
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COSTS = {"hamming": "hamming", "rank": "rank_loss", "f1": "example_f1", "jaccard": "accuracy"}
LOWER_IS_BETTER = {"hamming", "rank_loss"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory (split.json, model.json)")
    parser.add_argument("--index", type=Path, required=True, help="the catalog's index built with that model")
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--costs", nargs="+", default=list(COSTS), choices=list(COSTS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np

    from catalog import read_catalog
    from embedding.clems import CLEMS
    from embedding.costs import multilabel_scores
    from embedding.pipeline import rows_of
    from model.artifacts import DESCRIPTION_FILE
    from model.index import FeatureIndex
    from model.metrics import format_table, genre_report
    from model.split import SPLIT_FILE, Split

    catalog = read_catalog(args.catalog)
    index = FeatureIndex.load(args.index, catalog)
    split = Split.load(args.model / SPLIT_FILE)
    thresholds = np.asarray(json.loads((args.model / DESCRIPTION_FILE).read_text())["thresholds"])
    train, test = rows_of(catalog, split.train), rows_of(catalog, split.test)
    x_train, x_test = index.features[train], index.features[test]
    y_train, y_test = catalog.labels(index.genres, split.train), catalog.labels(index.genres, split.test)
    model_alone = (index.probabilities[test] >= thresholds).astype(int)
    results = {"model": multilabel_scores(y_test, model_alone)}
    print(f"{len(train)} training and {len(test)} test posters, {x_train.shape[1]}-dim features, {os.cpu_count()} CPUs")

    for cost in args.costs:
        clems = CLEMS(cost, n_estimators=args.trees, random_state=args.seed, n_jobs=-1)
        start = time.perf_counter()
        clems.fit(x_train, y_train)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        predicted = clems.predict(x_test)
        predict_seconds = time.perf_counter() - start
        results[f"model+clems ({cost})"] = multilabel_scores(y_test, predicted)
        print(f"CLEMS {cost} cost: fit {fit_seconds:.1f} s, predict {predict_seconds:.2f} s")
        if cost == "hamming":
            report = genre_report(y_test, clems.predict_proba(x_test), np.full(6, 0.5), index.genres, predicted)
            print(format_table(report, "model + CLEMS (Hamming cost), held-out test split (the paper's Table II)"))

    metrics = ("hamming", "rank_loss", "example_f1", "accuracy", "micro_f1", "macro_f1")
    print(f"\n{'predictor':28}" + "".join(f"{name:>12}" for name in metrics))
    for name, scores in results.items():
        print(f"{name:28}" + "".join(f"{scores[metric]:12.4f}" for metric in metrics))
    print("\neach cost's own metric, model alone -> model + CLEMS trained for it:")
    for cost in args.costs:
        metric = COSTS[cost]
        before, after = results["model"][metric], results[f"model+clems ({cost})"][metric]
        better = after < before if metric in LOWER_IS_BETTER else after > before
        print(f"  {metric:11} {before:.4f} -> {after:.4f}  {'better' if better else 'not better'}")
    print(
        json.dumps({name: {key: round(value, 4) for key, value in scores.items()} for name, scores in results.items()})
    )


if __name__ == "__main__":
    main()
