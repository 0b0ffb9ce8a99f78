"""Explain one genre of one poster: a signed heatmap of the regions whose occlusion lowers (the region raises the
genre: positive, red) or raises (negative, blue) the genre's probability, computed by occlusion sensitivity with the
served model's forward passes alone, and drawn over the poster.

Occlusion rather than gradients: a gradient needs the training stack (TensorFlow) or a gradient graph of the ONNX
export (onnxruntime-training), neither of which the serving install has; occlusion needs only forward passes of the
very model that is served, and shows regions, at the cost of resolution (a grid of cells, one pass per cell)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from model.artifacts import Prediction
from model.images import InputSize, poster_array, width_height
from model.logit import logit

DEFAULT_GRID = 5
"""Cells a side: 25 occluded posters and the poster itself, in two batches. The `default` preset reads 128 x 192
posters: 54 ms a poster on 2 threads in float32 here (bench/explain_speed.py, 2026-12-07), so 5 x 5 takes 1.4 s of
the 2 s from submit to result, where 6 x 6 (37 passes) took 2.0 s for the map alone. A request may ask for a finer
grid (app/job_requests.py MAX_GRID)."""
DEFAULT_PATCH = 2.0
"""The occluding patch's side in cells, centred on its cell: neighbouring patches overlap by half their side, so that
an object that straddles two cells still disappears under one patch."""
DEFAULT_FILL = "blur"
"""The occluded patch is replaced by the poster blurred. On 20 real posters (bench/explain_speed.py --compare) its maps
correlate 0.91 with the ImageNet mean's; occluding anywhere shifts the genre less (1.9 points against 2.3 on average:
less of the map is the grey square's own effect), and the three strongest cells occluded together drop the genre 3.7
times as much as three random cells (3.3 with the mean). A near tie: blurring keeps the colours, so a genre carried
by colour alone shows less than with the mean fill."""
DEFAULT_BATCHES = 5
"""Forward batches of a heatmap: each ends with a progress report (2 left the bar at about half for half the run)."""
IMAGENET_RGB_MEAN = (124, 117, 104)
"""VGG-16's ImageNet mean colour, rounded: about zero once preprocessed (what the network sees as 'nothing')."""

Fill = Literal["blur", "mean"]
Space = Literal["probability", "logit"]
Progress = Callable[[int, int], None]


class PredictsGenres(Protocol):
    """What occlusion_map needs of a model: OnnxGenreModel, the Keras GenreModel, or a stand-in in a test."""

    @property
    def genres(self) -> Sequence[str]: ...

    @property
    def input_size(self) -> int | InputSize: ...

    def predict(self, posters: np.ndarray) -> Prediction: ...


@dataclass(frozen=True)
class Cell:
    """One cell of the grid (row 0 is the top, column 0 the left) and its value in the heatmap."""

    row: int
    column: int
    value: float


@dataclass(frozen=True, eq=False)
class Explanation:
    """Which regions of a poster raise and lower one genre. `heatmap[row, column]` is the genre's score of the poster
    less its score with the patch centred on that cell occluded: positive where the region raises the genre, negative
    where it lowers it, in probability points (0.1 = 10 points) or logits, as `space` says."""

    genre: str
    probability: float  # of the whole, unoccluded poster
    heatmap: np.ndarray  # (grid, grid) float32, read-only
    patch: float
    fill: str
    space: str

    @property
    def grid(self) -> int:
        return int(self.heatmap.shape[0])

    @property
    def passes(self) -> int:
        """Forward passes it took: one per cell, and the poster itself."""
        return self.grid * self.grid + 1

    def strongest(self, count: int = 3, sign: int = 1) -> list[Cell]:
        """The `count` cells that raise the genre most (sign 1) or lower it most (sign -1), strongest first; only
        cells whose value has that sign."""
        flat = self.heatmap.reshape(-1) * sign
        order = np.argsort(-flat, kind="stable")[:count]
        return [
            Cell(row=int(index // self.grid), column=int(index % self.grid), value=float(self.heatmap.flat[index]))
            for index in order
            if flat[index] > 0
        ]

    @property
    def most_raising(self) -> Cell | None:
        found = self.strongest(1, 1)
        return found[0] if found else None

    @property
    def most_lowering(self) -> Cell | None:
        found = self.strongest(1, -1)
        return found[0] if found else None


def genre_index(genres: Sequence[str], genre: str) -> int:
    """Where `genre` is in the model's genres (case aside); ValueError listing the genres where it is not."""
    folded = [name.casefold() for name in genres]
    if genre.casefold() not in folded:
        raise ValueError(f"unknown genre {genre!r}: the model predicts {', '.join(genres)}")
    return folded.index(genre.casefold())


def as_poster(poster: np.ndarray | Image.Image, size: InputSize) -> np.ndarray:
    """A PIL image or an RGB array, as the (height, width, 3) uint8 array of `size` (width, height) that the model
    takes (squashed, as in the paper)."""
    if isinstance(poster, Image.Image):
        return poster_array(poster.convert("RGB"), size)
    array = np.asarray(poster)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"a poster is a uint8 RGB array (height, width, 3), not {array.dtype} {array.shape}")
    if array.shape[:2] != (size[1], size[0]):
        return poster_array(Image.fromarray(array), size)
    return array


def patch_bounds(grid: int, size: int, patch: float) -> list[tuple[int, int]]:
    """Each cell's occluding span along one axis, in pixels [start, stop): `patch` cells wide, centred on the cell,
    clipped to the poster."""
    cell = size / grid
    half = patch * cell / 2
    return [
        (max(0, round((index + 0.5) * cell - half)), min(size, round((index + 0.5) * cell + half)))
        for index in range(grid)
    ]


def fill_image(poster: np.ndarray, fill: str, grid: int) -> np.ndarray:
    """What replaces an occluded patch: the poster blurred (a Gaussian of a cell's side: its colours stay, its shapes,
    faces and letters go) or the ImageNet mean colour."""
    if fill == "blur":
        radius = min(poster.shape[:2]) / grid
        return np.asarray(Image.fromarray(poster).filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)
    if fill == "mean":
        return np.broadcast_to(np.array(IMAGENET_RGB_MEAN, np.uint8), poster.shape)
    raise ValueError(f"unknown fill {fill!r}: blur or mean")


def occluded_posters(poster: np.ndarray, grid: int, patch: float, fill: str) -> np.ndarray:
    """(grid * grid + 1, height, width, 3): the poster itself, then the poster with each cell's patch occluded, row
    by row from the top left (a cell is a grid-th of the height by a grid-th of the width)."""
    filler = fill_image(poster, fill, grid)
    rows, columns = patch_bounds(grid, poster.shape[0], patch), patch_bounds(grid, poster.shape[1], patch)
    batch = np.repeat(poster[np.newaxis], grid * grid + 1, axis=0)
    for row, (top, bottom) in enumerate(rows):
        for column, (left, right) in enumerate(columns):
            batch[1 + row * grid + column, top:bottom, left:right] = filler[top:bottom, left:right]
    return batch


def scores(probabilities: np.ndarray, space: str) -> np.ndarray:
    if space == "probability":
        return probabilities.astype(np.float64)
    return logit(probabilities.astype(np.float64))


def occlusion_map(
    model: PredictsGenres,
    poster: np.ndarray | Image.Image,
    genre: str,
    grid: int = DEFAULT_GRID,
    patch: float = DEFAULT_PATCH,
    fill: Fill = DEFAULT_FILL,
    space: Space = "probability",
    batches: int = DEFAULT_BATCHES,
    progress: Progress | None = None,
) -> Explanation:
    """Occlusion sensitivity of `genre` for one poster: the poster and its grid * grid occluded copies through the
    model in `batches` forward batches; `progress(done, total)` is called before the first and after each batch,
    counting forward passes (posters), and ends at (total, total).

    The map is in probability points by default, the unit of the probability the page shows beside the poster. A
    logit map has the same signs and the same order of cells (the same occluded probabilities, through a monotone
    function); it stretches the cells that push the genre towards 0 or 1, which matters only where the probability is
    near 0 or 1 (on 20 real posters, the two maps scaled to their strongest cell differ by 0.024 on average)."""
    genres = tuple(model.genres)
    column = genre_index(genres, genre)
    if space not in ("probability", "logit"):
        raise ValueError(f"unknown space {space!r}: probability or logit")
    size = width_height(model.input_size)
    if not 2 <= grid <= min(size):
        raise ValueError(f"grid must be between 2 and {min(size)} cells a side, not {grid}")
    if not 0 < patch <= grid:
        raise ValueError(f"patch must be more than 0 and at most {grid} cells (the grid), not {patch}")
    batch = occluded_posters(as_poster(poster, size), grid, patch, fill)
    total = len(batch)
    edges = np.linspace(0, total, min(max(batches, 1), total) + 1).round().astype(int)
    probabilities = []
    if progress is not None:
        progress(0, total)
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        probabilities.append(np.asarray(model.predict(batch[start:stop]).genres)[:, column])
        if progress is not None:
            progress(int(stop), total)
    genre_probabilities = np.concatenate(probabilities)
    found = scores(genre_probabilities, space)
    heatmap = (found[0] - found[1:]).reshape(grid, grid).astype(np.float32)
    heatmap.setflags(write=False)
    return Explanation(
        genre=genres[column],
        probability=float(genre_probabilities[0]),
        heatmap=heatmap,
        patch=float(patch),
        fill=fill,
        space=space,
    )


def explanation_json(explanation: Explanation, strongest: int = 3) -> dict:
    """The explanation as JSON-ready values: the map as rows of numbers (4 places), and the cells that raise and that
    lower the genre most."""

    def cells(found: list[Cell]) -> list[dict]:
        return [{"row": cell.row, "column": cell.column, "value": round(cell.value, 4)} for cell in found]

    return {
        "genre": explanation.genre,
        "probability": round(explanation.probability, 4),
        "grid": explanation.grid,
        "patch": explanation.patch,
        "fill": explanation.fill,
        "space": explanation.space,
        "map": [[round(float(value), 4) for value in row] for row in explanation.heatmap],
        "raises": cells(explanation.strongest(strongest, 1)),
        "lowers": cells(explanation.strongest(strongest, -1)),
    }


MAX_SIDE = 512
"""The longest side of an overlay: a larger upload is reduced first (the overlay is for the page)."""
MIN_WIDTH = 128
"""The narrowest overlay, the default network's input width: a narrower poster (a job keeps an upload as the network
reads it, which may be a reduced decoding; the app takes a 1 x 1 upload) is enlarged, so that the map can be seen
and the legend's caption and colour bar have room (at 64 px its labels ran together). Enlarged smoothly, or with
square pixels from under PIXELATED_BELOW pixels wide."""
PIXELATED_BELOW = 32
MIN_SCALE = {"probability": 0.05, "logit": 0.25}
"""The smallest value the colours span: a map whose cells all move the genre less than 5 points stays faint."""
MAX_ALPHA = 0.65
"""The opacity of the colour over the strongest cell; 0 over a cell of value 0."""
COLOUR_REACH = 0.8
"""How far towards its ends the colormap is used: its darkest red and blue (the last tenth at each end) would darken
the poster rather than colour it."""


RED_BLUE = (
    (5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240), (247, 247, 247),
    (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43), (103, 0, 31),
)  # fmt: skip
"""ColorBrewer's diverging RdBu, from blue (-1) through near-white (0) to red (+1): matplotlib's "RdBu_r" (the same
11 colours, interpolated the same way) without importing matplotlib, whose import would cost the first overlay of each
worker 0.3 s."""


@cache
def colour_table(steps: int = 256) -> np.ndarray:
    """(steps, 3) uint8: RED_BLUE interpolated linearly."""
    anchors = np.asarray(RED_BLUE, np.float64)
    where = np.linspace(0, len(anchors) - 1, steps)
    table = np.stack([np.interp(where, np.arange(len(anchors)), anchors[:, band]) for band in range(3)], axis=1)
    table = table.round().astype(np.uint8)
    table.setflags(write=False)
    return table


def overlay_png(
    image: Image.Image, explanation: Explanation, legend: bool = True, max_alpha: float = MAX_ALPHA
) -> bytes:
    """The poster with the heatmap upsampled bilinearly over it: red where the region raises the genre, blue where it
    lowers it, transparent near zero; the colours span the map's strongest value (at least 5 points). With `legend`,
    a band under the poster (the poster is never covered) holds the caption and a colour bar; without it the PNG is
    the poster's size. Posters larger than MAX_SIDE are reduced first, posters narrower than MIN_WIDTH enlarged."""
    poster = image.convert("RGB")
    if max(poster.size) > MAX_SIDE:
        poster.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    if poster.width < MIN_WIDTH:
        enlarged = (MIN_WIDTH, max(1, round(poster.height * MIN_WIDTH / poster.width)))
        smooth = poster.width >= PIXELATED_BELOW
        poster = poster.resize(enlarged, Image.Resampling.LANCZOS if smooth else Image.Resampling.NEAREST)
    width, height = poster.size
    span = max(float(np.abs(explanation.heatmap).max()), MIN_SCALE.get(explanation.space, 0.05))
    # Mode "F" keeps the sign and the fractions through the bilinear resize (cell centres on pixel centres).
    upsampled = Image.fromarray(np.ascontiguousarray(explanation.heatmap, np.float32), "F")
    relative = np.clip(np.asarray(upsampled.resize((width, height), Image.Resampling.BILINEAR)) / span, -1, 1)
    table = colour_table()
    colours = table[colour_positions(relative, len(table))]
    alpha = (np.abs(relative) * max_alpha)[..., np.newaxis]
    blended = np.asarray(poster, np.float32) * (1 - alpha) + colours * alpha
    result = Image.fromarray(blended.round().astype(np.uint8), "RGB")
    if legend:
        result = with_legend(result, explanation, span, table)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def colour_positions(relative: np.ndarray, steps: int) -> np.ndarray:
    """Rows of a colour table of `steps` rows for values in [-1, 1] (0: the middle, near-white)."""
    return ((relative * COLOUR_REACH + 1) / 2 * (steps - 1)).round().astype(np.intp)


def points(value: float, space: str) -> str:
    return f"{value * 100:.0f} pts" if space == "probability" else f"{value:.2f} logit"


def with_legend(poster: Image.Image, explanation: Explanation, span: float, table: np.ndarray) -> Image.Image:
    """The poster above a white band: the caption (wrapped to the poster's width), then a colour bar from -span to
    +span with its ends and middle labelled."""
    width, height = poster.size
    font = ImageFont.load_default(size=max(10, min(16, width // 22)))
    draw = ImageDraw.Draw(poster)
    caption = f"what raises {explanation.genre} (red) and lowers it (blue)"
    lines = wrap(caption, font, width - 8, draw)
    line_height = int(font.size * 1.25)
    bar_height = max(8, font.size * 2 // 3)
    band = 6 + line_height * len(lines) + 4 + bar_height + 2 + line_height + 4
    canvas = Image.new("RGB", (width, height + band), "white")
    canvas.paste(poster, (0, 0))
    draw = ImageDraw.Draw(canvas)
    top = height + 6
    for line in lines:
        draw.text((width / 2, top), line, fill="black", font=font, anchor="ma")
        top += line_height
    top += 4
    margin = 6
    positions = colour_positions(np.linspace(-1, 1, width - 2 * margin), len(table))
    bar = np.repeat(table[positions][np.newaxis], bar_height, axis=0)
    canvas.paste(Image.fromarray(bar, "RGB"), (margin, top))
    draw.rectangle((margin, top, width - margin - 1, top + bar_height - 1), outline="grey")
    top += bar_height + 2
    draw.text((margin, top), f"-{points(span, explanation.space)}", fill="black", font=font, anchor="la")
    draw.text((width / 2, top), "0", fill="black", font=font, anchor="ma")
    draw.text((width - margin, top), f"+{points(span, explanation.space)}", fill="black", font=font, anchor="ra")
    return canvas


def wrap(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int, draw: ImageDraw.ImageDraw) -> list:
    """`text` in lines no wider than `width` pixels, broken before " and " first, then between words (a word longer
    than the line gets a line of its own)."""
    if draw.textlength(text, font=font) <= width:
        return [text]
    lines: list[str] = []
    for part in text.replace(" and ", "\n and ").split("\n"):
        start = len(lines)
        for word in part.split():
            if len(lines) > start and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
    return lines
