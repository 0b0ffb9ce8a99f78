"""What an image may cost, judged from its header before any pixel is decoded (model/images.py): shapes no poster
has and sizes beyond each kind of file's budget are refused with a clear message, by the pages and the API alike;
what is accepted is decoded small (JPEGs at a reduced scale, everything else reduced strip by strip)."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from app.poster_pipeline import THUMBNAIL_SIZE, UPLOAD_FORMATS, thumbnail
from model import images
from model.images import PosterImageError, decode_poster, jpeg_layout
from tests.conftest import png_chunk

AT_LEAST = THUMBNAIL_SIZE  # what the app asks of an upload (its models' inputs are smaller)
HEADERS = {"X-Requested-With": "pytest"}


def png_bytes(width: int, height: int, depth: int = 8, colour_type: int = 0, rows: int | None = None) -> bytes:
    """A PNG of zeros written by hand, never held as an image (1 x 39,999,999 pixels is 78 KB); `rows` cuts the file
    after that many rows (a truncated file)."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    row = b"\0" * (1 + (width * channels * depth + 7) // 8)
    compressor = zlib.compressobj(9)
    todo, block = (height if rows is None else rows), max(1, (1 << 22) // len(row))
    parts = []
    while todo > 0:
        parts.append(compressor.compress(row * min(block, todo)))
        todo -= block
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    idat = b"".join(parts) + compressor.flush(zlib.Z_FINISH if rows is None else zlib.Z_SYNC_FLUSH)
    end = png_chunk(b"IEND", b"") if rows is None else b""
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + end


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def needle() -> bytes:
    """The known failure of issue 17: a 78 KB PNG of 1 x 39,999,999 pixels took 3-4 s and 1.3 GB to decode."""
    return png_bytes(1, 39_999_999)


NEEDLE_MESSAGE = "1 x 39999999 pixels, 39,999,999 times as tall as it is wide: posters up to 5 times as tall as wide"


def test_a_1_by_39999999_png_is_refused_from_its_header_in_milliseconds(needle) -> None:
    assert len(needle) < 100_000
    started = time.perf_counter()
    with pytest.raises(PosterImageError, match=NEEDLE_MESSAGE):
        decode_poster(needle, AT_LEAST, formats=UPLOAD_FORMATS)
    assert time.perf_counter() - started < 0.2


@pytest.mark.parametrize("path", ["/recommend", "/api/recommend"])
def test_the_pages_and_the_api_refuse_it_with_400(client, needle, path) -> None:
    field, headers = ("image", HEADERS) if path.startswith("/api/") else ("poster", {})
    response = client.post(
        path, data={field: (io.BytesIO(needle), "needle.png")}, headers=headers, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    text = response.get_json()["error"] if path.startswith("/api/") else response.get_data(as_text=True)
    assert NEEDLE_MESSAGE in text and "needle.png" in text


def test_shapes_beyond_5_to_1_are_refused_and_the_catalog_s_extremes_kept() -> None:
    for size, accepted in (((501, 100), False), ((100, 501), False), ((500, 100), True), ((182, 87), True)):
        data = encoded(Image.new("RGB", size, "white"), "PNG")
        if accepted:
            assert decode_poster(data, AT_LEAST).mode == "RGB"
        else:
            with pytest.raises(PosterImageError, match=f"{size[0]} x {size[1]} pixels, 5.01 times as"):
                decode_poster(data, AT_LEAST)


def test_the_size_is_judged_before_any_pixel_is_decoded() -> None:
    """A PNG whose header claims 12000 x 7000 pixels but whose data stops after 10 rows is refused for its size:
    the pixels were never read (had they been, it would be 'damaged or truncated', as a small one is)."""
    with pytest.raises(PosterImageError, match="too large: 12000 x 7000 pixels; the limit is 40,000,000 pixels"):
        decode_poster(png_bytes(12_000, 7_000, rows=10), AT_LEAST)
    with pytest.raises(
        PosterImageError, match=f"too large: 4100 x 4000 pixels; .* {images.FULL_SIZE_PIXELS:,} for a PNG"
    ):
        decode_poster(png_bytes(4_100, 4_000, rows=10), AT_LEAST)
    with pytest.raises(PosterImageError, match=f"3000 x 3000 pixels; .* {images.WIDE_PNG_PIXELS:,} for a 16-bit PNG"):
        decode_poster(png_bytes(3_000, 3_000, depth=16, colour_type=6, rows=10), AT_LEAST)
    with pytest.raises(PosterImageError, match="damaged or truncated"):
        decode_poster(png_bytes(2_000, 3_000, rows=10), AT_LEAST)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(monkeypatch) -> None:
    """A 2000 x 3000 JPEG: libjpeg decodes it at 1/8 scale (asked for by draft before loading), 250 x 375, still at
    least the 182 x 268 the app asks for."""
    data = encoded(Image.new("RGB", (2000, 3000), (200, 30, 30)), "JPEG", quality=50)
    drafted = []
    original = JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    image = decode_poster(data, AT_LEAST, formats=UPLOAD_FORMATS)
    assert drafted == [(250, 375)] and image.size == (250, 375) and image.mode == "RGB"
    assert np.abs(np.asarray(image, dtype=int) - (200, 30, 30)).max() <= 3


def test_the_exif_orientation_is_applied_to_the_reduced_image() -> None:
    landscape = Image.new("RGB", (1200, 800), (0, 0, 255))
    landscape.paste((255, 0, 0), (0, 0, 600, 800))  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise: red on top
    image = decode_poster(encoded(landscape, "JPEG", exif=exif, quality=95), AT_LEAST)
    assert image.width < image.height and image.width >= AT_LEAST[0] and image.height >= AT_LEAST[1]
    assert (
        image.getpixel((image.width // 2, 5))[0] > 200 and image.getpixel((image.width // 2, image.height - 5))[2] > 200
    )


def exif_with_orientation(value_type: int, payload: bytes) -> bytes:
    """A little-endian EXIF block whose one entry is the Orientation tag (0x0112) of `value_type` (TIFF: 3 SHORT, 5
    RATIONAL, 11 FLOAT, 12 DOUBLE, 2 ASCII), its value `payload` stored after the directory."""
    directory_end = 8 + 2 + 12 + 4
    count = len(payload) // {2: 1, 3: 2, 5: 8, 11: 4, 12: 8}[value_type]
    entry = struct.pack("<HHI", 0x0112, value_type, count)
    entry += payload.ljust(4, b"\0") if len(payload) <= 4 else struct.pack("<I", directory_end)
    data = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    return b"Exif\0\0" + data + (payload if len(payload) > 4 else b"")


@pytest.mark.parametrize(
    "value_type, payload",
    [
        (12, struct.pack("<d", float("inf"))),
        (12, struct.pack("<d", float("nan"))),
        (11, struct.pack("<f", 6.0)),
        (3, struct.pack("<H", 9)),
        (3, struct.pack("<H", 0)),
        (2, b"six\0"),
        (5, struct.pack("<II", 6, 0)),
    ],
    ids=["double-infinity", "double-nan", "float-six", "short-nine", "short-zero", "text", "rational-over-zero"],
)
def test_an_orientation_tag_of_another_type_or_value_is_ignored(value_type: int, payload: bytes) -> None:
    """EXIF orientations are SHORTs from 1 to 8; any other (an infinite DOUBLE made int() overflow, a 500 on every
    upload route) leaves the image as stored, as viewers do: its pixels are fine."""
    landscape = Image.new("RGB", (300, 200), (0, 0, 255))
    for image_format in ("JPEG", "PNG", "WEBP"):
        data = encoded(landscape, image_format, exif=exif_with_orientation(value_type, payload))
        assert images.orientation(Image.open(io.BytesIO(data))) == 1
        assert decode_poster(data, (30, 20)).size[0] > decode_poster(data, (30, 20)).size[1]


@pytest.mark.parametrize("exif", [b"garbagegarbage", b"\0" * 20, b"II*\0"], ids=["text", "zeros", "cut header"])
def test_exif_that_is_no_tiff_structure_counts_as_upright(exif: bytes) -> None:
    """Pillow skips a JPEG's unreadable EXIF but raises SyntaxError for a PNG's or WebP's, once loaded: such an
    upload was refused as damaged, though its pixels are fine."""
    landscape = Image.new("RGB", (300, 200), (0, 0, 255))
    for image_format in ("JPEG", "PNG", "WEBP"):
        data = encoded(landscape, image_format, exif=exif)
        width, height = decode_poster(data, (30, 20)).size
        assert width > height >= 20, image_format  # read, as stored


def test_progressive_jpegs_have_a_budget_for_their_coefficients(monkeypatch) -> None:
    """A progressive JPEG keeps all its coefficients (full size) until its last scan: its budget counts samples, so
    full-resolution colour (4:4:4, 3 samples a pixel) gets half the pixels of 4:2:0 (1.5)."""
    monkeypatch.setattr(images, "PROGRESSIVE_SAMPLES", 300_000)
    picture = Image.new("RGB", (400, 300), (40, 90, 160))
    assert decode_poster(encoded(picture, "JPEG", progressive=True, subsampling=2), AT_LEAST).size == (400, 300)
    with pytest.raises(PosterImageError, match=r"400 x 300 pixels; .* 100,000 for a progressive JPEG like this one"):
        decode_poster(encoded(picture, "JPEG", progressive=True, subsampling=0), AT_LEAST)
    monkeypatch.setattr(images, "PROGRESSIVE_BYTES", 2_000)
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8))
    with pytest.raises(PosterImageError, match=r"progressive JPEG of 0.\d MB; the limit is 0.002 MB"):
        decode_poster(encoded(noisy, "JPEG", progressive=True), AT_LEAST)
    assert decode_poster(encoded(noisy, "JPEG"), AT_LEAST).size == (200, 300)  # a baseline one of the same size


def test_a_shape_just_past_the_limit_is_not_said_to_be_within_it() -> None:
    """1001 x 200 is 5.005 times as wide as tall: the message rounded it to "5 times ... posters up to 5 times"."""
    with pytest.raises(
        PosterImageError, match=r"1001 x 200 pixels, more than 5 times as wide as it is tall: posters up"
    ):
        decode_poster(encoded(Image.new("RGB", (1001, 200), "grey"), "PNG"), AT_LEAST)
    with pytest.raises(PosterImageError, match=r"1100 x 200 pixels, 5.5 times as wide as it is tall"):
        decode_poster(encoded(Image.new("RGB", (1100, 200), "grey"), "PNG"), AT_LEAST)


def test_a_progressive_jpeg_with_a_sampling_factor_of_zero_is_damaged_not_a_crash() -> None:
    """Its frame header's sampling factors size the coefficient budget; zero in each component (against the JPEG
    standard's 1 to 4) once divided by zero."""
    progressive = bytearray(encoded(Image.new("RGB", (64, 96), "grey"), "JPEG", progressive=True))
    frame = progressive.find(b"\xff\xc2")
    for sampling in (0x00, 0x10, 0x01):
        broken = bytearray(progressive)
        for component in range(3):
            broken[frame + 11 + 3 * component] = sampling
        with pytest.raises(PosterImageError, match="damaged"):
            decode_poster(bytes(broken), AT_LEAST)


def test_a_jpeg_of_too_many_scans_or_an_unusual_coding_is_refused() -> None:
    progressive = encoded(Image.new("RGB", (200, 300), "grey"), "JPEG", progressive=True)
    coding, scans = jpeg_layout(progressive)
    assert coding == 0xC2 and 2 <= scans <= 20
    last, end = progressive.rindex(b"\xff\xda"), progressive.rindex(b"\xff\xd9")
    repeated = progressive[:end] + progressive[last:end] * (images.MAX_SCANS + 1 - scans) + progressive[end:]
    assert jpeg_layout(repeated) == (0xC2, images.MAX_SCANS + 1)
    with pytest.raises(PosterImageError, match=f"a JPEG of {images.MAX_SCANS + 1} scans; the limit is 100"):
        decode_poster(repeated, AT_LEAST)
    baseline = encoded(Image.new("RGB", (200, 300), "grey"), "JPEG")
    assert jpeg_layout(baseline) == (0xC0, 1)
    frame = baseline.index(b"\xff\xc0")
    for marker, coding_name in ((0xC9, "arithmetic-coded"), (0xC3, "lossless")):
        changed = baseline[: frame + 1] + bytes([marker]) + baseline[frame + 2 :]
        with pytest.raises(PosterImageError, match=f"is a {coding_name} JPEG, which we do not read"):
            decode_poster(changed, AT_LEAST)


def test_what_a_camera_appends_after_a_jpeg_is_not_counted_as_its_scans() -> None:
    """A motion photo appends its video after the picture's end marker, an Ultra HDR photo its gain map, an MPO a
    second picture: bytes that may hold FF DA. Only the first image's scans count (they were counted to the file's
    end: a phone's JPEG was refused as one of 117 scans, or given the smaller budget of a JPEG of several scans)."""
    baseline = encoded(Image.new("RGB", (200, 300), "grey"), "JPEG")
    video = bytes(range(256)) * 64 + b"\xff\xda\x00\x08" * (images.MAX_SCANS + 5)
    assert jpeg_layout(baseline + video) == (0xC0, 1)
    assert decode_poster(baseline + video, AT_LEAST).size == (200, 300)
    progressive = encoded(Image.new("RGB", (200, 300), "grey"), "JPEG", progressive=True)
    assert jpeg_layout(progressive + progressive) == jpeg_layout(progressive)
    assert jpeg_layout(progressive + progressive)[1] >= 2  # the scans between DHT segments, skipped by length


def test_a_run_of_ff_bytes_after_a_scan_is_read_once() -> None:
    """The search for the marker after a scan backed off through every run of FF bytes (quadratic: 40 KB of them took
    9 s); 10 MB of them, the most an upload may be, are now walked in one pass, and the file is still read right."""
    start = encoded(Image.new("RGB", (200, 300), "grey"), "JPEG")
    first_scan = start.index(b"\xff\xda")
    header_end = first_scan + 2 + int.from_bytes(start[first_scan + 2 : first_scan + 4], "big")
    flooded = start[:header_end] + b"\xff" * 10_000_000 + b"\x00"
    assert jpeg_layout(flooded) == (0xC0, 1)
    with pytest.raises(PosterImageError):
        decode_poster(flooded, AT_LEAST)


def test_many_segments_between_scans_are_refused_as_many_segments() -> None:
    """The segments between scans are walked in Python too: past MAX_PARTS the file is refused, as before the first
    scan, rather than its scans being left uncounted."""
    progressive = encoded(Image.new("RGB", (200, 300), "grey"), "JPEG", progressive=True)
    second_scan = progressive.index(b"\xff\xda", progressive.index(b"\xff\xda") + 2)
    comments = b"\xff\xfe\x00\x02" * (images.MAX_PARTS + 1)
    padded = progressive[:second_scan] + comments + progressive[second_scan:]
    with pytest.raises(PosterImageError, match="more than 4,096 marker segments; the limit"):
        decode_poster(padded, AT_LEAST)
    fewer = progressive[:second_scan] + comments[:400] + progressive[second_scan:]
    assert jpeg_layout(fewer) == jpeg_layout(progressive) and decode_poster(fewer, AT_LEAST).size == (200, 300)


def test_headers_pillow_would_read_slowly_are_refused_before_it_reads_them() -> None:
    """Pillow reads PNG chunks, JPEG marker segments and GIF data blocks one by one in Python, and a JPEG's padding
    byte by byte (10 MB of empty PNG chunks took it 9 s): more than MAX_PARTS of them, or MAX_PADDING bytes of
    padding, are refused from the bytes alone."""
    too_many = images.MAX_PARTS + 1
    png = encoded(Image.new("RGB", (200, 300), "red"), "PNG")
    data_at = png.index(b"IDAT") - 4
    for chunks, refused in ((100, False), (too_many, True)):
        padded = png[:data_at] + png_chunk(b"prVt", b"") * chunks + png[data_at:]
        if refused:
            with pytest.raises(PosterImageError, match=f"has more than {images.MAX_PARTS:,} chunks"):
                decode_poster(padded, AT_LEAST)
        else:
            assert decode_poster(padded, AT_LEAST).size == (200, 300)
    jpeg = encoded(Image.new("RGB", (200, 300), "red"), "JPEG")
    tables_at = jpeg.index(b"\xff\xdb")
    with pytest.raises(PosterImageError, match="has 70,000 bytes of padding between its JPEG markers"):
        decode_poster(jpeg[:tables_at] + b"\0" * 70_000 + jpeg[tables_at:], AT_LEAST)
    comments = b"\xff\xfe\x00\x02" * too_many
    with pytest.raises(PosterImageError, match="more than 4,096 marker segments; the limit"):
        decode_poster(jpeg[:tables_at] + comments, AT_LEAST)
    assert decode_poster(jpeg[:tables_at] + b"\0" * 100 + comments[:400] + jpeg[tables_at:], AT_LEAST).size == (
        200,
        300,
    )
    gif = encoded(Image.new("P", (200, 300), 1), "GIF")
    frame_at = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)  # after the header and colour table
    with pytest.raises(PosterImageError, match="data blocks before its first frame"):
        decode_poster(gif[:frame_at] + b"\x21\xfe" + b"\x01x" * too_many + b"\x00" + gif[frame_at:], AT_LEAST)
    comment = b"\x21\xfe" + b"\x01x" * 100 + b"\x00"
    assert decode_poster(gif[:frame_at] + comment + gif[frame_at:], AT_LEAST).size == (200, 300)


@pytest.mark.parametrize("image_format", ["GIF", "PNG", "WEBP"])
def test_only_the_first_frame_of_an_animation_is_decoded(image_format) -> None:
    red, blue = Image.new("RGB", (200, 300), (255, 0, 0)), Image.new("RGB", (200, 300), (0, 0, 255))
    options = {"lossless": True} if image_format == "WEBP" else {}
    data = encoded(red, image_format, save_all=True, append_images=[blue], duration=100, **options)
    with Image.open(io.BytesIO(data)) as animation:
        assert getattr(animation, "n_frames", 1) == 2
    assert decode_poster(data, AT_LEAST, formats=UPLOAD_FORMATS).getpixel((100, 150)) == (255, 0, 0)


def test_reduced_in_strips_as_whole_with_transparency_averaged_as_if_flattened_first(monkeypatch) -> None:
    """Half the pixels opaque red, half transparent black: reduced, each square is the average of red and the white
    background (pink), never darkened by the transparent pixels' black; strips give what the whole image gives."""
    pixels = np.zeros((600, 400, 4), dtype=np.uint8)
    pixels[::2, ::2] = pixels[1::2, 1::2] = (255, 0, 0, 255)
    picture = Image.fromarray(pixels)
    whole = images.reduced_rgb(picture, (100, 150))
    assert whole.size == (100, 150) and np.abs(np.asarray(whole, dtype=int) - (255, 127, 127)).max() <= 1
    grey = Image.fromarray(np.random.default_rng(0).integers(0, 65536, (600, 400), dtype=np.uint16))
    pictures = (picture, grey, picture.convert("RGB").convert("P"))
    monkeypatch.setattr(images, "STRIP_PIXELS", 10_000)  # 24 strips
    in_strips = [np.asarray(images.reduced_rgb(image, (100, 150))) for image in pictures]
    monkeypatch.setattr(images, "STRIP_PIXELS", 1 << 20)  # one
    for image, reduced in zip(pictures, in_strips, strict=True):
        assert np.array_equal(reduced, np.asarray(images.reduced_rgb(image, (100, 150))))


def test_the_decoded_image_carries_none_of_the_file_s_metadata() -> None:
    """A GIF's comments (Pillow joins them, and copies an image's comment into the JPEG it writes) stay behind: a
    100 KB one made the thumbnail fail ("Comment is too long"); no EXIF either."""
    gif = encoded(Image.new("P", (200, 300), 1), "GIF")
    at = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    comment = b"\x21\xfe" + (b"\xff" + b"c" * 255) * 400 + b"\x00"
    exif = Image.Exif()
    exif[0x0112] = 6
    for data in (gif[:at] + comment + gif[at:], encoded(Image.new("RGB", (300, 200)), "JPEG", exif=exif)):
        image = decode_poster(data, AT_LEAST)
        assert image.info == {} and not image.getexif()
        with Image.open(io.BytesIO(thumbnail(image))) as shown:
            assert "comment" not in shown.info and "exif" not in shown.info


def test_the_thumbnail_fits_the_box_without_copying_or_enlarging() -> None:
    for size, expected in (
        ((1, 1), (1, 1)),
        ((364, 536), (182, 268)),
        ((500, 100), (180, 36)),  # 5:1 stays 5:1 (182 x 36 was past it)
    ):
        image = Image.new("RGB", size, "white")
        with Image.open(io.BytesIO(thumbnail(image))) as shown:
            assert shown.size == expected and shown.format == "JPEG"
        assert image.size == size


@pytest.mark.parametrize("mode, key", [("RGB", (0, 0, 0)), ("L", 0)])
def test_a_transparent_colour_key_is_flattened_onto_white_like_any_transparency(mode: str, key) -> None:
    """A PNG's tRNS colour key on an RGB or greyscale image makes that colour transparent, as an alpha band does."""
    image = Image.new(mode, (40, 60), key)
    image.paste(Image.new(mode, (20, 60), "white" if mode == "RGB" else 128), (20, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=key)
    decoded = images.load_poster(buffer.getvalue(), (40, 60))
    assert (decoded[:, :18] == 255).all()  # the keyed (black) half is white, as on a page
    assert not (decoded[:, 22:] == 0).any()
