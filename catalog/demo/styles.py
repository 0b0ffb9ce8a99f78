"""The six genres' styles (palette, motifs, typography) and the words the demo titles are made of."""

from __future__ import annotations

from types import MappingProxyType

from catalog.demo.canvas import _GenreStyle
from catalog.demo.motifs import (
    _paint_action,
    _paint_comedy,
    _paint_drama,
    _paint_horror,
    _paint_romance,
    _paint_thriller,
)

# ---------------------------------------------------------------- the six genres


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(","))


_STYLES: MappingProxyType[str, _GenreStyle] = MappingProxyType(
    {
        "Action": _GenreStyle(
            share=0.17,
            rating_shift=-0.15,
            adjectives=_words(
                "Iron, Rogue, Final, Burning, Steel, Savage, Lethal, "
                "Rapid, Maximum, Black, Hard, Renegade, Zero, Blazing"
            ),
            nouns=_words(
                "Strike, Fury, Force, Impact, Vengeance, Storm, Run, "
                "Fire, Breach, Velocity, Target, Blade, Squadron, Payback, Showdown"
            ),
            backgrounds=(
                ((20, 35, 60), (230, 110, 20)),
                ((15, 25, 45), (70, 115, 165)),
                ((45, 20, 10), (240, 140, 30)),
                ((30, 60, 95), (250, 170, 60)),
            ),
            vignette=0.15,
            paint_motifs=_paint_action,
            title_colors=((250, 250, 250), (255, 150, 30), (200, 215, 230)),
            title_outline=(20, 20, 25),
            title_center=0.84,
            title_size=0.14,
            title_uppercase=True,
            title_tracking=0.0,
        ),
        "Comedy": _GenreStyle(
            share=0.17,
            rating_shift=-0.1,
            adjectives=_words(
                "Crazy, Lucky, Big, Wild, Happy, Silly, Accidental, "
                "Awkward, Totally, Super, Fabulous, Wacky, Little, Perfect"
            ),
            nouns=_words(
                "Wedding, Weekend, Roommates, Vacation, Party, Neighbors, Plan, "
                "Road Trip, Family, Business, Dog, Honeymoon, Reunion, Mix-Up"
            ),
            backgrounds=(
                ((255, 225, 40), (255, 250, 235)),
                ((255, 255, 255), (255, 210, 0)),
                ((70, 160, 255), (255, 235, 60)),
                ((255, 245, 120), (255, 255, 255)),
            ),
            vignette=0.0,
            paint_motifs=_paint_comedy,
            title_colors=((255, 255, 255), (230, 30, 40), (30, 90, 230), (255, 220, 0)),
            title_outline=(0, 0, 0),
            title_center=0.13,
            title_size=0.17,
            title_uppercase=False,
            title_tracking=0.0,
        ),
        "Drama": _GenreStyle(
            share=0.22,
            rating_shift=0.35,
            adjectives=_words(
                "Quiet, Distant, Broken, Long, Autumn, Last, Forgotten, "
                "Golden, Tender, Small, Winter, Lost, Patient, Other"
            ),
            nouns=_words(
                "Harvest, River, Years, Letters, Season, Inheritance, Garden, "
                "Sunrise, Bridge, Country, Daughter, Silence, Shore, Hours"
            ),
            backgrounds=(
                ((125, 100, 72), (60, 50, 40)),
                ((170, 150, 120), (90, 75, 60)),
                ((115, 112, 92), (50, 45, 35)),
                ((150, 120, 95), (85, 90, 85)),
            ),
            vignette=0.35,
            paint_motifs=_paint_drama,
            title_colors=((240, 230, 210), (205, 195, 170), (250, 245, 235)),
            title_outline=None,
            title_center=0.1,
            title_size=0.075,
            title_uppercase=False,
            title_tracking=0.05,
        ),
        "Horror": _GenreStyle(
            share=0.14,
            rating_shift=-0.6,
            adjectives=_words(
                "Midnight, Hollow, Cursed, Bleeding, Dead, Crimson, "
                "Rotten, Wicked, Haunted, Unholy, Screaming, Buried, Pale"
            ),
            nouns=_words(
                "House, Woods, Ritual, Hunger, Whispers, Grave, Shadows, "
                "Cellar, Doll, Curse, Asylum, Harvest, Night, Teeth"
            ),
            backgrounds=(
                ((5, 5, 8), (70, 0, 0)),
                ((0, 0, 0), (30, 20, 25)),
                ((40, 0, 0), (0, 0, 0)),
                ((15, 10, 12), (90, 8, 8)),
            ),
            vignette=0.75,
            paint_motifs=_paint_horror,
            title_colors=((200, 10, 10), (225, 220, 200), (170, 0, 0)),
            title_outline=None,
            title_center=0.9,
            title_size=0.115,
            title_uppercase=True,
            title_tracking=0.02,
        ),
        "Romance": _GenreStyle(
            share=0.14,
            rating_shift=0.05,
            adjectives=_words(
                "Sweet, Endless, Summer, Secret, Sunlit, Forever, "
                "Tender, Starlit, Second, First, Sudden, Lovely, Moonlit"
            ),
            nouns=_words(
                "Kiss, Heart, Love, Hearts, Promise, Letters, Dance, "
                "Affair, Serenade, Valentine, Romance, Rendezvous, Wedding, Crush"
            ),
            backgrounds=(
                ((255, 190, 205), (255, 235, 220)),
                ((250, 160, 180), (255, 220, 190)),
                ((240, 200, 220), (255, 245, 240)),
                ((255, 175, 160), (255, 225, 235)),
            ),
            vignette=0.05,
            paint_motifs=_paint_romance,
            title_colors=((180, 20, 70), (255, 255, 255), (120, 30, 60)),
            title_outline=None,
            title_center=0.5,
            title_size=0.1,
            title_uppercase=False,
            title_tracking=0.0,
        ),
        "Thriller": _GenreStyle(
            share=0.16,
            rating_shift=0.1,
            adjectives=_words(
                "Dark, Hidden, Cold, Deadly, Blind, Perfect, Double, Fatal, Twelfth, Silent, Vanishing, Quiet, Seventh"
            ),
            nouns=_words(
                "Witness, Alibi, Motive, Suspect, Signal, Code, Conspiracy, "
                "Trace, Stranger, Protocol, Informant, Verdict, Room, Game"
            ),
            backgrounds=(
                ((75, 85, 100), (15, 20, 28)),
                ((115, 125, 135), (30, 35, 45)),
                ((40, 55, 72), (10, 12, 18)),
                ((95, 105, 115), (45, 50, 60)),
            ),
            vignette=0.6,
            paint_motifs=_paint_thriller,
            title_colors=((220, 225, 230), (170, 180, 190), (255, 255, 255)),
            title_outline=None,
            title_center=0.16,
            title_size=0.075,
            title_uppercase=True,
            title_tracking=0.35,
        ),
    }
)

_PLACES = ("Paris", "Lisbon", "Havana", "Tokyo", "Venice", "Brooklyn", "Marseille", "Cairo", "Berlin", "Memphis", "Rio")
_SEQUELS = ("II", "III", "2", "IV")
_TITLE_TEMPLATES = (
    "{adjective} {noun}",
    "The {adjective} {noun}",
    "{noun} of the {other}",
    "{noun} in {place}",
    "{adjective} {noun} {sequel}",
    "The {noun}",
)
_TITLE_TEMPLATE_SHARES = (0.38, 0.22, 0.15, 0.1, 0.1, 0.05)
