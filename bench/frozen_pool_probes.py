"""Which linear heads on the frozen pool to keep: the genre probe and the era heads of model/frozen_heads.py, fitted
on other poolings of the cached frozen outputs and other penalties, scored on the validation split (genres: macro
ROC-AUC; decade: accuracy; year: mean absolute error; rating: Spearman). It reads the cache that
`posterbench train ... --keep-cache` leaves beside the model directory, so no poster goes through VGG-16 again,
except with `--weights` (frozen ImageNet block 5 on the cached block-4 outputs).

    python -m bench.frozen_pool_probes --model var/runs/<run>/model-default --catalog ../shared/data \
        [--weights ../shared/weights/vgg16_imagenet_notop.h5]

The last line is one JSON object: {"genres": {pooling: {C: auc}}, "decade": {C: accuracy}, "year": {alpha: mae},
"rating": {alpha: spearman}}.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHUNK = 512


def grid_pool(frozen_outputs: np.ndarray) -> np.ndarray:
    """(n, h, w, c) -> (n, 6c): the average of each quarter of the image, then the maximum of its top and bottom
    halves."""
    parts = []
    for start in range(0, len(frozen_outputs), CHUNK):
        chunk = np.asarray(frozen_outputs[start : start + CHUNK], dtype=np.float32)
        n, height, width, channels = chunk.shape
        quarters = chunk.reshape(n, 2, height // 2, 2, width // 2, channels).mean(axis=(2, 4)).reshape(n, -1)
        halves = chunk.reshape(n, 2, height // 2, width, channels).max(axis=(2, 3)).reshape(n, -1)
        parts.append(np.concatenate([quarters, halves], axis=1))
    return np.concatenate(parts)


def frozen_block5(weights: str):
    """VGG-16's block 5 with its ImageNet weights from `weights`, on block-4 outputs (NHWC) of any height and width."""
    import keras

    from model.network import IMAGENET_PREFIX, block5_copy, check_weights, vgg16_base

    base = vgg16_base(32, check_weights(weights), train_block5=False)
    inputs = keras.Input((None, None, 512))
    return keras.Model(inputs, block5_copy(inputs, base, IMAGENET_PREFIX, trainable=False))


def block5_pool(frozen_outputs: np.ndarray, weights: str) -> np.ndarray:
    """Frozen ImageNet block 5 run on cached block-4 outputs, pooled as the frozen pool is."""
    from model.frozen_heads import frozen_pool

    block5 = frozen_block5(weights)
    parts = [
        frozen_pool(np.asarray(block5(np.asarray(frozen_outputs[start : start + CHUNK], np.float32), training=False)))
        for start in range(0, len(frozen_outputs), CHUNK)
    ]
    return np.concatenate(parts)


def standardised(train: np.ndarray, validation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from model.frozen_heads import Standardisation

    standardisation = Standardisation.of(train)
    return standardisation(train), standardisation(validation)


def genre_auc(train: np.ndarray, validation: np.ndarray, y_train: np.ndarray, y_validation: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    train, validation = standardised(train, validation)
    scores = np.column_stack(
        [
            LogisticRegression(C=c, max_iter=300).fit(train, y_train[:, genre]).decision_function(validation)
            for genre in range(y_train.shape[1])
        ]
    )
    return float(np.mean([roc_auc_score(y_validation[:, genre], scores[:, genre]) for genre in range(scores.shape[1])]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a model trained with --keep-cache")
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--weights", help="VGG-16 weights: adds frozen block 5 to the poolings compared")
    parser.add_argument("--genre-c", type=float, nargs="+", default=[1e-3, 3e-4])
    parser.add_argument("--decade-c", type=float, nargs="+", default=[1e-3, 3e-4, 1e-4])
    parser.add_argument("--alpha", type=float, nargs="+", default=[100.0, 1000.0, 10000.0])
    args = parser.parse_args()
    work = args.model.parent / f".{args.model.name}.work"
    if not (work / "frozen-train.npy").is_file() or not (work / "frozen-validation.npy").is_file():
        parser.error(f"{work} holds no cached frozen outputs: train {args.model} again with --keep-cache")

    # Imported once the cache is known to be there: model.frozen_heads starts TensorFlow, seconds before a refusal.
    from scipy.stats import spearmanr
    from sklearn.linear_model import LogisticRegression, Ridge

    from catalog import GENRES, read_catalog
    from model.evaluation import known_values
    from model.frozen_heads import frozen_pool
    from model.split import SPLIT_FILE, Split

    catalog = read_catalog(args.catalog, check_posters=False)
    split = Split.load(args.model / SPLIT_FILE)
    cached = {part: np.load(work / f"frozen-{part}.npy", mmap_mode="r") for part in ("train", "validation")}
    copies = len(cached["train"])
    # Every cached copy of a training poster trains, as in training; the validation posters' unaugmented copy scores.
    outputs = {"train": np.concatenate(list(cached["train"])), "validation": np.asarray(cached["validation"][0])}
    y_train = np.tile(catalog.labels(GENRES, split.train), (copies, 1))
    y_validation = catalog.labels(GENRES, split.validation)
    print(f"{len(split.train)} training posters x {copies} copies, {len(split.validation)} validation posters")

    pools = {part: frozen_pool(values) for part, values in outputs.items()}
    poolings: dict[str, Callable[[str], np.ndarray]] = {
        "average and maximum (kept)": lambda part: pools[part],
        "the same, square root": lambda part: np.sqrt(pools[part]),
        "the same, log1p": lambda part: np.log1p(pools[part]),
        "with the 2 x 2 grid and the halves' maxima": lambda part: np.hstack([pools[part], grid_pool(outputs[part])]),
    }
    if args.weights:
        block5 = {part: block5_pool(values, args.weights) for part, values in outputs.items()}
        poolings["with frozen block 5"] = lambda part: np.hstack([pools[part], block5[part]])
        poolings["frozen block 5 alone"] = lambda part: block5[part]
    results: dict[str, dict] = {"genres": {}, "decade": {}, "year": {}, "rating": {}}
    for name, pooling in poolings.items():
        train, validation = pooling("train"), pooling("validation")
        for c in args.genre_c:
            auc = genre_auc(train, validation, y_train, y_validation, c)
            results["genres"].setdefault(name, {})[c] = round(auc, 4)
            print(f"genres, {name}, C {c:g}: validation macro ROC-AUC {auc:.4f}", flush=True)

    train, validation = standardised(pools["train"], pools["validation"])
    years = {"train": np.tile(known_values(catalog, split.train, "year"), copies)}
    years["validation"] = known_values(catalog, split.validation, "year")
    ratings = {"train": np.tile(known_values(catalog, split.train, "rating"), copies)}
    ratings["validation"] = known_values(catalog, split.validation, "rating")
    known = {part: ~np.isnan(years[part]) for part in years}
    for c in args.decade_c:
        classifier = LogisticRegression(C=c, max_iter=300)
        classifier.fit(train[known["train"]], years["train"][known["train"]] // 10 * 10)
        predicted = classifier.predict(validation[known["validation"]])
        accuracy = float(np.mean(predicted == years["validation"][known["validation"]] // 10 * 10))
        results["decade"][c] = round(accuracy, 4)
        print(f"decade, C {c:g}: validation accuracy {accuracy:.4f}", flush=True)
    for alpha in args.alpha:
        for head, values in (("year", years), ("rating", ratings)):
            rows = {part: ~np.isnan(values[part]) for part in values}
            ridge = Ridge(alpha=alpha).fit(train[rows["train"]], values["train"][rows["train"]])
            predicted = ridge.predict(validation[rows["validation"]])
            truth = values["validation"][rows["validation"]]
            figure = np.abs(predicted - truth).mean() if head == "year" else spearmanr(predicted, truth)[0]
            results[head][alpha] = round(float(figure), 4)
            label = "mean absolute error" if head == "year" else "Spearman"
            print(f"{head}, alpha {alpha:g}: validation {label} {figure:.4f}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
