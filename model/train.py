"""Train a genre model on a catalog, evaluate it on its held-out split, and save every artifact."""

from __future__ import annotations

import datetime
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure

from catalog import GENRES, Catalog, staged_directory
from model.artifacts import GenreModel
from model.evaluate import format_table, genre_report
from model.images import load_posters, preprocess
from model.network import build_head, build_network, check_weights, vgg16_base
from model.presets import Preset
from model.split import Split, rebalance, split_movies, with_target_genres

SPLIT_FILE = "split.json"
REPORT_FILE = "report.json"
REPORT_TEXT_FILE = "report.txt"
CURVES_FILE = "learning_curves.png"
MIN_MOVIES = 20
EARLY_STOP_PATIENCE = 10


@dataclass
class TrainingResult:
    model: GenreModel
    split: Split
    report: dict
    history: dict[str, list[float]]


def weighted_binary_crossentropy(label_weights: np.ndarray):
    """Binary cross-entropy averaged over labels, each label weighted by `label_weights` (y, p: (batch, K))."""
    weights = keras.ops.convert_to_tensor(label_weights, dtype="float32")

    def loss(y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        y_pred = keras.ops.clip(y_pred, 1e-7, 1 - 1e-7)
        per_label = -(y_true * keras.ops.log(y_pred) + (1 - y_true) * keras.ops.log(1 - y_pred))
        return keras.ops.mean(per_label * weights, axis=-1)

    return loss


def hamming(y_true, y_pred):
    """Share of genre decisions (at 0.5) that are wrong."""
    return keras.ops.mean(keras.ops.not_equal(keras.ops.cast(y_true, "float32"), keras.ops.round(y_pred)))


def inverse_frequency_weights(labels: np.ndarray) -> np.ndarray:
    """One weight per label, proportional to 1 / its frequency, averaging 1."""
    inverse = 1.0 / np.maximum(labels.mean(axis=0), 1.0 / len(labels))
    return (inverse / inverse.mean()).astype(np.float32)


def train(
    catalog: Catalog,
    preset: Preset,
    weights: str | Path | None,
    out_dir: Path,
    seed: int = 0,
    epochs: int | None = None,
    progress: bool = True,
) -> TrainingResult:
    """Train `preset` on `catalog` from ImageNet `weights`, save it with its split, report and curves in `out_dir`."""
    imagenet = check_weights(weights)
    movies = with_target_genres(catalog.movies)
    if preset.rebalance:
        movies = rebalance(movies, seed)
    if len(movies) < MIN_MOVIES:
        raise ValueError(f"{catalog.directory}: only {len(movies)} movies carry one of {', '.join(GENRES)}")
    split = split_movies(movies, seed)
    keras.utils.set_random_seed(seed)

    def arrays(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        chosen = [catalog.get(imdb_id) for imdb_id in ids]
        posters = load_posters([catalog.poster_path(movie) for movie in chosen], preset.input_size, progress)
        return posters, np.array([movie.label_vector() for movie in chosen], dtype=np.float32)

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        arrays(split.train),
        arrays(split.validation),
        arrays(split.test),
    )
    loss = weighted_binary_crossentropy(inverse_frequency_weights(y_train))
    epochs = epochs or preset.epochs
    fit_args = {
        "epochs": epochs,
        "verbose": (1 if sys.stderr.isatty() else 2) if progress else 0,
        "callbacks": _callbacks(bool(len(x_val))),
    }

    if preset.train_block5 or preset.augment:
        network = build_network(preset, len(GENRES), weights=imagenet)
        network.compile(optimizer=keras.optimizers.Adam(preset.learning_rate), loss=loss, metrics=[hamming])
        history = network.fit(
            _dataset(x_train, y_train, preset, seed, augment=preset.augment, shuffle=True),
            validation_data=_dataset(x_val, y_val, preset, seed) if len(x_val) else None,
            shuffle=False,  # the dataset reshuffles itself every epoch
            **fit_args,
        )
    else:  # frozen base: compute its output once, train the head alone, then join them
        base = vgg16_base(preset.input_size, imagenet, train_block5=False)
        encode = lambda posters: base.predict(preprocess(posters), batch_size=64, verbose=0)  # noqa: E731
        head = build_head(preset, len(GENRES), base.output_shape[1:])
        head.compile(optimizer=keras.optimizers.Adam(preset.learning_rate), loss=loss, metrics=[hamming])
        history = head.fit(
            encode(x_train),
            y_train,
            batch_size=preset.batch_size,
            shuffle=True,
            validation_data=(encode(x_val), y_val) if len(x_val) else None,
            **fit_args,
        )
        network = build_network(preset, len(GENRES), weights=None)
        network.get_layer(base.name).set_weights(base.get_weights())
        for layer in head.layers[1:]:
            network.get_layer(layer.name).set_weights(layer.get_weights())

    genre_model = GenreModel(network=network, preset=preset, genres=GENRES, thresholds=np.full(len(GENRES), 0.5))
    probabilities, _ = genre_model.predict(x_test)
    report = genre_report(y_test.astype(int), probabilities, genre_model.thresholds, GENRES)

    history_lists = {name: [float(v) for v in values] for name, values in history.history.items()}
    with staged_directory(out_dir) as staging:
        split.save(staging / SPLIT_FILE)
        (staging / REPORT_FILE).write_text(json.dumps({"test": report, "history": history_lists}, indent=2) + "\n")
        (staging / REPORT_TEXT_FILE).write_text(
            format_table(report, f"{preset.name} preset, held-out test split") + "\n"
        )
        save_learning_curves(history_lists, staging / CURVES_FILE)
        genre_model.save(
            staging,
            catalog=str(catalog.directory.resolve()),
            seed=seed,
            epochs=epochs,
            trained_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
    return TrainingResult(model=genre_model, split=split, report=report, history=history_lists)


def _callbacks(has_validation: bool) -> list:
    if not has_validation:
        return []
    return [keras.callbacks.EarlyStopping(patience=EARLY_STOP_PATIENCE, restore_best_weights=True)]


def _dataset(x: np.ndarray, y: np.ndarray, preset: Preset, seed: int, augment: bool = False, shuffle: bool = False):
    """uint8 posters -> batches of (VGG-preprocessed posters, labels), augmented as in the paper if asked."""
    import tensorflow as tf
    from keras.applications.vgg16 import preprocess_input

    augmentation = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomZoom((-0.5, 0.5), seed=seed),
            keras.layers.RandomTranslation(0.3, 0.3, seed=seed),
            keras.layers.RandomRotation(30 / 360, seed=seed),
        ]
    )
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(preset.batch_size).map(lambda images, labels: (tf.cast(images, tf.float32), labels))
    if augment:
        dataset = dataset.map(lambda images, labels: (augmentation(images, training=True), labels))
    dataset = dataset.map(lambda images, labels: (preprocess_input(images), labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


def save_learning_curves(history: dict[str, list[float]], path: Path) -> None:
    """Loss and Hamming distance per epoch, training and validation, as a PNG."""
    figure = Figure(figsize=(9, 3.5))
    for axis, metric in zip(figure.subplots(1, 2), ("loss", "hamming"), strict=True):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if prefix + metric in history:
                axis.plot(range(1, len(history[prefix + metric]) + 1), history[prefix + metric], label=label)
        axis.set_xlabel("epoch")
        axis.set_title("Hamming distance" if metric == "hamming" else "loss")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
