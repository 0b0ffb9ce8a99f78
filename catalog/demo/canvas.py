"""The demo posters' canvas: its sizes, colour types, the regions and genre styles that motifs are drawn in, and
colour and geometry helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

POSTER_SIZE: tuple[int, int] = (182, 268)
"""(width, height) of every demo poster, the thumbnail size IMDb serves."""

_SUPERSAMPLING = 2
_CANVAS_SIZE = (POSTER_SIZE[0] * _SUPERSAMPLING, POSTER_SIZE[1] * _SUPERSAMPLING)
_SHADING_SIZE = (_CANVAS_SIZE[0] // 8, _CANVAS_SIZE[1] // 8)
"""Smooth shading (gradients, vignettes) is computed at this size and scaled up to the canvas."""

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
