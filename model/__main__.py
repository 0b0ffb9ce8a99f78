"""Command line for the model stage: `python -m model train`, `index`, `evaluate`, `tune-thresholds` and
`export-onnx`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from model.command_checks import Stage, check_keras_model, check_weights_file, import_tensorflow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if TYPE_CHECKING:
    from catalog import Catalog


def checked_catalog(catalog_dir: Path) -> Catalog:
    """The catalog, read, with every poster decoded before a long job starts (`model.images.check_posters`: a few
    seconds for 10,000 posters), so that all the damaged ones are named at once, not the first of them minutes in."""
    from catalog import read_catalog
    from model.images import check_posters

    catalog = read_catalog(catalog_dir)
    check_posters(catalog)
    return catalog


@click.group(cls=Stage)
def cli() -> None:
    """Train the genre model, index a catalog's posters, and export the model to ONNX for serving."""


@cli.command()
@click.option("--catalog", "catalog_dir", required=True, envvar="POSTERBENCH_CATALOG", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="model directory to write")
@click.option(
    "--weights",
    envvar="POSTERBENCH_WEIGHTS",
    default="imagenet",
    show_default=True,
    help="'imagenet' (Keras downloads them) or the path of vgg16_imagenet_notop.h5",
)
@click.option("--preset", default="demo", show_default=True, help="default, fast, paper or demo")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="override the preset's number of epochs")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--keep-cache", is_flag=True, help="keep the cached frozen-layer outputs, for another training run")
def train(
    catalog_dir: Path,
    out_dir: Path,
    weights: str,
    preset: str,
    epochs: int | None,
    seed: int,
    keep_cache: bool,
) -> None:
    """Train a genre model on a catalog and report on its held-out test split."""
    from catalog import CatalogError, OutputNotWritableError, check_output
    from model.artifacts import DESCRIPTION_FILE
    from model.presets import get_preset

    try:  # all that can be checked without TensorFlow, whose import alone takes seconds
        chosen = get_preset(preset)
        check_output(out_dir, DESCRIPTION_FILE)
        catalog = checked_catalog(catalog_dir)
        check_weights_file(weights)
    except (CatalogError, OutputNotWritableError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    import_tensorflow()
    from model.network import WeightsError
    from model.train import REPORT_TEXT_FILE
    from model.train import train as train_model

    try:
        result = train_model(catalog, chosen, weights, out_dir, seed=seed, epochs=epochs, keep_cache=keep_cache)
    except (CatalogError, WeightsError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo((out_dir / REPORT_TEXT_FILE).read_text())
    click.echo(f"model saved in {out_dir} (test micro-F1 {result.report['micro_f1']:.3f})")


@cli.command()
@click.option("--catalog", "catalog_dir", required=True, envvar="POSTERBENCH_CATALOG", type=click.Path(path_type=Path))
@click.option("--model", "model_dir", required=True, envvar="POSTERBENCH_MODEL", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="index directory to write")
@click.option(
    "--precision",
    envvar="POSTERBENCH_PRECISION",
    type=click.Choice(["auto", "float32", "int8"]),
    default="auto",
    show_default=True,
    help="which ONNX export to index with, as the app chooses what to serve (auto: int8 when its check passed)",
)
def index(catalog_dir: Path, model_dir: Path, out_dir: Path, precision: str) -> None:
    """Compute every catalog poster's genre probabilities and feature vector with the model as the app serves it:
    its ONNX export (int8 when its check passed) on every core, or the Keras model when it has no export."""
    from catalog import CatalogError, OutputInUseError, OutputNotWritableError, check_output
    from model.artifacts import ModelArtifactError
    from model.images import PosterImageError
    from model.index import DESCRIPTION_FILE, build_index, served_model
    from model.onnx_model import PrecisionSettingError, has_export

    refused = (
        CatalogError,
        ModelArtifactError,
        PosterImageError,
        PrecisionSettingError,
        OutputInUseError,
        OutputNotWritableError,
    )
    try:
        check_output(out_dir, DESCRIPTION_FILE)  # before the posters are checked, the model loaded and all indexed
        catalog = checked_catalog(catalog_dir)
        if precision != "int8" and not has_export(model_dir):  # served_model loads the Keras model
            check_keras_model(model_dir)
            import_tensorflow()
        model = served_model(model_dir, precision=precision)
        built = build_index(catalog, model, model_dir, out_dir)
    except refused as error:
        raise click.ClickException(str(error)) from error
    runtime = f"ONNX Runtime, {built.precision}" if hasattr(model, "session") else "Keras"
    click.echo(f"indexed {len(built.imdb_ids)} posters into {out_dir} ({runtime})")


@cli.command()
@click.option("--catalog", "catalog_dir", required=True, envvar="POSTERBENCH_CATALOG", type=click.Path(path_type=Path))
@click.option("--model", "model_dir", required=True, envvar="POSTERBENCH_MODEL", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_file", type=click.Path(path_type=Path), help="JSON report (default: in the model directory)"
)
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    help="the catalog's index by this model: also score what the app serves (its probabilities, int8 or float32)",
)
def evaluate(catalog_dir: Path, model_dir: Path, out_file: Path | None, index_dir: Path | None) -> None:
    """Score the model and two constant baselines on a catalog (and, with --index, what the app serves); the last
    line is one JSON object."""

    from catalog import CatalogError, OutputInUseError, OutputNotWritableError, read_catalog
    from model.artifacts import ModelArtifactError
    from model.evaluation import check_report_path, checked_evaluation_movies, publish, report_name
    from model.evaluation import evaluate as evaluate_model
    from model.images import PosterImageError
    from model.index import FeatureIndex, FeatureIndexError

    refused = (
        CatalogError,
        ModelArtifactError,
        PosterImageError,
        FeatureIndexError,
        OutputInUseError,
        OutputNotWritableError,
        ValueError,
    )
    inputs = {"catalog directory": catalog_dir, "model directory": model_dir, "index directory": index_dir}
    try:
        catalog = read_catalog(catalog_dir)
        out_file = out_file or model_dir / report_name(catalog)
        # before the evaluation, which a report that cannot be written would lose, and which must not damage its inputs
        check_report_path(out_file, inputs, report_dir=model_dir)
        checked_evaluation_movies(catalog, model_dir)  # nothing to evaluate: refused before TensorFlow loads
        index = None if index_dir is None else FeatureIndex.load(index_dir, catalog, model_dir)
        check_keras_model(model_dir)
        import_tensorflow()
        reports, text = evaluate_model(catalog, model_dir, index=index)
    except refused as error:
        raise click.ClickException(str(error)) from error
    click.echo(publish(reports, text, out_file))


@cli.command("tune-thresholds")
@click.option("--catalog", "catalog_dir", required=True, envvar="POSTERBENCH_CATALOG", type=click.Path(path_type=Path))
@click.option("--model", "model_dir", required=True, envvar="POSTERBENCH_MODEL", type=click.Path(path_type=Path))
def tune_thresholds_command(catalog_dir: Path, model_dir: Path) -> None:
    """Tune a saved model's per-genre thresholds again on its validation split (micro-F1 + macro-F1)."""
    from catalog import CatalogError, read_catalog
    from model.artifacts import ModelArtifactError
    from model.evaluation import retune_thresholds, validation_ids

    try:
        catalog = read_catalog(catalog_dir)
        check_keras_model(model_dir)
        validation_ids(catalog, model_dir)  # a missing split or one the catalog lacks: refused before TensorFlow loads
        import_tensorflow()
        thresholds = retune_thresholds(catalog, model_dir)
    except (CatalogError, ModelArtifactError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo("thresholds: " + ", ".join(f"{t:.2f}" for t in thresholds) + f" (saved in {model_dir}/model.json)")


@cli.command("export-onnx")
@click.option("--model", "model_dir", required=True, envvar="POSTERBENCH_MODEL", type=click.Path(path_type=Path))
@click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(path_type=Path),
    help="check on its posters (default: random ones); the int8 export is calibrated and checked on it",
)
@click.option(
    "--check-posters",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="posters the export is checked on",
)
@click.option(
    "--int8/--no-int8",
    default=True,
    show_default=True,
    help="also write the int8 export and its check (needs --catalog)",
)
@click.option("--int8-only", is_flag=True, help="quantize the existing float32 export again, leaving it as it is")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    help="a float32 index of this model and catalog: spares the int8 check's float32 pass over the catalog",
)
@click.option(
    "--calibration-posters",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="training and validation posters the int8 export is calibrated on",
)
@click.option(
    "--int8-ops",
    default="Conv,Relu,MaxPool",
    show_default=True,
    help="the operator types quantized, comma-separated (the variants bench/README compares)",
)
@click.option(
    "--int8-calibration",
    type=click.Choice(["MinMax", "Percentile", "Entropy"]),
    default="MinMax",
    show_default=True,
    help="how the activations' ranges are calibrated",
)
@click.option("--int8-exclude", multiple=True, help="a node left in float32 (repeat the option for several)")
def export_onnx_command(
    model_dir: Path,
    catalog_dir: Path | None,
    check_posters: int,
    int8: bool,
    int8_only: bool,
    index_dir: Path | None,
    calibration_posters: int,
    int8_ops: str,
    int8_calibration: str,
    int8_exclude: tuple[str, ...],
) -> None:
    """Export a trained model to ONNX (model.onnx, model.onnx.data, model.onnx.json beside its weights), which the
    app then serves with ONNX Runtime instead of TensorFlow; refused unless it predicts what Keras predicts. With a
    catalog, also its int8 form (model.int8.onnx*), statically quantized, calibrated on training and validation
    posters and checked against float32 on the held-out split; the app serves it when that check passed."""
    from catalog import CatalogError
    from model.artifacts import ModelArtifactError
    from model.images import PosterImageError
    from model.onnx_export import ExportError, export_onnx

    if (int8 or int8_only) and catalog_dir is None:
        typed = click.get_current_context().get_parameter_source("int8") is ParameterSource.COMMANDLINE
        if int8_only or typed:
            option = "--int8-only" if int8_only else "--int8"
            raise click.UsageError(f"{option} needs --catalog: the int8 export is calibrated and checked on it")
        click.echo("no --catalog: the int8 export, calibrated and checked on a catalog, is not written")
        int8 = False
    try:
        if int8 or int8_only:
            from model.int8_check import float32_index
            from model.quantization import QuantizationSettings, check_op_names

            catalog = checked_catalog(catalog_dir)  # the int8 export is calibrated and checked on its posters
            settings = QuantizationSettings(
                calibration=int8_calibration,
                op_types=tuple(op.strip() for op in int8_ops.split(",") if op.strip()),
                nodes_to_exclude=int8_exclude,
            )
            check_op_names(settings.op_types)  # before the float32 export is written again
            unused = index_dir and float32_index(index_dir, catalog, model_dir)
            if isinstance(unused, str):
                click.echo(f"--index {index_dir} not used: {unused}; the check predicts the catalog in float32 itself")
        if not int8_only:
            check_keras_model(model_dir)
            import_tensorflow()  # the Keras model is exported (the int8 export needs ONNX Runtime alone)
            check = export_onnx(model_dir, catalog_dir, check_posters)
            click.echo(
                f"exported {model_dir}/model.onnx; largest difference from Keras on {check.posters}: "
                f"{check.probabilities:.2g} (probabilities), {check.features:.2g} (features), "
                f"{check.evoked:.2g} (decades, year, rating)"
            )
        if int8 or int8_only:
            from model.quantization import export_int8

            result = export_int8(model_dir, catalog_dir, calibration_posters, index_dir, settings=settings)
            verdict = "passed: served" if result.passed else "failed: float32 is served"
            click.echo(f"exported {model_dir}/model.int8.onnx; its check on {result.held_out} {verdict}")
            click.echo(f"  {result.summary}")
            for reason in result.reasons:
                click.echo(f"  {reason}")
    except (ModelArtifactError, ExportError, CatalogError, PosterImageError) as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    sys.exit(cli())
