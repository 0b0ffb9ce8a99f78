"""The title page reader's last source, the visible hero section: pages that have nothing else, the order of the
fallback chain, posters (srcset, full size, none), abbreviated vote counts, and the year item."""

from __future__ import annotations

import json
import re

import pytest

from catalog import Movie
from scraper.title_page import TitlePage, TitlePageError, parse_votes, read_title_page
from tools.replica import title_page_html

BASE = "https://m.media-amazon.com/images/M/MV5BPLACEHOLDER0001@"
SMALL = BASE + "._V1_QL75_UX190_CR0,0,190,281_.jpg"
FULL = BASE + "._V1_.jpg"
SRCSET = f"{SMALL} 190w, {BASE}._V1_QL75_UX380_CR0,0,380,562_.jpg 380w, {BASE}._V1_QL75_UX285_CR0,0,285,422_.jpg 285w"
IMG = f'<img alt="Jane Placeholder in Example Movie One (1994)" class="ipc-image" src="{SMALL}" srcset="{SRCSET}">'
ICON = '<svg class="ipc-icon ipc-icon--movie ipc-media__icon" width="24" height="24" role="presentation"/>'
LOGO = "https://m.media-amazon.com/images/G/01/imdb/images/social/imdb_logo.png"


def item(text: str) -> str:
    return f'<li role="presentation" class="ipc-inline-list__item">{text}</li>'


YEAR_ITEMS = (
    item('<a class="ipc-link ipc-link--baseAlt" href="/title/tt9000001/releaseinfo?ref_=tt_ov_rdat">1994</a>'),
    item('<a class="ipc-link" href="/title/tt9000001/parentalguide/certificates?ref_=tt_ov_pg">R</a>'),
    item("2h 22m"),
)


def rating_bar(rating: str, votes: str) -> str:
    return f"""<div data-testid="hero-rating-bar__aggregate-rating" class="sc-3a4309f8-0 fjtZsE">
     <a class="ipc-btn ipc-text-button sc-acdbf0f3-2 bEFqOO" aria-label="View User Ratings"
        href="/title/tt9000001/ratings/?ref_=tt_ov_rat"><span class="ipc-btn__text"><div class="sc-acdbf0f3-3 dTiYRw">
       <div data-testid="hero-rating-bar__aggregate-rating__score" class="sc-acdbf0f3-1 kCTJoV"><span
          class="sc-acdbf0f3-0 haeNJV">{rating}</span><span>/<!-- -->10</span></div>
       <div class="sc-acdbf0f3-4 eVZpvn"></div><div class="sc-acdbf0f3-6 kzGfxd">{votes}</div>
      </div></span></a>
    </div>"""


def chip(text: str, index: int) -> str:
    return (
        f'<a class="ipc-chip ipc-chip--on-baseAlt" href="/interest/in{index:07d}/?ref_=tt_ov_in_{index}">'
        f'<span class="ipc-chip__text">{text}</span></a>'
    )


def hero_page(
    *,
    head: str = '<meta property="imdb:pageConst" content="tt9000001">',
    title: str = "Example Movie One",
    items: tuple[str, ...] = YEAR_ITEMS,
    rating: str | None = "9.3",
    votes: str = "2.9M",
    media: str = IMG,
    chips: tuple[str, ...] = ("Prison Drama", "Drama"),
    after: str = "",
) -> str:
    """A title page shaped like IMDb's (spec section 8) whose only data is the hero section, with styled-components
    class noise."""
    return f"""<!DOCTYPE html>
<html lang="en-US"><head><meta charset="utf-8">{head}</head>
<body id="styleguide-v2"><div id="__next"><main role="main">
 <section class="ipc-page-background sc-c41b9732-0 NeSef" data-testid="hero-parent">
  <div class="sc-491663c0-3 bdjVSf">
   <h1 textlength="17" data-testid="hero__pageTitle" class="sc-d8941411-0 dxeMrU"><span class="hero__primary-text"
       data-testid="hero__primary-text">{title}</span></h1>
   <ul class="ipc-inline-list ipc-inline-list--show-dividers sc-d8941411-2 cdJsTz baseAlt" role="presentation">
    {"".join(items)}
   </ul>
   {rating_bar(rating, votes) if rating is not None else ""}
  </div>
  <div class="sc-491663c0-4 yjUiO">
   <div class="ipc-poster ipc-poster--baseAlt ipc-sub-grid-item" role="group" data-testid="hero-media__poster">
    <div class="ipc-media ipc-media--poster-27x40 ipc-poster__poster-image" style="width:100%">{media}</div>
    <a class="ipc-lockup-overlay ipc-focusable" href="/title/tt9000001/mediaviewer/rm900000001/?ref_=tt_ov_i"
       aria-label="View ’Example Movie One’ Poster"><div class="ipc-lockup-overlay__screen"></div></a>
   </div>
   <div class="sc-491663c0-10 rbXFE"><div class="ipc-chip-list sc-e6498a9c-4 dfXgRi" data-testid="interests">
    <div class="ipc-chip-list__scroller">{"".join(chip(text, index) for index, text in enumerate(chips, 1))}</div>
   </div></div>
  </div>
 </section>
 {after}
</main></div></body></html>"""


HERO_ONLY = TitlePage("tt9000001", "Example Movie One", 1994, ("Drama",), 9.3, 2_900_000, FULL, "dom")


def test_a_page_with_only_the_hero_reads_every_field_from_it() -> None:
    assert read_title_page(hero_page()) == HERO_ONLY


def test_the_id_comes_from_the_heros_own_links_when_the_head_names_none() -> None:
    assert read_title_page(hero_page(head="")) == HERO_ONLY
    assert read_title_page(hero_page(head=""), "tt7654321").imdb_id == "tt7654321"
    unlinked = re.sub(r"/title/tt9000001/", "/", hero_page(head=""))
    with pytest.raises(TitlePageError, match="names no IMDb title id"):
        read_title_page(unlinked)


def test_a_page_with_an_id_but_not_even_a_hero_says_so() -> None:
    with pytest.raises(TitlePageError, match="no __NEXT_DATA__, JSON-LD or og: metadata, nor a hero section"):
        read_title_page("<html><body><h1>Something else</h1><img src='x.jpg'></body></html>", "tt9000001")


def strip_to_hero(html: str) -> str:
    """A replica page without __NEXT_DATA__, JSON-LD, og: meta and <title>: only imdb:pageConst and the hero remain."""
    html = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)
    html = re.sub(r'<meta property="(og|twitter):[^>]*>', "", html)
    return re.sub(r"<title>.*?</title>", "", html, flags=re.S)


@pytest.mark.parametrize(
    ("film", "votes"),
    [
        (Movie("tt9000001", "Example Movie One", 1994, ("Drama", "Sci-Fi"), 9.3, 2_912_345, "p.jpg"), 2_900_000),
        (
            Movie("tt10366206", 'Jane\'s "Case" & <b>Ünïcödé</b> 東京', 2019, ("Horror",), 6.1, 850_123, "p.jpg"),
            850_000,
        ),
        (Movie("tt1234567", "Small", 2001, ("Comedy", "Romance", "War"), 7.0, 987, "p.jpg"), 987),
    ],
)
def test_a_replica_page_stripped_to_its_hero_reads_back(film: Movie, votes: int) -> None:
    html = strip_to_hero(title_page_html(film, FULL))
    assert "__NEXT_DATA__" not in html and "ld+json" not in html and "og:" not in html
    page = read_title_page(html)
    assert page == TitlePage(film.imdb_id, film.title, film.year, film.genres, film.rating, votes, FULL, "dom")


def test_a_stripped_no_poster_or_unrated_replica_page() -> None:
    film = Movie("tt9000001", "Example Movie One", 1994, ("Drama",), 9.3, 2_912_345, "p.jpg")
    no_poster = read_title_page(strip_to_hero(title_page_html(film, FULL, variant="no_poster")))
    assert (no_poster.poster_url, no_poster.source, no_poster.rating) == (None, "none", 9.3)
    unrated = read_title_page(strip_to_hero(title_page_html(film, FULL, variant="unrated")))
    assert (unrated.rating, unrated.votes, unrated.poster_url) == (None, None, FULL)


def json_ld(**work) -> str:
    data = {"@context": "https://schema.org", "@type": "Movie", "url": "https://www.imdb.com/title/tt9000001/"}
    return f'<script type="application/ld+json">{json.dumps(data | work)}</script>'


def test_a_field_in_both_json_ld_and_the_hero_comes_from_json_ld() -> None:
    head = json_ld(
        name="JSON-LD Title",
        image="https://m.media-amazon.com/images/M/JSONLD@._V1_.jpg",
        genre=["Crime"],
        aggregateRating={"ratingValue": 8.1, "ratingCount": 123_456},
    )
    page = read_title_page(hero_page(head=head))
    poster = "https://m.media-amazon.com/images/M/JSONLD@._V1_.jpg"
    assert page == TitlePage("tt9000001", "JSON-LD Title", 1994, ("Crime",), 8.1, 123_456, poster, "json_ld")


def test_the_hero_fills_only_the_fields_earlier_sources_lack() -> None:
    page = read_title_page(hero_page(head=json_ld(name="JSON-LD Title")))
    assert page == TitlePage("tt9000001", "JSON-LD Title", 1994, ("Drama",), 9.3, 2_900_000, FULL, "dom")


def test_og_title_and_json_ld_date_published_come_before_the_heros_year() -> None:
    og_title = '<meta property="og:title" content="Example Movie One (1993) ⭐ 8.8 | Drama">'
    page = read_title_page(hero_page(head=og_title + '<meta property="imdb:pageConst" content="tt9000001">'))
    assert (page.year, page.rating, page.title) == (1993, 8.8, "Example Movie One")
    assert read_title_page(hero_page(head=json_ld(datePublished="1995-03-02"))).year == 1995


def test_a_rounded_hero_vote_count_never_pairs_with_another_sources_rating() -> None:
    og_title = '<meta property="og:title" content="Example Movie One (1994) ⭐ 8.8">'
    page = read_title_page(hero_page(head=og_title + '<meta property="imdb:pageConst" content="tt9000001">'))
    assert (page.rating, page.votes) == (8.8, None)
    exact = read_title_page(hero_page(head=json_ld(aggregateRating={"ratingCount": 2_912_345})))
    assert (exact.rating, exact.votes) == (9.3, 2_912_345)


def test_an_og_logo_does_not_hide_the_heros_poster() -> None:
    head = f'<meta property="imdb:pageConst" content="tt9000001"><meta property="og:image" content="{LOGO}">'
    assert read_title_page(hero_page(head=head)).source == "dom"
    og_poster = head.replace(LOGO, "https://m.media-amazon.com/images/M/OG@._V1_FMjpg_UX1000_.jpg")
    page = read_title_page(hero_page(head=og_poster))
    assert (page.poster_url, page.source) == (
        "https://m.media-amazon.com/images/M/OG@._V1_FMjpg_UX1000_.jpg",
        "og_image",
    )


@pytest.mark.parametrize(
    ("media", "poster_url"),
    [
        (ICON, None),  # no poster: IMDb shows a placeholder icon
        (f'<img class="ipc-image" src="{LOGO}">', None),
        ('<img class="ipc-image" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">', None),
        (f'<img class="ipc-image" src="{SMALL}">', FULL),  # no srcset: the src, at full size
        (f'<img class="ipc-image" src="{SMALL}"/>', FULL),
        ('<img src="https://example.test/a,b/poster.jpg?x=1&amp;y=2">', "https://example.test/a,b/poster.jpg?x=1&y=2"),
        (
            '<img src="/s.jpg" srcset="https://example.test/p,1.jpg 190w,https://example.test/p,2.jpg 380w">',
            "https://example.test/p,2.jpg",  # no ._V1_ suffix: the largest srcset entry as it is
        ),
        (f'<img class="ipc-image" src="{BASE}._V1_.jpg">', FULL),
        (
            '<img src="https://m.media-amazon.com/images/M/MV5Bold._V1._SX300.jpg">',
            "https://m.media-amazon.com/images/M/MV5Bold._V1_.jpg",
        ),
    ],
)
def test_the_hero_poster_url(media: str, poster_url: str | None) -> None:
    page = read_title_page(hero_page(media=media))
    assert (page.poster_url, page.source) == (poster_url, "dom" if poster_url else "none")
    assert page.title == "Example Movie One"


def test_only_the_poster_wrappers_image_counts() -> None:
    other_image = '<section data-testid="Photos"><img class="ipc-image" src="https://example.test/still.jpg"></section>'
    page = read_title_page(hero_page(media=ICON, after=other_image))
    assert (page.poster_url, page.source) == (None, "none")


@pytest.mark.parametrize(
    ("text", "votes"),
    [
        ("2.9M", 2_900_000),
        ("3M", 3_000_000),
        ("850K", 850_000),
        ("7.4K", 7_400),
        ("1.25k", 1_250),
        ("12,345", 12_345),
        ("1,234,567", 1_234_567),
        ("987", 987),
        ("0", 0),
        (" 2.9 M ", 2_900_000),
        ("1B", 1_000_000_000),
        ("1.5", None),
        ("1,23", None),
        ("", None),
        ("2.9X", None),
        ("M", None),
        ("-5", None),
    ],
)
def test_parse_votes(text: str, votes: int | None) -> None:
    assert parse_votes(text) == votes


@pytest.mark.parametrize(("shown", "votes"), [("2.9M", 2_900_000), ("850K", 850_000), ("12,345", 12_345)])
def test_abbreviated_votes_in_the_rating_bar(shown: str, votes: int) -> None:
    assert read_title_page(hero_page(votes=shown)).votes == votes


def test_a_vote_count_outside_the_rating_bar_is_not_taken() -> None:
    page = read_title_page(hero_page(votes="", after='<div class="x">5K</div>'))
    assert (page.rating, page.votes) == (9.3, None)


def test_the_first_of_two_rating_bars_wins_and_a_bad_score_is_dropped() -> None:
    twice = hero_page(after=f'<div class="sc-1 mobile">{rating_bar("1.0", "5K")}</div>')
    assert (read_title_page(twice).rating, read_title_page(twice).votes) == (9.3, 2_900_000)
    assert read_title_page(hero_page(rating="9,3")).rating == 9.3
    assert read_title_page(hero_page(rating="93")).rating is None
    assert read_title_page(hero_page(rating="N/A")).rating is None


@pytest.mark.parametrize(
    ("items", "year"),
    [
        (YEAR_ITEMS, 1994),
        ((item("TV Series"), item('<a href="/title/tt9000001/releaseinfo">2008–2013</a>'), item("TV-MA")), 2008),
        ((item("TV Series"), item("2019–"), item("45m")), 2019),
        ((item("R"), item("2h 22m")), None),
        ((item("1h 30m"), item("8000")), None),  # not a plausible year
        ((), None),
    ],
)
def test_the_year_is_the_first_year_item_after_the_title(items: tuple[str, ...], year: int | None) -> None:
    assert read_title_page(hero_page(items=items)).year == year


def test_the_year_from_a_releaseinfo_link_outside_the_list_and_not_from_other_text() -> None:
    link = '<div data-testid="hero-title-block__metadata-x"><a href="/title/tt9000001/releaseinfo">2001</a></div>'
    details = '<li data-testid="title-details-releasedate"><a href="/releaseinfo">October 14, 1994 (US)</a></li>'
    assert read_title_page(hero_page(items=(item("R"),), after=details + link)).year == 2001
    assert read_title_page(hero_page(items=(item("R"),), after=details)).year is None
    before_title = '<ul class="ipc-inline-list"><li class="ipc-inline-list__item">1999</li></ul>'
    assert read_title_page(hero_page(head=before_title, items=())).year is None


def test_interest_chips_count_as_genres_only_in_imdbs_vocabulary() -> None:
    chips = ("Prison Drama", "Drama", "Epic", "Sci-Fi", "Drama", "Music", "Musical")
    assert read_title_page(hero_page(chips=chips)).genres == ("Drama", "Sci-Fi", "Music", "Musical")
    assert read_title_page(hero_page(chips=("Prison Drama", "Psychological Thriller"))).genres == ()


def test_legacy_hero_markup() -> None:
    legacy = """<meta property="imdb:pageConst" content="tt0111161"></head><body>
    <h1 data-testid="hero-title-block__title" class="TitleHeader__TitleText-sc-1wu6n3d-0">The Shawshank Redemption</h1>
    <ul data-testid="hero-title-block__metadata"><li><span>1994</span></li><li>R</li></ul>
    <div data-testid="genres"><a href="/search/title?genres=drama"><span class="x">Drama</span></a></div>"""
    page = read_title_page(legacy)
    assert (page.title, page.year, page.genres, page.source) == ("The Shawshank Redemption", 1994, ("Drama",), "none")


def test_hero_text_is_unescaped_whitespace_collapsed_and_scripts_ignored() -> None:
    script = '<script>document.write("<span data-testid=hero__primary-text>Injected</span>")</script>'
    page = read_title_page(hero_page(title=f"  Tom &amp; Jerry's\n   &quot;Movie&quot; {script} "))
    assert page.title == 'Tom & Jerry\'s "Movie"'
