"""What ages a demo poster with its year (fading, sepia, grain, paper borders, dust) and what its rating shows,
noisily: festival laurels and critics' stars, or a cheap, colour-banded background."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from catalog.demo.canvas import _CANVAS_SIZE, RGB, RGBA, _circle, _jitter, _pick_color, _star
from catalog.demo.movies import _FIRST_YEAR, _LAST_YEAR, _MEAN_RATING, _RATING_SD

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
