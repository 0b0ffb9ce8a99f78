"""Non-poster detection: how many of a few hundred images that are not movie posters the model flags
("this does not look like a movie poster"), and how many real held-out posters it flags by mistake.

The non-posters are made here, seeded, or taken from the sample photos scikit-image ships (nothing is downloaded):
photos whole and cropped to a poster's shape, noise, blank and gradient images, random shapes, screenshots of text,
of a desktop window and of charts. The real posters are the model's held-out test split when the catalog is the one
it was trained on, else every poster of the catalog. The last line is one JSON object.

    python -m bench.non_posters --catalog ../shared/data --model var/runs/<catalog>/model-default
"""

from __future__ import annotations

import argparse
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

POSTER = (182, 268)
SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass",
    "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
    "rocket", "shepp_logan_phantom", "text", "binary_blobs", "checkerboard",
)  # fmt: skip
WORDS = (
    "the", "of", "and", "poster", "image", "report", "quarterly", "revenue", "meeting", "notes", "lorem", "ipsum",
    "dolor", "sit", "amet", "error", "line",
)  # fmt: skip


def colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def as_rgb(array: np.ndarray) -> Image.Image:
    """A scikit-image sample (grey, RGB, RGBA; any dtype) as an 8-bit RGB image."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = array.astype(np.float64)
        array = (255 * (array - array.min()) / (np.ptp(array) or 1.0)).astype(np.uint8)
    image = Image.fromarray(array)
    return image.convert("RGB")


def photos(rng: np.random.Generator) -> Iterator[tuple[str, Image.Image]]:
    """Each scikit-image sample photo whole, cropped to a poster's shape, and cropped wide."""
    import skimage.data

    for name in SKIMAGE_PHOTOS:
        try:
            image = as_rgb(getattr(skimage.data, name)())
        except Exception:  # noqa: BLE001 - a sample that needs an optional download (pooch) is left out
            continue
        yield "photo", image
        width, height = image.size
        tall = min(height, int(width / 0.68))
        left, top = rng.integers(0, width - int(tall * 0.68) + 1), rng.integers(0, height - tall + 1)
        yield "photo crop, poster-shaped", image.crop((left, top, left + int(tall * 0.68), top + tall))
        wide = (int(width * 0.8), int(height * 0.5))
        left, top = rng.integers(0, width - wide[0] + 1), rng.integers(0, height - wide[1] + 1)
        yield "photo crop, wide", image.crop((left, top, left + wide[0], top + wide[1]))


def noise(rng: np.random.Generator) -> Image.Image:
    kind = rng.integers(3)
    if kind == 0:
        return Image.fromarray(rng.integers(0, 256, (POSTER[1], POSTER[0], 3), dtype=np.uint8))
    if kind == 1:
        grey = np.clip(rng.normal(128, 50, (POSTER[1], POSTER[0])), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    salt = rng.choice([0, 255], size=(POSTER[1], POSTER[0], 1), p=[0.5, 0.5]).astype(np.uint8)
    return Image.fromarray(np.repeat(salt, 3, axis=2))


def blank(rng: np.random.Generator) -> Image.Image:
    size = (int(rng.integers(100, 800)), int(rng.integers(100, 800)))
    if rng.random() < 0.5:
        return Image.new("RGB", size, colour(rng))
    start, end = np.array(colour(rng)), np.array(colour(rng))
    ramp = np.linspace(0, 1, size[1])[:, None, None]
    return Image.fromarray((start + (end - start) * ramp).repeat(size[0], axis=1).astype(np.uint8))


def shapes(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", POSTER, colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 20))):
        x, y, r = int(rng.integers(0, POSTER[0])), int(rng.integers(0, POSTER[1])), int(rng.integers(5, 70))
        box = [x - r, y - r, x + r, y + r]
        [draw.ellipse, draw.rectangle][int(rng.integers(2))](box, fill=colour(rng))
    return image


def line_of_text(rng: np.random.Generator, words: int) -> str:
    return " ".join(str(rng.choice(WORDS)) for _ in range(words))


def text_screenshot(rng: np.random.Generator) -> Image.Image:
    dark = rng.random() < 0.3
    image = Image.new(
        "RGB", (int(rng.integers(400, 1000)), int(rng.integers(250, 700))), (30, 30, 30) if dark else "white"
    )
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=int(rng.integers(11, 18)))
    for row in range(0, image.size[1] - 20, int(font.size * 1.5)):
        draw.text(
            (12, 8 + row), line_of_text(rng, int(rng.integers(3, 14))), fill="#ddd" if dark else "black", font=font
        )
    return image


def window_screenshot(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (800, 500), (236, 236, 236))
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=13)
    draw.rectangle([0, 0, 800, 28], fill=(60, 60, 70))
    draw.text((10, 7), line_of_text(rng, 3), fill="white", font=font)
    draw.rectangle([0, 28, 180, 500], fill=(220, 224, 230))
    for row in range(8):
        draw.text((12, 44 + 26 * row), line_of_text(rng, 2), fill="black", font=font)
    for button in range(int(rng.integers(2, 6))):
        left = 200 + 120 * button
        draw.rounded_rectangle([left, 440, left + 100, 470], 6, fill=colour(rng))
    for row in range(10):
        draw.text((200, 50 + 30 * row), line_of_text(rng, int(rng.integers(4, 10))), fill=(40, 40, 40), font=font)
    return image


def chart(rng: np.random.Generator) -> Image.Image:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(float(rng.uniform(4, 7)), float(rng.uniform(3, 5))), dpi=80)
    axis = figure.subplots()
    x = np.arange(12)
    [axis.plot, axis.bar, axis.scatter][int(rng.integers(3))](x, rng.normal(size=12).cumsum())
    axis.set_title(line_of_text(rng, 3))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return Image.open(buffer).convert("RGB")


MADE: dict[str, tuple[Callable[[np.random.Generator], Image.Image], int]] = {
    "noise": (noise, 24),
    "blank or gradient": (blank, 24),
    "random shapes": (shapes, 30),
    "text screenshot": (text_screenshot, 30),
    "window screenshot": (window_screenshot, 16),
    "chart": (chart, 16),
}


def non_posters(seed: int = 0) -> list[tuple[str, Image.Image]]:
    """(kind, image) for every non-poster: scikit-image's photos (whole and cropped) and the made ones."""
    rng = np.random.default_rng(seed)
    found = list(photos(rng))
    for kind, (make, count) in MADE.items():
        found += [(kind, make(rng)) for _ in range(count)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True, help="real posters: the model's test split in it")
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory (its ONNX export if any)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--posters", type=int, default=0, help="at most this many real posters (0: all)")
    args = parser.parse_args()

    from app.resources import load_model
    from catalog import read_catalog
    from model.evaluation import evaluation_movies, predict_movies
    from model.images import poster_array

    model = load_model(str(args.model))
    images = non_posters(args.seed)
    arrays = np.stack([poster_array(image, model.input_size) for _, image in images])
    flagged = ~model.detector.passes(model.predict(arrays).poster_score)
    catalog = read_catalog(args.catalog)
    ids, which = evaluation_movies(catalog, args.model)
    ids = ids[: args.posters] if args.posters else ids
    posters_flagged = ~model.detector.passes(predict_movies(model, catalog, ids, progress=False).poster_score)

    kinds = sorted({kind for kind, _ in images}, key=[kind for kind, _ in images].index)
    per_kind = {kind: [bool(f) for (k, _), f in zip(images, flagged, strict=True) if k == kind] for kind in kinds}
    print(f"model {args.model} ({type(model).__name__}); real posters: {len(ids)}, {which} of {args.catalog}")
    print(f"{'non-posters':<28} {'n':>5} {'flagged':>8}")
    for kind, found in per_kind.items():
        print(f"{kind:<28} {len(found):>5} {np.mean(found):>8.1%}")
    print(f"{'all non-posters':<28} {len(images):>5} {flagged.mean():>8.1%}   (detection)")
    print(f"{'real posters':<28} {len(ids):>5} {posters_flagged.mean():>8.1%}   (false alarms)")
    summary = {
        "detection": round(float(flagged.mean()), 4),
        "false_alarms": round(float(posters_flagged.mean()), 4),
        "n_non_posters": len(images),
        "n_posters": len(ids),
        "per_kind": {kind: round(float(np.mean(found)), 4) for kind, found in per_kind.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
