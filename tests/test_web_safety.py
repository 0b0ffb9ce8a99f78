"""The pages against bad input and abuse: every kind of broken or hostile upload, forged forms, vote floods and
our own crashes get a clear answer, and nothing is saved that should not be."""

from __future__ import annotations

import io
import re
import sqlite3
import struct
import zlib

import pytest
from PIL import Image

from app import create_app
from tests.conftest import png_chunk, results_path, under_results, vote_body


def table_sizes(app) -> tuple[int, int]:
    with sqlite3.connect(app.config["DATABASE"]) as database:
        return tuple(
            database.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("recommendations", "feedback")
        )


def png_bomb(side: int = 50_000) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: a few hundred kilobytes that would decode to gigabytes."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte, then the packed pixels
    compressor = zlib.compressobj(9)
    rows_per_chunk = 1000
    compressed = b"".join(compressor.compress(row * rows_per_chunk) for _ in range(side // rows_per_chunk))
    compressed += compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", compressed) + png_chunk(b"IEND", b"")


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def poster_bytes(demo_catalog) -> bytes:
    return demo_catalog.poster_path(demo_catalog.movies[3]).read_bytes()


BAD_UPLOADS = {
    "truncated JPEG": (lambda poster: poster[: len(poster) // 2], "poster.jpg", 400, "damaged or truncated"),
    "empty file": (lambda poster: b"", "empty.jpg", 400, "empty.jpg is empty"),
    "text named .jpg": (lambda poster: b"just some words\n" * 20, "notes.jpg", 400, "not an image we can read"),
    "SVG": (
        lambda poster: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10"/></svg>',
        "poster.svg",
        400,
        "not an image we can read (JPEG, PNG, WEBP, GIF)",
    ),
    "BMP": (lambda poster: encoded(Image.new("RGB", (20, 30)), "BMP"), "poster.jpg", 400, "not an image we can read"),
    "PNG bomb": (lambda poster: png_bomb(), "bomb.png", 400, "too large: far more than the limit of 40,000,000 pixels"),
    "big PNG": (lambda poster: png_bomb(7_000), "big.png", 400, "7000 x 7000 pixels; the limit is 40,000,000 pixels"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_are_refused_clearly_and_save_nothing(client, app, poster_bytes, case) -> None:
    make, name, status, message = BAD_UPLOADS[case]
    response = client.post(
        "/recommend", data={"poster": (io.BytesIO(make(poster_bytes)), name)}, content_type="multipart/form-data"
    )
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert message in page and 'type="file" name="poster"' in page  # said why, and offers another try
    assert "Traceback" not in page
    assert table_sizes(app) == (0, 0)


def test_an_11_megabyte_upload_gets_413_and_a_clear_page(client, app) -> None:
    response = client.post(
        "/recommend",
        data={"poster": (io.BytesIO(b"\xff" * (11 * 1024 * 1024)), "huge.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "That is too large: posters up to 10 MB in all, please (this one is 11.0 MB)." in page
    assert table_sizes(app) == (0, 0)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP", "GIF"])
def test_png_webp_and_gif_are_accepted_whatever_their_name(client, poster_bytes, image_format) -> None:
    image = Image.open(io.BytesIO(poster_bytes)).convert("RGB")
    data = encoded(image, image_format)
    response = client.post(
        "/recommend", data={"poster": (io.BytesIO(data), "poster.jpg")}, content_type="multipart/form-data"
    )
    assert response.status_code == 303, response.get_data(as_text=True)


def test_exif_orientation_is_applied(client, poster_bytes) -> None:
    """A phone photo stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise) is shown upright."""
    upright = Image.open(io.BytesIO(poster_bytes)).convert("RGB")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera stored
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(sideways, "JPEG", exif=exif.tobytes())
    response = client.post(
        "/recommend", data={"poster": (io.BytesIO(data), "phone.jpg")}, content_type="multipart/form-data"
    )
    thumbnail = Image.open(io.BytesIO(client.get(under_results(response.headers["Location"], "/query.jpg")).data))
    assert thumbnail.height > thumbnail.width  # portrait again, as the poster is


def test_forms_without_the_csrf_token_are_refused(app, client, demo_catalog) -> None:
    sample = demo_catalog.movies[0].imdb_id
    forger = app.test_client()  # sends no token, as another site's form could not
    refused = forger.post("/recommend", data={"sample": sample})
    assert refused.status_code == 400 and "This form has expired" in refused.get_data(as_text=True)
    wrong = forger.post("/recommend", data={"sample": sample, "csrf_token": "guessed"})
    assert wrong.status_code == 400
    assert table_sizes(app) == (0, 0)

    response = client.post("/recommend", data={"sample": sample})
    vote = forger.post(under_results(response.headers["Location"], "/feedback"), data={"rating": "good"})
    assert vote.status_code == 400 and table_sizes(app) == (1, 0)


def test_the_page_forms_carry_the_session_token(app) -> None:
    browser = app.test_client()
    page = browser.get("/").get_data(as_text=True)
    tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', page))
    assert len(tokens) == 1
    forms = page.count("<form")
    assert page.count('name="csrf_token"') == forms >= 3  # upload, link and every sample
    sample = re.search(r'name="sample" value="(tt\d+)"', page).group(1)
    assert browser.post("/recommend", data={"sample": sample, "csrf_token": tokens.pop()}).status_code == 303


def test_pages_send_security_headers(client, demo_catalog) -> None:
    for path in ("/", "/bandit", "/nowhere"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
    svg = client.get("/bandit/usage.svg").headers
    assert svg["Content-Security-Policy"].startswith("default-src 'none'")


def test_votes_are_rate_limited_per_client(app, client, demo_catalog) -> None:
    limited = create_app({**app.config, "FEEDBACK_LIMIT": 2, "FEEDBACK_WINDOW_SECONDS": 600})
    limited.test_client_class = type(client)
    voter = limited.test_client()
    ids = []
    for movie in demo_catalog.movies[:4]:
        response = voter.post("/recommend", data={"sample": movie.imdb_id})
        ids.append(response.headers["Location"])
    assert [voter.post(under_results(i, "/feedback"), data={"rating": "good"}).status_code for i in ids[:2]] == [
        303,
        303,
    ]
    flood = voter.post(under_results(ids[2], "/feedback"), data={"rating": "good"})
    assert flood.status_code == 429 and "please wait" in flood.get_data(as_text=True)
    assert flood.headers["Retry-After"] == "600"  # the window: by then the two votes have left it
    assert table_sizes(app) == (4, 2)
    neighbour = limited.test_client()
    neighbour.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert neighbour.post(under_results(ids[3], "/feedback"), data={"rating": "okay"}).status_code == 303
    with sqlite3.connect(app.config["DATABASE"]) as database:
        clients = {client for (client,) in database.execute("SELECT client FROM feedback")}
    assert len(clients) == 2 and not any("127.0.0.1" in key or "192.0.2.7" in key for key in clients)


def test_a_second_vote_is_refused_politely(client, demo_catalog) -> None:
    response = client.post("/recommend", data={"sample": demo_catalog.movies[1].imdb_id})
    results = response.headers["Location"]
    thanks = client.post(under_results(results, "/feedback"), data={"rating": "okay"}, follow_redirects=True)
    page = thanks.get_data(as_text=True)
    assert "Thank you! You rated these suggestions okay." in page and "Try another poster" in page
    again = client.post(under_results(results, "/feedback"), data={"rating": "good"})
    assert again.status_code == 409 and "already been rated; one vote each" in again.get_data(as_text=True)


def test_errors_are_friendly_pages_and_crashes_are_logged(app, client, caplog) -> None:
    def crash() -> str:
        raise ZeroDivisionError("a bug of ours")

    app.add_url_rule("/crash", view_func=crash)  # before the app's first request
    missing = client.get(results_path(app, 424242))
    assert missing.status_code == 404 and "No recommendation 424242" in missing.get_data(as_text=True)
    assert "Back to the posters" in missing.get_data(as_text=True)

    response = client.get("/crash")
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and "Something went wrong on our side" in page
    assert "<h1>Internal Server Error</h1>" in page and "property object" not in page
    assert "ZeroDivisionError" not in page and "Traceback" not in page
    logged = [record for record in caplog.records if record.exc_info and record.exc_info[0] is ZeroDivisionError]
    assert logged and "unexpected error on GET /crash" in logged[0].getMessage()


def test_the_bandit_tab_shows_counts_and_four_plots(client, demo_catalog) -> None:
    response = client.post("/recommend", data={"sample": demo_catalog.movies[1].imdb_id})
    results = response.headers["Location"]
    client.post(under_results(results, "/feedback"), data={"rating": "good"})
    arm = re.search(r"Compared by <strong>(\w+)</strong>", client.get(results).get_data(as_text=True)).group(1)
    page = client.get("/bandit").get_data(as_text=True)
    assert "1 recommendation so far, 1 rated" in page
    row = re.search(rf'<tr data-arm="{arm}">(.*?)</tr>', page, re.S).group(1)
    assert '<td class="shown">1</td><td class="rated">1</td>' in row and "+1.00" in row
    plots = re.findall(r'src="(/bandit/\w+\.svg)"', page)
    assert len(plots) == 4
    for plot in plots:
        svg = client.get(plot)
        assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and svg.data.lstrip().startswith(b"<?xml")
    assert client.get("/bandit/nothing.svg").status_code == 404


def test_the_results_scatter_plot_labels_the_five_movies(client, demo_catalog) -> None:
    response = client.post("/recommend", data={"sample": demo_catalog.movies[8].imdb_id})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    titles = re.findall(r'<h3><a href="[^"]+" target="_blank" rel="noopener">([^<]+)</a></h3>', page)
    plot = client.get(under_results(response.headers["Location"], "/scatter.svg"))
    assert plot.mimetype == "image/svg+xml"
    svg = plot.get_data(as_text=True)
    assert len(titles) == 5
    for title in titles:
        assert title[:20].replace("&#39;", "'") in svg.replace("&#39;", "'").replace("&apos;", "'")
    assert svg.count("<image") == 5  # each point drawn on its poster


def test_ids_beyond_any_row_and_ratings_of_other_types_get_4xx(app, client, demo_catalog) -> None:
    """Ids past SQLite's and PostgreSQL's 64-bit integers (2**70) used to reach the driver and answer 500."""
    huge = 2**70
    api = {"X-Requested-With": "pytest"}
    assert client.post("/api/feedback", json=vote_body(app, huge, "good"), headers=api).status_code == 404
    assert client.post(results_path(app, huge, "/feedback"), data={"rating": "good"}).status_code == 404
    for suffix in ("", "/scatter.svg", "/query.jpg"):
        assert client.get(results_path(app, huge, suffix)).status_code == 404, suffix
    shown = client.post("/api/recommend", data={"sample": demo_catalog.movies[0].imdb_id}, headers=api).get_json()
    for rating in (["good"], {"good": 1}, 1, None, "x" * 100_000):
        answer = client.post(
            "/api/feedback", json={**vote_body(app, shown["id"], "good"), "rating": rating}, headers=api
        )
        assert answer.status_code == 400 and len(answer.get_json()["error"]) < 200, rating
    assert table_sizes(app) == (1, 0)
    as_float = client.post(
        "/api/feedback", json={**vote_body(app, shown["id"], "good"), "id": float(shown["id"])}, headers=api
    )
    assert as_float.status_code == 200 and as_float.get_json()["id"] == shown["id"]


def test_gunicorns_error_log_hides_a_recommendation_key() -> None:
    """gunicorn names a request whose error escapes the app by its whole URI: the key in it is blanked (the access
    log leaves query strings out altogether, tests/test_browser.py)."""
    import logging

    from app import gunicorn_conf  # installs the filter on gunicorn's error log, in the master and so every worker

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    error_log = logging.getLogger("gunicorn.error")
    error_log.addHandler(handler)
    try:
        error_log.error("Error handling request %s %s", "GET", "/results/7/query.jpg?key=Tt-9Y1LjiTfbtEPrrhyGiw&x=1")
        error_log.error("Error handling request /results/7?key=Tt-9Y1LjiTfbtEPrrhyGiw")
    finally:
        error_log.removeHandler(handler)
    assert [record.getMessage() for record in records] == [
        "Error handling request GET /results/7/query.jpg?key=(hidden)&x=1",
        "Error handling request /results/7?key=(hidden)",
    ]
    assert any(isinstance(found, gunicorn_conf.WithoutKeys) for found in error_log.filters)


def test_gunicorns_access_log_escapes_control_characters_so_no_line_can_be_forged() -> None:
    """The access line holds the path as decoded (%(U)s, kept because the query string holds keys): a %0A in an
    address wrote a forged line of its own, a %00 a NUL. The line is made as gunicorn makes it (glogging.access)."""
    import logging

    from gunicorn.glogging import SafeAtoms

    from app import gunicorn_conf

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    access_log = logging.getLogger("gunicorn.access")
    access_log.addHandler(handler)
    level, access_log.level = access_log.level, logging.INFO  # gunicorn sets it so when it logs
    forged = '/posters/x\n127.0.0.1 - - [07/Dec/2026:00:00:00 +0000] "POST /api/feedback HTTP/1.1" 200 42\x00.jpg'
    atoms = {"h": "10.0.0.1", "l": "-", "u": "-", "t": "[07/Dec/2026:12:00:00 +0000]", "m": "GET", "U": forged}
    try:
        access_log.info(gunicorn_conf.access_log_format, SafeAtoms({**atoms, "H": "HTTP/1.1", "s": 404, "b": "9"}))
    finally:
        access_log.removeHandler(handler)
        access_log.setLevel(level)
    (line,) = [record.getMessage() for record in records]
    assert "\n" not in line and "\x00" not in line
    assert line.startswith('10.0.0.1 - - [07/Dec/2026:12:00:00 +0000] "GET /posters/x\\x0a127.0.0.1 - - ')
    assert line.endswith('200 42\\x00.jpg HTTP/1.1" 404 9 "-"')


def test_a_host_outside_trusted_hosts_is_refused_on_pages_and_in_the_api(app_settings: dict) -> None:
    """The API's links and Location headers are built from the Host header: a deployment names its hosts
    (POSTERBENCH_TRUSTED_HOSTS) and any other gets a 400, as text on the pages (an error page's links would be built
    from that Host too) and as JSON under /api/."""
    app = create_app({**app_settings, "TRUSTED_HOSTS": ["posterbench.example"]})
    client = app.test_client()
    page = client.get("/", headers={"Host": "evil.example"})
    assert page.status_code == 400 and page.mimetype == "text/plain"
    assert page.get_data(as_text=True) == "Host 'evil.example' is not trusted.\n"
    api = client.get("/api/openapi.json", headers={"Host": "evil.example"})
    assert api.status_code == 400 and api.get_json()["error"] == "Host 'evil.example' is not trusted."
    trusted = client.get("/api/openapi.json", headers={"Host": "posterbench.example"})
    assert trusted.status_code == 200 and trusted.get_json()["servers"] == [{"url": "http://posterbench.example"}]
