"""Would another input shape rank the genres better? For each WIDTHxHEIGHT, the posters of a trained model's splits go
through its float32 export's blocks 1-4 (frozen ImageNet VGG-16: training never changes them, and they take any
shape) and frozen ImageNet block 5 (`--weights`); a logistic regression per genre on the standardised pools (mean and
maximum over the image) of `--blocks` is fitted on the training split, then stacked per genre on the validation split
with the model's fine-tuned head (run at the model's own shape), as training stacks its frozen-pool probe. Reported on
the test split: each probe's and each stack's macro ROC-AUC, and the stack's micro- and macro-F1 with thresholds
tuned on validation. The last line is one JSON object by shape.

    python -m bench.input_shape_probes --catalog ../shared/data --model var/runs/<run>/model-default \
        --weights ../shared/weights/vgg16_imagenet_notop.h5 --shapes 128x128 112x168 128x192
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH = 32
BLOCK_OUTPUTS = ("block3_pool", "block4_pool")
SPLITS = ("train", "validation", "test")


def shape_argument(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (for example 128x192)") from None
    if min(width, height) < 32:
        raise argparse.ArgumentTypeError(f"{text}: VGG-16's five poolings need at least 32 pixels a side")
    return width, height


def frozen_session(export, with_features: bool):  # export: the loaded onnx.ModelProto, left as it is
    """An ONNX Runtime session of the export's graph that answers block 3's and block 4's pooled maps for posters of
    any shape (and the feature vector, at the model's own shape, when `with_features`)."""
    import onnx
    import onnxruntime as ort

    from model.network import FEATURES_LAYER

    graph = onnx.ModelProto()
    graph.CopyFrom(export)
    outputs = [*BLOCK_OUTPUTS, *([FEATURES_LAYER] if with_features else [])]
    if not with_features:
        last = next(position for position, node in enumerate(graph.graph.node) if node.name == "block4_pool")
        kept = list(graph.graph.node)[: last + 1]
        del graph.graph.node[:]
        graph.graph.node.extend(kept)
        used = {name for node in kept for name in node.input}
        initialisers = [tensor for tensor in graph.graph.initializer if tensor.name in used]
        del graph.graph.initializer[:]
        graph.graph.initializer.extend(initialisers)
        for axis, name in ((1, "height"), (2, "width")):
            graph.graph.input[0].type.tensor_type.shape.dim[axis].dim_param = name
    del graph.graph.output[:]
    graph.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in outputs)
    del graph.graph.value_info[:]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the served model's (onnx_model.py)
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, outputs


def nhwc(maps: np.ndarray) -> np.ndarray:
    """ONNX Runtime's (n, c, h, w) -> Keras's (n, h, w, c)."""
    return np.transpose(maps, (0, 2, 3, 1))


def pools_at(shape, paths: list[Path], export, block5, with_features: bool) -> dict[str, np.ndarray]:
    """Pools of blocks 3, 4 and 5 (model.frozen_heads.frozen_pool: mean, then maximum; and the feature vectors) of
    every poster of `paths` at `shape` (width, height), the next batch read from disk while the network runs."""
    from tqdm import tqdm

    from model.frozen_heads import frozen_pool
    from model.images import load_posters, preprocess

    session, outputs = frozen_session(export, with_features)
    batches = [paths[start : start + BATCH] for start in range(0, len(paths), BATCH)]
    found: dict[str, list[np.ndarray]] = {"block3": [], "block4": [], "block5": [], "features": []}
    with ThreadPoolExecutor(1) as reader:
        upcoming = reader.submit(load_posters, batches[0], shape, False)
        for number in tqdm(range(len(batches)), desc=f"posters at {shape[0]}x{shape[1]}", unit="batch"):
            posters = upcoming.result()
            if number + 1 < len(batches):
                upcoming = reader.submit(load_posters, batches[number + 1], shape, False)
            values = dict(zip(outputs, session.run(outputs, {"poster": preprocess(posters)}), strict=True))
            block4 = nhwc(values["block4_pool"])
            found["block3"].append(frozen_pool(nhwc(values["block3_pool"])))
            found["block4"].append(frozen_pool(block4))
            found["block5"].append(frozen_pool(np.asarray(block5(block4, training=False))))
            if with_features:
                found["features"].append(values["features"])
    return {name: np.concatenate(parts) for name, parts in found.items() if parts}


def probe_logits(pools: np.ndarray, rows: dict[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """Each genre's logistic regression on the standardised pools, fitted on the training rows; logits of every row."""
    from sklearn.linear_model import LogisticRegression

    from model.frozen_heads import GENRE_C, Standardisation

    standardised = Standardisation.of(pools[rows["train"]])(pools)
    return np.column_stack(
        [
            LogisticRegression(C=GENRE_C, max_iter=500)
            .fit(standardised[rows["train"]], labels[rows["train"], genre])
            .decision_function(standardised)
            for genre in range(labels.shape[1])
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory with its ONNX export")
    parser.add_argument("--weights", required=True, help="VGG-16's ImageNet weights (vgg16_imagenet_notop.h5)")
    parser.add_argument("--shapes", type=shape_argument, nargs="+", default=[(128, 128), (112, 168), (128, 192)])
    parser.add_argument(
        "--blocks", nargs="+", choices=("block3", "block4", "block5"), default=["block3", "block4", "block5"]
    )
    args = parser.parse_args()

    import onnx
    from onnx import numpy_helper

    from bench.frozen_pool_probes import frozen_block5
    from bench.genre_ablation import platt_scaled
    from catalog import read_catalog
    from model.artifacts import read_description
    from model.frozen_heads import stack_genres
    from model.metrics import genre_report, tune_thresholds
    from model.network import GENRES_LAYER
    from model.onnx_model import ONNX_FILE
    from model.split import SPLIT_FILE, Split

    catalog = read_catalog(args.catalog)
    split = Split.load(args.model / SPLIT_FILE)
    description = read_description(args.model)
    genres = tuple(description.genres)
    ids = [imdb_id for part in SPLITS for imdb_id in getattr(split, part)]
    starts = np.cumsum([0, *(len(getattr(split, part)) for part in SPLITS)])
    rows = {part: np.arange(starts[i], starts[i + 1]) for i, part in enumerate(SPLITS)}
    labels = catalog.labels(genres, ids).astype(int)
    paths = [catalog.poster_path(catalog.get(imdb_id)) for imdb_id in ids]
    export = onnx.load(str(args.model / ONNX_FILE), load_external_data=True)
    block5 = frozen_block5(args.weights)

    own = description.preset.input_size
    own_pools = pools_at(own, paths, export, block5, with_features=True)
    genre_node = next(node for node in export.graph.node if node.name == f"{GENRES_LAYER}/gemm")
    kernel = next(numpy_helper.to_array(t) for t in export.graph.initializer if t.name == genre_node.input[1])
    features = own_pools["features"]
    tuned = features @ kernel[: features.shape[1]]  # the fine-tuned head's part of the stacked logits

    def scored(probabilities: dict[str, np.ndarray]) -> dict[str, float]:
        """Validation and test probabilities -> validation AUC, and test AUC and F1s at thresholds tuned on
        validation."""
        thresholds = tune_thresholds(labels[rows["validation"]], probabilities["validation"])
        report = genre_report(labels[rows["test"]], probabilities["test"], thresholds, genres)
        validation = genre_report(labels[rows["validation"]], probabilities["validation"], thresholds, genres)
        return {
            "validation_auc": round(validation["macro_roc_auc"], 4),
            "auc": round(report["macro_roc_auc"], 4),
            "micro_f1": round(report["micro_f1"], 4),
            "macro_f1": round(report["macro_f1"], 4),
        }

    def alone(logits: np.ndarray) -> dict[str, float]:  # Platt-scaled on validation
        return scored(platt_scaled(logits[rows["validation"]], logits[rows["test"]], labels[rows["validation"]]))

    def stacked(probe: np.ndarray) -> dict[str, float]:  # with the fine-tuned head, as training stacks its probe
        a, b, c = stack_genres(tuned[rows["validation"]], probe[rows["validation"]], labels[rows["validation"]]).T
        return scored(
            {
                part: 1 / (1 + np.exp(-(a * tuned[rows[part]] + b * probe[rows[part]] + c)))
                for part in ("validation", "test")
            }
        )

    summary = {"fine-tuned head alone": alone(tuned)}
    for shape in args.shapes:
        pools = own_pools if shape == own else pools_at(shape, paths, export, block5, with_features=False)
        probe = probe_logits(np.concatenate([pools[block] for block in args.blocks], axis=1), rows, labels)
        name = f"{shape[0]}x{shape[1]}"
        summary[f"{name} probe"] = alone(probe)
        summary[f"{name} probe, stacked"] = stacked(probe)

    print(f"{args.model} on {len(split.test)} held-out posters of {args.catalog}; probes on {' + '.join(args.blocks)}")
    print("| genres from | validation macro ROC-AUC | test macro ROC-AUC | micro-F1 | macro-F1 |")
    print("|---|---|---|---|---|")
    for name, row in summary.items():
        figures = (row[key] for key in ("validation_auc", "auc", "micro_f1", "macro_f1"))
        print(f"| {name} | " + " | ".join(f"{figure:.4f}" for figure in figures) + " |")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
