"""Generate a deterministic demo catalog of synthetic movie posters, so PosterBench can be tried offline without
shipping copyrighted posters. Each poster carries three signals a model can learn:

- genre, strongly: each genre's colours, motifs and title typography;
- era, visibly: the poster ages smoothly with the movie's year, from crisp and saturated (2020s) to faded,
  warm-tinted, soft and grainy, often with a paper border and dust (1950s);
- quality, weakly and noisily: the higher the IMDb rating, the likelier festival laurels and a row of critics'
  stars; the lower, the likelier a cheap, colour-banded background.

The modules: `movies` (the metadata), `canvas` (sizes, regions, colour helpers), `motifs` and `styles` (each genre's
look), `compose` (background, layout, title), `finish` (era and quality); this module renders and writes the catalog.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from catalog import Movie, OutputInUseError, write_catalog
from catalog.demo.canvas import _CANVAS_SIZE, POSTER_SIZE
from catalog.demo.compose import _background, _clip, _draw_title, _layout, _wash
from catalog.demo.finish import _CHEAP_BELOW, _age_poster, _draw_accolades, _perceived_quality, _poster_age
from catalog.demo.movies import _POSTER_STREAM, JPEG_QUALITY, MAX_DEMO_MOVIES, _rng, demo_movies
from catalog.demo.styles import _STYLES

__all__ = [
    "JPEG_QUALITY",
    "MAX_DEMO_MOVIES",
    "POSTER_SIZE",
    "check_demo_replaceable",
    "demo_movies",
    "generate_demo_catalog",
    "render_poster",
]


# ---------------------------------------------------------------- posters


def render_poster(movie: Movie, rng: np.random.Generator) -> Image.Image:
    """Draw a POSTER_SIZE RGB poster showing cues of each of the movie's genres: the background palette of
    one genre, each genre's motifs in a region of its own over a wash of its palette, and a title set in
    one genre's typography. The whole poster then ages with the movie's year (see `_age_poster`), and its
    rating shows, noisily, as accolades or a cheap-looking background (see `_perceived_quality`).
    All randomness comes from `rng`, so equal generator states give equal pixels."""
    age = _poster_age(movie.year, rng)
    quality = _perceived_quality(movie.rating, rng)
    # Drawn whatever the quality, so that a poster's layout and motifs do not depend on its year or rating.
    banding_step = rng.uniform(20, 34)
    accolades_rng = np.random.default_rng(rng.integers(2**63))
    genres = tuple(genre for genre in movie.genres if genre in _STYLES) or ("Drama",)
    backdrop = _STYLES[genres[rng.integers(len(genres))]]
    banding = banding_step if quality < _CHEAP_BELOW else None
    canvas = _background(backdrop, [_STYLES[genre] for genre in genres], rng, banding)
    regions = _layout(len(genres), rng)
    for position, region in zip(rng.permutation(len(genres)), regions, strict=True):
        style = _STYLES[genres[position]]
        if len(genres) > 1:
            _wash(canvas, style, region, rng)
        layer = style.paint_motifs(Image.new("RGBA", _CANVAS_SIZE, (0, 0, 0, 0)), region, rng)
        canvas.alpha_composite(_clip(layer, region))
    title_span = _draw_title(canvas, movie.title, _STYLES[genres[rng.integers(len(genres))]], rng)
    _draw_accolades(canvas, title_span, quality, accolades_rng)
    poster = canvas.convert("RGB").resize(POSTER_SIZE, Image.Resampling.LANCZOS)
    return _age_poster(poster, age, rng)


# ---------------------------------------------------------------- the catalog


def generate_demo_catalog(
    directory: Path, n_movies: int = 600, seed: int = 0, progress: bool = True, overwrite: bool = False
) -> Path:
    """Build a demo catalog of n_movies synthetic posters in `directory` and return the directory.

    An existing `directory` is replaced only with `overwrite=True`, only if it is empty or a demo catalog
    (check_demo_replaceable: OutputInUseError otherwise, before any poster is drawn), and once the new catalog is
    complete. The same (n_movies, seed) gives a byte-identical movies.csv and identical poster pixels.
    """
    movies = demo_movies(n_movies, seed)
    posters = _poster_files(movies, seed, progress)
    return write_catalog(Path(directory), movies, posters, overwrite=overwrite, check=check_demo_replaceable)


_POSTER_DIRECTORY = "posters"
_DEMO_POSTER = re.compile(r"tt99[0-9]{6}\.jpg")
"""The name of a demo poster file (MAX_DEMO_MOVIES ids, "tt99" plus six digits)."""


def check_demo_replaceable(directory: Path) -> None:
    """Raise OutputInUseError unless `directory` is missing, empty, or a catalog this generator wrote: nothing but
    its movies.csv and its posters/ directory of demo poster files. It is replaced whole, so anything else in it (a
    note, a database, a scrape's progress file, a catalog of real movies) would be lost without a word."""
    directory = Path(directory)
    if not directory.is_dir():
        return  # missing (a file or a dangling link is write_catalog's check_replaceable's to refuse)
    foreign = _foreign_entry(directory)
    if foreign is not None:
        raise OutputInUseError(
            f"{directory} is not a demo catalog (it holds {foreign}), so it is not replaced: choose another path, "
            "or remove it yourself"
        )


def _foreign_entry(directory: Path) -> str | None:
    """The first entry of `directory` (as "posters/NAME" when it is in posters/) that a demo catalog does not hold."""
    for path in sorted(directory.iterdir()):
        if path.name == "movies.csv" and path.is_file() and not path.is_symlink():
            continue
        if path.name != _POSTER_DIRECTORY or path.is_symlink() or not path.is_dir():
            return path.name
        for poster in sorted(path.iterdir()):
            if not _DEMO_POSTER.fullmatch(poster.name) or poster.is_symlink() or not poster.is_file():
                return f"{_POSTER_DIRECTORY}/{poster.name}"
    return None


def _poster_files(movies: Sequence[Movie], seed: int, progress: bool) -> Iterator[tuple[str, bytes]]:
    for index, movie in enumerate(tqdm(movies, desc="rendering posters", unit="poster", disable=not progress)):
        buffer = io.BytesIO()
        render_poster(movie, _rng(seed, _POSTER_STREAM, index)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        yield movie.poster, buffer.getvalue()
