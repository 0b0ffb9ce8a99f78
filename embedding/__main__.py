"""Command line for the embedding stage: `python -m embedding fit` and `python -m embedding evaluate`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from embedding import MAX_SEED
from model.command_checks import Stage, check_keras_model, import_tensorflow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PATH = click.Path(path_type=Path)


@click.group(cls=Stage)
def cli() -> None:
    """Fit CLEMS on a genre model's feature vectors and evaluate model + CLEMS."""


@cli.command()
@click.option("--catalog", "catalog_dir", required=True, envvar="POSTERBENCH_CATALOG", type=PATH)
@click.option("--model", "model_dir", required=True, envvar="POSTERBENCH_MODEL", type=PATH)
@click.option("--index", "index_dir", required=True, envvar="POSTERBENCH_INDEX", type=PATH)
@click.option("--out", "out_dir", required=True, type=PATH, help="CLEMS directory to write")
@click.option("--cost", type=click.Choice(["hamming", "rank", "f1", "jaccard"]), default="hamming", show_default=True)
@click.option("--trees", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
def fit(catalog_dir: Path, model_dir: Path, index_dir: Path, out_dir: Path, cost: str, trees: int, seed: int) -> None:
    """Fit CLEMS on the training split's feature vectors and save it."""
    from catalog import CatalogError, OutputInUseError, check_output
    from embedding import DESCRIPTION_FILE
    from embedding.pipeline import fit_clems
    from model.artifacts import ModelArtifactError

    try:
        check_output(out_dir, DESCRIPTION_FILE)  # before the index is read (fit_clems checks again before the forests)
    except (OutputInUseError, OSError) as error:
        raise click.ClickException(str(error)) from error
    catalog, index = _load(catalog_dir, index_dir, model_dir)
    try:
        fit_clems(catalog, model_dir, index, out_dir, cost=cost, n_estimators=trees, seed=seed)
    except (CatalogError, OutputInUseError, ModelArtifactError, OSError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"CLEMS ({cost} cost, {trees} trees) saved in {out_dir}")


@cli.command()
@click.option("--catalog", "catalog_dir", required=True, envvar="POSTERBENCH_CATALOG", type=PATH)
@click.option("--model", "model_dir", required=True, envvar="POSTERBENCH_MODEL", type=PATH)
@click.option("--index", "index_dir", required=True, envvar="POSTERBENCH_INDEX", type=PATH)
@click.option("--clems", "clems_dir", required=True, type=PATH)
@click.option("--out", "out_file", type=PATH, help="JSON report (default: in the CLEMS directory)")
def evaluate(catalog_dir: Path, model_dir: Path, index_dir: Path, clems_dir: Path, out_file: Path | None) -> None:
    """Score the model, model + CLEMS and two constant baselines; the last line is one JSON object."""
    from embedding import check_fitted_for
    from embedding.clems import CLEMS
    from embedding.pipeline import evaluate_with_clems
    from model.artifacts import ModelArtifactError
    from model.evaluation import check_report_path, checked_evaluation_movies, publish, report_name

    catalog, index = _load(catalog_dir, index_dir, model_dir)
    inputs = {
        "catalog directory": catalog_dir,
        "model directory": model_dir,
        "index directory": index_dir,
        "CLEMS directory": clems_dir,
    }
    try:
        out_file = out_file or clems_dir / report_name(catalog)
        # before the evaluation, which a report that cannot be written would lose, and which must not damage its inputs
        check_report_path(out_file, inputs, report_dir=clems_dir)
        checked_evaluation_movies(catalog, model_dir)  # nothing to evaluate: refused before TensorFlow loads
        check_fitted_for(clems_dir, model_dir)
        clems = CLEMS.load(clems_dir)
        check_keras_model(model_dir)
        import_tensorflow()
        reports, text = evaluate_with_clems(catalog, model_dir, index, clems)
    except (ModelArtifactError, ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(publish(reports, text, out_file))


def _load(catalog_dir: Path, index_dir: Path, model_dir: Path):
    from catalog import CatalogError, read_catalog
    from model.artifacts import ModelArtifactError
    from model.index import FeatureIndex, FeatureIndexError

    try:
        catalog = read_catalog(catalog_dir)
        return catalog, FeatureIndex.load(index_dir, catalog, model_dir)
    except (CatalogError, FeatureIndexError, ModelArtifactError) as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    cli()
