"""The SVG plots: well-formed, labelled, coping with empty and large input, deterministic, thread-safe, no pyplot."""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import plots
from app.plots import ScatterPoint
from recommend import DISTANCES

ROOT = Path(__file__).resolve().parent.parent
ARMS = DISTANCES  # the arms are the distances
SVG = "{http://www.w3.org/2000/svg}"


def poster(shade: int) -> Image.Image:
    pixels = np.zeros((450, 300, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, 300, dtype=np.uint8)[None, :]
    pixels[..., 1] = shade
    return Image.fromarray(pixels)


def parse(svg: bytes) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    return root


def texts(svg: bytes) -> list[str]:
    """The text of every <text> element (svg.fonttype none keeps each drawn line as one)."""
    return ["".join(element.itertext()) for element in parse(svg).iter(f"{SVG}text")]


def images(svg: bytes) -> list[ET.Element]:
    return list(parse(svg).iter(f"{SVG}image"))


def line_lengths(svg: bytes) -> list[int]:
    """Vertex counts of the plotted lines (paths drawn with many segments)."""
    paths = [element.get("d", "") for element in parse(svg).iter(f"{SVG}path")]
    return [path.count("L") + 1 for path in paths if path.count("L") > 50]


FIVE = [
    ScatterPoint("Alien", 1979, 8.5, poster(0)),
    ScatterPoint("Heat", 1995, 8.3, poster(60)),
    ScatterPoint("The Lord of the Rings: The Fellowship of the Ring", 2001, 8.8, poster(120)),
    ScatterPoint("Up", 2009, 8.3, poster(180)),
    ScatterPoint("Paddington 2", 2017, 7.8, poster(240)),
]
SHOWN = {"manhattan": 40, "euclidean": 12, "cosine": 9}
RATED = {"manhattan": 20, "euclidean": 5, "cosine": 3}
VALUES = {"manhattan": 0.45, "euclidean": -0.2, "cosine": -1.0}
REWARDS = [(ARMS[i % 3], (i % 3) - 1) for i in range(30)]


def all_plots() -> list[bytes]:
    return [
        plots.scatter_svg(FIVE),
        plots.usage_svg(ARMS, SHOWN, RATED),
        plots.values_svg(ARMS, VALUES, RATED),
        plots.rewards_svg(ARMS, REWARDS, window=5),
        plots.epsilon_svg([1.0, 0.5, 0.33, 0.25]),
    ]


def test_every_plot_is_well_formed_svg_with_a_title_element() -> None:
    for svg in all_plots():
        root = parse(svg)
        title = root.find(f"{SVG}title")
        assert title is not None and title.text
        assert title.text in texts(svg)  # the same title is drawn, as text


def test_scatter_labels_plotted_titles_and_notes_the_rest() -> None:
    points = [
        ScatterPoint("Alien", 1979, 8.5),
        ScatterPoint("Heat & Dust", 1983, 6.9),
        ScatterPoint("Unrated Film", 2020, None),
        ScatterPoint("Undated Film", None, 7.0),
        ScatterPoint("Mystery", None, math.nan),
    ]
    drawn = texts(plots.scatter_svg(points))
    assert "Year and IMDb rating of the recommendations" in drawn
    assert {"Year", "IMDb rating", "Alien", "Heat & Dust"} <= set(drawn)
    note = " ".join(text for text in drawn if "Not plotted" in text or "(no " in text)
    assert note.startswith("Not plotted:")
    assert "Unrated Film (no rating)" in note
    assert "Undated Film (no year)" in note
    assert "Mystery (no year or rating)" in note
    assert "Alien" not in note
    assert not any(text in ("Unrated Film", "Undated Film", "Mystery") for text in drawn)


def test_scatter_without_omissions_has_no_note() -> None:
    assert not any("Not plotted" in text for text in texts(plots.scatter_svg(FIVE)))


def test_long_titles_are_shortened_with_an_ellipsis() -> None:
    drawn = texts(plots.scatter_svg(FIVE))
    assert "The Lord of the Rings: The Fellowship of the Ring" not in drawn
    short = [text for text in drawn if text.startswith("The Lord of the Rings")]
    assert len(short) == 1 and short[0].endswith("…") and len(short[0]) <= plots.TITLE_CHARS
    assert plots.shorten("Up") == "Up"
    assert plots.shorten("x" * 40, 10) == "x" * 9 + "…"


def test_thumbnails_are_drawn_as_images_only_when_given() -> None:
    assert len(images(plots.scatter_svg(FIVE))) == 5
    bare = [ScatterPoint(point.title, point.year, point.rating) for point in FIVE]
    assert images(plots.scatter_svg(bare)) == []
    mixed = [FIVE[0], bare[1], ScatterPoint("Grey", 2000, 6.0, Image.new("L", (20, 30), 128))]
    assert len(images(plots.scatter_svg(mixed))) == 2


def test_one_point_and_identical_years_are_fine() -> None:
    assert "Alien" in texts(plots.scatter_svg([ScatterPoint("Alien", 1979, 8.5, poster(0))]))
    same_year = [ScatterPoint(f"Film {i}", 2001, 5 + i / 2, poster(i * 40)) for i in range(5)]
    assert {f"Film {i}" for i in range(5)} <= set(texts(plots.scatter_svg(same_year)))


@pytest.mark.parametrize(
    ("values", "expected"),
    [([2001], (1999.0, 2003.0)), ([2001, 2001, 2001], (1999.0, 2003.0)), ([1950, 2000], (1946.0, 2004.0))],
)
def test_axis_limits_are_padded_and_finite(values: list[float], expected: tuple[float, float]) -> None:
    assert plots.axis_limits(values, pad_fraction=0.08, min_pad=2.0) == pytest.approx(expected)


def test_axis_limits_without_finite_values() -> None:
    for values in ([], [math.nan], [math.inf, None]):
        low, high = plots.axis_limits(values)
        assert math.isfinite(low) and math.isfinite(high) and low < high


def test_moving_average_uses_a_shorter_window_at_the_start() -> None:
    np.testing.assert_allclose(plots.moving_average([1, -1, 0, 1, 1], 3), [1, 0, 0, 0, 2 / 3])
    np.testing.assert_allclose(plots.moving_average([1, 0, -1], 1), [1, 0, -1])
    np.testing.assert_allclose(plots.moving_average([1, 0, -1], 10), [1, 0.5, 0])
    assert plots.moving_average([], 20).shape == (0,)
    with pytest.raises(ValueError):
        plots.moving_average([1], 0)


def test_running_mean_and_downsample() -> None:
    np.testing.assert_allclose(plots.running_mean([1, 0, -1, 0]), [1, 0.5, 0, 0])
    x, y = plots.downsample(np.arange(10_001), np.arange(10_001) * 2.0, max_points=2000)
    assert len(x) <= 2000 and x[0] == 0 and x[-1] == 10_000
    np.testing.assert_array_equal(y, x * 2.0)
    short = np.arange(5)
    assert plots.downsample(short, short)[0] is short


@pytest.mark.parametrize(
    ("svg", "message"),
    [
        (lambda: plots.scatter_svg([]), "No recommendations yet"),
        (lambda: plots.usage_svg(ARMS, {}, {}), "No recommendations yet"),
        (lambda: plots.usage_svg([], {}, {}), "No recommendations yet"),
        (lambda: plots.values_svg(ARMS, {}, {}), "No ratings yet"),
        (lambda: plots.values_svg([], {}, {}), "No ratings yet"),
        (lambda: plots.rewards_svg(ARMS, []), "No ratings yet"),
        (lambda: plots.epsilon_svg([]), "No recommendations yet"),
    ],
)
def test_empty_input_says_so(svg, message: str) -> None:
    assert message in texts(svg())


def test_non_empty_input_has_no_empty_message() -> None:
    for svg in all_plots():
        assert not {"No ratings yet", "No recommendations yet"} & set(texts(svg))


def test_bandit_plots_label_arms_counts_and_axes() -> None:
    usage = texts(plots.usage_svg(ARMS, SHOWN, RATED))
    assert set(ARMS) <= set(usage) and {"40", "20", "Shown", "Rated"} <= set(usage)
    values = texts(plots.values_svg(ARMS, VALUES, RATED))
    assert {"n=20", "n=5", "n=3", "+0.45", "-0.20", "-1.00"} <= set(values)
    rewards = texts(plots.rewards_svg(ARMS, REWARDS, window=5))
    assert {"Rated recommendations", "Reward", "manhattan, running mean"} <= set(rewards)
    assert {"Recommendations", "Epsilon"} <= set(texts(plots.epsilon_svg([0.5])))


def test_arm_colours_are_fixed_and_unknown_arms_get_a_fallback() -> None:
    assert plots.arm_colour("manhattan") == plots.DISTANCE_COLOURS["manhattan"]
    assert len({plots.arm_colour(arm) for arm in ARMS}) == 3
    assert plots.arm_colour("chebyshev") in plots.FALLBACK_COLOURS
    assert plots.arm_colour("chebyshev") == plots.arm_colour("chebyshev")
    svg = plots.usage_svg(ARMS, SHOWN, RATED).decode()
    assert all(plots.DISTANCE_COLOURS[arm].lower() in svg.lower() for arm in ARMS)
    assert "chebyshev" in texts(plots.values_svg(ARMS, {"chebyshev": 0.5}, {"chebyshev": 2}))


def test_thousands_of_points_are_downsampled() -> None:
    rng = np.random.default_rng(0)
    arms, rewards = rng.integers(0, 3, 20_000), rng.integers(-1, 2, 20_000)
    svg = plots.rewards_svg(ARMS, [(ARMS[arm], int(reward)) for arm, reward in zip(arms, rewards, strict=True)])
    lengths = line_lengths(svg)
    assert len(lengths) == 4 and 1000 < max(lengths) <= plots.MAX_LINE_POINTS
    epsilons = line_lengths(plots.epsilon_svg(list(rng.random(20_000))))
    assert len(epsilons) == 1 and 1000 < epsilons[0] <= plots.MAX_LINE_POINTS
    assert len(svg) < 300_000


def test_same_input_gives_the_same_bytes() -> None:
    assert all_plots() == all_plots()


def test_rendering_from_threads_gives_the_same_bytes() -> None:
    expected = all_plots()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: all_plots(), range(4)))
    assert all(result == expected for result in results)


def test_importing_and_rendering_loads_neither_pyplot_nor_a_gui_backend() -> None:
    code = (
        "import sys, app.plots as p\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
        "p.epsilon_svg([0.5]); p.scatter_svg([p.ScatterPoint('A', 2000, 7.0, p.Image.new('RGB', (2, 3)))])\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
        "gui = ('tkinter', 'PyQt', 'PySide', 'gi', 'wx', 'IPython')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in gui or m.startswith('matplotlib.backends.backend_')"
        " and m.rsplit('_', 1)[-1] not in ('agg', 'svg', 'mixed')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False", "[]"]


def test_two_films_of_one_year_and_about_one_rating_are_labelled_on_either_side() -> None:
    """Their labels were both put on the same side, one over the other: the title under it could not be read."""
    points = [
        ScatterPoint("Country of the Silence", 2013, 5.7),
        ScatterPoint("Woods of the Curse", 2013, 5.6),
        ScatterPoint("The Curse in Tokyo", 1990, 7.5),
    ]
    xlim, ylim = plots.axis_limits([1990, 2013], min_pad=2.0), (0.5, 11.0)
    sides = plots.label_sides(points, xlim, ylim)
    assert sides[0] != sides[1]
    assert sides[2] == plots._label_on_right(points[2], points, xlim, ylim)  # a point alone keeps its side
