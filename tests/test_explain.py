"""model/explain.py: occlusion maps, their sign and geometry (on stand-in models whose answer is known), on the demo
model's ONNX export, and their overlay on the poster."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from catalog import GENRES
from model.explain import (
    IMAGENET_RGB_MEAN,
    MIN_WIDTH,
    RED_BLUE,
    Explanation,
    colour_table,
    explanation_json,
    occlusion_map,
    overlay_png,
    patch_bounds,
)
from model.images import preprocess

HORROR = GENRES.index("Horror")


class QuadrantModel:
    """A stand-in for the network: Horror's probability is `score(red of the top-left quadrant)`, every other genre
    0.5. It records the batches it was given."""

    def __init__(self, score, size: int | tuple[int, int] = 64) -> None:
        self.score = score
        self.input_size = size
        self.genres = GENRES
        self.batches: list[int] = []

    def predict(self, posters: np.ndarray) -> SimpleNamespace:
        self.batches.append(len(posters))
        top, left = posters.shape[1] // 2, posters.shape[2] // 2
        probabilities = np.full((len(posters), len(GENRES)), 0.5, np.float32)
        probabilities[:, HORROR] = [self.score(poster[:top, :left, 0].astype(np.float64)) for poster in posters]
        return SimpleNamespace(genres=probabilities)


def mean_red(red: np.ndarray) -> float:
    return float(red.mean() / 255)


def red_texture(red: np.ndarray) -> float:
    return float(red.std() / 128)


def uniform_poster(red: int, size: int = 64) -> np.ndarray:
    poster = np.zeros((size, size, 3), np.uint8)
    poster[..., 0] = red
    return poster


@pytest.mark.parametrize("patch", [1.0, 2.0])
def test_the_cells_of_what_raises_the_genre_are_positive_and_the_rest_zero(patch: float) -> None:
    model = QuadrantModel(mean_red)
    explanation = occlusion_map(model, uniform_poster(255), "Horror", grid=8, patch=patch, fill="mean")
    heatmap = explanation.heatmap
    assert explanation.genre == "Horror" and explanation.probability == pytest.approx(1.0)
    assert heatmap.shape == (8, 8) and heatmap.dtype == np.float32
    # Occluding a cell of the top-left quadrant (cells 0-3 of rows and columns) darkens its red: Horror falls.
    assert (heatmap[:4, :4] > 0).all()
    if patch == 1.0:  # each cell is 1/16 of the quadrant, its red 255 -> 124
        assert heatmap[:4, :4] == pytest.approx(np.full((4, 4), (255 - IMAGENET_RGB_MEAN[0]) / 255 / 16), abs=1e-6)
        assert (heatmap[4:, :] == 0).all() and (heatmap[:, 4:] == 0).all()
    else:  # a patch of two cells centred on cell 4 reaches half a cell into the quadrant; from cell 5 on, nothing
        assert (heatmap[4, :4] > 0).all() and (heatmap[4, :4] < heatmap[3, :4]).all()
        assert (heatmap[5:, :] == 0).all() and (heatmap[:, 5:] == 0).all()
    assert explanation.most_raising is not None and explanation.most_raising.row <= 3
    assert explanation.most_lowering is None  # nothing lowers it


def test_a_model_that_takes_tall_posters_is_explained_on_a_grid_of_tall_cells() -> None:
    model = QuadrantModel(mean_red, size=(64, 96))  # width 64, height 96: the posters' shape
    explanation = occlusion_map(model, uniform_poster(255), "Horror", grid=8, patch=1.0, fill="mean")
    assert explanation.heatmap.shape == (8, 8)
    assert (explanation.heatmap[:4, :4] > 0).all()  # the top-left quadrant, whatever the cells' shape
    assert (explanation.heatmap[4:, :] == 0).all() and (explanation.heatmap[:, 4:] == 0).all()
    with pytest.raises(ValueError, match="between 2 and 64"):
        occlusion_map(model, uniform_poster(255), "Horror", grid=65)


def test_a_region_that_lowers_the_genre_is_negative() -> None:
    model = QuadrantModel(mean_red)
    explanation = occlusion_map(model, uniform_poster(0), "Horror", grid=4, patch=1, fill="mean")
    assert (explanation.heatmap[:2, :2] < 0).all() and (explanation.heatmap[2:, :] == 0).all()
    lowest = explanation.most_lowering
    assert lowest is not None and lowest.row < 2 and lowest.column < 2 and lowest.value < 0
    assert explanation.most_raising is None


def test_the_blurred_fill_removes_detail_and_keeps_colour() -> None:
    rng = np.random.default_rng(0)
    noisy = uniform_poster(0)
    noisy[..., 0] = rng.integers(0, 256, (64, 64))
    textured = occlusion_map(QuadrantModel(red_texture), noisy, "Horror", grid=8, patch=1, fill="blur")
    assert (textured.heatmap[:4, :4] > 0.01).all()  # the noise was what raised it: blurred away
    assert np.abs(textured.heatmap[5:, 5:]).max() == 0
    flat = occlusion_map(QuadrantModel(mean_red), uniform_poster(200), "Horror", grid=8, patch=2, fill="blur")
    assert np.abs(flat.heatmap).max() < 1e-6  # a blurred flat colour is the same colour


def test_the_mean_fill_is_what_the_network_sees_as_zero() -> None:
    assert np.abs(preprocess(np.array([[IMAGENET_RGB_MEAN]], np.uint8))).max() < 0.5


def test_logit_space_keeps_the_sign_and_stretches_what_is_near_certain() -> None:
    model = QuadrantModel(lambda red: 0.5 + 0.49 * red.mean() / 255)
    poster = uniform_poster(255)
    points = occlusion_map(model, poster, "Horror", grid=4, patch=1, fill="mean")
    logits = occlusion_map(model, poster, "Horror", grid=4, patch=1, fill="mean", space="logit")
    assert logits.space == "logit" and points.space == "probability"
    assert (np.sign(logits.heatmap) == np.sign(points.heatmap)).all()
    assert (logits.heatmap[:2, :2] > 4 * points.heatmap[:2, :2]).all()


def test_the_batches_are_few_and_progress_reaches_the_total() -> None:
    model = QuadrantModel(mean_red)
    calls: list[tuple[int, int]] = []
    explanation = occlusion_map(model, uniform_poster(255), "horror", grid=6, progress=lambda *done: calls.append(done))
    assert explanation.genre == "Horror" and explanation.passes == 37
    assert model.batches == [7, 8, 7, 8, 7] and sum(model.batches) == explanation.passes  # DEFAULT_BATCHES
    assert calls == [(0, 37), (7, 37), (15, 37), (22, 37), (30, 37), (37, 37)]  # the bar moves a fifth at a time
    occlusion_map(model, uniform_poster(255), "Horror", grid=6, batches=1)
    assert model.batches[-1] == 37


def test_an_unknown_genre_or_a_bad_grid_is_refused_with_what_is_allowed() -> None:
    model = QuadrantModel(mean_red)
    with pytest.raises(ValueError, match="unknown genre 'Western'.*Action, Comedy, Drama, Horror, Romance, Thriller"):
        occlusion_map(model, uniform_poster(255), "Western")
    with pytest.raises(ValueError, match="grid must be between 2 and 64"):
        occlusion_map(model, uniform_poster(255), "Horror", grid=1)
    with pytest.raises(ValueError, match="unknown fill 'noise': blur or mean"):
        occlusion_map(model, uniform_poster(255), "Horror", fill="noise")
    with pytest.raises(ValueError, match="uint8 RGB array"):
        occlusion_map(model, np.zeros((64, 64), np.uint8), "Horror")
    assert not model.batches  # refused before any forward pass


def test_any_poster_is_squashed_to_the_models_input() -> None:
    model = QuadrantModel(mean_red)
    tall = uniform_poster(255, size=64).repeat(3, axis=0)[:150]  # 150 x 64
    from_array = occlusion_map(model, tall, "Horror", grid=4, patch=1, fill="mean")
    from_image = occlusion_map(model, Image.fromarray(tall).convert("RGBA"), "Horror", grid=4, patch=1, fill="mean")
    assert np.array_equal(from_array.heatmap, from_image.heatmap) and (from_array.heatmap[:2, :2] > 0).all()


def test_patches_cover_every_pixel_and_overlap_their_neighbours() -> None:
    assert patch_bounds(4, 100, 1) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert patch_bounds(4, 100, 2) == [(0, 38), (12, 62), (38, 88), (62, 100)]


def test_the_colours_are_matplotlibs_red_blue() -> None:
    from matplotlib import colormaps

    expected = colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3] * 255
    assert np.abs(colour_table().astype(np.float64) - expected).max() <= 0.5
    assert tuple(colour_table()[-1]) == RED_BLUE[-1] and colour_table()[-1][0] > colour_table()[-1][2]  # +1 is red


def corner_explanation(value: float = 0.3) -> Explanation:
    heatmap = np.zeros((6, 6), np.float32)
    heatmap[0, 0], heatmap[5, 5] = value, -value
    return Explanation("Horror", 0.7, heatmap, patch=2.0, fill="blur", space="probability")


def test_the_overlay_colours_the_poster_where_the_map_is_strong() -> None:
    poster = Image.new("RGB", (180, 270), (128, 128, 128))
    explanation = corner_explanation()
    bare = Image.open(io.BytesIO(overlay_png(poster, explanation, legend=False)))
    assert bare.format == "PNG" and bare.size == poster.size
    pixels = np.asarray(bare.convert("RGB"), np.int16)
    top_left, bottom_right, middle = pixels[5, 5], pixels[-5, -5], pixels[135, 90]
    assert top_left[0] > 128 + 20 and top_left[0] - top_left[2] > 60  # red: raises Horror
    assert bottom_right[2] > 128 + 10 and bottom_right[2] - bottom_right[0] > 60  # blue: lowers it
    assert np.abs(middle - 128).max() <= 1  # near zero: the poster shows through
    with_legend = Image.open(io.BytesIO(overlay_png(poster, explanation)))
    assert with_legend.width == poster.width and with_legend.height > poster.height
    assert np.array_equal(np.asarray(with_legend.convert("RGB"))[: poster.height], pixels)  # the band is below


def test_a_large_upload_is_reduced_and_a_flat_map_stays_faint() -> None:
    poster = Image.new("RGB", (1200, 1800), (128, 128, 128))
    explanation = corner_explanation(0.01)  # one point at most: the colours span 5
    bare = Image.open(io.BytesIO(overlay_png(poster, explanation, legend=False)))
    assert bare.size == (341, 512)
    assert np.abs(np.asarray(bare, np.int16) - 128).max() < 30


@pytest.mark.parametrize("size", [(1, 1), (5, 1), (1, 5), (12, 40), (13, 40)])
def test_a_tiny_poster_is_enlarged_so_that_the_legend_fits(size: tuple[int, int]) -> None:
    """The app takes uploads down to 1 x 1; the legend's colour bar needed a poster wider than its two margins, and
    its heatmap job failed after the upload had been accepted."""
    poster = Image.new("RGB", size, (128, 128, 128))
    with_legend = Image.open(io.BytesIO(overlay_png(poster, corner_explanation())))
    assert with_legend.width == MIN_WIDTH and with_legend.height > round(size[1] * MIN_WIDTH / size[0])
    bare = Image.open(io.BytesIO(overlay_png(poster, corner_explanation(), legend=False)))
    assert bare.size == (MIN_WIDTH, round(size[1] * MIN_WIDTH / size[0]))


def test_the_json_has_the_map_rounded_and_the_strongest_cells() -> None:
    heatmap = np.zeros((3, 3), np.float32)
    heatmap[0, 1], heatmap[2, 2], heatmap[1, 1] = 0.123456, -0.2, 0.05
    found = explanation_json(Explanation("Drama", 0.61234567, heatmap, patch=2.0, fill="blur", space="probability"))
    assert found["genre"] == "Drama" and found["probability"] == 0.6123 and found["grid"] == 3
    assert found["map"][0] == [0.0, 0.1235, 0.0] and found["map"][2][2] == -0.2
    assert found["raises"] == [{"row": 0, "column": 1, "value": 0.1235}, {"row": 1, "column": 1, "value": 0.05}]
    assert found["lowers"] == [{"row": 2, "column": 2, "value": -0.2}]


def test_the_served_demo_model_explains_a_demo_poster(onnx_model_dir: Path, demo_catalog) -> None:
    from model.images import decode_poster
    from model.onnx_model import OnnxGenreModel

    model = OnnxGenreModel.load(onnx_model_dir)
    movie = next(movie for movie in demo_catalog.movies if movie.genres)
    image = decode_poster(demo_catalog.poster_path(movie), model.input_size)
    genre = sorted(movie.genres)[0]
    calls: list[tuple[int, int]] = []
    explanation = occlusion_map(model, image, genre, progress=lambda *done: calls.append(done))
    assert explanation.heatmap.shape == (5, 5) and np.isfinite(explanation.heatmap).all()  # DEFAULT_GRID
    whole = model.predict(np.asarray(image.resize(model.input_size, Image.Resampling.BILINEAR))[np.newaxis])
    assert explanation.probability == pytest.approx(float(whole.genres[0, model.genres.index(genre)]), abs=1e-5)
    assert np.abs(explanation.heatmap).max() > 0  # some region matters
    assert calls[-1] == (26, 26)
    overlay = Image.open(io.BytesIO(overlay_png(image, explanation)))
    assert overlay.width == max(image.width, MIN_WIDTH) and overlay.height > image.height  # a narrow one enlarged
