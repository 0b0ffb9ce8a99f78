"""Generate a deterministic demo catalog of synthetic movie posters, so PosterBench can be tried offline without
shipping copyrighted posters. Each poster carries three signals a model can learn:

- genre, strongly: each genre's colours, motifs and title typography;
- era, visibly: the poster ages smoothly with the movie's year, from crisp and saturated (2020s) to faded,
  warm-tinted, soft and grainy, often with a paper border and dust (1950s);
- quality, weakly and noisily: the higher the IMDb rating, the likelier festival laurels and a row of critics'
  stars; the lower, the likelier a cheap, colour-banded background."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont
from tqdm import tqdm

from catalog import GENRES, Movie, write_catalog

POSTER_SIZE: tuple[int, int] = (182, 268)
"""(width, height) of every demo poster, the thumbnail size IMDb serves."""

JPEG_QUALITY = 90
MAX_DEMO_MOVIES = 999_999
"""Ids are "tt99" plus six digits, numbered from tt99000001."""

_SUPERSAMPLING = 2
_CANVAS_SIZE = (POSTER_SIZE[0] * _SUPERSAMPLING, POSTER_SIZE[1] * _SUPERSAMPLING)
_SHADING_SIZE = (_CANVAS_SIZE[0] // 8, _CANVAS_SIZE[1] // 8)
"""Smooth shading (gradients, vignettes) is computed at this size and scaled up to the canvas."""
_METADATA_STREAM = 0
_POSTER_STREAM = 1

_GENRES_PER_MOVIE = (1, 2, 3)
_GENRES_PER_MOVIE_SHARES = (0.45, 0.40, 0.15)
_FIRST_YEAR, _LAST_YEAR = 1950, 2024
_YEARS_UNIFORM_SHARE = 0.45
"""Years: this share uniform over the whole span, the rest skewed to recent years like IMDb's, so that every decade
holds at least about 6% of the movies (the 1950s) and the median year is in the late 1990s."""
_RECENT_YEARS_BETA = (2.6, 1.2)
_MEAN_RATING, _RATING_SD = 6.2, 1.0
_MEDIAN_VOTES, _VOTES_LOG_SD = 4_000, 1.4

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Box:
    """A rectangle of the canvas, in canvas pixels."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def short_side(self) -> float:
        return min(self.width, self.height)

    def point(self, across: float, down: float) -> tuple[float, float]:
        """The point at fractions (`across`, `down`) of the box's width and height."""
        return self.left + across * self.width, self.top + down * self.height


MotifPainter = Callable[[Image.Image, _Box, np.random.Generator], Image.Image]
"""Draws a genre's motifs inside a box on a transparent RGBA layer and returns the layer."""


@dataclass(frozen=True)
class _GenreStyle:
    """Everything that makes a demo movie of one genre look and sound like it."""

    share: float
    rating_shift: float
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    backgrounds: tuple[tuple[RGB, RGB], ...]
    vignette: float
    paint_motifs: MotifPainter
    title_colors: tuple[RGB, ...]
    title_outline: RGB | None
    title_center: float
    title_size: float
    title_uppercase: bool
    title_tracking: float


# ---------------------------------------------------------------- colour and geometry helpers


def _jitter(color: RGB, rng: np.random.Generator, spread: float = 14.0) -> RGB:
    red, green, blue = np.clip(np.asarray(color) + rng.normal(0.0, spread, 3), 0, 255).astype(int)
    return int(red), int(green), int(blue)


def _pick_color(colors: Sequence[RGB], rng: np.random.Generator, alpha: int = 255, spread: float = 14.0) -> RGBA:
    return (*_jitter(colors[rng.integers(len(colors))], rng, spread), alpha)


def _star(
    center: tuple[float, float], outer: float, inner: float, spikes: int, rng: np.random.Generator
) -> list[tuple[float, float]]:
    angle_offset = rng.uniform(0, 2 * math.pi)
    points = []
    for corner in range(2 * spikes):
        radius = (outer if corner % 2 == 0 else inner) * rng.uniform(0.8, 1.15)
        angle = angle_offset + math.pi * corner / spikes
        points.append((center[0] + radius * math.cos(angle), center[1] + radius * math.sin(angle)))
    return points


def _heart(center: tuple[float, float], size: float, tilt: float) -> list[tuple[float, float]]:
    scale = size / 32
    cos_tilt, sin_tilt = math.cos(tilt), math.sin(tilt)
    points = []
    for t in np.linspace(0, 2 * math.pi, 48, endpoint=False):
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        points.append(
            (center[0] + scale * (x * cos_tilt - y * sin_tilt), center[1] + scale * (x * sin_tilt + y * cos_tilt))
        )
    return points


def _circle(center: tuple[float, float], radius: float) -> tuple[float, float, float, float]:
    return center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius


# ---------------------------------------------------------------- genre motifs

_FIRE: tuple[RGB, ...] = ((200, 35, 10), (250, 115, 20), (255, 200, 50), (255, 245, 215))
_STEEL: tuple[RGB, ...] = ((60, 110, 170), (120, 160, 200), (235, 235, 240), (250, 140, 30))


def _paint_action(layer: Image.Image, box: _Box, rng: np.random.Generator) -> Image.Image:
    """Diagonal speed streaks behind one or two explosion bursts."""
    draw = ImageDraw.Draw(layer)
    reach = max(box.width, box.height)
    for _ in range(rng.integers(3, 8)):
        x, y = box.point(rng.uniform(0, 1), rng.uniform(0, 1))
        angle = rng.uniform(math.radians(20), math.radians(60))
        dx, dy = reach * math.cos(angle), -reach * math.sin(angle)
        color = _pick_color(_STEEL, rng, alpha=int(rng.integers(150, 235)))
        draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=color, width=int(rng.integers(3, 15)))
    for _ in range(rng.integers(1, 3)):
        center = box.point(rng.uniform(0.25, 0.75), rng.uniform(0.3, 0.7))
        radius = rng.uniform(0.28, 0.48) * box.short_side
        spikes = int(rng.integers(12, 22))
        for shrink, color in zip((1.0, 0.74, 0.5, 0.27), _FIRE, strict=True):
            inner_ratio = rng.uniform(0.45, 0.7)
            draw.polygon(
                _star(center, radius * shrink, radius * shrink * inner_ratio, spikes, rng),
                fill=(*_jitter(color, rng), 255),
            )
    return layer


_PRIMARIES: tuple[RGB, ...] = ((230, 30, 40), (30, 90, 230), (255, 205, 0), (40, 180, 70), (255, 120, 0))
_DOT_COLORS: tuple[RGB, ...] = ((255, 255, 255), (230, 30, 40), (30, 90, 230))


def _paint_comedy(layer: Image.Image, box: _Box, rng: np.random.Generator) -> Image.Image:
    """Polka dots and big outlined cartoon circles, the largest sometimes grinning."""
    draw = ImageDraw.Draw(layer)
    if rng.random() < 0.7:
        spacing = rng.uniform(26, 44)
        radius = spacing * rng.uniform(0.16, 0.28)
        color = _pick_color(_DOT_COLORS, rng, alpha=220, spread=8)
        for row, y in enumerate(np.arange(box.top + rng.uniform(0, spacing), box.bottom, spacing)):
            shift = spacing / 2 if row % 2 else 0.0
            for x in np.arange(box.left + shift + rng.uniform(0, spacing / 4), box.right, spacing):
                draw.ellipse(_circle((x, y), radius), fill=color)
    radii = sorted(rng.uniform(0.16, 0.34, size=rng.integers(1, 4)) * box.short_side, reverse=True)
    for order, radius in enumerate(radii):
        center = box.point(rng.uniform(0.2, 0.8), rng.uniform(0.25, 0.75))
        draw.ellipse(
            _circle(center, radius), fill=_pick_color(_PRIMARIES, rng, spread=10), outline=(0, 0, 0, 255), width=6
        )
        if order == 0 and rng.random() < 0.6:
            eye_radius = radius * 0.11
            for side in (-1, 1):
                draw.ellipse(
                    _circle((center[0] + side * radius * 0.35, center[1] - radius * 0.25), eye_radius),
                    fill=(0, 0, 0, 255),
                )
            smile = _circle((center[0], center[1] - radius * 0.05), radius * 0.6)
            draw.arc(smile, start=20, end=160, fill=(0, 0, 0, 255), width=max(3, int(radius * 0.08)))
    return layer


_EARTH: tuple[RGB, ...] = ((70, 52, 36), (95, 80, 55), (55, 62, 70), (110, 85, 60))
_DIM_SUN: tuple[RGB, ...] = ((205, 165, 95), (215, 190, 150), (180, 120, 80))


def _paint_drama(layer: Image.Image, box: _Box, rng: np.random.Generator) -> Image.Image:
    """A low horizon under a dim sun, and a large head-and-shoulders portrait silhouette."""
    draw = ImageDraw.Draw(layer)
    with_horizon = rng.random() < 0.6
    if with_horizon:
        horizon = box.top + rng.uniform(0.55, 0.8) * box.height
        if rng.random() < 0.6:
            sun = (box.left + rng.uniform(0.2, 0.8) * box.width, horizon)
            draw.ellipse(
                _circle(sun, rng.uniform(0.1, 0.2) * box.short_side), fill=_pick_color(_DIM_SUN, rng, alpha=220)
            )
        draw.rectangle((box.left, horizon, box.right, box.bottom), fill=_pick_color(_EARTH, rng, alpha=235))
    if not with_horizon or rng.random() < 0.7:
        head_x, head_y = box.point(rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.45))
        head_height = rng.uniform(0.17, 0.25) * box.height
        head_width = head_height * rng.uniform(0.72, 0.85)
        color = _pick_color(_EARTH, rng, alpha=240, spread=10)
        shoulders_top = head_y + head_height * 0.8
        draw.ellipse(
            (head_x - head_height * 2.1, shoulders_top, head_x + head_height * 2.1, shoulders_top + head_height * 2.6),
            fill=color,
        )
        draw.rectangle((head_x - head_width * 0.45, head_y, head_x + head_width * 0.45, shoulders_top + 4), fill=color)
        draw.ellipse((head_x - head_width, head_y - head_height, head_x + head_width, head_y + head_height), fill=color)
    return layer


_BLOOD: tuple[RGB, ...] = ((150, 0, 0), (195, 10, 10), (120, 5, 15))
_MOON: tuple[RGB, ...] = ((232, 228, 205), (210, 215, 200), (240, 225, 180))
_PITCH_BLACK: RGBA = (4, 3, 5, 255)


def _paint_horror(layer: Image.Image, box: _Box, rng: np.random.Generator) -> Image.Image:
    """A glowing moon, a black bare tree or haunted house, and blood dripping from the top edge."""
    draw = ImageDraw.Draw(layer)
    with_moon, with_silhouette, with_drips = rng.random(3) < (0.6, 0.7, 0.7)
    if with_moon:
        center = box.point(rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.4))
        radius = rng.uniform(0.1, 0.17) * box.short_side
        moon = _pick_color(_MOON, rng)
        draw.ellipse(_circle(center, radius * 1.6), fill=(*moon[:3], 60))
        draw.ellipse(_circle(center, radius), fill=moon)
    if with_silhouette:
        ground = box.point(rng.uniform(0.2, 0.8), 1.0)
        height = rng.uniform(0.45, 0.8) * box.height
        if rng.random() < 0.6:
            _bare_branch(draw, ground, math.pi / 2 + rng.uniform(-0.15, 0.15), height * 0.4, height * 0.06, 5, rng)
        else:
            _haunted_house(draw, ground, height, rng)
    if with_drips or not (with_moon or with_silhouette):
        blood = _pick_color(_BLOOD, rng, spread=8)
        band = rng.uniform(6, 16)
        draw.rectangle((box.left, box.top, box.right, box.top + band), fill=blood)
        x = box.left
        while x < box.right:
            width = rng.uniform(4, 11)
            length = band + min(rng.exponential(0.14 * box.height), 0.6 * box.height)
            draw.rectangle((x, box.top, x + width, box.top + length), fill=blood)
            draw.ellipse(_circle((x + width / 2, box.top + length), width * 0.75), fill=blood)
            x += width + rng.uniform(6, 24)
    return layer


def _bare_branch(
    draw: ImageDraw.ImageDraw,
    start: tuple[float, float],
    angle: float,
    length: float,
    width: float,
    depth: int,
    rng: np.random.Generator,
) -> None:
    end = (start[0] + length * math.cos(angle), start[1] - length * math.sin(angle))
    draw.line([start, end], fill=_PITCH_BLACK, width=max(1, round(width)))
    if depth == 0:
        return
    for _ in range(rng.integers(2, 4)):
        turn = rng.uniform(-0.75, 0.75)
        _bare_branch(draw, end, angle + turn, length * rng.uniform(0.55, 0.78), width * 0.65, depth - 1, rng)


def _haunted_house(
    draw: ImageDraw.ImageDraw, ground: tuple[float, float], height: float, rng: np.random.Generator
) -> None:
    x, y = ground
    half_width = height * rng.uniform(0.35, 0.55)
    eaves = y - height * 0.55
    draw.rectangle((x - half_width, eaves, x + half_width, y), fill=_PITCH_BLACK)
    draw.polygon([(x - half_width * 1.15, eaves), (x, y - height), (x + half_width * 1.15, eaves)], fill=_PITCH_BLACK)
    window = height * 0.09
    for column in rng.choice((-1, 0, 1), size=rng.integers(1, 3), replace=False):
        wx, wy = x + column * half_width * 0.55, eaves + height * 0.18
        draw.rectangle((wx - window / 2, wy - window / 2, wx + window / 2, wy + window / 2), fill=(225, 190, 70, 255))


_BOKEH: tuple[RGB, ...] = ((255, 200, 215), (255, 240, 225), (255, 170, 190), (250, 200, 140))
_HEARTS: tuple[RGB, ...] = ((225, 40, 85), (255, 110, 150), (205, 20, 60), (255, 160, 185))


def _paint_romance(layer: Image.Image, box: _Box, rng: np.random.Generator) -> Image.Image:
    """Soft out-of-focus bokeh circles under one big heart and a few small ones."""
    with_bokeh, with_hearts = rng.random(2) < 0.8
    if with_bokeh or not with_hearts:
        draw = ImageDraw.Draw(layer)
        for _ in range(rng.integers(12, 28)):
            center = box.point(rng.uniform(0, 1), rng.uniform(0, 1))
            radius = rng.uniform(0.03, 0.12) * box.short_side + 4
            draw.ellipse(_circle(center, radius), fill=_pick_color(_BOKEH, rng, alpha=int(rng.integers(80, 180))))
        layer = layer.filter(ImageFilter.GaussianBlur(rng.uniform(2.5, 5)))
    if with_hearts:
        draw = ImageDraw.Draw(layer)
        sizes = [rng.uniform(0.35, 0.6)] + list(rng.uniform(0.1, 0.2, size=rng.integers(0, 4)))
        for size in sizes:
            center = box.point(rng.uniform(0.25, 0.75), rng.uniform(0.3, 0.7))
            heart = _heart(center, size * box.short_side, rng.uniform(-0.35, 0.35))
            draw.polygon(heart, fill=_pick_color(_HEARTS, rng, alpha=235), outline=(255, 235, 240, 255), width=2)
    return layer


_SHADOW: RGB = (8, 10, 14)
_COLD_LIGHT: tuple[RGB, ...] = ((200, 205, 212), (150, 160, 172))
_CROSSHAIR: tuple[RGB, ...] = ((205, 25, 25), (225, 230, 235))


def _paint_thriller(layer: Image.Image, box: _Box, rng: np.random.Generator) -> Image.Image:
    """Hard shadows of window blinds, a lone figure in a hat with a long shadow, and a crosshair."""
    draw = ImageDraw.Draw(layer)
    with_blinds, with_figure, with_crosshair = rng.random(3) < (0.6, 0.7, 0.5)
    if with_blinds:
        period = rng.uniform(14, 28)
        slope = rng.uniform(-0.35, 0.35)
        thickness = period * rng.uniform(0.4, 0.6)
        color = (*_jitter(_SHADOW, rng, 4), int(rng.integers(150, 215)))
        rise = slope * box.width
        for y in np.arange(box.top - abs(rise), box.bottom + abs(rise), period):
            left_top, right_top = (box.left, y), (box.right, y + rise)
            draw.polygon(
                [left_top, right_top, (box.right, y + rise + thickness), (box.left, y + thickness)], fill=color
            )
    if with_figure or not (with_blinds or with_crosshair):
        _lone_figure(
            draw, box.point(rng.uniform(0.25, 0.75), rng.uniform(0.85, 0.95)), rng.uniform(0.45, 0.75) * box.height, rng
        )
    if with_crosshair:
        center = box.point(rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75))
        radius = rng.uniform(0.12, 0.22) * box.short_side
        color = _pick_color(_CROSSHAIR, rng, spread=6)
        draw.ellipse(_circle(center, radius), outline=color, width=3)
        x, y = center
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            draw.line(
                [(x + dx * radius * 0.3, y + dy * radius * 0.3), (x + dx * radius * 1.35, y + dy * radius * 1.35)],
                fill=color,
                width=3,
            )
    return layer


def _lone_figure(draw: ImageDraw.ImageDraw, feet: tuple[float, float], height: float, rng: np.random.Generator) -> None:
    x, y = feet
    top = y - height
    lean = rng.choice((-1, 1)) * height * rng.uniform(0.6, 1.4)
    draw.polygon(
        [
            (x - height * 0.1, y),
            (x + height * 0.1, y),
            (x + lean + height * 0.1, y + height * 0.12),
            (x + lean, y + height * 0.12),
        ],
        fill=(*_SHADOW, 140),
    )
    head = height * 0.075
    draw.ellipse(_circle((x, top + head * 1.3), head), fill=(*_SHADOW, 255))
    if rng.random() < 0.6:
        draw.rectangle((x - head * 1.9, top + head * 0.55, x + head * 1.9, top + head * 0.85), fill=(*_SHADOW, 255))
        draw.rectangle((x - head * 1.05, top - head * 0.2, x + head * 1.05, top + head * 0.7), fill=(*_SHADOW, 255))
    shoulders, hem = top + head * 2.4, top + height * 0.68
    draw.polygon(
        [
            (x - height * 0.13, shoulders),
            (x + height * 0.13, shoulders),
            (x + height * 0.17, hem),
            (x - height * 0.17, hem),
        ],
        fill=(*_SHADOW, 255),
    )
    for side in (-1, 1):
        draw.rectangle(
            (x + side * height * 0.075 - height * 0.035, hem - 2, x + side * height * 0.075 + height * 0.035, y),
            fill=(*_SHADOW, 255),
        )


# ---------------------------------------------------------------- the six genres


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(","))


_STYLES: MappingProxyType[str, _GenreStyle] = MappingProxyType(
    {
        "Action": _GenreStyle(
            share=0.17,
            rating_shift=-0.15,
            adjectives=_words(
                "Iron, Rogue, Final, Burning, Steel, Savage, Lethal, "
                "Rapid, Maximum, Black, Hard, Renegade, Zero, Blazing"
            ),
            nouns=_words(
                "Strike, Fury, Force, Impact, Vengeance, Storm, Run, "
                "Fire, Breach, Velocity, Target, Blade, Squadron, Payback, Showdown"
            ),
            backgrounds=(
                ((20, 35, 60), (230, 110, 20)),
                ((15, 25, 45), (70, 115, 165)),
                ((45, 20, 10), (240, 140, 30)),
                ((30, 60, 95), (250, 170, 60)),
            ),
            vignette=0.15,
            paint_motifs=_paint_action,
            title_colors=((250, 250, 250), (255, 150, 30), (200, 215, 230)),
            title_outline=(20, 20, 25),
            title_center=0.84,
            title_size=0.14,
            title_uppercase=True,
            title_tracking=0.0,
        ),
        "Comedy": _GenreStyle(
            share=0.17,
            rating_shift=-0.1,
            adjectives=_words(
                "Crazy, Lucky, Big, Wild, Happy, Silly, Accidental, "
                "Awkward, Totally, Super, Fabulous, Wacky, Little, Perfect"
            ),
            nouns=_words(
                "Wedding, Weekend, Roommates, Vacation, Party, Neighbors, Plan, "
                "Road Trip, Family, Business, Dog, Honeymoon, Reunion, Mix-Up"
            ),
            backgrounds=(
                ((255, 225, 40), (255, 250, 235)),
                ((255, 255, 255), (255, 210, 0)),
                ((70, 160, 255), (255, 235, 60)),
                ((255, 245, 120), (255, 255, 255)),
            ),
            vignette=0.0,
            paint_motifs=_paint_comedy,
            title_colors=((255, 255, 255), (230, 30, 40), (30, 90, 230), (255, 220, 0)),
            title_outline=(0, 0, 0),
            title_center=0.13,
            title_size=0.17,
            title_uppercase=False,
            title_tracking=0.0,
        ),
        "Drama": _GenreStyle(
            share=0.22,
            rating_shift=0.35,
            adjectives=_words(
                "Quiet, Distant, Broken, Long, Autumn, Last, Forgotten, "
                "Golden, Tender, Small, Winter, Lost, Patient, Other"
            ),
            nouns=_words(
                "Harvest, River, Years, Letters, Season, Inheritance, Garden, "
                "Sunrise, Bridge, Country, Daughter, Silence, Shore, Hours"
            ),
            backgrounds=(
                ((125, 100, 72), (60, 50, 40)),
                ((170, 150, 120), (90, 75, 60)),
                ((115, 112, 92), (50, 45, 35)),
                ((150, 120, 95), (85, 90, 85)),
            ),
            vignette=0.35,
            paint_motifs=_paint_drama,
            title_colors=((240, 230, 210), (205, 195, 170), (250, 245, 235)),
            title_outline=None,
            title_center=0.1,
            title_size=0.075,
            title_uppercase=False,
            title_tracking=0.05,
        ),
        "Horror": _GenreStyle(
            share=0.14,
            rating_shift=-0.6,
            adjectives=_words(
                "Midnight, Hollow, Cursed, Bleeding, Dead, Crimson, "
                "Rotten, Wicked, Haunted, Unholy, Screaming, Buried, Pale"
            ),
            nouns=_words(
                "House, Woods, Ritual, Hunger, Whispers, Grave, Shadows, "
                "Cellar, Doll, Curse, Asylum, Harvest, Night, Teeth"
            ),
            backgrounds=(
                ((5, 5, 8), (70, 0, 0)),
                ((0, 0, 0), (30, 20, 25)),
                ((40, 0, 0), (0, 0, 0)),
                ((15, 10, 12), (90, 8, 8)),
            ),
            vignette=0.75,
            paint_motifs=_paint_horror,
            title_colors=((200, 10, 10), (225, 220, 200), (170, 0, 0)),
            title_outline=None,
            title_center=0.9,
            title_size=0.115,
            title_uppercase=True,
            title_tracking=0.02,
        ),
        "Romance": _GenreStyle(
            share=0.14,
            rating_shift=0.05,
            adjectives=_words(
                "Sweet, Endless, Summer, Secret, Sunlit, Forever, "
                "Tender, Starlit, Second, First, Sudden, Lovely, Moonlit"
            ),
            nouns=_words(
                "Kiss, Heart, Love, Hearts, Promise, Letters, Dance, "
                "Affair, Serenade, Valentine, Romance, Rendezvous, Wedding, Crush"
            ),
            backgrounds=(
                ((255, 190, 205), (255, 235, 220)),
                ((250, 160, 180), (255, 220, 190)),
                ((240, 200, 220), (255, 245, 240)),
                ((255, 175, 160), (255, 225, 235)),
            ),
            vignette=0.05,
            paint_motifs=_paint_romance,
            title_colors=((180, 20, 70), (255, 255, 255), (120, 30, 60)),
            title_outline=None,
            title_center=0.5,
            title_size=0.1,
            title_uppercase=False,
            title_tracking=0.0,
        ),
        "Thriller": _GenreStyle(
            share=0.16,
            rating_shift=0.1,
            adjectives=_words(
                "Dark, Hidden, Cold, Deadly, Blind, Perfect, Double, Fatal, Twelfth, Silent, Vanishing, Quiet, Seventh"
            ),
            nouns=_words(
                "Witness, Alibi, Motive, Suspect, Signal, Code, Conspiracy, "
                "Trace, Stranger, Protocol, Informant, Verdict, Room, Game"
            ),
            backgrounds=(
                ((75, 85, 100), (15, 20, 28)),
                ((115, 125, 135), (30, 35, 45)),
                ((40, 55, 72), (10, 12, 18)),
                ((95, 105, 115), (45, 50, 60)),
            ),
            vignette=0.6,
            paint_motifs=_paint_thriller,
            title_colors=((220, 225, 230), (170, 180, 190), (255, 255, 255)),
            title_outline=None,
            title_center=0.16,
            title_size=0.075,
            title_uppercase=True,
            title_tracking=0.35,
        ),
    }
)

_PLACES = ("Paris", "Lisbon", "Havana", "Tokyo", "Venice", "Brooklyn", "Marseille", "Cairo", "Berlin", "Memphis", "Rio")
_SEQUELS = ("II", "III", "2", "IV")
_TITLE_TEMPLATES = (
    "{adjective} {noun}",
    "The {adjective} {noun}",
    "{noun} of the {other}",
    "{noun} in {place}",
    "{adjective} {noun} {sequel}",
    "The {noun}",
)
_TITLE_TEMPLATE_SHARES = (0.38, 0.22, 0.15, 0.1, 0.1, 0.05)


# ---------------------------------------------------------------- metadata


def demo_movies(n_movies: int = 600, seed: int = 0) -> list[Movie]:
    """The demo catalog's metadata alone: the same (n_movies, seed) always gives the same movies,
    and movie i does not depend on n_movies."""
    _check_arguments(n_movies, seed)
    return [_demo_movie(index, _rng(seed, _METADATA_STREAM, index)) for index in range(n_movies)]


def _check_arguments(n_movies: int, seed: int) -> None:
    if not 1 <= n_movies <= MAX_DEMO_MOVIES:
        raise ValueError(f"n_movies must be between 1 and {MAX_DEMO_MOVIES:,}, not {n_movies}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed}")


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def _demo_movie(index: int, rng: np.random.Generator) -> Movie:
    genres = _draw_genres(rng)
    imdb_id = f"tt99{index + 1:06d}"
    rating_shift = float(np.mean([_STYLES[genre].rating_shift for genre in genres]))
    rating = round(float(np.clip(rng.normal(_MEAN_RATING + rating_shift, _RATING_SD), 1.0, 10.0)), 1)
    log_votes = math.log(_MEDIAN_VOTES) + 0.5 * (rating - _MEAN_RATING) + rng.normal(0.0, _VOTES_LOG_SD)
    return Movie(
        imdb_id=imdb_id,
        title=_invent_title(genres, rng),
        year=_draw_year(rng),
        genres=genres,
        rating=rating,
        votes=max(5, round(math.exp(log_votes))),
        poster=f"posters/{imdb_id}.jpg",
    )


def _draw_year(rng: np.random.Generator) -> int:
    uniform = rng.random() < _YEARS_UNIFORM_SHARE
    fraction = rng.random() if uniform else rng.beta(*_RECENT_YEARS_BETA)
    return _FIRST_YEAR + round((_LAST_YEAR - _FIRST_YEAR) * float(fraction))


def _draw_genres(rng: np.random.Generator) -> tuple[str, ...]:
    shares = np.array([_STYLES[genre].share for genre in GENRES])
    count = rng.choice(_GENRES_PER_MOVIE, p=_GENRES_PER_MOVIE_SHARES)
    chosen = rng.choice(len(GENRES), size=count, replace=False, p=shares / shares.sum())
    return tuple(GENRES[position] for position in sorted(chosen))


def _invent_title(genres: tuple[str, ...], rng: np.random.Generator) -> str:
    def word(pool: str) -> str:
        words = getattr(_STYLES[genres[rng.integers(len(genres))]], pool)
        return words[rng.integers(len(words))]

    template = _TITLE_TEMPLATES[rng.choice(len(_TITLE_TEMPLATES), p=_TITLE_TEMPLATE_SHARES)]
    noun, other = word("nouns"), word("nouns")
    return template.format(
        adjective=word("adjectives"),
        noun=noun,
        other=other if other != noun else word("nouns"),
        place=_PLACES[rng.integers(len(_PLACES))],
        sequel=_SEQUELS[rng.integers(len(_SEQUELS))],
    )


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


# ---------------------------------------------------------------- era


_AGE_JITTER = 0.04
"""Posters of one year differ in age by this standard deviation (in units of the whole 1950-2024 span, ~3 years)."""
_LUMA = np.array([0.299, 0.587, 0.114])
_SEPIA = np.array([1.0, 0.85, 0.64])
_SEPIA_LIFT = np.array([22.0, 12.0, 0.0])
_FADED_PAPER = np.array([150.0, 136.0, 112.0])
_PAPER_BORDERS: tuple[RGB, ...] = ((238, 230, 210), (245, 240, 228), (225, 212, 185))


def _poster_age(year: int | None, rng: np.random.Generator) -> float:
    """How old the poster looks, from 0 (a crisp _LAST_YEAR poster) to 1 (a worn _FIRST_YEAR one), linear in the
    year with a little jitter; a movie without a year looks middle-aged."""
    span = _LAST_YEAR - _FIRST_YEAR
    age = 0.5 if year is None else (_LAST_YEAR - year) / span
    return float(np.clip(age + rng.normal(0.0, _AGE_JITTER), 0.0, 1.0))


def _age_poster(poster: Image.Image, age: float, rng: np.random.Generator) -> Image.Image:
    """Give the poster its era's look, every effect growing smoothly with `age`: recent posters are saturated
    and crisp with faint digital noise; old ones are desaturated, sepia-toned, faded (lifted blacks, dimmed
    whites), slightly soft and grainy, often framed by a paper border and speckled with dust and scratches."""
    if rng.random() < np.clip(1.3 * age - 0.4, 0.0, 0.85):
        _paper_border(poster, rng)
    _dust_and_scratches(poster, age, rng)
    if age > 0.15:
        poster = poster.filter(ImageFilter.GaussianBlur(0.9 * age))
    poster = poster.convert("RGB", _era_colors(age))
    width, height = poster.size
    clumps = rng.standard_normal(((height + 1) // 2, (width + 1) // 2, 1), dtype=np.float32)
    grain = np.repeat(np.repeat(clumps * (5.0 * age), 2, axis=0), 2, axis=1)[:height, :width]
    grain += rng.standard_normal((height, width, 1), dtype=np.float32) * (1.0 + 5.0 * age)
    noise = rng.standard_normal((height, width, 3), dtype=np.float32) * rng.uniform(1.5, 3.5)
    pixels = np.asarray(poster, dtype=np.float32) + grain + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _era_colors(age: float) -> tuple[float, ...]:
    """The era's colour grading as one affine map of RGB, in the 12-number form of `Image.convert`'s matrix:
    saturation scaled from 1.3 (new) to 0.45 (oldest), then blended towards sepia tones of the same luma and
    faded towards yellowed paper, both more for older posters."""
    chroma = 1.3 - 0.85 * age
    sepia = 0.7 * age**1.1
    fade = 0.3 * age
    luma_of = np.outer(np.ones(3), _LUMA)  # row i gives channel i the pixel's luma
    saturate = chroma * np.eye(3) + (1 - chroma) * luma_of
    matrix = (1 - fade) * ((1 - sepia) * saturate + sepia * _SEPIA[:, None] * luma_of)
    offset = (1 - fade) * sepia * _SEPIA_LIFT + fade * _FADED_PAPER
    return tuple(float(value) for value in np.column_stack([matrix, offset]).ravel())


def _paper_border(poster: Image.Image, rng: np.random.Generator) -> None:
    """The white margin of an old printed poster, sometimes with a thin keyline inside it."""
    width, height = poster.size
    margin = int(rng.integers(3, 8))
    draw = ImageDraw.Draw(poster)
    draw.rectangle(
        (0, 0, width - 1, height - 1), outline=_jitter(_PAPER_BORDERS[rng.integers(3)], rng, 6), width=margin
    )
    if rng.random() < 0.4:
        draw.rectangle((margin, margin, width - 1 - margin, height - 1 - margin), outline=(40, 30, 25), width=1)


def _dust_and_scratches(poster: Image.Image, age: float, rng: np.random.Generator) -> None:
    width, height = poster.size
    draw = ImageDraw.Draw(poster)
    for _ in range(rng.poisson(14 * age**2)):
        center = (rng.uniform(0, width), rng.uniform(0, height))
        shade = int(rng.choice((25, 230))) + int(rng.integers(-15, 16))
        draw.ellipse(_circle(center, rng.uniform(0.4, 1.3)), fill=(shade, shade, shade))
    for _ in range(rng.poisson(1.5 * age**2)):
        x = rng.uniform(0, width)
        top, bottom = sorted(rng.uniform(0, height, 2))
        draw.line([(x, top), (x + rng.uniform(-3, 3), bottom)], fill=(215, 210, 195), width=1)


# ---------------------------------------------------------------- quality


_QUALITY_NOISE = 0.9
"""Standard deviation of the noise added to the rating's z-score before it shows on the poster."""
_CHEAP_BELOW = -0.7
_STARS_ABOVE = 0.3
_LAURELS_ABOVE = (1.0, 1.8)
_GOLD: tuple[RGB, ...] = ((222, 186, 92), (240, 210, 120), (200, 160, 70))
_LAUREL_WHITE: tuple[RGB, ...] = ((245, 242, 232),)
_FESTIVALS = ("WINNER", "OFFICIAL SELECTION", "BEST PICTURE", "GRAND PRIX", "AUDIENCE AWARD", "BEST DIRECTOR")


def _perceived_quality(rating: float | None, rng: np.random.Generator) -> float:
    """The rating's z-score plus noise, so that the poster's accolades hint at the rating without revealing it:
    above _STARS_ABOVE a row of critics' stars (most of the time), above each of _LAURELS_ABOVE a festival laurel,
    below _CHEAP_BELOW a colour-banded background."""
    score = 0.0 if rating is None else (rating - _MEAN_RATING) / _RATING_SD
    return score + float(rng.normal(0.0, _QUALITY_NOISE))


def _draw_accolades(
    canvas: Image.Image, title_span: tuple[float, float], quality: float, rng: np.random.Generator
) -> None:
    """Stack laurels and critics' stars next to the title, on the side with more room."""
    width, height = _CANVAS_SIZE
    laurels = sum(quality > threshold for threshold in _LAURELS_ABOVE)
    stars = quality > _STARS_ABOVE and rng.random() < 0.75
    if not (laurels or stars):
        return
    top, bottom = title_span
    downwards = top < height - bottom
    y = bottom + 0.02 * height if downwards else top - 0.02 * height
    draw = ImageDraw.Draw(canvas)
    color = _pick_color(_GOLD if rng.random() < 0.7 else _LAUREL_WHITE, rng, spread=6)
    if laurels:
        size = rng.uniform(0.16, 0.2) * width
        gap = size * 1.45
        y_center = y + size / 2 if downwards else y - size / 2
        y_center = float(np.clip(y_center, size / 2, height - size / 2))
        for column in range(laurels):
            x_center = width / 2 + (column - (laurels - 1) / 2) * gap
            _laurel(draw, (x_center, y_center), size, color, rng)
        y = y_center + size * 0.6 if downwards else y_center - size * 0.6
    if stars:
        radius = 0.022 * width
        count = int(np.clip(round(3.5 + quality), 3, 5))
        y_center = float(np.clip(y + radius * 1.5 if downwards else y - radius * 1.5, radius, height - radius))
        for index in range(count):
            x = width / 2 + (index - (count - 1) / 2) * radius * 2.6
            draw.polygon(_star((x, y_center), radius, radius * 0.45, 5, rng), fill=color)


def _laurel(
    draw: ImageDraw.ImageDraw, center: tuple[float, float], size: float, color: RGBA, rng: np.random.Generator
) -> None:
    """A festival laurel: two arcs of paired leaves growing upwards around a line or two of tiny award text."""
    cx, cy = center
    radius = size / 2
    leaf_length, leaf_width = size * 0.17, size * 0.05
    for mirror in (1, -1):  # the left branch, then the right one
        for step in range(7):
            angle = math.radians(258 - step * 24)  # up the left side of a circle, from below the centre
            base = (radius * math.cos(angle), radius * math.sin(angle))
            growth = math.atan2(-math.cos(angle), math.sin(angle))
            for spread in (-0.55, 0.55):
                dx, dy = math.cos(growth + spread), math.sin(growth + spread)
                outline = (
                    base,
                    (
                        base[0] + dx * leaf_length / 2 - dy * leaf_width,
                        base[1] + dy * leaf_length / 2 + dx * leaf_width,
                    ),
                    (base[0] + dx * leaf_length, base[1] + dy * leaf_length),
                    (
                        base[0] + dx * leaf_length / 2 + dy * leaf_width,
                        base[1] + dy * leaf_length / 2 - dx * leaf_width,
                    ),
                )
                draw.polygon([(cx + mirror * x, cy - y) for x, y in outline], fill=color)
    words = _FESTIVALS[rng.integers(len(_FESTIVALS))].split()
    font = ImageFont.load_default(size=max(6, round(size * 0.13)))
    line_height = font.size * 1.1
    y = cy - line_height * len(words) / 2
    for word in words:
        draw.text((cx - font.getlength(word) / 2, y), word, font=font, fill=color)
        y += line_height


def _gradient(top: RGB, bottom: RGB, rng: np.random.Generator) -> np.ndarray:
    """Small (height, width, 3) float pixels shading from `top` to `bottom` along a roughly vertical direction."""
    width, height = _SHADING_SIZE
    angle = math.pi / 2 + rng.uniform(-0.5, 0.5)
    ys, xs = np.ogrid[0:height, 0:width]
    along = xs * math.cos(angle) + ys * math.sin(angle)
    along = (along - along.min()) / (along.max() - along.min())
    top_color = np.asarray(top, dtype=np.float64)
    return top_color + along[..., None] * (np.asarray(bottom, dtype=np.float64) - top_color)


def _to_canvas(shading: np.ndarray) -> Image.Image:
    small = Image.fromarray(np.clip(shading, 0, 255).astype(np.uint8))
    return small.resize(_CANVAS_SIZE, Image.Resampling.BILINEAR).convert("RGBA")


def _background(
    backdrop: _GenreStyle, styles: list[_GenreStyle], rng: np.random.Generator, banding: float | None = None
) -> Image.Image:
    """The backdrop genre's gradient, perhaps ending in another genre's colour, under the genre's vignette; with
    `banding`, quantised into visible steps of that many levels, like a cheaply printed poster."""
    top, bottom = (_jitter(color, rng, 12) for color in backdrop.backgrounds[rng.integers(len(backdrop.backgrounds))])
    others = [style for style in styles if style is not backdrop]
    if others and rng.random() < 0.4:
        other = others[rng.integers(len(others))]
        bottom = _jitter(other.backgrounds[rng.integers(len(other.backgrounds))][1], rng, 12)
    shading = _gradient(top, bottom, rng)
    if backdrop.vignette:
        width, height = _SHADING_SIZE
        ys, xs = np.ogrid[0:height, 0:width]
        distance = ((xs / (width - 1) - 0.5) ** 2 + (ys / (height - 1) - 0.5) ** 2) / 0.5
        shading *= (1 - backdrop.vignette * rng.uniform(0.7, 1.0) * distance)[..., None]
    if banding:
        shading = (np.floor(shading / banding) + 0.5) * banding
    return _to_canvas(shading)


def _wash(canvas: Image.Image, style: _GenreStyle, region: _Box, rng: np.random.Generator) -> None:
    """Tint a region with a genre's background palette, with soft edges."""
    top, bottom = (_jitter(color, rng, 12) for color in style.backgrounds[rng.integers(len(style.backgrounds))])
    tint = _to_canvas(_gradient(top, bottom, rng))
    mask = Image.new("L", _CANVAS_SIZE, 0)
    opacity = int(rng.integers(150, 215))
    ImageDraw.Draw(mask).rectangle((region.left, region.top, region.right, region.bottom), fill=opacity)
    canvas.paste(tint, (0, 0), mask.filter(ImageFilter.GaussianBlur(10)))


def _layout(count: int, rng: np.random.Generator) -> list[_Box]:
    """Split the canvas into one region per genre: the whole poster, two halves, or three bands."""
    width, height = _CANVAS_SIZE
    if count == 1:
        return [_Box(0, 0, width, height)]
    if count == 2 and rng.random() < 0.35:
        cut = width * rng.uniform(0.42, 0.58)
        return [_Box(0, 0, cut, height), _Box(cut, 0, width, height)]
    cuts = [rng.uniform(0.4, 0.6)] if count == 2 else [rng.uniform(0.28, 0.38), rng.uniform(0.62, 0.72)]
    edges = [0.0, *(height * cut for cut in cuts), float(height)]
    return [_Box(0, upper, width, lower) for upper, lower in zip(edges, edges[1:], strict=False)]


def _clip(layer: Image.Image, region: _Box) -> Image.Image:
    inside = Image.new("L", _CANVAS_SIZE, 0)
    ImageDraw.Draw(inside).rectangle((region.left - 4, region.top - 4, region.right + 4, region.bottom + 4), fill=255)
    layer.putalpha(ImageChops.multiply(layer.getchannel("A"), inside))
    return layer


_LINE_SPACING = 1.15
_TITLE_SHADOW: RGBA = (0, 0, 0, 150)


def _draw_title(canvas: Image.Image, title: str, style: _GenreStyle, rng: np.random.Generator) -> tuple[float, float]:
    """Set the title in the genre's typography: position, size, colour, case, outline and letter spacing.
    Returns the top and bottom of the title block."""
    width, height = _CANVAS_SIZE
    text = title.upper() if style.title_uppercase else title
    size = max(12, round(style.title_size * width * rng.uniform(0.85, 1.15)))
    while True:
        font = ImageFont.load_default(size=size)
        tracking = style.title_tracking * size
        lines = _wrap(text, font, tracking, max_width=width * 0.88)
        if size <= 12 or max(_line_width(line, font, tracking) for line in lines) <= width * 0.92:
            break
        size = round(size * 0.9)
    block_height = size * _LINE_SPACING * len(lines)
    center_y = (style.title_center + rng.uniform(-0.035, 0.035)) * height
    y = float(np.clip(center_y - block_height / 2, height * 0.02, height * 0.98 - block_height))
    fill = _jitter(style.title_colors[rng.integers(len(style.title_colors))], rng, 8)
    center_x = width / 2 + rng.uniform(-0.03, 0.03) * width
    if style.title_outline is None:
        shadow = Image.new("RGBA", _CANVAS_SIZE, (0, 0, 0, 0))
        offset = max(2, size // 16)
        _set_lines(ImageDraw.Draw(shadow), lines, (center_x + offset, y + offset), font, size, tracking, _TITLE_SHADOW)
        canvas.alpha_composite(shadow.filter(ImageFilter.GaussianBlur(offset)))
    _set_lines(ImageDraw.Draw(canvas), lines, (center_x, y), font, size, tracking, (*fill, 255), style.title_outline)
    return y, y + block_height


def _set_lines(
    draw: ImageDraw.ImageDraw,
    lines: list[str],
    top_center: tuple[float, float],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    size: int,
    tracking: float,
    fill: RGBA,
    outline: RGB | None = None,
) -> None:
    """Draw centred lines of text, letter by letter when the letters are spaced out."""
    center_x, y = top_center
    stroke_width = max(2, size // 12) if outline else 0
    for line in lines:
        x = center_x - _line_width(line, font, tracking) / 2
        for piece in line if tracking else [line]:
            draw.text((x, y), piece, font=font, fill=fill, stroke_width=stroke_width, stroke_fill=outline)
            x += font.getlength(piece) + tracking
        y += size * _LINE_SPACING


def _line_width(line: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, tracking: float) -> float:
    return font.getlength(line) + tracking * max(0, len(line) - 1)


def _wrap(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, tracking: float, max_width: float
) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and _line_width(candidate, font, tracking) <= max_width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines


# ---------------------------------------------------------------- the catalog


def generate_demo_catalog(
    directory: Path, n_movies: int = 600, seed: int = 0, progress: bool = True, overwrite: bool = False
) -> Path:
    """Build a demo catalog of n_movies synthetic posters in `directory` and return the directory.

    An existing `directory` is replaced only with `overwrite=True`, once the new catalog is complete. The same
    (n_movies, seed) gives a byte-identical movies.csv and identical poster pixels.
    """
    movies = demo_movies(n_movies, seed)
    return write_catalog(Path(directory), movies, _poster_files(movies, seed, progress), overwrite=overwrite)


def _poster_files(movies: Sequence[Movie], seed: int, progress: bool) -> Iterator[tuple[str, bytes]]:
    for index, movie in enumerate(tqdm(movies, desc="rendering posters", unit="poster", disable=not progress)):
        buffer = io.BytesIO()
        render_poster(movie, _rng(seed, _POSTER_STREAM, index)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        yield movie.poster, buffer.getvalue()
