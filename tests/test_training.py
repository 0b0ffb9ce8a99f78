"""Training as `make test` must check it: the loss falls, the model beats constant answers clearly on
posters it has never seen, and an interrupted run resumes without recomputing its cache."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score

from catalog import read_catalog
from model import train as train_module
from model import work_directory
from model.evaluation import evaluate, summaries
from model.metrics import constant_predictors, tune_thresholds
from model.presets import DEMO
from model.work_directory import posters_digest
from tests.conftest import (
    TEST_INPUT_SIZE,
    TINY_INPUT_SIZE,
    demo_catalog_built_once,
    needs_imagenet,
    trained_model,
)

TINY_DEMO = replace(DEMO, input_size=TINY_INPUT_SIZE)
"""For tests of how training runs, not of what it learns."""


@needs_imagenet
def test_loss_falls_during_training(trained) -> None:
    history = trained[0].history
    assert history["loss"][-1] < 0.8 * history["loss"][0]


@needs_imagenet
def test_beats_constant_answers_on_posters_it_never_saw(trained, request: pytest.FixtureRequest) -> None:
    unseen = read_catalog(demo_catalog_built_once(request, "unseen-60", 60, seed=7, id_prefix="tt98"))
    reports, text = evaluate(unseen, trained[1], progress=False)
    figures = summaries(reports)
    assert figures["model"]["n"] == 60 and "every movie with a target genre" in text
    best_constant = max(figures["most_frequent"]["micro_f1"], figures["all_six"]["micro_f1"])
    assert figures["model"]["micro_f1"] > best_constant + 0.1, figures
    assert figures["model"]["macro_auc"] > 0.7 and figures["all_six"]["macro_auc"] == 0.5


@pytest.fixture(scope="module")
def era_model_dir(request: pytest.FixtureRequest, training_weights: Path) -> Path:
    """The demo preset trained on 300 demo posters (built once, as the shared demo model is): the era signal needs
    more posters than the genres' 120. The era heads are fitted in closed form on the frozen pool, whatever the
    genre head's epochs: 3 of them are enough here."""
    catalog = read_catalog(demo_catalog_built_once(request, "era", 300, seed=1))
    preset = replace(DEMO, epochs=3, input_size=TEST_INPUT_SIZE)
    return trained_model(request, "era-model", catalog, preset, training_weights)[1]


@needs_imagenet
def test_era_and_quality_predictions_beat_chance_on_posters_it_never_saw(
    era_model_dir: Path, request: pytest.FixtureRequest
) -> None:
    """The demo posters age with their year (and carry a weak quality mark): on unseen ones, the predicted year is
    closer than the median year, and the predicted ratings rank the true ones better than chance."""
    unseen = read_catalog(demo_catalog_built_once(request, "unseen-80", 80, seed=11, id_prefix="tt98"))
    reports, text = evaluate(unseen, era_model_dir, progress=False)
    era = reports["model"]["era"]
    assert era["n_years"] == 80 and "decade accuracy" in text
    assert era["year_mae"] < 0.9 * era["year_mae_median_baseline"], era
    assert era["rating_spearman"] > 0.1, era
    summary = summaries(reports)["model"]
    assert {"decade_accuracy", "year_mae", "rating_mae", "rating_spearman", "ece_max"} <= set(summary)


def test_evaluates_on_its_own_held_out_split(trained, demo_catalog) -> None:
    result, model_dir = trained
    reports, text = evaluate(demo_catalog, model_dir, progress=False)
    assert reports["model"]["n"] == len(result.split.test) and "held-out test split" in text
    assert reports["model"]["micro_f1"] == pytest.approx(result.report["micro_f1"], abs=1e-6)


def test_with_an_index_the_report_adds_what_the_app_serves(trained, demo_catalog, index_dir: Path) -> None:
    """The index's probabilities are what the app answers for catalog posters: `served` scores them beside the
    network's own; this index was computed by the same Keras model, so the two agree."""
    from model.index import FeatureIndex

    reports, text = evaluate(demo_catalog, trained[1], progress=False, index=FeatureIndex.load(index_dir))
    assert list(reports) == ["model", "served", "most_frequent", "all_six"]
    assert "served: the index's probabilities, by the float32 model the app serves" in text
    for figure in ("micro_f1", "macro_f1", "macro_roc_auc"):
        assert reports["served"][figure] == pytest.approx(reports["model"][figure], abs=1e-3), figure
    assert reports["served"]["n"] == reports["model"]["n"] and "calibration" in reports["served"]


def test_a_catalog_without_years_or_ratings_is_evaluated_with_null_figures(trained, demo_catalog, tmp_path) -> None:
    """Movies without a year or rating are left out of those figures: with none left, the figure is null (the report
    crashed on the decades of no movie, and the last line carried a bare NaN, which strict JSON parsers refuse)."""
    import csv
    import json

    from click.testing import CliRunner

    from posterbench.cli import main

    catalog_dir = shutil.copytree(demo_catalog.directory, tmp_path / "catalog")
    with (catalog_dir / "movies.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (catalog_dir / "movies.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "year": "", "rating": ""} for row in rows)
    answer = CliRunner().invoke(
        main, ["evaluate", "--catalog", str(catalog_dir), "--model", str(trained[1]), "--out", str(tmp_path / "e.json")]
    )
    assert answer.exit_code == 0, answer.output
    last = json.loads(answer.output.strip().splitlines()[-1], parse_constant=lambda name: pytest.fail(name))
    assert last["model"]["year_mae"] is None and last["model"]["rating_spearman"] is None
    assert (
        last["model"]["micro_f1"] > 0 and json.loads((tmp_path / "e.json").read_text())["model"]["era"]["n_years"] == 0
    )


def test_constant_baselines_from_genre_counts() -> None:
    predictors = constant_predictors(np.array([10, 45, 40, 5, 20, 10]), n_movies=100)
    scores, decisions = predictors["most_frequent"]
    assert decisions.tolist() == [0, 1, 1, 0, 0, 0]  # Comedy and Drama: the best constant micro-F1 here
    np.testing.assert_allclose(scores, [0.1, 0.45, 0.4, 0.05, 0.2, 0.1])
    assert predictors["all_six"][1].tolist() == [1] * 6


@contextlib.contextmanager
def stopped_after_epoch(last: int) -> Iterator[None]:
    """Within it, a training stops as Ctrl-C would once its epoch `last` (counted from 0) is logged."""
    original_epoch_end = keras.callbacks.CSVLogger.on_epoch_end

    def interrupt(self, epoch, logs=None):
        original_epoch_end(self, epoch, logs)
        if epoch == last:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(keras.callbacks.CSVLogger, "on_epoch_end", interrupt)
        yield


def interrupt_after_two_epochs(catalog, preset, weights: Path, out: Path) -> None:
    """Train `preset` into `out` and stop it as Ctrl-C would, once its second epoch is logged."""
    with stopped_after_epoch(1), pytest.raises(KeyboardInterrupt):
        train_module.train(catalog, preset, weights, out, progress=False)


INTERRUPTED = replace(TINY_DEMO, epochs=3, patience=10)
"""The training that `interrupted_run` stops after two of its three epochs (a patience of 10: none stops early)."""


@pytest.fixture(scope="module")
def interrupted_run(small_catalog, vgg_weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """INTERRUPTED trained on the small catalog into DIRECTORY/model and stopped as Ctrl-C would once its second epoch
    is logged; returns DIRECTORY, where its work directory (.model.work: the cached frozen outputs, the checkpoint,
    the history and the best weights) is left. Interrupted once for the module's tests, which each go on from a copy
    of it (resume_interrupted_run)."""
    directory = tmp_path_factory.mktemp("interrupted")
    interrupt_after_two_epochs(small_catalog, INTERRUPTED, vgg_weights_file, directory / "model")
    return directory


def resume_interrupted_run(interrupted_run: Path, directory: Path) -> Path:
    """A copy of `interrupted_run`'s work directory in `directory`, as the interruption left it; returns the model
    directory whose training it is (DIRECTORY/model, not written yet)."""
    shutil.copytree(interrupted_run / ".model.work", directory / ".model.work")
    return directory / "model"


def test_an_interrupted_training_resumes_where_it_stopped(
    small_catalog, vgg_weights_file: Path, interrupted_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = resume_interrupted_run(interrupted_run, tmp_path)
    work = tmp_path / ".model.work"
    assert not out.exists() and (work / "frozen-train.npy").exists() and (work / "checkpoint").exists()
    cache_computed = []  # augmentation is built only when frozen outputs are computed
    original_augmentation = work_directory.augmentation
    monkeypatch.setattr(
        work_directory, "augmentation", lambda seed: cache_computed.append(seed) or original_augmentation(seed)
    )
    epochs_run = []
    original_epoch_end = keras.callbacks.CSVLogger.on_epoch_end
    monkeypatch.setattr(
        keras.callbacks.CSVLogger,
        "on_epoch_end",
        lambda self, epoch, logs=None: epochs_run.append(epoch) or original_epoch_end(self, epoch, logs),
    )
    result = train_module.train(small_catalog, INTERRUPTED, vgg_weights_file, out, progress=False)
    assert cache_computed == []  # the cached frozen outputs were reused
    assert len(result.history["loss"]) == 3  # epochs 1-2 before the interruption, 3 after
    assert epochs_run == [2]  # only the third ran: a training started over would run all three
    assert (out / "model.json").exists() and not work.exists()


def test_a_resumed_training_keeps_its_best_epoch_and_its_patience(
    small_catalog, vgg_weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras starts ModelCheckpoint's best and EarlyStopping's count again at every fit: a resumed run kept its
    first epoch as the best whatever its loss, and waited its whole patience again."""
    import json

    preset = replace(TINY_DEMO, epochs=4, patience=2)
    out = tmp_path / "model"
    interrupt_after_two_epochs(small_catalog, preset, vgg_weights_file, out)
    work = tmp_path / ".model.work"
    record = json.loads((work / "best.json").read_text())
    assert record["epoch"] == 0  # stopped after epoch 2's history row, before its checkpoint: epoch 1 is saved
    (work / "best.json").write_text(json.dumps({**record, "value": 0.0}))  # as if unbeatable: nothing may replace it
    best_before = (work / "best.weights.h5").read_bytes()
    kept = []
    original_remove = work_directory.WorkDirectory.remove
    monkeypatch.setattr(
        work_directory.WorkDirectory,
        "remove",
        lambda self, keep_cache=False: kept.append(self.best_weights.read_bytes()) or original_remove(self, keep_cache),
    )
    result = train_module.train(small_catalog, preset, vgg_weights_file, out, progress=False)
    assert kept == [best_before]  # the best epoch's weights were kept
    assert len(result.history["loss"]) == 3  # 2 epochs since the best after epoch 3: patience 2 stopped it there


def test_best_weights_cut_short_or_left_by_a_finished_fit_are_not_resumed(
    small_catalog, vgg_weights_file: Path, interrupted_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Best weights interrupted while written are dropped, not loaded at the end; a run that failed after its epochs
    (its backup gone) starts them again rather than mixing in the last run's best weights and history."""
    preset = INTERRUPTED  # three epochs, stopped after two
    out = resume_interrupted_run(interrupted_run, tmp_path)
    work = tmp_path / ".model.work"
    best = work / "best.weights.h5"
    best.write_bytes(best.read_bytes()[:1000])  # as if killed while ModelCheckpoint wrote it
    with monkeypatch.context() as patched:
        patched.setattr(train_module, "fit_frozen_heads", lambda *arguments: (_ for _ in ()).throw(MemoryError()))
        with pytest.raises(MemoryError):  # fails after fit: the weights cut short were not loaded
            train_module.train(small_catalog, preset, vgg_weights_file, out, progress=False)
    assert not (work / "checkpoint").exists() and len((work / "history.csv").read_text().splitlines()) == 1 + 3
    result = train_module.train(small_catalog, preset, vgg_weights_file, out, progress=False)
    assert len(result.history["loss"]) == 3  # three epochs again, not six rows of two runs


def test_a_cache_of_other_posters_is_computed_again(
    small_catalog, vgg_weights_file: Path, interrupted_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache's key held the split's ids but not the posters: a catalog whose posters changed under the same ids
    (scraped again, or another catalog) trained its labels on the old posters' frozen outputs."""
    catalog_dir = shutil.copytree(small_catalog.directory, tmp_path / "catalog")  # the posters' times kept
    ids = [movie.imdb_id for movie in small_catalog.movies]
    assert posters_digest(read_catalog(catalog_dir), ids) == posters_digest(small_catalog, ids)  # the cache's posters
    out = resume_interrupted_run(interrupted_run, tmp_path)  # the small catalog's cached frozen outputs
    work_directory.WorkDirectory(tmp_path / ".model.work").remove(keep_cache=True)  # as `train --keep-cache` leaves it
    preset = replace(TINY_DEMO, epochs=1)
    posters = sorted((catalog_dir / "posters").iterdir())
    posters[0].write_bytes(posters[1].read_bytes())  # one poster replaced
    computed = []
    original_augmentation = work_directory.augmentation
    monkeypatch.setattr(
        work_directory, "augmentation", lambda seed: computed.append(seed) or original_augmentation(seed)
    )
    with stopped_after_epoch(0), contextlib.suppress(KeyboardInterrupt):  # what follows its epoch is not tested here
        train_module.train(read_catalog(catalog_dir), preset, vgg_weights_file, out, progress=False)
    assert computed  # the frozen outputs were computed again


def test_a_changed_configuration_does_not_reuse_the_cache(small_catalog, vgg_weights_file: Path, tmp_path) -> None:
    work = tmp_path / ".model.work"
    work.mkdir()
    (work / "manifest.json").write_text('{"preset": "something else"}')
    (work / "frozen-train.npy").write_bytes(b"stale")
    preset = replace(TINY_DEMO, epochs=1)
    train_module.train(small_catalog, preset, vgg_weights_file, tmp_path / "model", progress=False)
    assert not work.exists() and (tmp_path / "model" / "model.json").exists()


def test_new_training_settings_keep_the_cache_but_not_the_checkpoints(
    small_catalog, vgg_weights_file: Path, interrupted_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = resume_interrupted_run(interrupted_run, tmp_path)  # INTERRUPTED: three epochs, stopped after two
    ran = []
    epochs_run = []
    original_epoch_end = keras.callbacks.CSVLogger.on_epoch_end

    def count_epochs(self, epoch, logs=None):
        epochs_run.append(epoch)
        original_epoch_end(self, epoch, logs)

    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", count_epochs)
    original_augmentation = work_directory.augmentation
    monkeypatch.setattr(work_directory, "augmentation", lambda seed: ran.append(seed) or original_augmentation(seed))
    other = replace(INTERRUPTED, epochs=2, learning_rate=5e-4)  # what is trained changes, not the inputs
    result = train_module.train(small_catalog, other, vgg_weights_file, out, progress=False)
    assert ran == []  # the frozen outputs were reused
    assert len(result.history["loss"]) == 2  # both epochs trained anew: the old checkpoint was not resumed
    assert epochs_run == [0, 1]
    shutil.rmtree(out)
    resume_interrupted_run(interrupted_run, tmp_path)  # the same interrupted run again
    epochs_run.clear()
    with stopped_after_epoch(0), contextlib.suppress(KeyboardInterrupt):  # once its one epoch is logged
        train_module.train(small_catalog, INTERRUPTED, vgg_weights_file, out, epochs=1, progress=False)
    assert epochs_run == [0]  # --epochs alone is a new setting too: its epoch ran anew, none was resumed


def test_thresholds_tuned_for_micro_and_macro_f1_beat_one_half() -> None:
    rng = np.random.default_rng(0)
    y_true = (rng.random((400, 3)) < [0.5, 0.2, 0.05]).astype(int)
    # scores informative but squashed low, as a frequency-weighted loss can leave them
    probabilities = np.clip(0.3 * y_true + rng.normal(0.15, 0.1, y_true.shape), 0, 1)
    thresholds = tune_thresholds(y_true, probabilities)
    assert thresholds.shape == (3,) and ((thresholds >= 0.05) & (thresholds <= 0.95)).all()

    def both(t):
        return f1_score(y_true, probabilities >= t, average="micro") + f1_score(
            y_true, probabilities >= t, average="macro"
        )

    assert both(thresholds) > both(np.full(3, 0.5)) + 0.5
    assert both(thresholds) >= both(np.full(3, thresholds.mean())) - 1e-9


def test_thresholds_can_be_tuned_again_on_a_saved_model(trained, demo_catalog, tmp_path: Path) -> None:
    import json
    import shutil

    from model.artifacts import GenreModel
    from model.evaluation import retune_thresholds

    copy = tmp_path / "model"
    shutil.copytree(trained[1], copy)
    description = json.loads((copy / "model.json").read_text())
    description["thresholds"] = [0.99] * 6
    (copy / "model.json").write_text(json.dumps(description))
    thresholds = retune_thresholds(demo_catalog, copy, progress=False)
    assert (thresholds < 0.99).all()
    np.testing.assert_allclose(GenreModel.load(copy).thresholds, thresholds)


def test_threshold_scores_are_scikit_learns_micro_plus_macro_f1() -> None:
    from model.metrics import f1_sums

    rng = np.random.default_rng(1)
    y_true = (rng.random((50, 4)) < [0.5, 0.1, 0.02, 0.0]).astype(int)  # a rare genre and one nobody has
    probabilities = rng.random((50, 4))
    candidates = rng.uniform(0.05, 0.95, (30, 4))
    expected = [
        f1_score(y_true, probabilities >= row, average="micro", zero_division=0)
        + f1_score(y_true, probabilities >= row, average="macro", zero_division=0)
        for row in candidates
    ]
    np.testing.assert_allclose(f1_sums(y_true.astype(bool), probabilities, candidates), expected, rtol=1e-12)


@pytest.mark.parametrize("fine_tuned", [False, True], ids=["block 5 frozen", "block 5 fine-tuned"])
def test_the_detector_signatures_from_the_cache_are_the_whole_networks(
    fine_tuned: bool, small_catalog, vgg_weights_file: Path, tmp_path: Path
) -> None:
    """Training fits the poster detector on signatures from its cache (the frozen part's, the trainable part's on the
    cached maps) rather than running the posters through the whole network again: they are what serving computes."""
    from model.images import load_posters, preprocess
    from model.network import HEADS, SIGNATURE_LAYER, build_network, join_network, split_network

    preset = replace(DEMO, input_size=(32, 48), train_block5=fine_tuned)  # tall, as posters are: 2 x 3 maps
    frozen, trainable = split_network(preset, 6, str(vgg_weights_file))
    if fine_tuned:  # as if trained: the fine-tuned block 5 no longer is ImageNet's
        conv = trainable.get_layer("block5_conv3")
        kernel, bias = conv.get_weights()
        conv.set_weights([kernel * np.random.default_rng(0).uniform(0.5, 1.5, kernel.shape), bias + 0.1])
    ids = [movie.imdb_id for movie in small_catalog.movies[:6]]
    work = work_directory.WorkDirectory.open(tmp_path / "model", {"test": 1})
    cached = work.frozen_outputs("train", frozen, small_catalog, ids, preset, 1, 0, progress=False)
    shapes = build_network(preset, 6, 3, weights=None)
    heads = {head: [np.zeros_like(w) for w in shapes.get_layer(head).get_weights()] for head in HEADS}
    network = join_network(preset, frozen, trainable, heads)
    posters = load_posters([small_catalog.poster_path(small_catalog.get(i)) for i in ids], preset.input_size, False)
    expected = np.asarray(network(preprocess(posters), training=False)[SIGNATURE_LAYER])
    found = train_module.detector_signatures(cached, len(ids), train_module.tuned_signature_model(trainable, preset))
    assert found.shape == expected.shape == (len(ids), 1024)
    np.testing.assert_allclose(found, expected, rtol=0.02, atol=0.02 * np.abs(expected).mean())
