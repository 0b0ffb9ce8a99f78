"""The evaluation commands and the stages that read a model's splits, on inputs that once went wrong: a report
written over the command's own inputs (a catalog's movies.csv, a model's weights, an index, a CLEMS model), a catalog
holding part of the model's held-out split evaluated with the movies the model trained on, a catalog without a
target genre, a catalog lacking movies of the model's splits (a KeyError's traceback), and seeds out of numpy's
range (numpy's traceback)."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import embedding.pipeline  # noqa: F401  imported with the real model.evaluation.evaluate, before any test patches it
from catalog import CatalogError, read_catalog, write_movies_csv
from posterbench import cli
from tests.conftest import the_work_must_not_start

PARTIAL_MOVIES = 25
"""The first rows of the demo catalog that the partial catalog keeps: part of the model's test split, and movies
of its training and validation splits."""
TARGET_GENRES = "(Action, Comedy, Drama, Horror, Romance, Thriller)"


def run(*arguments: object):
    return CliRunner().invoke(cli.main, [str(argument) for argument in arguments])


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def contents(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


@pytest.fixture
def inputs(demo_catalog_dir: Path, trained, index_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """Copies of the demo catalog, model and index (the code before the fix wrote over them), and a CLEMS
    directory (never read: the report is refused first)."""
    clems = tmp_path / "clems"
    clems.mkdir()
    (clems / "clems.json").write_text('{"estimator": "CLEMS"}\n')
    return {
        "catalog": shutil.copytree(demo_catalog_dir, tmp_path / "catalog"),
        "model": shutil.copytree(trained[1], tmp_path / "model", ignore=shutil.ignore_patterns("evaluation-*")),
        "index": shutil.copytree(index_dir, tmp_path / "index"),
        "clems": clems,
    }


def test_evaluate_refuses_a_report_over_its_own_inputs(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out C/movies.csv` (M/model.json, M/model.weights.h5, I/index.json, D/clems.json) replaced the input with
    the report, exit 0; so did the same file reached through a link or `..`."""
    the_work_must_not_start(
        monkeypatch,
        "model.__main__.import_tensorflow",
        "embedding.__main__.import_tensorflow",
        "model.evaluation.evaluate",
        "embedding.pipeline.evaluate_with_clems",
    )
    catalog, model, index, clems = inputs["catalog"], inputs["model"], inputs["index"], inputs["clems"]
    before = {name: contents(directory) for name, directory in inputs.items()}
    (tmp_path / "linked-model").symlink_to(model)
    model_evaluate = ("evaluate", "--catalog", catalog, "--model", model, "--index", index)
    embed_evaluate = ("embed", "evaluate", "--catalog", catalog, "--model", model, "--index", index, "--clems", clems)
    cases = [
        (model_evaluate, catalog / "movies.csv", f"catalog directory {catalog}"),
        (model_evaluate, model / "model.json", f"model directory {model}"),
        (model_evaluate, model / "model.weights.h5", f"model directory {model}"),
        (model_evaluate, index / "index.json", f"index directory {index}"),
        (model_evaluate, tmp_path / "linked-model" / "split.json", f"model directory {model}"),
        (model_evaluate, catalog / ".." / "catalog" / "movies.csv", f"catalog directory {catalog}"),
        (model_evaluate, catalog / "posters" / "new" / "report.json", f"catalog directory {catalog}"),
        (embed_evaluate, clems / "clems.json", f"CLEMS directory {clems}"),
        (embed_evaluate, model / "model.json", f"model directory {model}"),
        (embed_evaluate, index / "index.json", f"index directory {index}"),
    ]
    for arguments, out, where in cases:
        answer = run(*arguments, "--out", out)
        assert answer.exit_code == 1, answer.output
        assert one_line(answer.output) == (
            f"Error: cannot write the report to {out}: it is inside the {where}, an input of this command, which it "
            "would damage; name a file elsewhere"
        )
    assert {name: contents(directory) for name, directory in inputs.items()} == before


def test_the_report_may_go_where_it_goes_by_default_or_outside_the_inputs(tmp_path: Path) -> None:
    """The default report (evaluation-CATALOG.json in the model or CLEMS directory) is not refused, nor another
    evaluation report there, nor a file outside every input."""
    from model.evaluation import check_report_path

    model, catalog = tmp_path / "model", tmp_path / "catalog"
    model.mkdir()
    catalog.mkdir()
    named = {"catalog directory": catalog, "model directory": model, "index directory": None}
    for out in (model / "evaluation-catalog.json", model / "evaluation-other.json", tmp_path / "reports" / "e.json"):
        check_report_path(out, named, report_dir=model)
    with pytest.raises(ValueError, match="it is inside the model directory"):
        check_report_path(model / "notes.json", named, report_dir=model)


@pytest.fixture
def partial(demo_catalog_dir: Path, trained, index_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A catalog of the demo catalog's first PARTIAL_MOVIES rows, and its index (the demo index's first rows)."""
    from model.index import DESCRIPTION_FILE, EVOKED_FILE, FEATURES_FILE, PROBABILITIES_FILE

    catalog_dir = shutil.copytree(demo_catalog_dir, tmp_path / "partial")
    write_movies_csv(catalog_dir, read_catalog(demo_catalog_dir).movies[:PARTIAL_MOVIES])
    partial_index = shutil.copytree(index_dir, tmp_path / "partial-index")
    description = json.loads((partial_index / DESCRIPTION_FILE).read_text())
    description["imdb_ids"] = description["imdb_ids"][:PARTIAL_MOVIES]
    (partial_index / DESCRIPTION_FILE).write_text(json.dumps(description) + "\n")
    for name in (FEATURES_FILE, PROBABILITIES_FILE):
        np.save(partial_index / name, np.load(partial_index / name)[:PARTIAL_MOVIES])
    with np.load(partial_index / EVOKED_FILE) as stored:
        evoked = {name: stored[name][:PARTIAL_MOVIES] for name in stored.files}
    np.savez(partial_index / EVOKED_FILE, **evoked)
    return catalog_dir, partial_index


def test_part_of_the_held_out_split_is_evaluated_without_the_movies_the_model_trained_on(
    partial: tuple[Path, Path], trained, tmp_path: Path
) -> None:
    """A catalog holding part of the test split was evaluated on every movie with a target genre, those of the
    training and validation splits included, as if unseen."""
    from model.evaluation import evaluation_movies
    from model.split import with_target_genres

    result, model_dir = trained
    catalog = read_catalog(partial[0])
    split = result.split
    assert not all(imdb_id in catalog for imdb_id in split.test)  # the fallback, not the test split
    seen = set(split.train) | set(split.validation)
    targets = [movie.imdb_id for movie in with_target_genres(catalog.movies)]
    unseen = [imdb_id for imdb_id in targets if imdb_id not in seen]
    assert unseen and len(unseen) < len(targets)
    ids, which = evaluation_movies(catalog, model_dir)
    phrase = f"every movie with a target genre, less the {len(targets) - len(unseen)} the model trained or validated on"
    assert ids == unseen and which == phrase
    answer = run("evaluate", "--catalog", partial[0], "--model", model_dir, "--out", tmp_path / "e.json")
    assert answer.exit_code == 0, answer.output
    assert f"{len(unseen)} movies, {phrase}" in answer.output
    assert json.loads(answer.output.strip().splitlines()[-1])["model"]["n"] == len(unseen)


def test_a_catalog_of_movies_the_model_trained_on_is_refused(trained, demo_catalog, tmp_path: Path) -> None:
    from model.evaluation import checked_evaluation_movies, evaluation_movies

    result, model_dir = trained
    catalog_dir = shutil.copytree(demo_catalog.directory, tmp_path / "trained-on")
    write_movies_csv(catalog_dir, [demo_catalog.get(imdb_id) for imdb_id in result.split.train[:10]])
    catalog = read_catalog(catalog_dir)
    assert evaluation_movies(catalog, model_dir)[0] == []
    with pytest.raises(CatalogError, match=f"is one that {model_dir} trained or validated on"):
        checked_evaluation_movies(catalog, model_dir)


def test_a_catalog_without_a_target_genre_is_refused_before_the_model_loads(
    trained, demo_catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It ended in "Error: need at least one array to concatenate", once the model was loaded and run on nothing."""
    from model.evaluation import evaluate

    the_work_must_not_start(
        monkeypatch,
        "model.__main__.import_tensorflow",
        "model.evaluation.GenreModel.load",
        "model.index.FeatureIndex.load",
    )
    catalog_dir = shutil.copytree(demo_catalog.directory, tmp_path / "westerns")
    write_movies_csv(catalog_dir, [replace(movie, genres=("Western",)) for movie in demo_catalog.movies[:8]])
    message = f"no movie of {catalog_dir} has a target genre {TARGET_GENRES}: there is nothing to evaluate"
    with pytest.raises(CatalogError) as refused:
        evaluate(read_catalog(catalog_dir), trained[1], progress=False)
    assert str(refused.value) == message
    answer = run("evaluate", "--catalog", catalog_dir, "--model", trained[1], "--out", tmp_path / "e.json")
    assert answer.exit_code == 1 and one_line(answer.output) == f"Error: {message}"
    assert not (tmp_path / "e.json").exists()


def test_embed_fit_and_recommend_eval_name_the_split_movies_the_catalog_lacks(
    partial: tuple[Path, Path], trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Both ended in a KeyError's traceback naming one id."""
    from bench import recommend_quality

    result, model_dir = trained
    catalog_dir, partial_index = partial
    catalog = read_catalog(catalog_dir)
    the_work_must_not_start(monkeypatch, "embedding.clems.CLEMS.fit")

    def lacking(ids: list[str]) -> int:
        return sum(imdb_id not in catalog for imdb_id in ids)

    train = result.split.train
    answer = run(
        "embed",
        "fit",
        "--catalog",
        catalog_dir,
        "--model",
        model_dir,
        "--index",
        partial_index,
        "--out",
        tmp_path / "c",
    )
    assert answer.exit_code == 1 and one_line(answer.output) == (
        f"Error: {catalog_dir} does not hold the training split of {model_dir}: {lacking(train)} of its {len(train)} "
        "movies are missing"
    )
    assert not (tmp_path / "c").exists()
    served = ["--catalog", str(catalog_dir), "--index", str(partial_index), "--model", str(model_dir)]
    for held_out, known, what in (
        ("test", train + result.split.validation, "the training and validation splits"),
        ("validation", train, "the training split"),
    ):
        monkeypatch.setattr(sys, "argv", ["recommend_quality.py", *served, "--held-out", held_out])
        with pytest.raises(SystemExit) as stopped:
            recommend_quality.main()
        error = capsys.readouterr().err
        assert stopped.value.code == 1 and "Traceback" not in error
        missing = f"{lacking(known)} of its {len(known)} movies are missing"
        assert error == f"Error: {catalog_dir} does not hold {what} of {model_dir}: {missing}\n"


def test_seeds_out_of_numpy_range_are_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`embed fit --seed 4294967296` and `recommend-eval --seed -1` ended in numpy's traceback."""
    from bench import recommend_quality

    paths = ["--catalog", tmp_path, "--model", tmp_path, "--index", tmp_path]
    answer = run("embed", "fit", *paths, "--out", tmp_path / "c", "--seed", 2**32)
    assert answer.exit_code == 2 and "Invalid value for '--seed'" in answer.output
    answer = run("embed", "fit", *paths, "--out", tmp_path / "c", "--seed", 2**32 - 1)
    assert "Invalid value" not in answer.output  # the largest seed: refused for the paths, not for itself
    for seed in ("-1", str(2**32), "one"):
        monkeypatch.setattr(sys, "argv", ["recommend_quality.py", *map(str, paths), "--seed", seed])
        with pytest.raises(SystemExit) as stopped:
            recommend_quality.main()
        error = capsys.readouterr().err
        assert stopped.value.code == 2 and "Traceback" not in error
        assert (
            error.strip()
            .splitlines()[-1]
            .endswith(f"error: argument --seed: {seed!r} is not a seed: give a whole number from 0 to {2**32 - 1}")
        )
