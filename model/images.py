"""Decode poster images into the arrays the network takes, with clear errors for bad input. What an image may cost is
judged before any of its pixels is decoded: from its bytes, whether Pillow can read its header quickly
(`check_structure`), then from its header, its shape, its size and the budget of its kind of file (`check_header`).
Large JPEGs are then decoded at a reduced scale and everything else reduced strip by strip, with no full-size copy
beyond the decoder's own. `bench/image_cost.py` measures the worst image each limit lets through."""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile
from tqdm import tqdm

from catalog import Catalog

MAX_ASPECT = 5
"""At most 5 times as tall as wide, or as wide as tall: the real catalog's posters span 2.1:1 to 1:2.7."""
MAX_SIDE = 12_000
"""The most pixels a side: a one-sheet poster (27 x 40 inches) scanned at 300 dpi is 8,100 x 12,000."""
MAX_PIXELS = 40_000_000
"""The most pixels of any image; a JPEG of one scan may have as many, as it is decoded at 1/2 to 1/8 scale."""
FULL_SIZE_PIXELS = 12_500_000
"""The most pixels of an image decoded at full size (PNG, GIF and any format but JPEG and WebP), 50 MB as RGBA: a
12-megapixel phone photo (4032 x 3024) fits."""
WIDE_PNG_PIXELS = FULL_SIZE_PIXELS // 2
"""The most pixels of a 16-bit PNG, which has twice the bytes to inflate and unfilter per pixel."""
WEBP_PIXELS = 6_000_000
"""The most pixels of a WebP: Pillow's decoder holds about four full-size RGBA copies of it (16 bytes a pixel)."""
WEBP_BYTES = 3_000_000
"""The largest WebP file: a lossy one decodes about 6 times slower per byte than a baseline JPEG."""
PROGRESSIVE_SAMPLES = 40_000_000
"""A progressive (or any multi-scan) JPEG keeps every DCT coefficient until its last scan, 2 bytes a sample whatever
the scale it is decoded at: 80 MB at most (26.7 million pixels with the usual 4:2:0 colour, 10 million in CMYK)."""
PROGRESSIVE_BYTES = 4_000_000
"""The largest progressive JPEG file: its scans decode 4 to 5 times slower per byte than a baseline JPEG's."""
MAX_SCANS = 100
"""The most scans of a JPEG (encoders write 1 to about 20); each scan is a pass over the whole image."""
READ_CODINGS = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive"}
"""The JPEG codings read (Huffman-coded DCT, what cameras, phones and editors write), by start-of-frame marker."""
OTHER_CODINGS = {0xC3: "lossless", 0xC7: "lossless", 0xCB: "lossless", 0xCF: "lossless"}
MAX_PARTS = 4_096
"""The most PNG chunks, JPEG marker segments (before the first scan) or GIF data blocks (before the first frame) of a
file: Pillow reads each in Python (10 MB of empty PNG chunks took it 9 s to open); libpng's 8 KB data chunks make
1,280 of a 10 MB PNG."""
MAX_PADDING = 65_536
"""The most bytes of padding between a JPEG's markers, which Pillow reads one at a time (9 MB of it took 1.5 s)."""
JPEG_PADDING = re.compile(rb"[^\xff]*\xff*")
"""Padding between JPEG markers: junk, then the fill bytes before a marker's own FF."""
JPEG_MARKER_AFTER_CODED_DATA = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")
"""The FF of the next marker: in coded data an FF is followed by 00 (a stuffed FF) or a restart marker, and fill FFs
come before a marker's own. One FF and one byte looked at per position: `\xff+` there backed off through every run
of FF bytes, quadratic in its length (a 10 MB upload of them would have held a worker for days)."""
STRIP_PIXELS = 1 << 20
"""Images are turned into RGB and reduced in strips of about this many pixels."""

WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
IMAGENET_BGR_MEANS = np.array([103.939, 116.779, 123.68], dtype=np.float32)
"""VGG-16's ('caffe') per-channel ImageNet means, in the network's BGR channel order."""
TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""How to show an image upright, by its EXIF orientation (as ImageOps.exif_transpose does)."""


class PosterImageError(ValueError):
    """The input is not an image we can read, or one that would cost too much to decode."""


InputSize = tuple[int, int]
"""(width, height) in pixels of the network's input."""


def width_height(size: int | InputSize) -> InputSize:
    """`size` as (width, height): an int is a square."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def load_poster(source: str | Path | bytes, size: int | InputSize) -> np.ndarray:
    """Decode an image file or its bytes into a (height, width, 3) uint8 RGB array of `size` (width, height; an int
    is a square), squashed to it, as in the paper."""
    return poster_array(decode_poster(source, width_height(size)), size)


def decode_poster(
    source: str | Path | bytes,
    at_least: tuple[int, int],
    formats: Sequence[str] | None = None,
    name: str | None = None,
) -> Image.Image:
    """Decode an image file or its bytes into an upright 8-bit RGB image, at least `at_least` pixels where the image
    is that large: JPEGs are decoded at a reduced scale and other images reduced by a whole factor when that
    suffices. Only the first frame of an animation is decoded.

    The image carries none of the file's metadata (its info is empty). Handles EXIF orientation, CMYK, greyscale,
    palette, transparency (on white) and 16-bit images; anything unreadable, or refused by `check_structure` or
    `check_header`, raises PosterImageError. `formats` (Pillow format names such as "JPEG", "PNG") limits what is
    accepted, judged by the content, never by a file name. `name` is what the errors call the image (default: its
    path, or "the uploaded file" for bytes).
    """
    name = name or ("the uploaded file" if isinstance(source, bytes) else str(source))
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        check_structure(data, name)
        with Image.open(io.BytesIO(data), formats=formats) as image:
            check_header(image, data, name)
            if isinstance(image, JpegImageFile):
                image.draft("RGB", upright_size(at_least, orientation(image)))  # from the header: no pixel yet
            image.load()  # the first frame
            turn = orientation(image)
            reduced = reduced_rgb(image, upright_size(at_least, turn))
        upright = reduced.transpose(TRANSPOSITIONS[turn]) if turn in TRANSPOSITIONS else reduced
        upright.info = {}  # the pixels alone: no comment, EXIF or profile of the file travels on (into a thumbnail)
        return upright
    except PosterImageError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own guard, for images far beyond MAX_PIXELS
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f" ({int(found.group(1)):,} pixels)" if found else ""
        message = f"{name} is too large: far more than the limit of {MAX_PIXELS:,} pixels{size}"
        raise PosterImageError(message) from error
    except UnidentifiedImageError as error:
        accepted = ", ".join(formats) if formats else "JPEG, PNG, WebP, GIF ..."
        raise PosterImageError(f"{name} is not an image we can read ({accepted})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise PosterImageError(f"{name} is damaged or truncated: {error}") from error


def check_header(image: Image.Image, data: bytes, name: str) -> None:
    """Refuse an opened image whose shape is no poster's or whose decoding would cost more than its kind's budget,
    judged from its header (and, for a JPEG, the markers between its scans), before any of its pixels is decoded."""
    width, height = image.size
    size = f"{width} x {height} pixels"
    if max(width, height) > MAX_ASPECT * min(width, height):
        long, short = ("tall", "wide") if height > width else ("wide", "tall")
        ratio = max(width, height) / max(min(width, height), 1)
        shown = f"{ratio:,.2f}".rstrip("0").rstrip(".")
        shown = shown if float(shown.replace(",", "")) > MAX_ASPECT else f"more than {MAX_ASPECT:g}"  # 1001 x 200
        raise PosterImageError(
            f"{name} is {size}, {shown} times as {long} as it is {short}: posters up to {MAX_ASPECT} times as "
            "tall as wide, or as wide as tall, please"
        )
    if max(width, height) > MAX_SIDE:
        raise PosterImageError(f"{name} is too large: {size}; the limit is {MAX_SIDE} pixels a side")
    jpeg = jpeg_layout(data) if isinstance(image, JpegImageFile) else None
    if jpeg is not None and not jpeg[0]:
        raise PosterImageError(f"{name} is damaged or truncated: a JPEG without a frame header")
    if jpeg is not None and jpeg[0] not in READ_CODINGS:
        coding = OTHER_CODINGS.get(jpeg[0], "arithmetic-coded" if jpeg[0] >= 0xC9 else "hierarchical")
        raise PosterImageError(f"{name} is a {coding} JPEG, which we do not read: please save it as an ordinary JPEG")
    limit, kind = pixel_budget(image, data, jpeg, name)
    if width * height > limit:
        beside = "" if limit == MAX_PIXELS else f", and {limit:,} for {kind}"
        raise PosterImageError(
            f"{name} is too large: {size}; the limit is {MAX_PIXELS:,} pixels{beside}: please upload a smaller copy"
        )
    if jpeg is not None and jpeg[1] > MAX_SCANS:
        raise PosterImageError(f"{name} is a JPEG of {jpeg[1]:,} scans; the limit is {MAX_SCANS}")
    most, kind = byte_budget(image, jpeg)
    if len(data) > most:
        raise PosterImageError(
            f"{name} is {kind} of {len(data) / 1e6:.1f} MB; the limit is {most / 1e6:g} MB for {kind}, slower to "
            "decode: please upload a smaller copy, or a baseline JPEG"
        )


def pixel_budget(image: Image.Image, data: bytes, jpeg: tuple[int, int] | None, name: str) -> tuple[int, str]:
    """The most pixels an image of this kind may have, and the kind's name; `jpeg` is a JPEG's (coding, scans)."""
    if jpeg is not None:
        if jpeg[0] != 0xC2 and jpeg[1] <= 1:
            return MAX_PIXELS, "a JPEG"
        layers = getattr(image, "layer", None) or [(0, 1, 1, 0)] * len(image.getbands())
        if any(not layer[1] or not layer[2] for layer in layers):
            raise PosterImageError(f"{name} is damaged: a JPEG whose frame header gives a sampling factor of 0")
        widest, tallest = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
        samples = sum(layer[1] * layer[2] for layer in layers) / (widest * tallest)
        kind = "a progressive JPEG" if jpeg[0] == 0xC2 else "a JPEG of several scans"
        return min(MAX_PIXELS, int(PROGRESSIVE_SAMPLES / samples)), f"{kind} like this one (decoded whole)"
    if image.format == "WEBP":
        return WEBP_PIXELS, "a WebP"
    if image.format == "PNG" and data[24:25] == b"\x10":  # the IHDR's bit depth
        return WIDE_PNG_PIXELS, "a 16-bit PNG"
    return FULL_SIZE_PIXELS, f"a {image.format or 'file'} (decoded at full size)"


def byte_budget(image: Image.Image, jpeg: tuple[int, int] | None) -> tuple[float, str]:
    """The largest file of a kind slow to decode per byte (infinite for the others), and the kind's name."""
    if jpeg is not None and jpeg[0] == 0xC2:
        return PROGRESSIVE_BYTES, "a progressive JPEG"
    if image.format == "WEBP":
        return WEBP_BYTES, "a WebP"
    return math.inf, f"a {image.format}"


def check_structure(data: bytes, name: str) -> None:
    """Refuse a file whose header Pillow would be slow to read, before Pillow reads it: Pillow's own parsers read
    each PNG chunk, each JPEG marker segment before the first scan and each GIF data block before the first frame in
    Python, and a JPEG's padding between markers a byte at a time. Walks at most MAX_PARTS of them (a JPEG's segments
    between its scans count too: they are walked here in Python)."""
    if data.startswith(b"\xff\xd8\xff"):
        _, _, parts, padding = jpeg_markers(data)
        kind = "marker segments"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        parts, padding, kind = png_chunks(data), 0, "chunks"
    elif data.startswith((b"GIF87a", b"GIF89a")):
        parts, padding, kind = gif_blocks(data), 0, "data blocks before its first frame"
    else:
        return
    if parts > MAX_PARTS:
        raise PosterImageError(f"{name} has more than {MAX_PARTS:,} {kind}; the limit is {MAX_PARTS:,}")
    if padding > MAX_PADDING:
        raise PosterImageError(
            f"{name} has {padding:,} bytes of padding between its JPEG markers; the limit is {MAX_PADDING:,}"
        )


def jpeg_layout(data: bytes) -> tuple[int, int]:
    """A JPEG's start-of-frame marker (0xC0 baseline, 0xC2 progressive ...) and its number of scans."""
    return jpeg_markers(data)[:2]


def jpeg_markers(data: bytes) -> tuple[int, int, int, int]:
    """A JPEG's start-of-frame marker, its number of scans, its number of marker segments before its first scan and
    the bytes of padding between them (junk and fill bytes), read from its markers alone (at most MAX_PARTS of them,
    or MAX_PADDING bytes of padding). The scans are those of the first image, up to its end marker: what a camera
    appends after it (a motion photo's video, a second picture, a gain map) is not decoded."""
    position, frame, segments, padding = 2, 0, 0, 0
    while position + 4 <= len(data) and segments <= MAX_PARTS and padding <= MAX_PADDING:
        if data[position] != 0xFF or data[position + 1] == 0xFF:
            skipped = JPEG_PADDING.match(data, position).end() - 1  # the last FF begins the marker
            padding += skipped - position
            position = skipped
            continue
        marker = data[position + 1]
        segments += 1
        if marker == 0xDA:
            scans, after_first_scan = jpeg_scans(data, position)
            return frame, scans, segments + after_first_scan, padding
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and not frame:
            frame = marker
        if 0xD0 <= marker <= 0xD9 or marker in (0x00, 0x01):  # markers without a length
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return frame, 0, segments, padding


def jpeg_scans(data: bytes, position: int) -> tuple[int, int]:
    """The number of scans from the one whose marker is at `position` to the image's end marker (or the file's end),
    and of the marker segments after that first scan; counted up to MAX_SCANS + 1 and MAX_PARTS + 1. A scan's coded
    data holds no marker (an FF there is followed by 00 or a restart marker), so the marker after it is found by
    search; the segments between scans are skipped by their length."""
    scans, segments, marker = 0, 0, 0xDA
    while scans <= MAX_SCANS and segments <= MAX_PARTS:
        scans += marker == 0xDA
        position += 2 if marker in (0xD8, 0x01) else 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if (found := JPEG_MARKER_AFTER_CODED_DATA.search(data, position)) is None:
            break
        marker, position = data[found.end()], found.start()
        segments += 1
        if marker == 0xD9:
            break
    return scans, segments


def png_chunks(data: bytes) -> int:
    """The number of chunks of a PNG, up to its IEND (counted up to MAX_PARTS + 1)."""
    position, chunks = 8, 0
    while position + 8 <= len(data) and chunks <= MAX_PARTS:
        chunks += 1
        if data[position + 4 : position + 8] == b"IEND":
            break
        position += 12 + int.from_bytes(data[position : position + 4], "big")
    return chunks


def gif_blocks(data: bytes) -> int:
    """The number of a GIF's extensions and their data blocks before its first frame (up to MAX_PARTS + 1)."""
    flags = data[10] if len(data) > 10 else 0
    position, blocks = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0), 0
    while position < len(data) and data[position] == 0x21 and blocks <= MAX_PARTS:  # an extension
        blocks += 1
        position += 2  # its introducer and label, then its data blocks up to an empty one
        while position < len(data) and data[position] and blocks <= MAX_PARTS:
            blocks += 1
            position += 1 + data[position]
        position += 1
    return blocks


EXIF_ORIENTATIONS = range(1, 9)
"""The values EXIF defines for its Orientation tag (a SHORT); any other value or type is ignored, as viewers do."""


def orientation(image: Image.Image) -> int:
    """An image's EXIF orientation (1: upright as stored); read from a JPEG's header, from others once loaded. A tag
    of another type or value (a float, infinity, text) counts as 1, and so does EXIF that Pillow cannot read (a PNG's
    or WebP's that is no TIFF structure: Pillow raises SyntaxError, where it skips a JPEG's): the pixels are fine."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (SyntaxError, ValueError, struct.error):
        return 1
    return value if isinstance(value, int) and value in EXIF_ORIENTATIONS else 1


def upright_size(size: tuple[int, int], turn: int) -> tuple[int, int]:
    """`size` of the upright image, as stored: swapped when its EXIF orientation turns it by a quarter."""
    return (size[1], size[0]) if turn in (5, 6, 7, 8) else size


def reduced_rgb(image: Image.Image, at_least: tuple[int, int]) -> Image.Image:
    """A loaded image as 8-bit RGB, reduced by the largest whole factor that keeps it at least `at_least` pixels;
    converted and reduced strip by strip, so that no second full-size copy of the image is made."""
    width, height = image.size
    factor = max(1, min(width // max(at_least[0], 1), height // max(at_least[1], 1)))
    full_scale = wide_grey_scale(image)
    if factor == 1 and width * height <= STRIP_PIXELS:
        return to_rgb(image, full_scale)
    rows = factor * max(1, STRIP_PIXELS // (width * factor))
    reduced = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(top + rows, height)))
        if factor > 1 and transparent(strip):  # averaged with alpha, as if each pixel were flattened first
            reduced.paste(to_rgb(strip.convert("RGBA").convert("RGBa").reduce(factor)), (0, top // factor))
        else:
            strip = to_rgb(strip, full_scale)
            reduced.paste(strip.reduce(factor) if factor > 1 else strip, (0, top // factor))
    return reduced


def transparent(image: Image.Image) -> bool:
    """Whether an image has an alpha band, a transparent palette colour or a transparent colour key (a PNG's tRNS
    chunk on an 8-bit greyscale or an RGB image; not on 1-, 2-, 4- or 16-bit greyscale, whose key Pillow does not
    apply): flattened onto white by to_rgb."""
    return image.mode in TRANSPARENT_MODES or (image.mode in ("P", "RGB", "L") and "transparency" in image.info)


def wide_grey_scale(image: Image.Image) -> float | None:
    """The value that is white in a 16- or 32-bit greyscale image (None for other modes): 65535 for 16-bit, and for
    32-bit images 65535 if any pixel is brighter than 255, else 255."""
    if image.mode not in WIDE_GREY_MODES:
        return None
    if image.mode.startswith("I;16"):
        return 65535.0
    return 65535.0 if float(image.getextrema()[1]) > 255 else 255.0


def poster_array(image: Image.Image, size: int | InputSize) -> np.ndarray:
    """An RGB image squashed to `size` (width, height; an int is a square): a (height, width, 3) uint8 array, the
    network's input before preprocessing."""
    return np.asarray(image.resize(width_height(size), Image.Resampling.BILINEAR), dtype=np.uint8)


def to_rgb(image: Image.Image, full_scale: float | None = None) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: 16- and 32-bit greyscale rescaled (`full_scale` is white, by default judged
    from `image`), transparency flattened onto white."""
    if image.mode in WIDE_GREY_MODES:
        grey = np.asarray(image, dtype=np.float32)
        white = full_scale or wide_grey_scale(image) or 255.0
        image = Image.fromarray(np.clip(grey * np.float32(255.0 / white), 0, 255).astype(np.uint8), "L")
    if transparent(image):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(rgba, mask=rgba)  # the alpha band is the mask
        return background
    return image.convert("RGB")


def load_posters(paths: Sequence[Path], size: int | InputSize, progress: bool = True) -> np.ndarray:
    """Decode many poster files into one (n, height, width, 3) uint8 array of `size` (width, height; an int is a
    square), with a progress bar."""
    width, height = width_height(size)
    batch = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    for row, path in enumerate(tqdm(paths, desc="reading posters", unit="poster", disable=not progress)):
        batch[row] = load_poster(path, size)
    return batch


SHOWN_DAMAGED = 20
"""How many unreadable posters `check_posters` names in its error; it counts the rest."""


class DamagedPostersError(PosterImageError):
    """Posters of a catalog that the reader refuses (`check_posters`): every one of them, so that one look at the
    catalog finds them all."""

    def __init__(self, problems: list[str], total: int):
        self.problems = problems
        shown = "\n".join(f"  {problem}" for problem in problems[:SHOWN_DAMAGED])
        more = f"\n  ... and {len(problems) - SHOWN_DAMAGED} more" if len(problems) > SHOWN_DAMAGED else ""
        super().__init__(f"{len(problems)} of {total} posters cannot be read:\n{shown}{more}")


def check_posters(catalog: Catalog, progress: bool = True) -> None:
    """Decode every poster of a catalog as training, indexing and the app read them, at the smallest scale the reader
    allows (a real poster takes well under a millisecond), and raise DamagedPostersError naming each one that is
    refused: before a long job starts rather than at the first bad poster, minutes into it."""
    problems = []
    for movie in tqdm(catalog.movies, desc="checking posters", unit="poster", disable=not progress):
        try:
            decode_poster(catalog.poster_path(movie), (1, 1))
        except PosterImageError as error:
            problems.append(str(error))
    if problems:
        raise DamagedPostersError(problems, len(catalog))


def preprocess(batch: np.ndarray) -> np.ndarray:
    """uint8 RGB (n, h, w, 3) -> float32 VGG-16 input (caffe style: BGR, ImageNet mean subtracted), exactly what
    keras.applications.vgg16.preprocess_input gives, without importing Keras (the ONNX-served app has none)."""
    return batch[..., ::-1].astype(np.float32) - IMAGENET_BGR_MEANS
