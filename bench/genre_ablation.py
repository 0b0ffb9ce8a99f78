"""Ways to get genres from a trained model, compared on its held-out test split: the model's stacked and calibrated
probabilities (what it serves), each of its two stacked heads alone (the fine-tuned head on the feature vector, the
probe on the frozen pool; each Platt-scaled on the validation split), the model averaged with its prediction for the
poster flipped left to right, the genres of the nearest training movies by feature vector (label transfer), the
model and the nearest movies together, and CLEMS when `--clems` is given. Each way's thresholds are tuned on the
validation split (micro-F1 + macro-F1), as training tunes the model's. The last line is one JSON object.

    python -m bench.genre_ablation --catalog ../shared/data --model var/runs/<run>/model-default \
        --index var/runs/<run>/index-default [--clems var/runs/<run>/clems-hamming-default]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NEIGHBOURS = 50
BLEND_WEIGHTS = np.round(np.arange(0.0, 1.01, 0.1), 1)


def platt_scaled(validation: np.ndarray, test: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Probabilities from each genre's logits, by a logistic regression fitted on the validation posters."""
    from sklearn.linear_model import LogisticRegression

    scaled = {"validation": np.empty(validation.shape), "test": np.empty(test.shape)}
    for genre in range(labels.shape[1]):
        platt = LogisticRegression(C=1e4).fit(validation[:, genre : genre + 1], labels[:, genre])
        for part, logits in (("validation", validation), ("test", test)):
            scaled[part][:, genre] = platt.predict_proba(logits[:, genre : genre + 1])[:, 1]
    return scaled


def network_passes(model, network, catalog, ids: list[str]) -> dict[str, np.ndarray]:
    """What the posters of `ids`, read once, give: the model's genres for each poster's mirror image ("flipped"),
    and the two parts of the Keras `network`'s genre logits (up to a constant), the fine-tuned head's from the
    feature vector ("tuned") and the frozen-pool probe's ("probe"), each as weighted by the stacking."""
    import keras

    from model.images import load_posters, preprocess
    from model.network import GENRE_INPUTS_LAYER, GENRES_LAYER

    inputs = keras.Model(network.input, network.get_layer(GENRE_INPUTS_LAYER).output)
    kernel, _ = network.get_layer(GENRES_LAYER).get_weights()
    features = network.get_layer(GENRE_INPUTS_LAYER).input[0].shape[-1]
    flipped, both = [], []
    for start in range(0, len(ids), 256):
        chunk = [catalog.poster_path(catalog.get(imdb_id)) for imdb_id in ids[start : start + 256]]
        posters = load_posters(chunk, model.input_size, progress=False)
        flipped.append(model.predict(posters[:, :, ::-1]).genres)
        both.append(inputs.predict(preprocess(posters), verbose=0))
    stacked = np.concatenate(both)
    return {
        "flipped": np.concatenate(flipped),
        "tuned": stacked[:, :features] @ kernel[:features],
        "probe": stacked[:, features:] @ kernel[features:],
    }


def nearest_genres(features: np.ndarray, train_features: np.ndarray, train_labels: np.ndarray) -> np.ndarray:
    """Each row's share of its NEIGHBOURS nearest training movies (cosine) with each genre."""
    unit = train_features / np.maximum(np.linalg.norm(train_features, axis=1, keepdims=True), 1e-9)
    queries = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-9)
    found = np.empty((len(features), train_labels.shape[1]))
    k = min(NEIGHBOURS, len(train_features) - 1)
    for start in range(0, len(features), 512):
        similarity = queries[start : start + 512] @ unit.T
        nearest = np.argpartition(-similarity, k, axis=1)[:, :k]
        found[start : start + 512] = train_labels[nearest].mean(axis=1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory (split.json, model.json)")
    parser.add_argument("--index", type=Path, required=True, help="the catalog's index built with that model")
    parser.add_argument("--clems", type=Path, help="a CLEMS model fit on that index (python -m embedding fit)")
    parser.add_argument(
        "--no-flip", action="store_true", help="leave out the flipped posters and each head alone (no network run)"
    )
    args = parser.parse_args()

    from app.resources import load_model
    from catalog import read_catalog
    from model.index import FeatureIndex
    from model.metrics import calibration_report, genre_report, tune_thresholds
    from model.split import SPLIT_FILE, Split

    catalog = read_catalog(args.catalog)
    index = FeatureIndex.load(args.index, catalog)
    model = load_model(str(args.model))
    split = Split.load(args.model / SPLIT_FILE)
    genres = model.genres
    rows = {part: [index.row(imdb_id) for imdb_id in getattr(split, part)] for part in ("train", "validation", "test")}
    labels = {part: catalog.labels(genres, getattr(split, part)).astype(int) for part in rows}
    model_probabilities = {part: index.probabilities[rows[part]] for part in ("validation", "test")}
    neighbours = {
        part: nearest_genres(index.features[rows[part]], index.features[rows["train"]], labels["train"])
        for part in ("validation", "test")
    }

    ways: dict[str, dict[str, np.ndarray]] = {"model (stacked and calibrated, served)": model_probabilities}
    if not args.no_flip:
        from model.artifacts import GenreModel

        # the Keras model already loaded when the directory has no ONNX export: not built and read a second time
        network = (model if isinstance(model, GenreModel) else GenreModel.load(args.model)).network
        passes = {
            part: network_passes(model, network, catalog, getattr(split, part)) for part in ("validation", "test")
        }
        for head, name in (("tuned", "fine-tuned head alone (feature vector)"), ("probe", "probe alone (frozen pool)")):
            ways[name] = platt_scaled(passes["validation"][head], passes["test"][head], labels["validation"])
        ways["model, poster and its mirror image"] = {
            part: (probabilities + passes[part]["flipped"]) / 2 for part, probabilities in model_probabilities.items()
        }
    ways[f"genres of the {NEIGHBOURS} nearest training movies"] = neighbours

    def auc_on_validation(weight: float) -> float:
        blended = (1 - weight) * model_probabilities["validation"] + weight * neighbours["validation"]
        return genre_report(labels["validation"], blended, np.full(len(genres), 0.5), genres)["macro_roc_auc"]

    weight = float(max(BLEND_WEIGHTS, key=auc_on_validation))
    ways[f"model and nearest movies ({1 - weight:.1f} / {weight:.1f})"] = {
        p: (1 - weight) * v + weight * neighbours[p] for p, v in model_probabilities.items()
    }
    if args.clems:
        from embedding.clems import CLEMS

        clems = CLEMS.load(args.clems)
        ways[f"CLEMS ({clems.cost} cost)"] = {
            part: clems.predict_proba(index.features[rows[part]]) for part in ("validation", "test")
        }

    print(f"{args.model} on {len(split.test)} held-out posters of {args.catalog} (thresholds tuned on validation)")
    print("| genres from | micro-F1 | macro-F1 | macro ROC-AUC | mAP | worst genre's ECE |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for name, probabilities in ways.items():
        thresholds = tune_thresholds(labels["validation"], probabilities["validation"])
        scores = genre_report(labels["test"], probabilities["test"], thresholds, genres)
        ece = calibration_report(labels["test"], probabilities["test"], genres)["ece_max"]
        summary[name] = {
            "micro_f1": round(scores["micro_f1"], 4),
            "macro_f1": round(scores["macro_f1"], 4),
            "macro_auc": round(scores["macro_roc_auc"], 4),
            "map": round(scores["mean_average_precision"], 4),
            "ece_max": round(ece, 4),
        }
        row = summary[name]
        print(
            f"| {name} | {row['micro_f1']:.3f} | {row['macro_f1']:.3f} | {row['macro_auc']:.3f} | {row['map']:.3f} "
            f"| {row['ece_max']:.3f} |"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
