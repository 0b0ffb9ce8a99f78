"""Decode poster images into the arrays the network takes, with clear errors for bad input."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

MAX_PIXELS = 40_000_000
"""Refuse images larger than this (a decompression bomb guard); real posters are far smaller."""


class PosterImageError(ValueError):
    """The input is not an image we can read."""


def load_poster(source: str | Path | bytes, size: int) -> np.ndarray:
    """Decode an image file or its bytes into a (size, size, 3) uint8 RGB array (squashed, as in the paper)."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    name = "the uploaded file" if isinstance(source, bytes) else str(source)
    try:
        with Image.open(stream) as image:
            if image.width * image.height > MAX_PIXELS:
                raise PosterImageError(
                    f"{name} is {image.width} x {image.height} pixels; the limit is {MAX_PIXELS:,} pixels"
                )
            image.draft("RGB", (size, size))
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except PosterImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise PosterImageError(f"{name} is not an image we can read (JPEG, PNG, WebP, GIF ...): {error}") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise PosterImageError(f"{name} is damaged or truncated: {error}") from error
    return np.asarray(rgb, dtype=np.uint8)


def load_posters(paths: Sequence[Path], size: int, progress: bool = True) -> np.ndarray:
    """Decode many poster files into one (n, size, size, 3) uint8 array, with a progress bar."""
    batch = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for row, path in enumerate(tqdm(paths, desc="reading posters", unit="poster", disable=not progress)):
        batch[row] = load_poster(path, size)
    return batch


def preprocess(batch: np.ndarray) -> np.ndarray:
    """uint8 RGB (n, h, w, 3) -> float32 VGG-16 input (caffe style: BGR, ImageNet mean subtracted)."""
    from keras.applications.vgg16 import preprocess_input

    return preprocess_input(batch.astype(np.float32))  # works in place on its own float copy
