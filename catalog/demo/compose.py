"""Composing a demo poster: the background, the regions of its genres' motifs, and the title's lettering."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from catalog.demo.canvas import _CANVAS_SIZE, _SHADING_SIZE, RGB, RGBA, _Box, _GenreStyle, _jitter


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
