"""The genre model served by ONNX Runtime: the export of real Keras models (global average pooling, trained; and the
paper's flatten head, built) predicts what Keras predicts, its weights are memory-mappable, a stale or damaged
export is refused with the command that writes it again, and gunicorn workers serving an export load no TensorFlow
(tests/test_packaging.py checks that serving from an export imports no TensorFlow, Keras or ONNX at all)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog import GENRES
from model.artifacts import WEIGHTS_FILE, GenreModel
from model.images import load_poster, preprocess
from model.onnx_export import ALIGNMENT, ExportError, export_onnx
from model.onnx_model import (
    EXPORT_FILE,
    ONNX_DATA_FILE,
    ONNX_FILE,
    OnnxExportError,
    OnnxGenreModel,
    StaleExportError,
    has_export,
)
from model.presets import DEFAULT, PAPER
from tests.conftest import built_once, digest_files, every_file, untrained_model

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def avg_model_dir(onnx_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained demo model (global average pooling) and its export (the session's, exported once), copied."""
    return shutil.copytree(onnx_model_dir, tmp_path_factory.mktemp("onnx") / "avg")


@pytest.fixture(scope="module")
def avg_keras_model(trained) -> GenreModel:
    """The trained demo model's Keras network (the session's, loaded once), for the tests that only read it."""
    return trained[0].model


@pytest.fixture(scope="module")
def flatten_model_dir(training_weights: Path, request: pytest.FixtureRequest) -> Path:
    """The paper's network (100 px, flatten, block 5 of its own) with a small dense head, built and exported (once,
    kept in pytest's cache as the trained models are)."""
    preset = replace(PAPER, head_units=(64, 100))

    def build(out: Path) -> None:
        import keras

        from model.network import build_network, check_weights

        keras.utils.set_random_seed(3)
        network = build_network(preset, len(GENRES), 3, weights=check_weights(training_weights))
        untrained_model(network, preset).save(out / "flatten")
        export_onnx(out / "flatten", check_posters=2)  # its own check; test_the_export_predicts_... compares on 10

    weights = digest_files([training_weights], training_weights.parent)
    inputs = {"preset": preset.to_dict(), "seed": 3, "weights": weights}
    return built_once(request, "flatten-onnx", inputs, build)[0] / "flatten"


def demo_posters(demo_catalog, input_size: tuple[int, int], n: int = 10) -> np.ndarray:
    """The demo catalog's first `n` posters as a model of `input_size` (width, height) takes them."""
    return np.stack([load_poster(demo_catalog.poster_path(movie), input_size) for movie in demo_catalog.movies[:n]])


def blank_posters(input_size: tuple[int, int], n: int = 1, grey: int = 90) -> np.ndarray:
    """`n` grey posters of `input_size` (width, height)."""
    width, height = input_size
    return np.full((n, height, width, 3), grey, np.uint8)


def test_preprocessing_is_kerass_own_without_keras() -> None:
    from keras.applications.vgg16 import preprocess_input

    batch = np.random.default_rng(0).integers(0, 256, (3, 17, 11, 3), dtype=np.uint8)
    ours = preprocess(batch)
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, preprocess_input(batch.astype(np.float32)))
    assert ours[0, 0, 0, 0] == np.float32(batch[0, 0, 0, 2]) - np.float32(103.939)  # BGR, blue's mean first


@pytest.mark.parametrize("pooling", ["avg", "flatten"])
def test_the_export_predicts_what_keras_predicts(pooling: str, request, demo_catalog) -> None:
    directory = request.getfixturevalue(f"{pooling}_model_dir")
    keras_model = request.getfixturevalue("avg_keras_model") if pooling == "avg" else GenreModel.load(directory)
    onnx_model = OnnxGenreModel.load(directory)
    assert onnx_model.preset == keras_model.preset and onnx_model.preset.pooling == pooling
    assert onnx_model.genres == keras_model.genres and onnx_model.input_size == keras_model.preset.input_size
    posters = demo_posters(demo_catalog, onnx_model.input_size)
    np.testing.assert_array_equal(onnx_model.thresholds, keras_model.thresholds)
    expected = keras_model.predict(posters)
    n_decades = len(keras_model.description.decades)
    for batch_size in (64, 3):  # one batch, and batches of 3 with a short last one
        found = onnx_model.predict(posters, batch_size=batch_size)
        assert found.genres.shape == (10, 6) and found.features.shape == (10, 100)
        assert found.decades.shape == (10, n_decades) and found.year.shape == found.rating.shape == (10,)
        assert found.genres.dtype == found.features.dtype == np.float32
        np.testing.assert_allclose(found.genres, expected.genres, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(found.features, expected.features, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(found.decades, expected.decades, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(found.year, expected.year, rtol=0, atol=2000 * TOLERANCE)
        np.testing.assert_allclose(found.rating, expected.rating, rtol=0, atol=10 * TOLERANCE)
        assert np.mean(found.poster_score == expected.poster_score) >= 0.9  # a rank: rounding may move one
    assert found.features.std() > 0.01 and np.ptp(found.genres) > 0.01  # the comparison is not between constants
    empty = onnx_model.predict(posters[:0])
    assert empty.genres.shape == (0, 6) and empty.features.shape == (0, 100) and empty.decades.shape == (0, n_decades)


def test_the_posters_shape_and_the_wide_frozen_pool_export_as_keras_computes_them(
    training_weights: Path, demo_catalog, tmp_path: Path
) -> None:
    """The default preset's network: a poster taller than wide, block 5 fine-tuned beside a frozen ImageNet copy of it,
    and the frozen pool of blocks 3, 4 and that copy (here untrained and small)."""
    import keras

    from model.network import build_network, check_weights

    preset = replace(DEFAULT, input_size=(32, 48), head_units=(16, 100))  # block 5: 3 tall, 2 wide
    keras.utils.set_random_seed(4)
    network = build_network(preset, len(GENRES), 3, weights=check_weights(training_weights))
    for name in ("block5_conv1", "block5_conv3"):  # the copy starts as block 5's weights and never trains
        copy = network.get_layer(f"imagenet_{name}")
        np.testing.assert_array_equal(copy.get_weights()[0], network.get_layer(name).get_weights()[0])
        assert not copy.trainable and network.get_layer(name).trainable
    assert network.get_layer("frozen_pool").output.shape[-1] == 2 * (256 + 512 + 512)
    for head in ("year", "rating"):  # random heads on 2,560 raw pooled values give ratings in the hundreds
        kernel, bias = network.get_layer(head).get_weights()
        network.get_layer(head).set_weights([kernel / 100, bias])
    keras_model = untrained_model(network, preset)
    keras_model.save(tmp_path / "tall")
    export_onnx(tmp_path / "tall", check_posters=4)  # checked against Keras on random posters, or refused

    onnx_model = OnnxGenreModel.load(tmp_path / "tall")
    assert onnx_model.input_size == (32, 48)
    posters = np.stack([load_poster(demo_catalog.poster_path(movie), (32, 48)) for movie in demo_catalog.movies[:4]])
    assert posters.shape == (4, 48, 32, 3)
    expected = keras_model.predict(posters)  # the network exported (export_onnx read it back from its files)
    found = onnx_model.predict(posters)
    np.testing.assert_allclose(found.genres, expected.genres, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(found.decades, expected.decades, rtol=0, atol=TOLERANCE)
    with pytest.raises(ValueError):
        onnx_model.predict(np.zeros((1, 32, 48, 3), np.uint8))  # the shape turned: refused, not guessed


def test_the_weights_are_one_page_aligned_file_beside_a_small_graph(flatten_model_dir: Path) -> None:
    import onnx

    graph = onnx.load(str(flatten_model_dir / ONNX_FILE), load_external_data=False).graph
    data_size = (flatten_model_dir / ONNX_DATA_FILE).stat().st_size
    assert (flatten_model_dir / ONNX_FILE).stat().st_size < 64 * 1024
    ends = []
    for tensor in graph.initializer:
        assert tensor.data_location == onnx.TensorProto.EXTERNAL and not tensor.raw_data, tensor.name
        entries = {entry.key: entry.value for entry in tensor.external_data}
        assert entries["location"] == ONNX_DATA_FILE
        offset, length = int(entries["offset"]), int(entries["length"])
        assert offset % ALIGNMENT == 0 and offset % os.sysconf("SC_PAGE_SIZE") == 0
        assert length == 4 * int(np.prod(tensor.dims)) and tensor.data_type == onnx.TensorProto.FLOAT
        ends.append(offset + length)
    # 13 convolutions, 2 dense layers in the trunk and 4 heads (genres, decades, year, rating)
    assert max(ends) == data_size and len(graph.initializer) == 2 * (13 + 2 + 4)
    layers = [node.op_type for node in graph.node]
    assert layers.count("Conv") == 13 and layers.count("MaxPool") == 4 and layers.count("Gemm") == 6
    transpose_back = next(node for node in graph.node if node.name == "flatten/to_nhwc")
    assert list(transpose_back.attribute[0].ints) == [0, 2, 3, 1]  # Keras flattens (h, w, c)


def test_a_model_retrained_since_its_export_is_refused(avg_model_dir: Path, app_settings: dict, tmp_path: Path) -> None:
    copy = shutil.copytree(avg_model_dir, tmp_path / "model")
    OnnxGenreModel.load(copy)  # copytree keeps the weights' time: fresh
    os.utime(copy / WEIGHTS_FILE)  # touched, same bytes: the content hash says it is still fresh
    OnnxGenreModel.load(copy)
    keras_model = GenreModel.load(copy)
    kernel, bias = keras_model.network.get_layer("genres").get_weights()
    keras_model.network.get_layer("genres").set_weights([kernel + 0.5, bias])
    keras_model.save(copy)  # trained again
    with pytest.raises(StaleExportError) as raised:
        OnnxGenreModel.load(copy)
    message = str(raised.value)
    assert f"{copy / ONNX_FILE} was exported from other weights than {copy / WEIGHTS_FILE}" in message
    assert f"posterbench export-onnx --model {copy}" in message and "make onnx" in message
    from app import create_app

    with pytest.raises(StaleExportError, match="export-onnx"):
        create_app({**app_settings, "MODEL": str(copy)})
    export_onnx(copy, check_posters=2)  # its own check, on 2 random posters; and this test's, on a black one
    black = blank_posters(keras_model.input_size, grey=0)
    np.testing.assert_allclose(
        OnnxGenreModel.load(copy).predict(black).genres, keras_model.predict(black).genres, atol=TOLERANCE
    )


@pytest.mark.parametrize("failure", ["ctrl-c", "differs from keras"])
def test_an_export_stopped_half_way_or_refused_leaves_the_previous_one_as_it_was(
    failure: str, avg_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during `export-onnx` left a new model.onnx and model.onnx.data without their record: the export that
    had been served was gone, and the app, `index` and the int8 export refused the directory until exported again."""
    import model.onnx_export as onnx_export

    copy = shutil.copytree(avg_model_dir, tmp_path / "model")
    before = every_file(copy)

    def stopped(*arguments: object) -> onnx_export.ExportCheck:
        if failure == "ctrl-c":
            raise KeyboardInterrupt
        return onnx_export.ExportCheck("2 random posters", 0.5, 0.0, 0.0)

    monkeypatch.setattr(onnx_export, "compare", stopped)  # once the new files are written and loaded
    with pytest.raises(KeyboardInterrupt if failure == "ctrl-c" else ExportError):
        export_onnx(copy, check_posters=2)
    assert every_file(copy) == before  # no partial file left; the export, its record and the weights unchanged
    assert OnnxGenreModel.load(copy).precision == "float32"


def test_export_onnx_command_writes_the_export_and_says_what_is_missing(
    trained, demo_catalog_dir: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from model.__main__ import cli

    copy = shutil.copytree(trained[1], tmp_path / "model")
    assert not has_export(copy)
    arguments = ["export-onnx", "--model", str(copy), "--catalog", str(demo_catalog_dir), "--check-posters", "6"]
    arguments.append("--no-int8")  # the int8 export and its check: tests/test_int8_serving.py
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    assert f"exported {copy}/model.onnx; largest difference from Keras on 6 posters of {demo_catalog_dir}" in (
        result.output
    )
    assert {ONNX_FILE, ONNX_DATA_FILE, EXPORT_FILE} <= {path.name for path in copy.iterdir()}
    assert not [path.name for path in copy.iterdir() if path.name.endswith(".partial")]
    description = json.loads((copy / EXPORT_FILE).read_text())
    assert description["source"]["size"] == (copy / WEIGHTS_FILE).stat().st_size
    assert description["checked_on"] == f"6 posters of {demo_catalog_dir}"
    assert max(description["largest_difference"].values()) <= TOLERANCE
    result = CliRunner().invoke(cli, ["export-onnx", "--model", str(tmp_path / "absent")])
    assert result.exit_code != 0 and "model.json is missing" in result.output


def test_without_an_export_the_app_serves_keras(app_settings: dict, trained) -> None:
    from app import create_app
    from app.resources import get_resources

    with create_app({**app_settings, "MODEL": str(trained[1])}).app_context():
        assert isinstance(get_resources().model, GenreModel)


def test_without_an_export_or_a_model_the_app_says_which_not_that_keras_is_missing(
    app_settings: dict, trained, tmp_path: Path, monkeypatch
) -> None:
    """On the serving install (no Keras), a model directory without its export, or with no model at all, stopped the
    app with "No module named keras" (a traceback in gunicorn's workers) or the command line's "pip install
    'posterbench[train]'"."""
    import importlib.util

    from app import create_app

    with pytest.raises(
        RuntimeError,
        match=r"nowhere/model.json is missing: no trained model in .*nowhere \(make train / posterbench train\)$",
    ):
        create_app({**app_settings, "MODEL": str(tmp_path / "nowhere")})
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "keras" else find_spec(name))
    with pytest.raises(RuntimeError, match=r"has no ONNX export \(model.onnx.json\), which this install serves"):
        create_app({**app_settings, "MODEL": str(trained[1])})


def test_the_app_recommends_from_the_exports_predictions(
    avg_model_dir: Path, avg_keras_model: GenreModel, app_settings: dict, demo_catalog
) -> None:
    import io
    import sqlite3

    from app import create_app

    config = {**app_settings, "MODEL": str(avg_model_dir)}
    app = create_app(config)
    client = app.test_client()
    with client.session_transaction() as session:
        session["csrf_token"] = "t"
    movie = demo_catalog.movies[9]
    keras_model = avg_keras_model
    png = io.BytesIO()  # at the model's size, as a PNG: decoded and squashed alike by the app and load_poster below
    Image.open(demo_catalog.poster_path(movie)).convert("RGB").resize(keras_model.input_size).save(png, "PNG")
    poster = png.getvalue()
    answer = client.post(
        "/recommend",
        data={"csrf_token": "t", "poster": (io.BytesIO(poster), "p.png")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303
    with sqlite3.connect(config["DATABASE"]) as database:
        (genres,) = database.execute("SELECT genres FROM recommendations ORDER BY id DESC LIMIT 1").fetchone()
    shown = np.array([json.loads(genres)[genre] for genre in GENRES])
    keras_probabilities = keras_model.predict(load_poster(poster, keras_model.input_size)[np.newaxis]).genres[0]
    np.testing.assert_allclose(shown, keras_probabilities, atol=1e-4 + 5e-5)  # shown rounded to 4 decimals


def test_an_incomplete_export_is_refused_not_served_with_keras(avg_model_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(avg_model_dir, tmp_path / "model")
    (copy / EXPORT_FILE).unlink()  # an export stopped before its description was written
    with pytest.raises(OnnxExportError, match=f"{copy / EXPORT_FILE} is missing: export it again"):
        OnnxGenreModel.load(copy)


def test_gunicorn_workers_serving_an_export_load_no_tensorflow_and_less_memory(
    avg_model_dir: Path, demo_catalog_dir: Path, index_dir: Path, monkeypatch, capsys
) -> None:
    """bench/serving_memory.py reads each worker's memory maps: TensorFlow's libraries are mapped only in workers
    that serve the Keras weights of the same model (--runtime keras). Its main runs here with one warm-up upload
    per worker instead of its 8 (tests/test_bench_scripts.py runs the whole script): the worker has served a poster,
    and so run the model, either way."""
    from bench import serving_memory

    monkeypatch.setattr(serving_memory, "WARM_UPLOADS_PER_WORKER", 1)
    figures = {}
    for runtime in ("onnx", "keras"):
        serving_memory.main(
            [
                *("--catalog", str(demo_catalog_dir), "--model", str(avg_model_dir), "--index", str(index_dir)),
                *("--workers", "1", "--runtime", runtime),
            ]
        )
        figures[runtime] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["1"]
    assert figures["onnx"]["runtime"] == "onnx" and figures["keras"]["runtime"] == "keras"
    assert 50 < figures["onnx"]["pss_mib"] < figures["keras"]["pss_mib"] - 200  # TensorFlow alone is more


def test_an_export_without_its_keras_weights_is_served_as_it_is(avg_model_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(avg_model_dir, tmp_path / "model")
    (copy / WEIGHTS_FILE).unlink()  # e.g. an image that ships only what serving needs
    served = OnnxGenreModel.load(avg_model_dir)
    poster = blank_posters(served.input_size)
    np.testing.assert_array_equal(OnnxGenreModel.load(copy).predict(poster).features, served.predict(poster).features)
