"""What an uploaded image costs to decode: builds the worst image of each kind that model/images.py accepts (the most
pixels its limits allow, at the most extreme shape they allow, with the content that is slowest to decode where the
10 MB upload limit leaves room for it) and a few that it refuses, and measures each in a fresh Python process: the
time of the app's decode path (what app.poster_pipeline.image_query does with an upload, less the network:
decode_poster, poster_array and thumbnail), wall-clock and CPU (the CPU time is what another job on the machine
changes least), and the process's peak resident memory above what it held before (the upload's bytes already
read). Targets: at most 0.5 s and 300 MB for an accepted image; a refused one refused in milliseconds. Prints a
Markdown table (target: "yes / yes" when both the wall-clock and the CPU time meet it, as does the memory); the last
line is one JSON object {case: {"accepted", "seconds", "best_seconds", "cpu_seconds", "peak_mb", "mb", "size",
"meets_target", "meets_target_cpu"}} (peak_mb and mb in millions of bytes).

    python -m bench.image_cost [--runs 5] [--only CASE ...] [--scale 1.0] [--keep DIR]
    python -m bench.image_cost --catalog DIR

With --catalog, it measures nothing: it says whether every poster of the catalog passes the limits (the structure
and header checks that come before any decoding), which posters do not and why; the last line is one JSON object
{"posters", "passed", "refused": {imdb_id: message}}.

The times are the medians of --runs processes (and the best wall-clock time), the memory their largest peak.
--scale multiplies the pixels of the accepted images (below 1 for a quick run: the figures are then no worst case);
--keep writes the images to DIR.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from bench import at_least
from model import images

ROOT = Path(__file__).resolve().parents[1]
UPLOAD_BYTES = 10 * 1024 * 1024  # the app's MAX_CONTENT_LENGTH
INPUT_SIZE = 128  # the default preset's network input
TARGET_SECONDS, TARGET_MB = 0.5, 300


@dataclass(frozen=True)
class Case:
    name: str
    accepted: bool  # what model/images.py should answer
    build: Callable[[float], bytes]  # scale -> the file


# ---------------------------------------------------------------- building the images


def extreme_shape(pixels: float, aspect: float = images.MAX_ASPECT) -> tuple[int, int]:
    """The widest (width, height) of at most `pixels` within MAX_SIDE and `aspect`."""
    width = min(images.MAX_SIDE, int(math.sqrt(pixels * aspect)))
    height = max(1, min(int(pixels // width), width))
    while width > aspect * height:
        width -= 1
    return width, height


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(
    size: tuple[int, int], depth: int, colour_type: int, extra: bytes = b"", rows: int | None = None
) -> bytes:
    """A PNG written by hand, without the image in memory: every row Paeth-filtered zeros (the slowest filter to
    undo, on data that compresses 1000 to 1); `rows` writes only that many rows (a truncated file)."""
    width, height = size
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row = b"\x04" + bytes((width * channels * depth + 7) // 8)
    compressor = zlib.compressobj(9)
    todo = height if rows is None else rows
    block = max(1, (1 << 22) // len(row))  # about 4 MB of rows a call
    parts = []
    while todo > 0:
        parts.append(compressor.compress(row * min(block, todo)))
        todo -= block
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    idat = b"".join(parts) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + extra + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def palette_png(size: tuple[int, int]) -> bytes:
    """A palette PNG whose colour 0, everywhere, is transparent (flattened onto white)."""
    palette = png_chunk(b"PLTE", bytes(range(256)) * 3)
    transparency = png_chunk(b"tRNS", b"\x00" + b"\xff" * 255)
    return png_bytes(size, 8, 3, palette + transparency)


def noise(size: tuple[int, int], channels: int, levels: int = 256, seed: int = 0) -> np.ndarray:
    """Incompressible noise (`levels` values per channel), made in blocks of rows to bound the generator's memory."""
    width, height = size
    shape = (height, width, channels) if channels > 1 else (height, width)
    array = np.empty(shape, dtype=np.uint8)
    generator = np.random.default_rng(seed)
    step = max(1, (1 << 24) // (width * channels))
    for top in range(0, height, step):
        block = array[top : top + step]
        block[...] = generator.integers(0, levels, block.shape, dtype=np.uint8)
    return array


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def noise_image(size: tuple[int, int], mode: str, block: int = 1, levels: int = 256) -> Image.Image:
    """Noise in `mode` (L, RGB, CMYK or P), in squares of `block` pixels (1: every pixel its own)."""
    small = (-(-size[0] // block), -(-size[1] // block))
    image = Image.fromarray(noise(small, len(mode), levels), mode)
    return image if block == 1 else image.resize(size, Image.Resampling.NEAREST)


def filled(
    size: tuple[int, int],
    mode: str,
    limit: int,
    encode: Callable[[Image.Image, int], bytes],
    qualities: tuple[int, ...] = tuple(range(95, 0, -5)),
    levels: int = 256,
) -> bytes:
    """Noise of `size` encoded by `encode(image, quality)` as the densest file of at most `limit` bytes: the highest
    quality that fits, on noise in squares as small as fit (1 pixel, else 2, 4 ...). Each quality is tried on a
    strip of the image first, and only encoded whole where the strip says it may fit."""
    for block in (1, 2, 4, 8, 16, 32):
        image = noise_image(size, mode, block, levels)
        strip = image.crop((0, 0, image.width, max(16, image.height // 16)))
        share = strip.height / image.height
        for quality in qualities:
            if len(encode(strip, quality)) / share > limit:
                continue
            data = encode(image, quality)
            if len(data) <= limit:
                return data
    raise ValueError(f"no {mode} noise of {size} fits in {limit:,} bytes")


@contextmanager
def builders_pillow() -> Iterator[None]:
    """Pillow as the images' builder needs it, put back afterwards (the tests run this script in their own process):
    no pixel limit, to read the sizes of the refused bombs back, and a JPEG buffer large enough for a progressive
    file this large."""
    limit, buffer = Image.MAX_IMAGE_PIXELS, ImageFile.MAXBLOCK
    Image.MAX_IMAGE_PIXELS, ImageFile.MAXBLOCK = None, max(buffer, 1 << 27)
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.MAXBLOCK = limit, buffer


def jpeg_encoder(**options: object) -> Callable[[Image.Image, int], bytes]:
    return lambda image, quality: encoded(image, "JPEG", quality=quality, **options)


def noise_jpeg(size: tuple[int, int], mode: str, limit: int, **options: object) -> bytes:
    return filled(size, mode, limit, jpeg_encoder(**options))


def with_scans(jpeg: bytes, scans: int) -> bytes:
    """A progressive JPEG with its smallest scan (and the tables just before it) repeated until it has `scans`
    scans; a decoder redoes each repeat over the whole image (libjpeg warns of a bogus progression, and goes on)."""
    first = jpeg.index(b"\xff\xda")
    end = jpeg.rindex(b"\xff\xd9")
    cuts = sorted({first, end} | {i for i in range(first + 2, end) if jpeg[i] == 0xFF and jpeg[i + 1] in (0xC4, 0xDA)})
    groups, pending = [], b""
    for start, stop in zip(cuts, cuts[1:], strict=False):
        pending += jpeg[start:stop]
        if jpeg[start + 1] == 0xDA:
            groups.append(pending)
            pending = b""
    smallest = min(groups[1:], key=len)
    return jpeg[:end] + smallest * (scans - len(groups)) + jpeg[end:]


def progressive_jpeg(samples_per_pixel: float, mode: str, scale: float, **options: object) -> bytes:
    """Noise as a progressive JPEG of the most pixels allowed for its colour sampling, filling PROGRESSIVE_BYTES."""
    size = extreme_shape(scale * images.PROGRESSIVE_SAMPLES / samples_per_pixel)
    return noise_jpeg(size, mode, images.PROGRESSIVE_BYTES, progressive=True, **options)


def many_scans(scans: int, scale: float) -> bytes:
    size = extreme_shape(scale * images.PROGRESSIVE_SAMPLES / 1.5)
    return with_scans(encoded(Image.new("RGB", size, (90, 120, 150)), "JPEG", progressive=True), scans)


def animated_gif(scale: float) -> bytes:
    """Two frames; the first of the most pixels allowed, 8-colour noise (LZW cannot shrink it much) with colour 0
    transparent, filling the upload limit."""
    size = extreme_shape(scale * images.FULL_SIZE_PIXELS)
    second = Image.new("P", size, 1)

    def encode(image: Image.Image, _quality: int) -> bytes:
        image.putpalette(list(range(0, 256, 32)) * 3)
        frames = [second] if image.size == size else []
        return encoded(image, "GIF", save_all=True, append_images=frames, transparency=0, duration=100, loop=0)

    return filled(size, "P", UPLOAD_BYTES, encode, qualities=(0,), levels=8)


def webp_encoder(**options: object) -> Callable[[Image.Image, int], bytes]:
    return lambda image, quality: encoded(image, "WEBP", quality=quality, method=0, **options)


def webp(scale: float, lossless: bool, animated: bool = False) -> bytes:
    """The most pixels allowed in a WebP, filling WEBP_BYTES: 16-colour noise when lossless, noise at the highest
    quality that fits when lossy; `animated` adds a second frame."""
    size = extreme_shape(scale * images.WEBP_PIXELS)
    frames = {"save_all": True, "append_images": [Image.new("RGB", size)]} if animated else {}

    def encode(image: Image.Image, quality: int) -> bytes:
        more = frames if image.size == size else {}
        return encoded(image, "WEBP", lossless=lossless, quality=quality, method=0, **more)

    if lossless:
        return filled(size, "RGB", images.WEBP_BYTES, encode, qualities=(0,), levels=16)
    return filled(size, "RGB", images.WEBP_BYTES, encode, qualities=tuple(range(90, 0, -10)))


def slow_header(image_format: str) -> bytes:
    """A small image whose header Pillow reads slowly, about 9 MB of it: empty private PNG chunks, padding between
    JPEG markers, or one-byte GIF data blocks (each read in Python; a JPEG's padding a byte at a time)."""
    small = encoded(Image.new("RGB" if image_format != "GIF" else "P", (200, 300), 1), image_format)
    if image_format == "PNG":
        at = small.index(b"IDAT") - 4
        return small[:at] + png_chunk(b"prVt", b"") * 750_000 + small[at:]
    if image_format == "JPEG":
        at = small.index(b"\xff\xdb")
        return small[:at] + b"\0" * 9_000_000 + small[at:]
    at = 13 + (3 << ((small[10] & 7) + 1) if small[10] & 0x80 else 0)  # after the header and colour table
    return small[:at] + b"\x21\xfe" + b"\x01x" * 4_500_000 + b"\x00" + small[at:]


CASES = [
    Case(
        "JPEG baseline 4:4:4, noise",
        True,
        lambda s: noise_jpeg(extreme_shape(s * images.MAX_PIXELS), "RGB", UPLOAD_BYTES, subsampling=0),
    ),
    Case(
        "JPEG baseline CMYK, noise",
        True,
        lambda s: noise_jpeg(extreme_shape(s * images.MAX_PIXELS), "CMYK", UPLOAD_BYTES),
    ),
    Case("JPEG progressive 4:2:0, noise", True, lambda s: progressive_jpeg(1.5, "RGB", s, subsampling=2)),
    Case("JPEG progressive 4:4:4, noise", True, lambda s: progressive_jpeg(3, "RGB", s, subsampling=0)),
    Case("JPEG progressive CMYK, noise", True, lambda s: progressive_jpeg(4, "CMYK", s)),
    Case(f"JPEG progressive, {images.MAX_SCANS} scans", True, lambda s: many_scans(images.MAX_SCANS, s)),
    Case("PNG RGBA 8-bit", True, lambda s: png_bytes(extreme_shape(s * images.FULL_SIZE_PIXELS), 8, 6)),
    Case("PNG RGBA 16-bit", True, lambda s: png_bytes(extreme_shape(s * images.WIDE_PNG_PIXELS), 16, 6)),
    Case("PNG grey 16-bit", True, lambda s: png_bytes(extreme_shape(s * images.WIDE_PNG_PIXELS), 16, 0)),
    Case("PNG palette + transparency", True, lambda s: palette_png(extreme_shape(s * images.FULL_SIZE_PIXELS))),
    Case("GIF animated, transparency", True, animated_gif),
    Case("WebP lossless", True, lambda s: webp(s, lossless=True)),
    Case("WebP lossless animated", True, lambda s: webp(s, lossless=True, animated=True)),
    Case("WebP lossy, noise", True, lambda s: webp(s, lossless=False)),
    Case("PNG 1 x 39999999", False, lambda s: png_bytes((1, 39_999_999), 8, 0)),
    Case("PNG bomb 12000 x 12000 RGBA 16-bit", False, lambda s: png_bytes((12_000, 12_000), 16, 6)),
    Case("PNG bomb 50000 x 50000 (Pillow's guard)", False, lambda s: png_bytes((50_000, 50_000), 1, 0)),
    Case("JPEG progressive, 1000 scans", False, lambda s: many_scans(1000, s)),
    Case("JPEG progressive, 8 MB", False, lambda s: noise_jpeg((2400, 3600), "RGB", 8_000_000, progressive=True)),
    Case("PNG of 750,000 empty chunks", False, lambda s: slow_header("PNG")),
    Case("JPEG with 9 MB of padding", False, lambda s: slow_header("JPEG")),
    Case("GIF with 4,500,000 data blocks", False, lambda s: slow_header("GIF")),
    Case("WebP lossy, 5 MB", False, lambda s: filled((2000, 3000), "RGB", 5_000_000, webp_encoder(), (90, 80, 70))),
]


# ---------------------------------------------------------------- measuring, in a fresh process


def status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM), or None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Make the peak resident memory (VmHWM) the current one (Linux); False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_child(path: Path) -> dict:
    """In this process: the app's decode path on the file at `path`; its time and peak memory above the start."""
    from app.poster_pipeline import THUMBNAIL_SIZE, UPLOAD_FORMATS, thumbnail
    from model.images import PosterImageError, decode_poster, poster_array

    Image.init()  # every format's plugin imported, as in a worker that has read an image before
    data = path.read_bytes()
    at_least = (max(INPUT_SIZE, THUMBNAIL_SIZE[0]), max(INPUT_SIZE, THUMBNAIL_SIZE[1]))  # as image_query asks
    exact = reset_peak()
    before = status_kib("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), time.process_time()
    try:
        image = decode_poster(data, at_least, formats=UPLOAD_FORMATS)
        poster_array(image, INPUT_SIZE)
        thumbnail(image)
        outcome = {"accepted": True, "decoded": list(image.size)}
    except PosterImageError as error:
        outcome = {"accepted": False, "message": str(error)}
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = status_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        **outcome,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mib": max(0, after - before) / 1024,
        "exact_peak": exact,
    }


def measure(path: Path) -> dict:
    """measure_child in a fresh Python process."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.image_cost", "--child", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def header_size(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return f"{image.width} x {image.height}"


def catalog_check(catalog_dir: Path) -> dict[str, object]:
    """Every poster of a catalog through the checks before decoding (check_structure, then check_header)."""
    from catalog import read_catalog

    catalog = read_catalog(catalog_dir)
    refused: dict[str, str] = {}
    for movie in catalog.movies:
        path = catalog.poster_path(movie)
        data = path.read_bytes()
        try:
            images.check_structure(data, str(path))
            with Image.open(io.BytesIO(data)) as image:
                images.check_header(image, data, str(path))
        except (images.PosterImageError, OSError) as error:
            refused[movie.imdb_id] = str(error)
    return {"posters": len(catalog), "passed": len(catalog) - len(refused), "refused": refused}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=at_least(1), default=5, help="fresh processes per image (default 5)")
    parser.add_argument("--only", nargs="+", metavar="CASE", help="the cases whose name starts with one of these")
    parser.add_argument("--scale", type=float, default=1.0, help="times the accepted images' pixels (default 1)")
    parser.add_argument("--keep", type=Path, help="write the images to this directory")
    parser.add_argument("--catalog", type=Path, help="only check that this catalog's posters pass the limits")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.catalog:
        checked = catalog_check(args.catalog)
        print(f"{args.catalog}: {checked['passed']} of {checked['posters']} posters pass the limits")
        for imdb_id, message in checked["refused"].items():
            print(f"  {imdb_id}: {message}")
        print(json.dumps(checked))
        return
    if args.child:
        print(json.dumps(measure_child(args.child)))
        return

    cases = [case for case in CASES if not args.only or any(case.name.startswith(only) for only in args.only)]
    if not cases:
        parser.error(f"no case starts with {args.only}; the cases: {[case.name for case in CASES]}")
    print(f"{len(cases)} images, {args.runs} fresh processes each, scale {args.scale:g}; {os.cpu_count()} CPUs\n")
    print(
        "| image | pixels | file MB | answer | wall ms: median (best) | CPU ms (median) | peak MB above idle "
        "| target (wall / CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    results, exact, load = {}, True, os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch, builders_pillow():
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for number, case in enumerate(cases):
            data = case.build(args.scale if case.accepted else 1.0)
            path = folder / f"{number:02d}.img"
            path.write_bytes(data)
            runs = [measure(path) for _ in range(args.runs)]
            exact = exact and all(run["exact_peak"] for run in runs)
            accepted = runs[0]["accepted"]
            seconds = statistics.median(run["seconds"] for run in runs)
            best = min(run["seconds"] for run in runs)
            cpu = statistics.median(run["cpu_seconds"] for run in runs)
            peak_mb = max(run["peak_mib"] for run in runs) * 1.048576
            meets, meets_cpu = (
                accepted == case.accepted
                and (spent <= TARGET_SECONDS and peak_mb <= TARGET_MB if accepted else spent <= 0.05)
                for spent in (seconds, cpu)
            )
            answer = "accepted" if accepted else "refused"
            if accepted != case.accepted:
                answer += " (UNEXPECTED)"
            print(
                f"| {case.name} | {header_size(data)} | {len(data) / 1e6:.2f} | {answer} | "
                f"{seconds * 1000:.1f} ({best * 1000:.1f}) | {cpu * 1000:.1f} | {peak_mb:.0f} | "
                f"{'yes' if meets else 'NO'} / {'yes' if meets_cpu else 'NO'} |",
                flush=True,
            )
            results[case.name] = {
                "accepted": accepted,
                "seconds": round(seconds, 4),
                "best_seconds": round(best, 4),
                "cpu_seconds": round(cpu, 4),
                "peak_mb": round(peak_mb, 1),
                "mb": round(len(data) / 1e6, 3),
                "size": header_size(data),
                "meets_target": meets,
                "meets_target_cpu": meets_cpu,
            }
            if not accepted:
                print(f"|  | ↳ {runs[0]['message']} | | | | | | |")
    peak_how = "VmHWM reset by /proc/self/clear_refs" if exact else "ru_maxrss (a peak of the imports may hide it)"
    print(f"\npeak memory: {peak_how}; load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
