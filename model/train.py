"""Train a genre model on a catalog, evaluate it on its held-out split, and save every artifact.

Only block 5 and the head learn, so blocks 1-4 (all of VGG-16 for presets that fine-tune nothing)
run once per poster and augmented copy: their outputs are cached on disk in a work directory beside
the model (model.work_directory), together with a checkpoint after every epoch. An interrupted run resumes from
there."""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from catalog import GENRES, Catalog, check_replaceable, staged_directory
from model.artifacts import (
    DESCRIPTION_FILE,
    RATING_INTERVAL_SHARE,
    REPORT_FILE,
    Description,
    GenreModel,
    file_sha256,
)
from model.evaluation import full_report, known_values, predict_movies, without_nan
from model.frozen_heads import (
    DenseWeights,
    fit_era_heads,
    fit_genre_probe,
    predict_era,
    stack_genres,
    stacked_genre_layer,
)
from model.images import load_posters
from model.logit import logit
from model.metrics import format_report, tune_thresholds
from model.network import (
    GENRES_LAYER,
    IMAGENET,
    RATING_LAYER,
    build_network,
    check_weights,
    join_network,
    signature_of,
    signature_parts,
    split_network,
)
from model.poster_detector import PosterDetector
from model.presets import Preset
from model.report_plots import save_learning_curves, save_reliability_plot
from model.split import SPLIT_FILE, Split, rebalance, split_movies, with_target_genres
from model.work_directory import (
    ENCODE_BATCH,
    BestEpochRecord,
    CachedCopies,
    FrozenOutputs,
    ResumedEarlyStopping,
    WorkDirectory,
    augmentation,
    posters_digest,
)

REPORT_TEXT_FILE = "report.txt"
CURVES_FILE = "learning_curves.png"
RELIABILITY_FILE = "reliability.png"
MIN_MOVIES = 20
FITTING_PARTS = ("train", "validation")


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


DETECTOR_POSTERS = 2000
"""Training posters (at most) whose signatures fit the poster detector."""


def decade_classes(catalog: Catalog, ids: list[str]) -> tuple[int, ...]:
    """The decades the training movies come from, oldest first (one class each)."""
    decades = sorted({movie.year // 10 * 10 for movie in map(catalog.get, ids) if movie.year is not None})
    if not decades:
        raise ValueError(f"{catalog.directory}: no training movie has a year, so no decade can be learned")
    return tuple(decades)


def era_values(catalog: Catalog, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Years and ratings of the listed movies (NaN where unknown): what the era heads are fitted to."""
    return known_values(catalog, ids, "year"), known_values(catalog, ids, "rating")


def genre_loss(train_genres: np.ndarray):
    """The genres' loss: binary cross-entropy weighted per label by inverse frequency, as in the paper."""
    return weighted_binary_crossentropy(inverse_frequency_weights(train_genres))


def train(
    catalog: Catalog,
    preset: Preset,
    weights: str | Path | None,
    out_dir: Path,
    seed: int = 0,
    epochs: int | None = None,
    progress: bool = True,
    keep_cache: bool = False,
) -> TrainingResult:
    """Train `preset` on `catalog` from ImageNet `weights`; save it with its split, report and curves in `out_dir`.

    Work in progress (cached frozen outputs, a checkpoint per epoch) lives in a hidden sibling of
    `out_dir` and is reused when the same command runs again after an interruption; `keep_cache` keeps the cached
    frozen outputs after training, for another run with other training settings.
    """
    check_replaceable(out_dir, DESCRIPTION_FILE)  # an hour before it would be replaced
    imagenet = check_weights(weights)
    split = choose_movies(catalog, preset, seed)
    epochs = epochs or preset.epochs
    cached_inputs = {
        "preset": preset.cache_key(),
        "seed": seed,
        "split": split_digest(split),
        "posters": posters_digest(catalog, [*split.train, *split.validation]),
        "weights": imagenet if imagenet == IMAGENET else file_sha256(Path(imagenet)),
    }
    keras.utils.set_random_seed(seed)

    decades = decade_classes(catalog, split.train)
    frozen, trainable = split_network(preset, len(GENRES), imagenet)  # weights that cannot be read: no work directory
    work = WorkDirectory.open(out_dir, cached_inputs, {**cached_inputs, "preset": preset.to_dict(), "epochs": epochs})
    # The test split is scored afterwards by the whole network, as it will be served; only training posters augment.
    labels = {
        part: {GENRES_LAYER: catalog.labels(GENRES, getattr(split, part)).astype(np.float32)} for part in FITTING_PARTS
    }
    copies = {"train": preset.augmented_copies, "validation": 0}
    cached = {
        part: work.frozen_outputs(part, frozen, catalog, getattr(split, part), preset, copies[part], seed, progress)
        for part in FITTING_PARTS
    }

    trainable.compile(
        optimizer=keras.optimizers.Adam(preset.learning_rate),
        loss={GENRES_LAYER: genre_loss(labels["train"][GENRES_LAYER])},
        metrics={GENRES_LAYER: [hamming]},
    )
    has_validation = len(split.validation) > 0
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work.path / "checkpoint")),
        keras.callbacks.CSVLogger(str(work.path / "history.csv"), append=True),
    ]
    resumed = work.resumed()  # what an interrupted run of these settings had done, which the backup restores
    if has_validation:  # the validation loss (the genres') chooses the epoch kept
        monitor = "val_loss"
        checkpoint = keras.callbacks.ModelCheckpoint(
            str(work.best_weights),
            monitor=monitor,
            mode="min",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=resumed.best,  # else a resumed run's first epoch is kept, whatever its loss
        )
        callbacks += [
            checkpoint,
            BestEpochRecord(checkpoint, work.best_record, work.best_weights),
            ResumedEarlyStopping(resumed.best, resumed.waited, monitor=monitor, mode="min", patience=preset.patience),
        ]
    trainable.fit(
        CachedCopies(cached["train"].maps, labels["train"], preset.batch_size, seed, resumed.epochs),
        validation_data=(cached["validation"].maps[0], labels["validation"]) if has_validation else None,
        epochs=epochs,
        callbacks=callbacks,
        verbose=(1 if sys.stderr.isatty() else 2) if progress else 0,
    )
    if has_validation and work.best_weights.exists():
        trainable.load_weights(work.best_weights)
    history = work.history()

    heads, stacking, validation = fit_frozen_heads(trainable, catalog, split, decades, cached, labels)
    held_out = "validation" if has_validation else "train"  # what the rating interval and the detector are scaled on
    validation_ids = getattr(split, held_out)
    thresholds = np.full(len(GENRES), 0.5, dtype=np.float32)
    if preset.tune_thresholds and has_validation:
        thresholds = tune_thresholds(labels["validation"][GENRES_LAYER], validation[GENRES_LAYER])
    rating_errors = known_values(catalog, validation_ids, "rating") - validation[RATING_LAYER][:, 0]
    description = Description(
        preset=preset,
        genres=GENRES,
        thresholds=thresholds,
        decades=decades,
        rating_interval=rating_interval(rating_errors[~np.isnan(rating_errors)]),
    )
    network = join_network(preset, frozen, trainable, heads)
    detector = fit_detector(trainable, preset, cached["train"], cached[held_out])
    genre_model = GenreModel(network, description, detector)
    report = test_report(genre_model, catalog, split.test, progress)
    report["calibration"]["stacking"] = {
        genre: [round(float(w), 4) for w in stacking[i]] for i, genre in enumerate(GENRES)
    }
    save_model_directory(out_dir, genre_model, split, report, history, catalog, seed, epochs, labels["train"])
    work.remove(keep_cache)
    return TrainingResult(model=genre_model, split=split, report=report, history=history)


def fit_frozen_heads(
    trainable: keras.Model,
    catalog: Catalog,
    split: Split,
    decades: tuple[int, ...],
    cached: dict[str, FrozenOutputs],
    labels: dict[str, dict[str, np.ndarray]],
) -> tuple[dict[str, DenseWeights], np.ndarray, dict[str, np.ndarray]]:
    """The heads on the frozen pool, fitted on the training posters' pools: the era heads on every cached copy
    (augmented ones too), and the genre probe on the posters as they are (copy 0: augmented copies lowered its
    validation AUC from 0.7987 to 0.7968, bench/README.md), stacked with the trained genre head on the validation
    posters (which also calibrates the genres), each genre's base rate taken from the training and validation posters
    together. Returns the weights of every head, the stacking weights (a, b, c) by genre, and the validation posters'
    genre probabilities and era predictions as the whole network will give them (the training posters' when there is
    no validation split)."""
    copies = len(cached["train"].pools)
    pools = np.asarray(cached["train"].pools).reshape(-1, cached["train"].pools.shape[-1])  # copy after copy
    years, ratings = (np.tile(values, copies) for values in era_values(catalog, split.train))
    heads = fit_era_heads(pools, years, ratings, decades)
    probe = fit_genre_probe(pools[: len(split.train)], labels["train"][GENRES_LAYER])  # copy 0: posters as they are
    has_validation = len(split.validation) > 0
    validation_pools = np.asarray(cached["validation"].pools[0]) if has_validation else pools[: len(split.train)]
    tuned_logits = logit(
        trainable.predict(cached["validation" if has_validation else "train"].maps[0], verbose=0)[GENRES_LAYER]
    )
    probe_logits = validation_pools @ probe[0] + probe[1]
    stacking = np.tile([1.0, 0.0, 0.0], (len(GENRES), 1))
    if has_validation:
        labelled = np.vstack([labels[part][GENRES_LAYER] for part in FITTING_PARTS])  # every poster but the test's
        stacking = stack_genres(tuned_logits, probe_logits, labels["validation"][GENRES_LAYER], labelled.mean(axis=0))
    heads[GENRES_LAYER] = stacked_genre_layer(tuple(trainable.get_layer(GENRES_LAYER).get_weights()), probe, stacking)
    a, b, c = stacking.T
    validation = predict_era(validation_pools, heads)
    validation[GENRES_LAYER] = 1 / (1 + np.exp(-(a * tuned_logits + b * probe_logits + c)))
    return heads, stacking, validation


def rating_interval(errors: np.ndarray) -> tuple[float, float]:
    """Offsets from the expected rating between which RATING_INTERVAL_SHARE of held-out ratings fall."""
    if len(errors) == 0:
        return (-1.0, 1.0)
    tail = (1 - RATING_INTERVAL_SHARE) / 2
    low, high = np.quantile(errors, [tail, 1 - tail])
    return (round(float(low), 3), round(float(high), 3))


def tuned_signature_model(trainable: keras.Model, preset: Preset) -> keras.Model | None:
    """The trainable part's share of the signature (its fine-tuned blocks' averages) from the cached maps, or None
    when the preset fine-tunes none of the signature's blocks."""
    tuned = signature_parts(preset)[1]
    return keras.Model(trainable.input, signature_of(trainable, tuned)) if tuned else None


def detector_signatures(cached: FrozenOutputs, n: int, tuned_part: keras.Model | None) -> np.ndarray:
    """The poster-detector signatures of a part's first `n` posters as the whole network gives them, from the cache:
    the frozen blocks' share as cached, the fine-tuned blocks' by `tuned_part` (tuned_signature_model) on the cached
    maps, rather than every poster through the whole network again (4 of the 59 minutes of the default preset's
    training, bench/README.md)."""
    found = [np.asarray(cached.signatures[:n])]
    if tuned_part is not None:
        found.append(tuned_part.predict(np.asarray(cached.maps[0, :n], np.float32), ENCODE_BATCH, verbose=0))
    return np.concatenate(found, axis=1)


def fit_detector(
    trainable: keras.Model, preset: Preset, train: FrozenOutputs, held_out: FrozenOutputs
) -> PosterDetector:
    """The poster detector, fit on (at most DETECTOR_POSTERS) training posters and scaled on held-out ones."""
    tuned_part = tuned_signature_model(trainable, preset)
    return PosterDetector().fit(
        detector_signatures(train, DETECTOR_POSTERS, tuned_part),
        detector_signatures(held_out, len(held_out.signatures), tuned_part),
    )


def test_report(model: GenreModel, catalog: Catalog, test_ids: list[str], progress: bool) -> dict:
    """The genre report, calibration, era figures and poster detector's false alarms on the held-out split."""
    prediction = predict_movies(model, catalog, test_ids, progress)
    return full_report(model, catalog, test_ids, prediction)


def save_model_directory(
    out_dir: Path,
    model: GenreModel,
    split: Split,
    report: dict,
    history: dict[str, list[float]],
    catalog: Catalog,
    seed: int,
    epochs: int,
    train_labels: dict[str, np.ndarray],
) -> None:
    genres = train_labels[GENRES_LAYER]
    with staged_directory(out_dir, DESCRIPTION_FILE) as staging:
        split.save(staging / SPLIT_FILE)
        described = without_nan({"test": report, "history": history})  # null where no movie had a year or rating
        (staging / REPORT_FILE).write_text(json.dumps(described, indent=2, allow_nan=False) + "\n")
        title = f"{model.preset.name} preset, held-out test split"
        (staging / REPORT_TEXT_FILE).write_text(format_report(report, title) + "\n")
        save_learning_curves(history, staging / CURVES_FILE)
        if "calibration" in report:
            save_reliability_plot(report["calibration"], staging / RELIABILITY_FILE)
        model.save(
            staging,
            catalog=str(catalog.directory.resolve()),
            seed=seed,
            epochs=epochs,
            train_size=len(genres),
            train_genre_counts=genres.sum(axis=0).astype(int).tolist(),
            trained_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )


def split_digest(split: Split) -> str:
    return hashlib.sha256(json.dumps([split.train, split.validation, split.test]).encode()).hexdigest()[:16]


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
    network = build_network(preset, len(GENRES), len(decade_classes(catalog, ids)), weights=weights)
    genres_only = keras.Model(network.input, network.get_layer(GENRES_LAYER).output)
    genres_only.compile(
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
    # The dataset shuffles itself each epoch; Keras's own shuffle would only warn that it cannot.
    return genres_only.fit(dataset, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False)
