"""The genre model: weights loading, the network's shapes, training artifacts, saving and loading,
poster decoding, and the catalog's feature index. Real Keras, on weights the tests make."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog import GENRES
from model.artifacts import GenreModel, ModelArtifactError
from model.images import PosterImageError, load_poster
from model.index import FeatureIndex, FeatureIndexError
from model.network import WeightsError, build_network, check_weights, vgg16_base
from model.presets import DEMO, PAPER, get_preset
from model.split import rebalance, split_movies, with_target_genres
from tests.conftest import SHARED_WEIGHTS, TINY_INPUT_SIZE


def test_refuses_to_go_on_without_imagenet_weights(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="Refusing to train from random weights"):
        check_weights(None)
    with pytest.raises(WeightsError, match="does not exist"):
        check_weights(tmp_path / "missing.h5")
    assert check_weights("imagenet") == "imagenet"


def test_base_loads_weights_from_a_file(vgg_weights_file: Path) -> None:
    import keras

    saved = keras.applications.VGG16(include_top=False, weights=None, input_shape=(100, 100, 3))
    saved.load_weights(vgg_weights_file)
    base = vgg16_base(100, check_weights(vgg_weights_file), train_block5=True)
    assert np.array_equal(
        base.get_layer("block3_conv2").get_weights()[0], saved.get_layer("block3_conv2").get_weights()[0]
    )
    assert base.output_shape == (None, 6, 6, 512)  # the final max-pool is removed
    trainable = {layer.name for layer in base.layers if layer.trainable and layer.weights}
    assert trainable == {"block5_conv1", "block5_conv2", "block5_conv3"}


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason="shared ImageNet weights not present")
def test_shared_imagenet_weights_load_by_path() -> None:
    base = vgg16_base(100, check_weights(SHARED_WEIGHTS), train_block5=False)
    kernel = base.get_layer("block1_conv1").get_weights()[0]
    assert kernel.shape == (3, 3, 3, 64) and np.abs(kernel).mean() > 0.01


def test_presets_describe_the_papers_head_and_the_demo() -> None:
    assert PAPER.head_units == (10000, 2000, 512, 100) and PAPER.learning_rate == 1e-5 and PAPER.epochs == 30
    assert DEMO.feature_size == PAPER.feature_size == 100
    assert get_preset("demo") is DEMO
    assert get_preset("default").input_size == (128, 192) and get_preset("fast").input_size == (128, 128)
    assert get_preset("fast").frozen_pool_blocks == get_preset("default").frozen_pool_blocks  # only the shape differs
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_preset("huge")


def test_network_maps_a_poster_to_genres_decades_year_rating_features_and_signature() -> None:
    network = build_network(DEMO, len(GENRES), 4, weights=None)
    outputs = {name: np.asarray(value) for name, value in network(np.zeros((2, 100, 100, 3), np.float32)).items()}
    assert outputs["genres"].shape == (2, 6) and ((outputs["genres"] > 0) & (outputs["genres"] < 1)).all()
    assert outputs["decades"].shape == (2, 4)
    np.testing.assert_allclose(outputs["decades"].sum(axis=1), 1, rtol=1e-5)  # one distribution over decades
    assert outputs["year"].shape == outputs["rating"].shape == (2, 1)
    assert outputs["features"].shape == (2, 100) and outputs["signature"].shape == (2, 1024)


def test_paper_rebalancing_caps_drama_and_drama_comedy() -> None:
    from catalog import Movie

    movies = [Movie(f"tt{n:07d}", "m", 2000, ("Drama",), 5.0, 1, "p") for n in range(1500)]
    movies += [Movie(f"tt1{n:06d}", "m", 2000, ("Drama", "Comedy", "Sport"), 5.0, 1, "p") for n in range(1200)]
    movies += [Movie(f"tt2{n:06d}", "m", 2000, ("Horror",), 5.0, 1, "p") for n in range(10)]
    kept = rebalance(movies, seed=0)
    assert len(kept) == 1000 + 1000 + 10
    assert kept != movies[:1000] + movies[1500:2500] + movies[2700:]  # a random subset, in file order
    assert [m.imdb_id for m in kept] == sorted(m.imdb_id for m in kept)


def test_split_is_seeded_disjoint_and_complete(demo_catalog) -> None:
    movies = with_target_genres(demo_catalog.movies)
    split = split_movies(movies, seed=3)
    parts = [set(split.train), set(split.validation), set(split.test)]
    assert set.union(*parts) == {movie.imdb_id for movie in movies}
    assert sum(map(len, parts)) == len(movies)
    assert len(split.test) == round(len(movies) * 0.1)
    assert split_movies(movies, seed=3) == split and split_movies(movies, seed=4) != split


def test_training_saves_model_split_report_and_curves(trained, demo_catalog) -> None:
    result, model_dir = trained
    files = ("model.weights.h5", "model.json", "split.json", "report.json", "report.txt", "learning_curves.png")
    for name in (*files, "reliability.png", "poster_detector.npz"):
        assert (model_dir / name).is_file(), name
    description = json.loads((model_dir / "model.json").read_text())
    assert description["preset"]["name"] == "demo" and description["genres"] == list(GENRES)
    years = [movie.year for movie in demo_catalog.movies if movie.year is not None]
    assert description["decades"] == sorted(description["decades"])
    assert min(years) // 10 * 10 <= description["decades"][0] and description["decades"][-1] <= max(years)
    low, high = description["rating_interval"]
    assert low < 0 < high
    assert json.loads((model_dir / "split.json").read_text())["test"] == result.split.test
    report = json.loads((model_dir / "report.json").read_text())["test"]
    assert set(report["per_genre"]) == set(GENRES) and 0 <= report["micro_f1"] <= 1
    assert report["n"] == len(result.split.test)
    assert 5 <= len(result.history["loss"]) <= 15  # early stopping may end it sooner
    for curve in ("loss", "val_loss", "hamming"):
        assert np.isfinite(result.history[curve]).all(), curve
    assert Image.open(model_dir / "learning_curves.png").size[0] > 300
    assert Image.open(model_dir / "reliability.png").size[0] > 300
    assert set(report["calibration"]["per_genre"]) == set(GENRES) and 0 <= report["calibration"]["ece_max"] <= 1
    assert report["era"]["n_years"] == report["n"] and 0 <= report["era"]["decade_accuracy"] <= 1
    assert "decade accuracy" in (model_dir / "report.txt").read_text()


def test_a_saved_model_predicts_exactly_as_before(trained, demo_catalog, tmp_path: Path) -> None:
    """The model as training left it (or, when the trained model came from the tests' cache, as loaded) against the
    directory training saved and against a directory it saves now."""
    result, model_dir = trained
    size = result.model.input_size
    posters = np.stack([load_poster(demo_catalog.poster_path(m), size) for m in demo_catalog.movies[:5]])
    before = result.model.predict(posters)
    assert before.genres.shape == (5, 6) and before.features.shape == (5, 100)
    result.model.save(tmp_path / "saved")
    for directory in (model_dir, tmp_path / "saved"):
        loaded = GenreModel.load(directory)
        after = loaded.predict(posters)
        for name in ("genres", "features", "decades", "year", "rating", "poster_score"):
            np.testing.assert_allclose(getattr(after, name), getattr(before, name), atol=1e-4, err_msg=name)
        assert loaded.genres == GENRES and loaded.preset == result.model.preset


def test_loading_a_missing_or_damaged_model_says_so(trained, tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match="model.json is missing"):
        GenreModel.load(tmp_path)
    _, model_dir = trained
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "model.json").write_text((model_dir / "model.json").read_text())
    (damaged / "model.weights.h5").write_bytes((model_dir / "model.weights.h5").read_bytes()[:5000])
    with pytest.raises(ModelArtifactError, match="damaged"):
        GenreModel.load(damaged)
    (damaged / "model.json").write_text("{not json")
    with pytest.raises(ModelArtifactError, match="model.json is damaged"):
        GenreModel.load(damaged)


def image_bytes(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def test_load_poster_accepts_common_formats() -> None:
    rgba = Image.new("RGBA", (50, 80), (255, 0, 0, 128))
    for image_format in ("PNG", "GIF", "WEBP"):
        array = load_poster(image_bytes(rgba, image_format), 100)
        assert array.shape == (100, 100, 3) and array.dtype == np.uint8
    grey = load_poster(image_bytes(Image.new("L", (182, 268), 90), "JPEG"), 64)
    assert grey.shape == (64, 64, 3) and abs(int(grey.mean()) - 90) <= 2


def test_load_poster_rejects_broken_input(tmp_path: Path) -> None:
    with pytest.raises(PosterImageError, match="not an image we can read"):
        load_poster(b"%PDF-1.4 not a poster", 100)
    with pytest.raises(PosterImageError, match="not an image we can read"):
        load_poster(b"", 100)
    jpeg = image_bytes(Image.effect_noise((182, 268), 50).convert("RGB"), "JPEG")
    with pytest.raises(PosterImageError, match="damaged or truncated"):
        load_poster(jpeg[: len(jpeg) // 2], 100)
    huge = image_bytes(Image.new("1", (8000, 6000)), "PNG")
    with pytest.raises(PosterImageError, match="too large: 8000 x 6000 pixels; the limit is 40,000,000 pixels"):
        load_poster(huge, 100)
    with pytest.raises(PosterImageError):
        load_poster(tmp_path / "absent.jpg", 100)


def test_index_holds_every_catalog_poster(index_dir: Path, demo_catalog, trained) -> None:
    index = FeatureIndex.load(index_dir, demo_catalog)
    assert index.imdb_ids == [movie.imdb_id for movie in demo_catalog]
    assert index.features.shape == (len(demo_catalog), 100) and index.features.dtype == np.float32
    assert index.probabilities.shape == (len(demo_catalog), 6)
    model = trained[0].model
    first = load_poster(demo_catalog.poster_path(demo_catalog.movies[0]), model.input_size)[np.newaxis]
    predicted = model.predict(first)
    np.testing.assert_allclose(predicted.features[0], index.features[0], atol=1e-4)
    stored = index.prediction([0])
    np.testing.assert_allclose(stored.decades, predicted.decades, atol=1e-4)
    np.testing.assert_allclose(stored.rating, predicted.rating, atol=1e-3)
    assert not any(name.startswith(".") for name in os.listdir(index_dir.parent))


def test_index_refuses_another_catalog_or_damage(index_dir: Path, demo_catalog, tmp_path: Path) -> None:
    from catalog import Catalog

    other = Catalog(directory=tmp_path, movies=demo_catalog.movies[1:])
    with pytest.raises(FeatureIndexError, match="built for another catalog"):
        FeatureIndex.load(index_dir, other)
    with pytest.raises(FeatureIndexError, match="is missing"):
        FeatureIndex.load(tmp_path)


def test_index_refuses_a_model_whose_weights_did_not_build_it(
    index_dir: Path, demo_catalog, trained, onnx_model_dir: Path, tmp_path: Path
) -> None:
    """An index built before the model was trained again compared its vectors with the new model's, silently."""
    model_dir = trained[1]
    assert FeatureIndex.load(index_dir, demo_catalog, model_dir).imdb_ids  # the weights that built it
    serving = tmp_path / "serving"  # a serving host's copy: the ONNX export without the Keras weights
    serving.mkdir()
    for name in ("model.onnx", "model.onnx.data", "model.onnx.json", "model.json"):
        shutil.copy(onnx_model_dir / name, serving / name)
    assert FeatureIndex.load(index_dir, demo_catalog, serving).imdb_ids  # fingerprinted from model.onnx.json
    retrained = shutil.copytree(model_dir, tmp_path / "retrained")
    with (retrained / "model.weights.h5").open("ab") as weights:
        weights.write(b"\0")  # other bytes: other weights
    with pytest.raises(FeatureIndexError, match="built by other weights than"):
        FeatureIndex.load(index_dir, demo_catalog, retrained)


def test_fine_tuning_block5_with_augmentation_trains_and_saves(
    small_catalog, vgg_weights_file: Path, tmp_path: Path
) -> None:
    """The paper's path: block 5 trainable, augmented batches through tf.data (on a tiny head, and one augmented copy
    of each poster rather than the paper's 3, for speed)."""
    from dataclasses import replace

    from model.train import train

    preset = replace(
        PAPER, head_units=(32, 100), epochs=1, batch_size=16, input_size=TINY_INPUT_SIZE, augmented_copies=1
    )
    result = train(small_catalog, preset, vgg_weights_file, tmp_path / "paper", seed=0, progress=False)
    assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])
    base = result.model.network
    import keras

    untouched = keras.applications.VGG16(include_top=False, weights=None, input_shape=(100, 100, 3))
    untouched.load_weights(vgg_weights_file)
    for name, should_change in (("block4_conv3", False), ("block5_conv3", True)):
        changed = not np.array_equal(base.get_layer(name).get_weights()[0], untouched.get_layer(name).get_weights()[0])
        assert changed == should_change, name
    assert GenreModel.load(tmp_path / "paper").preset.head_units == (32, 100)


def test_a_poster_is_squashed_to_width_by_height_and_old_square_models_still_load() -> None:
    poster = load_poster(image_bytes(Image.new("RGB", (182, 268), (10, 200, 30)), "PNG"), (128, 192))
    assert poster.shape == (192, 128, 3) and tuple(poster[100, 60]) == (10, 200, 30)
    square = get_preset("demo").to_dict() | {"input_size": 128}  # model.json before width x height
    assert type(get_preset("demo")).from_dict(square).input_size == (128, 128)
    stored = json.loads(json.dumps(get_preset("default").to_dict()))  # lists, as model.json holds them
    assert type(get_preset("default")).from_dict(stored) == get_preset("default")


def test_load_poster_handles_every_kind_of_image_a_person_may_upload() -> None:
    red = (200, 30, 30)
    cmyk = load_poster(image_bytes(Image.new("CMYK", (40, 60), (0, 220, 220, 40)), "JPEG"), 32)
    assert cmyk[..., 0].mean() > 150 and cmyk[..., 1].mean() < 80  # red stays red
    palette = Image.new("RGB", (40, 60), red).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert tuple(load_poster(image_bytes(palette, "PNG"), 8)[4, 4]) == red
    transparent = Image.new("RGBA", (40, 60), (0, 0, 0, 0))
    assert load_poster(image_bytes(transparent, "PNG"), 8).min() == 255  # flattened onto white
    wide = Image.fromarray(np.full((60, 40), 32768, dtype=np.uint16))
    assert wide.mode.startswith("I")
    assert abs(int(load_poster(image_bytes(wide, "PNG"), 8).mean()) - 127) <= 1  # 16-bit mid-grey is mid-grey
    assert load_poster(image_bytes(Image.new("RGB", (1, 1), red), "PNG"), 100).shape == (100, 100, 3)


def test_load_poster_applies_exif_orientation() -> None:
    top_red = Image.new("RGB", (60, 40), (0, 0, 255))  # landscape: left half red as stored
    top_red.paste((255, 0, 0), (0, 0, 30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buffer = io.BytesIO()
    top_red.save(buffer, "JPEG", exif=exif, quality=95)
    shown = load_poster(buffer.getvalue(), 20)
    assert shown[2, 10, 0] > 200 and shown[17, 10, 2] > 200  # displayed upright: red on top, blue below


def test_a_20000_pixel_square_is_refused_not_decoded() -> None:
    huge = image_bytes(Image.new("1", (20000, 20000)), "PNG")
    with pytest.raises(PosterImageError, match="too large"):
        load_poster(huge, 100)


def test_pooling_choices_shape_the_head() -> None:
    import keras

    from model.network import pool

    x = keras.Input((6, 6, 512))
    assert pool(x, "flatten").shape[-1] == 6 * 6 * 512
    assert pool(x, "avg").shape[-1] == 512
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        pool(x, "median")


def test_evaluating_a_model_without_training_counts_says_why(
    trained, demo_catalog_dir, tmp_path: Path, monkeypatch
) -> None:
    """Said before the model's passes over the posters (minutes on a real catalog), not after them."""
    import shutil

    from click.testing import CliRunner

    import model.evaluation
    from model.__main__ import cli

    passes = []
    real_predict_movies = model.evaluation.predict_movies
    monkeypatch.setattr(
        model.evaluation,
        "predict_movies",
        lambda *args, **kwargs: passes.append(1) or real_predict_movies(*args, **kwargs),
    )

    old = tmp_path / "old-model"
    shutil.copytree(trained[1], old)
    description = json.loads((old / "model.json").read_text())
    del description["train_genre_counts"]
    (old / "model.json").write_text(json.dumps(description))
    result = CliRunner().invoke(cli, ["evaluate", "--catalog", str(demo_catalog_dir), "--model", str(old)])
    assert result.exit_code != 0
    assert "does not record its training split's genre counts" in result.output and "Traceback" not in result.output
    assert passes == []


def test_an_index_without_one_vector_of_numbers_is_refused(index_dir: Path, demo_catalog, tmp_path: Path) -> None:
    """An index whose features are all NaN was served: every search found nothing to recommend."""
    damaged = shutil.copytree(index_dir, tmp_path / "index")
    features = np.load(damaged / "features.npy")
    some_nan = features.copy()
    some_nan[: len(features) // 2] = np.nan  # rows the search leaves out (recommend/search.py): still served
    np.save(damaged / "features.npy", some_nan)
    assert FeatureIndex.load(damaged, demo_catalog).imdb_ids == [movie.imdb_id for movie in demo_catalog]
    np.save(damaged / "features.npy", np.full_like(features, np.nan))
    with pytest.raises(FeatureIndexError, match="no movie's feature vector is a vector of numbers"):
        FeatureIndex.load(damaged, demo_catalog)


def test_a_file_named_as_the_model_directory_is_said_to_be_one(onnx_model_dir: Path) -> None:
    """It was "model.json/model.json is missing: train a model first" for the model's own model.json."""
    from model.artifacts import DESCRIPTION_FILE, ModelArtifactError, read_description

    given = onnx_model_dir / DESCRIPTION_FILE
    with pytest.raises(ModelArtifactError, match=f"^{given} is a file, not a model directory"):
        read_description(given)
