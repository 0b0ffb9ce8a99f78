"""The title page reader against every variant of the replica's pages, hand-made edge cases, and the replica
server over real loopback HTTP."""

from __future__ import annotations

import json
import re
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from catalog import Movie
from scraper.title_page import TitlePage, TitlePageError, read_title_page
from tests.test_replica_search import NO_PROXY, fetch
from tools.replica import LOGO_IMAGE, VARIANTS, ReplicaServer, title_page_html

IMAGE = "https://m.media-amazon.com/images/M/tt9000001.jpg"
TRICKY_TITLE = 'Jane\'s "Case" & </script> <!--<script> Ünïcödé 東京 (Part 2) | Reprise'


def movie(**changes) -> Movie:
    fields = {
        "imdb_id": "tt9000001",
        "title": "Example Movie One",
        "year": 1994,
        "genres": ("Drama", "Thriller"),
        "rating": 9.3,
        "votes": 2_912_345,
        "poster": "posters/tt9000001.jpg",
    }
    return Movie(**(fields | changes))


def expected(film: Movie, **changes) -> TitlePage:
    page = TitlePage(
        imdb_id=film.imdb_id,
        title=film.title,
        year=film.year,
        genres=film.genres,
        rating=film.rating,
        votes=film.votes,
        poster_url=IMAGE,
        source="next_data",
    )
    return TitlePage(**(page.__dict__ | changes))


VARIANT_EXPECTATIONS = {
    "full": {},
    "no_poster": {"poster_url": None, "source": "none"},
    "unrated": {"rating": None, "votes": 0},
    "json_ld_only": {"source": "json_ld"},
    "og_image_only": {"source": "og_image", "votes": None},
}


def test_the_expectations_cover_every_variant() -> None:
    assert set(VARIANT_EXPECTATIONS) == set(VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_reads_back_every_field(variant: str) -> None:
    film = movie()
    page = read_title_page(title_page_html(film, IMAGE, variant=variant))
    assert page == expected(film, **VARIANT_EXPECTATIONS[variant])


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_title_with_markup_quotes_and_non_ascii_reads_back_exactly(variant: str) -> None:
    film = movie(title=TRICKY_TITLE, imdb_id="tt10366206")
    page = read_title_page(title_page_html(film, IMAGE, variant=variant))
    assert page == expected(film, **VARIANT_EXPECTATIONS[variant])


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_title_without_year_rating_votes_or_genres(variant: str) -> None:
    film = movie(year=None, genres=(), rating=None, votes=None)
    page = read_title_page(title_page_html(film, IMAGE, variant=variant))
    assert page == expected(film, **{**VARIANT_EXPECTATIONS[variant], "votes": None, "rating": None})


def test_every_demo_movie_reads_back_from_its_full_page(demo_catalog) -> None:
    for film in demo_catalog:
        url = f"https://m.media-amazon.com/images/M/{film.imdb_id}.jpg"
        page = read_title_page(title_page_html(film, url))
        assert page == expected(film, poster_url=url), film.imdb_id
        assert re.fullmatch(r"tt\d{8}", page.imdb_id)


def test_no_poster_page_falls_back_to_the_imdb_logo_which_counts_as_no_poster() -> None:
    html = title_page_html(movie(), IMAGE, variant="no_poster")
    assert f'<meta property="og:image" content="{LOGO_IMAGE}">' in html
    assert IMAGE not in html
    assert '"primaryImage":null' in html
    assert read_title_page(html).poster_url is None


def test_a_movie_without_poster_url_renders_as_no_poster() -> None:
    page = read_title_page(title_page_html(movie(), None))
    assert (page.poster_url, page.source) == (None, "none")
    assert page.rating == 9.3


def test_json_ld_strings_are_entity_escaped_and_unescaped_on_reading() -> None:
    film = movie(title='Jane\'s "Case" & Co', genres=("Sci-Fi",))
    html = title_page_html(film, IMAGE + "?a=1&b=2", variant="json_ld_only")
    json_ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert json.loads(json_ld)["name"] == "Jane&apos;s &quot;Case&quot; &amp; Co"
    page = read_title_page(html)
    assert page.title == 'Jane\'s "Case" & Co'
    assert page.poster_url == IMAGE + "?a=1&b=2"
    assert page.source == "json_ld"


def test_script_contents_never_contain_a_closing_script_tag() -> None:
    html = title_page_html(movie(title=TRICKY_TITLE), IMAGE)
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    assert len(scripts) == 2
    for script in scripts:
        assert "</" not in script and "<!--" not in script
        json.loads(script)
    assert html.count("</script>") == 2


def test_malformed_next_data_falls_back_to_json_ld() -> None:
    html = title_page_html(movie(), IMAGE).replace('"aboveTheFoldData":{', '"aboveTheFoldData":{{', 1)
    page = read_title_page(html)
    assert page == expected(movie(), source="json_ld")


def test_malformed_json_ld_falls_back_to_og_meta() -> None:
    html = title_page_html(movie(), IMAGE, variant="json_ld_only").replace('"@type":"Movie",', '"@type":"Movie",,', 1)
    assert read_title_page(html) == expected(movie(), source="og_image", votes=None)


def test_next_data_without_rating_falls_back_field_by_field() -> None:
    html = title_page_html(movie(), IMAGE).replace('"ratingsSummary":{"aggregateRating":9.3,', '"x":{"y":9.3,', 1)
    page = read_title_page(html)
    assert (page.rating, page.votes, page.source) == (9.3, 2_912_345, "next_data")


def test_year_uses_date_published_only_as_a_last_resort() -> None:
    html = title_page_html(movie(), IMAGE, variant="json_ld_only")
    assert '"datePublished":"1995-03-02"' in html
    assert read_title_page(html).year == 1994
    without_og_title = re.sub(r'<meta property="og:title"[^>]*>|<title>.*?</title>', "", html)
    assert read_title_page(without_og_title).year == 1995


def test_og_title_without_genres_or_with_a_series_year_range() -> None:
    head = '<meta property="imdb:pageConst" content="tt0903747"><meta property="og:title" content="{}">'
    page = read_title_page(head.format("Breaking Bad (TV Series 2008–2013) ⭐ 9.5 | Crime, Drama, Thriller"))
    assert (page.title, page.year, page.rating) == ("Breaking Bad", 2008, 9.5)
    assert page.genres == ("Crime", "Drama", "Thriller")
    page = read_title_page(head.format("Untitled (2027)"))
    assert (page.title, page.year, page.rating, page.genres) == ("Untitled", 2027, None, ())


def test_json_ld_image_as_object_genre_as_string_and_numbers_as_strings() -> None:
    json_ld = {
        "@type": ["Movie"],
        "url": "https://www.imdb.com/title/tt0111161/",
        "name": "The Shawshank Redemption",
        "image": {"@type": "ImageObject", "url": "https://m.media-amazon.com/images/M/MV5Bx@._V1_.jpg"},
        "genre": "Drama",
        "aggregateRating": {"ratingValue": "9.3", "ratingCount": "2,912,345"},
    }
    html = f'<html><head><script type="application/ld+json">{json.dumps([{"@type": "WebPage"}, json_ld])}</script>'
    page = read_title_page(html)
    assert page == TitlePage(
        "tt0111161", "The Shawshank Redemption", None, ("Drama",), 9.3, 2_912_345, json_ld["image"]["url"], "json_ld"
    )


@pytest.mark.parametrize("imdb_id", ["tt1234567", "tt12345678"])
def test_seven_and_eight_digit_ids(imdb_id: str) -> None:
    page = read_title_page(title_page_html(movie(imdb_id=imdb_id), IMAGE))
    assert page.imdb_id == imdb_id


def test_the_id_comes_from_the_argument_then_the_page() -> None:
    html = title_page_html(movie(), IMAGE)
    assert read_title_page(html, "tt7654321").imdb_id == "tt7654321"
    stripped = re.sub(r'<meta property="imdb:pageConst"[^>]*>', "", html)
    assert read_title_page(stripped).imdb_id == "tt9000001"  # from __NEXT_DATA__ tconst
    only_canonical = title_page_html(movie(), IMAGE, variant="og_image_only")
    only_canonical = re.sub(r'<meta property="(imdb:pageConst|og:url)"[^>]*>', "", only_canonical)
    assert 'rel="canonical"' in only_canonical
    assert read_title_page(only_canonical).imdb_id == "tt9000001"
    assert read_title_page(re.sub(r'<link rel="canonical"[^>]*>', "", only_canonical), "tt9000001").title


def test_a_bad_id_argument_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bad imdb_id") as raised:
        read_title_page(title_page_html(movie(), IMAGE), "9000001")
    assert not isinstance(raised.value, TitlePageError)


CHALLENGE_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title></title>
<script>window.awsWafCookieDomainList = [];
window.gokuProps = {"key": "AQIDAHj", "iv": "CgAHYz", "context": "x"};</script>
<script src="https://example.token.awswaf.com/example/challenge.js"></script></head>
<body><div id="challenge-container"></div><noscript><h1>JavaScript is disabled</h1>
<p>Verify that you're not a robot: enable JavaScript and reload.</p></noscript></body></html>"""


@pytest.mark.parametrize(
    ("html", "imdb_id", "message"),
    [
        (CHALLENGE_PAGE, None, "names no IMDb title id"),
        (CHALLENGE_PAGE, "tt9000001", "no __NEXT_DATA__, JSON-LD or og: metadata"),
        ("", "tt9000001", "empty page"),
        ("  \n", None, "empty page"),
        ('<meta property="imdb:pageType" content="name"><meta property="og:title" content="Jane">', None, "'name'"),
        ("<html><head><title>404 Error - IMDb</title></head><body>404</body></html>", None, "'404 Error - IMDb'"),
    ],
)
def test_pages_that_are_not_title_pages_raise(html: str, imdb_id: str | None, message: str) -> None:
    with pytest.raises(TitlePageError, match=re.escape(message)):
        read_title_page(html, imdb_id)


def test_unknown_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown title page variant"):
        title_page_html(movie(), IMAGE, variant="nope")


def test_replica_server_over_loopback_http(demo_catalog) -> None:
    first, second, walled = (film.imdb_id for film in demo_catalog.movies[:3])
    with ReplicaServer(demo_catalog, bot_wall=[walled], variants={second: "no_poster"}) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        status, headers, body = fetch(f"{server.url}/title/{first}/?ref_=sr_t_1")
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        page = read_title_page(body.decode("utf-8"), first)
        film = demo_catalog.get(first)
        assert page == expected(film, poster_url=f"https://m.media-amazon.com/images/M/{first}.jpg")

        image_status, image_headers, image = fetch(server.url + urlsplit(page.poster_url).path)
        assert image_status == 200 and image_headers["Content-Type"] == "image/jpeg"
        assert image == demo_catalog.poster_path(film).read_bytes()

        for path in (f"/title/{first}", f"/title/{first}/reference"):
            status, _, body = fetch(server.url + path)
            assert status == 200 and read_title_page(body.decode()).imdb_id == first
        assert read_title_page(fetch(f"{server.url}/title/{second}/")[2].decode()).source == "none"

        status, headers, body = fetch(f"{server.url}/title/{walled}/")
        assert (status, body, headers["x-amzn-waf-action"]) == (202, b"", "challenge")
        with pytest.raises(TitlePageError):
            read_title_page(body.decode(), walled)

        assert fetch(f"{server.url}/title/tt00000001/")[0] == 404
        assert fetch(f"{server.url}/images/M/tt00000001.jpg")[0] == 404
        assert fetch(f"{server.url}/search/title/")[0] == 404
        assert server.requests == [
            f"/title/{first}/?ref_=sr_t_1",
            f"/images/M/{first}.jpg",
            f"/title/{first}",
            f"/title/{first}/reference",
            f"/title/{second}/",
            f"/title/{walled}/",
            "/title/tt00000001/",
            "/images/M/tt00000001.jpg",
            "/search/title/",
        ]
        url = server.url
    with pytest.raises(urllib.error.URLError):
        NO_PROXY.open(f"{url}/title/{first}/", timeout=5)


def test_replica_server_image_base_variants_and_concurrent_requests(demo_catalog) -> None:
    ids = [film.imdb_id for film in demo_catalog.movies[:24]]
    variants = dict(zip(ids, VARIANTS * 5, strict=False))
    with ReplicaServer(demo_catalog, variants=variants, image_base="http://images.test/", image_host_path="/p/") as srv:
        with ThreadPoolExecutor(max_workers=8) as pool:
            pages = list(pool.map(lambda imdb_id: fetch(f"{srv.url}/title/{imdb_id}/"), ids))
        for imdb_id, (status, _, body) in zip(ids, pages, strict=True):
            page = read_title_page(body.decode())
            assert status == 200 and page.imdb_id == imdb_id
            assert page.source == VARIANT_EXPECTATIONS[variants[imdb_id]].get("source", "next_data")
            if page.poster_url is not None:
                assert page.poster_url == f"http://images.test/p/{imdb_id}.jpg" == srv.poster_url(imdb_id)
        assert sorted(srv.requests) == sorted(f"/title/{imdb_id}/" for imdb_id in ids)
        assert fetch(f"{srv.url}/p/{ids[0]}.jpg")[0] == 200


def test_replica_server_rejects_unknown_variants_and_is_not_running_before_start(demo_catalog) -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        ReplicaServer(demo_catalog, variants={"tt99000001": "nope"})
    server = ReplicaServer(demo_catalog)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.stop()  # stopping a server that never started is harmless
