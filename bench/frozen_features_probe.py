"""How much genre signal frozen ImageNet VGG-16 features carry at a given input size: a logistic
regression per genre on average- and max-pooled block5_conv3 outputs of a subset of the training split,
scored by macro ROC-AUC on the validation split. It guided the choice of the default preset.

    python -m bench.frozen_features_probe --catalog ../shared/data --model var/runs/<run>/model-default \
        --weights ../shared/weights/vgg16_imagenet_notop.h5 --sizes 128 224
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pooled_features(base, catalog, ids: list[str], size: int):
    """(n, 1024): average- then max-pooled block5_conv3 maps of the posters of `ids`."""
    import numpy as np

    from model.images import load_posters, preprocess

    out = []
    for start in range(0, len(ids), 64):
        paths = [catalog.poster_path(catalog.get(imdb_id)) for imdb_id in ids[start : start + 64]]
        maps = np.asarray(base(preprocess(load_posters(paths, size, False)), training=False))
        out.append(np.concatenate([maps.mean(axis=(1, 2)), maps.max(axis=(1, 2))], axis=1))
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="a model directory: its split.json is used")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--train", type=int, default=2500, help="training posters drawn from the training split")
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    from catalog import read_catalog
    from model.network import check_weights, vgg16_base
    from model.split import Split

    catalog = read_catalog(args.catalog)
    split = Split.load(args.model / "split.json")
    train_ids = list(np.random.default_rng(0).choice(split.train, min(args.train, len(split.train)), replace=False))
    y_train, y_validation = catalog.labels(ids=train_ids), catalog.labels(ids=split.validation)
    print(f"{len(train_ids)} training and {len(split.validation)} validation posters, {os.cpu_count()} CPUs")
    for size in args.sizes:
        base = vgg16_base(size, check_weights(args.weights), train_block5=False)
        started = time.perf_counter()
        x_train, x_validation = (pooled_features(base, catalog, ids, size) for ids in (train_ids, split.validation))
        seconds = time.perf_counter() - started
        for pooling, columns in (("avg", slice(0, 512)), ("max", slice(512, 1024)), ("avg+max", slice(0, 1024))):
            scaler = StandardScaler().fit(x_train[:, columns])
            classifier = OneVsRestClassifier(LogisticRegression(C=0.01, max_iter=2000, class_weight="balanced"))
            classifier.fit(scaler.transform(x_train[:, columns]), y_train)
            scores = classifier.predict_proba(scaler.transform(x_validation[:, columns]))
            auc = roc_auc_score(y_validation, scores, average="macro")
            print(f"{size} px, {pooling:7} pooling: validation macro ROC-AUC {auc:.3f} (features in {seconds:.0f} s)")


if __name__ == "__main__":
    main()
