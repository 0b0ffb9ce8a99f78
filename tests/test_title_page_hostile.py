"""Title pages built to break the reader (scraper/title_page.py, scraper/title_scanner.py): the app reads whatever
answers for IMDb, so a page that trips the parser is a page we cannot read (TitlePageError, a 502 in the app), never
an exception of another kind (a 500), and nothing a page holds makes the reader's time or memory grow faster than
the page. Each case here once gave a 500, seconds of one thread growing with the square of the page, or memory
that did."""

from __future__ import annotations

import pytest

from catalog import Movie
from scraper import title_scanner
from scraper.title_page import MAX_TITLE_TEXT, TitlePageError, read_title_page
from scraper.title_scanner import MAX_DEPTH, MAX_OPEN_REGIONS, MAX_REGION_TEXT, _PageScanner
from tools.replica import title_page_html

IMAGE = "https://m.media-amazon.com/images/M/tt9000001.jpg"
FILM = Movie(
    imdb_id="tt9000001",
    title="Example Movie One",
    year=1994,
    genres=("Drama",),
    rating=9.3,
    votes=2_912_345,
    poster="posters/tt9000001.jpg",
)


def page(variant: str = "full") -> str:
    return title_page_html(FILM, IMAGE, variant=variant)


def with_body_prefix(html: str, prefix: str) -> str:
    """The page with `prefix` at the start of its <body>."""
    at = html.index(">", html.index("<body")) + 1
    return html[:at] + prefix + html[at:]


def test_a_declaration_that_html_parser_asserts_on_is_a_page_we_cannot_read() -> None:
    """Python 3.11's html.parser raises AssertionError on "<![x" (an unknown marked section)."""
    with pytest.raises(TitlePageError, match="cannot be read"):
        read_title_page(with_body_prefix(page(), "<![x"), FILM.imdb_id)


def test_json_ld_whose_type_is_not_a_string_is_skipped() -> None:
    """An @type of an object or a list of lists made a set lookup raise TypeError."""
    odd = '<script type="application/ld+json">{"@type": {"a": 1}}</script>'
    odd += '<script type="application/ld+json">[{"@type": [["Movie"]]}]</script>'
    read = read_title_page(with_body_prefix(page("json_ld_only"), odd).replace("<head>", "<head>" + odd, 1))
    assert read.title == FILM.title and read.year == FILM.year and read.rating == FILM.rating


def test_numbers_too_large_for_a_float_are_no_numbers() -> None:
    """A JSON integer of 400 digits made float() raise OverflowError."""
    huge = "9" * 400
    html = page("json_ld_only").replace(f'"ratingCount":{FILM.votes}', f'"ratingCount":{huge}')
    assert huge in html
    read = read_title_page(html.replace('"ratingValue":9.3', f'"ratingValue":{huge}'), FILM.imdb_id)
    assert read.title == FILM.title and read.votes is None and read.rating == FILM.rating  # the rating from og:title


def test_a_title_text_longer_than_any_title_is_not_read() -> None:
    """og:title and <title> go through patterns that backtrack, in time that grows with the square of the text,
    holding the interpreter (and every thread of the worker).
    Past MAX_TITLE_TEXT characters the text is no title; the other sources still are."""
    hostile = "a | " * 30_000 + "a&#10;X"
    html = page("og_image_only")
    start = html.index('property="og:title" content="') + len('property="og:title" content="')
    html = html[:start] + hostile + html[html.index('"', start) :]
    read = read_title_page(html, FILM.imdb_id)
    assert len(hostile) > MAX_TITLE_TEXT and read.title == FILM.title  # from the hero section
    assert read.genres == FILM.genres and read.poster_url is not None
    assert read_title_page(page("og_image_only"), FILM.imdb_id).title == FILM.title


def test_deep_nesting_is_followed_only_to_a_bound_and_the_hero_after_it_is_read() -> None:
    junk = "<div>" * (MAX_DEPTH + 5_000) + "</p>" * 5_000 + "</div>" * (MAX_DEPTH + 5_000)
    scanner = _PageScanner()
    scanner.feed(junk[: len("<div>") * (MAX_DEPTH + 5_000)])
    assert len(scanner.hero._stack) == MAX_DEPTH
    read = read_title_page(with_body_prefix(page("og_image_only"), junk), FILM.imdb_id)
    assert read.title == FILM.title and read.year == FILM.year


def test_regions_and_their_text_are_bounded() -> None:
    """Each unclosed release link opened a region that kept every later text: memory grew with the square of the
    page."""
    scanner = _PageScanner()
    scanner.feed(("<a href='/title/tt9000001/releaseinfo'>" + "x" * 100) * 2_000)
    regions = scanner.hero._open
    assert len(regions) == MAX_OPEN_REGIONS and all(region.size <= MAX_REGION_TEXT for region in regions)
    assert sum(len(text) for text in regions[0].text) == MAX_REGION_TEXT


def test_a_page_slower_to_read_than_the_budget_is_refused(monkeypatch) -> None:
    """Python 3.11's html.parser is quadratic on many unclosed comments at the end of a page (CVE-2025-6069); every
    step of that path calls back into the scanner, which stops once PARSE_SECONDS have passed."""
    monkeypatch.setattr(title_scanner, "PARSE_SECONDS", 0.05)
    with pytest.raises(TitlePageError, match="took more than 0.05 s to read"):
        read_title_page(page() + "<!--" * 20_000, FILM.imdb_id)
    assert read_title_page(page(), FILM.imdb_id).title == FILM.title  # a real page reads well within it


def test_self_closing_tags_past_the_depth_bound_do_not_unwind_it() -> None:
    """html.parser ends <img/> and <br/> as it starts them; past the bound those ends undid real elements' counts."""
    scanner = _PageScanner()
    scanner.feed("<div>" * (MAX_DEPTH + 2) + "<img/><img/>" + "<br/>" * 5 + "</div></div>")
    assert len(scanner.hero._stack) == MAX_DEPTH
