"""Each genre's motifs, painted on a layer within a region of the demo poster."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from catalog.demo.canvas import RGB, RGBA, _Box, _circle, _heart, _jitter, _pick_color, _star

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
