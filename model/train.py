"""Train a genre model on a catalog, evaluate it on its held-out split, and save every artifact.

Only block 5 and the head learn, so blocks 1-4 (all of VGG-16 for presets that fine-tune nothing)
run once per poster and augmented copy: their outputs are cached on disk in a work directory beside
the model, together with a checkpoint after every epoch. An interrupted run resumes from there."""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from catalog import GENRES, Catalog, staged_directory
from model.artifacts import GenreModel
from model.evaluate import format_table, genre_report, tune_thresholds
from model.images import load_posters, preprocess
from model.network import build_network, check_weights, join_network, split_network
from model.presets import Preset
from model.split import SPLIT_FILE, Split, rebalance, split_movies, with_target_genres

REPORT_FILE = "report.json"
REPORT_TEXT_FILE = "report.txt"
CURVES_FILE = "learning_curves.png"
MIN_MOVIES = 20
PARTS = ("train", "validation", "test")
ENCODE_BATCH = 64


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


def augmentation(seed: int) -> keras.Sequential:
    """The paper's augmentation: flips, zoom up to 0.5, shifts up to 30 %, rotation up to 30 degrees."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomZoom((-0.5, 0.5), seed=seed),
            keras.layers.RandomTranslation(0.3, 0.3, seed=seed),
            keras.layers.RandomRotation(30 / 360, seed=seed),
        ]
    )


def choose_movies(catalog: Catalog, preset: Preset, seed: int) -> Split:
    """The seeded split of movies with a target genre; rebalancing, if any, thins the training part only,
    so that every preset is tested on the same natural distribution."""
    movies = with_target_genres(catalog.movies)
    if len(movies) < MIN_MOVIES:
        raise ValueError(f"{catalog.directory}: only {len(movies)} movies carry one of {', '.join(GENRES)}")
    split = split_movies(movies, seed)
    if preset.rebalance:
        training = rebalance([catalog.get(imdb_id) for imdb_id in split.train], seed)
        split = Split(
            seed=seed, train=[movie.imdb_id for movie in training], validation=split.validation, test=split.test
        )
    return split


def train(
    catalog: Catalog,
    preset: Preset,
    weights: str | Path | None,
    out_dir: Path,
    seed: int = 0,
    epochs: int | None = None,
    progress: bool = True,
) -> TrainingResult:
    """Train `preset` on `catalog` from ImageNet `weights`; save it with its split, report and curves in `out_dir`.

    Work in progress (cached frozen outputs, a checkpoint per epoch) lives in a hidden sibling of
    `out_dir` and is reused when the same command runs again after an interruption.
    """
    imagenet = check_weights(weights)
    split = choose_movies(catalog, preset, seed)
    epochs = epochs or preset.epochs
    work = WorkDirectory.open(out_dir, {"preset": preset.to_dict(), "seed": seed, "split": split_digest(split)})
    keras.utils.set_random_seed(seed)

    frozen, trainable = split_network(preset, len(GENRES), imagenet)
    labels = {part: catalog.labels(GENRES, getattr(split, part)).astype(np.float32) for part in PARTS}
    copies = {"train": preset.augmented_copies, "validation": 0, "test": 0}  # only training posters augment
    cached = {
        part: work.frozen_outputs(part, frozen, catalog, getattr(split, part), preset, copies[part], seed, progress)
        for part in PARTS
    }

    trainable.compile(
        optimizer=keras.optimizers.Adam(preset.learning_rate),
        loss=weighted_binary_crossentropy(inverse_frequency_weights(labels["train"])),
        metrics=[hamming],
    )
    has_validation = len(labels["validation"]) > 0
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work.path / "checkpoint")),
        keras.callbacks.CSVLogger(str(work.path / "history.csv"), append=True),
    ]
    if has_validation:
        callbacks += [
            keras.callbacks.ModelCheckpoint(str(work.best_weights), save_best_only=True, save_weights_only=True),
            keras.callbacks.EarlyStopping(patience=preset.patience),
        ]
    trainable.fit(
        CachedCopies(cached["train"], labels["train"], preset.batch_size, seed),
        validation_data=(cached["validation"][0], labels["validation"]) if has_validation else None,
        epochs=epochs,
        callbacks=callbacks,
        verbose=(1 if sys.stderr.isatty() else 2) if progress else 0,
    )
    if has_validation and work.best_weights.exists():
        trainable.load_weights(work.best_weights)
    history = work.history()

    thresholds = np.full(len(GENRES), 0.5, dtype=np.float32)
    if preset.tune_thresholds and has_validation:
        validation_probabilities = trainable.predict(cached["validation"][0], verbose=0)
        thresholds = tune_thresholds(labels["validation"].astype(int), validation_probabilities)
    genre_model = GenreModel(join_network(preset, frozen, trainable), preset, GENRES, thresholds)
    test_probabilities = trainable.predict(cached["test"][0], verbose=0)
    report = genre_report(labels["test"].astype(int), test_probabilities, thresholds, GENRES)
    save_model_directory(out_dir, genre_model, split, report, history, catalog, seed, epochs, labels["train"])
    work.remove()
    return TrainingResult(model=genre_model, split=split, report=report, history=history)


def save_model_directory(
    out_dir: Path,
    model: GenreModel,
    split: Split,
    report: dict,
    history: dict[str, list[float]],
    catalog: Catalog,
    seed: int,
    epochs: int,
    train_labels: np.ndarray,
) -> None:
    with staged_directory(out_dir) as staging:
        split.save(staging / SPLIT_FILE)
        (staging / REPORT_FILE).write_text(json.dumps({"test": report, "history": history}, indent=2) + "\n")
        title = f"{model.preset.name} preset, held-out test split"
        (staging / REPORT_TEXT_FILE).write_text(format_table(report, title) + "\n")
        save_learning_curves(history, staging / CURVES_FILE)
        model.save(
            staging,
            catalog=str(catalog.directory.resolve()),
            seed=seed,
            epochs=epochs,
            train_size=len(train_labels),
            train_genre_counts=train_labels.sum(axis=0).astype(int).tolist(),
            trained_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )


def split_digest(split: Split) -> str:
    return hashlib.sha256(json.dumps([split.train, split.validation, split.test]).encode()).hexdigest()[:16]


class WorkDirectory:
    """Where an unfinished training run keeps its cached frozen outputs and checkpoints."""

    MANIFEST = "manifest.json"

    def __init__(self, path: Path):
        self.path = path
        self.best_weights = path / "best.weights.h5"

    @classmethod
    def open(cls, out_dir: Path, manifest: dict) -> WorkDirectory:
        """The work directory of `out_dir`, emptied first if it belongs to another configuration."""
        path = out_dir.parent / f".{out_dir.name}.work"
        manifest = json.loads(json.dumps(manifest))  # compare as stored: tuples become lists
        manifest_path = path / cls.MANIFEST
        if path.exists() and (not manifest_path.exists() or json.loads(manifest_path.read_text()) != manifest):
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest) + "\n")
        return cls(path)

    def frozen_outputs(
        self,
        part: str,
        frozen: keras.Model,
        catalog: Catalog,
        ids: list[str],
        preset: Preset,
        augmented_copies: int,
        seed: int,
        progress: bool,
    ) -> np.ndarray:
        """(1 + augmented_copies, n, h, w, c) float16 outputs of the frozen layers; copy 0 is unaugmented."""
        path = self.path / f"frozen-{part}.npy"
        if path.exists():
            return np.load(path, mmap_mode="r")
        shape = (1 + augmented_copies, len(ids), *frozen.output_shape[1:])
        temporary = path.with_suffix(".partial.npy")
        outputs = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16, shape=shape)
        augment = augmentation(seed)
        movies = [catalog.get(imdb_id) for imdb_id in ids]
        with tqdm(total=len(ids) * shape[0], desc=f"frozen layers, {part}", unit="poster", disable=not progress) as bar:
            for start in range(0, len(ids), ENCODE_BATCH):
                chunk = movies[start : start + ENCODE_BATCH]
                posters = load_posters([catalog.poster_path(movie) for movie in chunk], preset.input_size, False)
                for copy in range(shape[0]):
                    batch = posters if copy == 0 else np.asarray(augment(posters.astype(np.float32), training=True))
                    outputs[copy, start : start + len(chunk)] = np.asarray(frozen(preprocess(batch), training=False))
                    bar.update(len(chunk))
        outputs.flush()
        del outputs
        temporary.rename(path)
        return np.load(path, mmap_mode="r")

    def history(self) -> dict[str, list[float]]:
        path = self.path / "history.csv"
        if not path.exists():
            return {}
        rows = path.read_text().splitlines()
        columns = rows[0].split(",")
        values = [list(map(float, row.split(","))) for row in rows[1:] if row]
        return {name: [row[i] for row in values] for i, name in enumerate(columns) if name != "epoch"}

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class CachedCopies(keras.utils.PyDataset):
    """Batches of cached frozen outputs: each epoch, every poster appears once, as one of its copies."""

    def __init__(self, outputs: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.outputs, self.labels, self.batch_size, self.seed = outputs, labels, batch_size, seed
        self.epoch = 0
        self._draw()

    def _draw(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(len(self.labels))
        self.copies = rng.integers(0, self.outputs.shape[0], size=len(self.labels))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.sort(self.order[batch * self.batch_size : (batch + 1) * self.batch_size])
        copies = self.copies[rows]
        return self.outputs[copies, rows].astype(np.float32), self.labels[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._draw()


def fit_end_to_end(
    catalog: Catalog,
    preset: Preset,
    weights: str,
    ids: list[str],
    epochs: int,
    seed: int = 0,
    callbacks: list | None = None,
) -> keras.callbacks.History:
    """The naive way, kept to measure against: every epoch runs all of VGG-16, augmenting each batch."""
    import tensorflow as tf
    from keras.applications.vgg16 import preprocess_input

    posters = load_posters([catalog.poster_path(catalog.get(i)) for i in ids], preset.input_size, False)
    labels = catalog.labels(GENRES, ids).astype(np.float32)
    network = build_network(preset, len(GENRES), weights=weights)
    network.compile(
        optimizer=keras.optimizers.Adam(preset.learning_rate),
        loss=weighted_binary_crossentropy(inverse_frequency_weights(labels)),
    )
    augment = augmentation(seed)
    dataset = (
        tf.data.Dataset.from_tensor_slices((posters, labels))
        .shuffle(len(ids), seed=seed)
        .batch(preset.batch_size)
        .map(lambda images, y: (preprocess_input(augment(tf.cast(images, tf.float32), training=True)), y))
    )
    return network.fit(dataset, epochs=epochs, verbose=0, callbacks=callbacks)


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
