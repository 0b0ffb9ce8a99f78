"""Decode poster images into the arrays the network takes, with clear errors for bad input."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

MAX_PIXELS = 40_000_000
"""Refuse images larger than this (a decompression bomb guard); real posters are far smaller."""

WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
IMAGENET_BGR_MEANS = np.array([103.939, 116.779, 123.68], dtype=np.float32)
"""VGG-16's ('caffe') per-channel ImageNet means, in the network's BGR channel order."""


class PosterImageError(ValueError):
    """The input is not an image we can read."""


def load_poster(source: str | Path | bytes, size: int) -> np.ndarray:
    """Decode an image file or its bytes into a (size, size, 3) uint8 RGB array (squashed, as in the paper)."""
    return poster_array(decode_poster(source, (size, size)), size)


def decode_poster(
    source: str | Path | bytes, at_least: tuple[int, int], formats: Sequence[str] | None = None
) -> Image.Image:
    """Decode an image file or its bytes into an upright 8-bit RGB image, at least `at_least` pixels
    where the image is that large (JPEGs are decoded at a reduced scale when that suffices).

    Handles EXIF orientation, CMYK, greyscale, palette, transparency (on white) and 16-bit images;
    anything unreadable or too large raises PosterImageError. `formats` (Pillow format names such as
    "JPEG", "PNG") limits what is accepted, judged by the content, never by a file name.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    name = "the uploaded file" if isinstance(source, bytes) else str(source)
    try:
        with Image.open(stream, formats=formats) as image:
            if image.width * image.height > MAX_PIXELS:
                size_text = f"{image.width} x {image.height} pixels"
                raise PosterImageError(f"{name} is too large: {size_text}; the limit is {MAX_PIXELS:,} pixels")
            image.draft("RGB", at_least)
            return to_rgb(ImageOps.exif_transpose(image))
    except PosterImageError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own guard, for images far beyond MAX_PIXELS
        raise PosterImageError(f"{name} is too large: far more than the limit of {MAX_PIXELS:,} pixels") from error
    except UnidentifiedImageError as error:
        accepted = ", ".join(formats) if formats else "JPEG, PNG, WebP, GIF ..."
        raise PosterImageError(f"{name} is not an image we can read ({accepted})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise PosterImageError(f"{name} is damaged or truncated: {error}") from error


def poster_array(image: Image.Image, size: int) -> np.ndarray:
    """An RGB image squashed to (size, size, 3) uint8, the network's input before preprocessing."""
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: 16- and 32-bit greyscale rescaled, transparency flattened onto white."""
    if image.mode in WIDE_GREY_MODES:
        grey = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if image.mode.startswith("I;16") or grey.max() > 255 else 255.0
        image = Image.fromarray(np.clip(grey / full_scale * 255.0, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def load_posters(paths: Sequence[Path], size: int, progress: bool = True) -> np.ndarray:
    """Decode many poster files into one (n, size, size, 3) uint8 array, with a progress bar."""
    batch = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for row, path in enumerate(tqdm(paths, desc="reading posters", unit="poster", disable=not progress)):
        batch[row] = load_poster(path, size)
    return batch


def preprocess(batch: np.ndarray) -> np.ndarray:
    """uint8 RGB (n, h, w, 3) -> float32 VGG-16 input (caffe style: BGR, ImageNet mean subtracted), exactly what
    keras.applications.vgg16.preprocess_input gives, without importing Keras (the ONNX-served app has none)."""
    return batch[..., ::-1].astype(np.float32) - IMAGENET_BGR_MEANS
