"""The web app's plots (recommendations scatter, bandit usage, values, rewards and epsilon) as SVG bytes,
drawn on `matplotlib.figure.Figure` objects in memory, without pyplot's global state."""

from __future__ import annotations

import io
import math
import textwrap
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, StrMethodFormatter
from numpy.typing import NDArray
from PIL import Image

from recommend import DISTANCES

# Okabe-Ito colours: distinguishable with colour-blindness. Each distance (bandit arm) gets one in DISTANCES' order;
# an unknown arm gets a fallback chosen by its name.
OKABE_ITO: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#999999")
DISTANCE_COLOURS: dict[str, str] = dict(zip(DISTANCES, OKABE_ITO, strict=False))
FALLBACK_COLOURS: tuple[str, ...] = OKABE_ITO[len(DISTANCE_COLOURS) :]
MAX_LINE_POINTS = 2000
TITLE_CHARS = 28
THUMBNAIL_POINTS = 40.0  # drawn height of a poster thumbnail; SVG units are points
THUMBNAIL_PIXELS = round(2 * THUMBNAIL_POINTS)  # its height in pixels: twice the drawn size, sharp yet small in the SVG
MARKED_POINTS = 60
NO_RATINGS = "No ratings yet"
NO_RECOMMENDATIONS = "No recommendations yet"
SIZE = (6.4, 4.0)
SVG_RC = {"svg.hashsalt": "posterbench", "svg.fonttype": "none"}
# rc_context swaps global rcParams, so renders take turns; building the figures needs no lock.
_RENDER_LOCK = threading.Lock()


@dataclass(frozen=True)
class ScatterPoint:
    title: str
    year: int | None
    rating: float | None
    thumbnail: Image.Image | None = field(default=None, compare=False, repr=False)


def arm_colour(arm: str) -> str:
    """The arm's fixed colour; an unknown arm gets a fallback that depends only on its name."""
    return DISTANCE_COLOURS.get(arm) or FALLBACK_COLOURS[zlib.crc32(arm.encode()) % len(FALLBACK_COLOURS)]


def shorten(title: str, limit: int = TITLE_CHARS) -> str:
    """`title` cut to at most `limit` characters, ending with an ellipsis when cut."""
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def axis_limits(values: Iterable[float], pad_fraction: float = 0.08, min_pad: float = 1.0) -> tuple[float, float]:
    """Finite limits around the finite `values`, padded by a fraction of their span but at least `min_pad`."""
    finite = [float(v) for v in values if _known(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    pad = max(min_pad, (high - low) * pad_fraction)
    return low - pad, high + pad


def moving_average(values: Sequence[float] | NDArray[np.floating], window: int) -> NDArray[np.float64]:
    """Trailing mean of the last `window` values at each position (fewer at the start)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    data = np.asarray(values, dtype=np.float64)
    sums = np.concatenate(([0.0], np.cumsum(data)))
    stop = np.arange(1, len(data) + 1)
    start = np.maximum(stop - window, 0)
    return (sums[stop] - sums[start]) / (stop - start)


def running_mean(values: Sequence[float] | NDArray[np.floating]) -> NDArray[np.float64]:
    """Mean of all values so far at each position."""
    data = np.asarray(values, dtype=np.float64)
    return np.cumsum(data) / np.arange(1, len(data) + 1)


def downsample(x: NDArray, y: NDArray, max_points: int = MAX_LINE_POINTS) -> tuple[NDArray, NDArray]:
    """At most `max_points` evenly spaced points of a line, always keeping its first and last."""
    if len(x) <= max_points:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(int))
    return x[keep], y[keep]


def _figure(title: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def _render(figure: Figure, title: str) -> bytes:
    """The figure as deterministic SVG with text kept as text and `title` as its <title>."""
    buffer = io.BytesIO()
    with _RENDER_LOCK, mpl.rc_context(SVG_RC):
        figure.savefig(buffer, format="svg", metadata={"Title": title, "Date": None})
    return buffer.getvalue()


def _empty(axes: Axes, message: str) -> None:
    box = {"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": "0.8"}
    axes.text(0.5, 0.5, message, transform=axes.transAxes, ha="center", va="center", fontsize=12, color="0.4", bbox=box)


def _arm_order(arms: Sequence[str], *seen: Iterable[str]) -> list[str]:
    """`arms`, then any other arm the data mentions, in first-seen order."""
    order = list(dict.fromkeys(arms))
    for names in seen:
        order += [name for name in dict.fromkeys(names) if name not in order]
    return order


def _reward_axis(axes: Axes) -> None:
    axes.set_ylim(-1, 1)
    axes.axhline(0, color="0.3", linewidth=0.8)


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _plottable(point: ScatterPoint) -> bool:
    return _known(point.year) and _known(point.rating)


def _omission(point: ScatterPoint) -> str:
    missing = [name for name, value in (("year", point.year), ("rating", point.rating)) if not _known(value)]
    return f"{shorten(point.title)} (no {' or '.join(missing)})"


def _fraction(value: float, limits: tuple[float, float]) -> float:
    return (value - limits[0]) / (limits[1] - limits[0])


def _label_on_right(
    point: ScatterPoint, plotted: Sequence[ScatterPoint], xlim: tuple[float, float], ylim: tuple[float, float]
) -> bool:
    """Whether the label fits right of the point, before the axes' edge or a point at about its height (else left,
    else the side with more room). Labels are about 5 points a character and the axes about 85% of the figure."""
    x, y = _fraction(point.year, xlim), _fraction(point.rating, ylim)
    room_left, room_right = x, 1 - x
    for other in plotted:
        gap = _fraction(other.year, xlim) - x
        if abs(_fraction(other.rating, ylim) - y) < 0.1:
            room_right = min(room_right, gap) if gap > 0 else room_right
            room_left = min(room_left, -gap) if gap < 0 else room_left
    needed = (20 + 5 * len(shorten(point.title))) / (SIZE[0] * 72 * 0.85)
    if room_right >= needed or room_left >= needed:
        return room_right >= needed
    return room_right >= room_left


def label_sides(plotted: Sequence[ScatterPoint], xlim: tuple[float, float], ylim: tuple[float, float]) -> list[bool]:
    """Each point's label side (True: right), as _label_on_right chooses it, except that a point at about the same
    place as one labelled before it (two films of one year and about one rating) takes the other side, where the
    two labels would otherwise be drawn over each other."""
    sides: list[bool] = []
    for number, point in enumerate(plotted):
        on_right = _label_on_right(point, plotted, xlim, ylim)
        x, y = _fraction(point.year, xlim), _fraction(point.rating, ylim)
        for other, side in zip(plotted[:number], sides, strict=True):
            near = abs(_fraction(other.year, xlim) - x) < 0.05 and abs(_fraction(other.rating, ylim) - y) < 0.1
            if near and side == on_right:
                on_right = not on_right
                break
        sides.append(on_right)
    return sides


def _draw_thumbnail(axes: Axes, point: ScatterPoint) -> float:
    """The poster at the point; returns its drawn half width in points."""
    image = point.thumbnail.convert("RGBA")
    height = THUMBNAIL_PIXELS
    width = max(1, round(image.width * height / image.height))
    if image.size != (width, height):  # the app's thumbnails come at this height already
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(image)
    bbox = {"edgecolor": "0.4", "linewidth": 0.5}
    axes.add_artist(
        AnnotationBbox(
            OffsetImage(pixels, zoom=THUMBNAIL_POINTS / height), (point.year, point.rating), pad=0.1, bboxprops=bbox
        )
    )
    return THUMBNAIL_POINTS * width / height / 2


def _label_point(axes: Axes, point: ScatterPoint, on_right: bool, top: bool) -> None:
    """Title beside the point, or beside its thumbnail, on the given side; below the point when it is at the top."""
    if point.thumbnail is not None:
        gap = _draw_thumbnail(axes, point) + 5
        offset, vertical = (gap if on_right else -gap, 0), "center"
    else:
        offset, vertical = (6 if on_right else -6, -6 if top else 6), "top" if top else "bottom"
    axes.annotate(
        shorten(point.title),
        (point.year, point.rating),
        xytext=offset,
        textcoords="offset points",
        ha="left" if on_right else "right",
        va=vertical,
        fontsize=8,
        zorder=4,
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
    )


def scatter_svg(points: Sequence[ScatterPoint]) -> bytes:
    """Year against IMDb rating of the recommendations, labelled, with their posters when given."""
    title = "Year and IMDb rating of the recommendations"
    figure, axes = _figure(title)
    plotted = [point for point in points if _plottable(point)]
    xlim = axis_limits((point.year for point in plotted), min_pad=2.0)
    low, high = axis_limits((point.rating for point in plotted), pad_fraction=0.0, min_pad=0.5)
    ylim = (min(low, 0.5), max(high, 11.0))  # room above 10 for a poster
    axes.set(xlim=xlim, ylim=ylim, xlabel="Year", ylabel="IMDb rating", yticks=range(1, 11))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.xaxis.set_major_formatter(StrMethodFormatter("{x:.0f}"))
    axes.grid(alpha=0.3)
    if plotted:
        axes.scatter([p.year for p in plotted], [p.rating for p in plotted], color="0.25", zorder=3)
        for point, on_right in zip(plotted, label_sides(plotted, xlim, ylim), strict=True):
            _label_point(axes, point, on_right, _fraction(point.rating, ylim) > 0.85)
    else:
        _empty(axes, "Nothing to plot" if points else NO_RECOMMENDATIONS)
        axes.set_xticks([])
    omitted = [_omission(point) for point in points if not _plottable(point)]
    if omitted:
        note = textwrap.fill("Not plotted: " + ", ".join(omitted), width=110)
        figure.supxlabel(note, x=0.01, ha="left", fontsize=7, color="0.3")
    return _render(figure, title)


def usage_svg(arms: Sequence[str], shown: Mapping[str, int], rated: Mapping[str, int]) -> bytes:
    """Per arm, how many recommendations used it and how many of those were rated."""
    title = "How often each distance was used"
    figure, axes = _figure(title)
    order = _arm_order(arms, shown, rated)
    positions = np.arange(len(order))
    axes.set_xticks(positions, order)
    axes.set_ylabel("Recommendations")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    counts = [shown.get(arm, 0) for arm in order], [rated.get(arm, 0) for arm in order]
    if not any(counts[0]) and not any(counts[1]):
        _empty(axes, NO_RECOMMENDATIONS)
        axes.set(xlim=(-0.5, max(len(order), 1) - 0.5), ylim=(0, 1))
        return _render(figure, title)
    colours = [arm_colour(arm) for arm in order]
    used = axes.bar(positions - 0.2, counts[0], 0.4, color=colours, edgecolor=colours)
    voted = axes.bar(positions + 0.2, counts[1], 0.4, color="white", edgecolor=colours, hatch="///")
    for bars in (used, voted):
        axes.bar_label(bars, padding=2, fontsize=8)
    axes.margins(y=0.12)
    legend = [
        Patch(facecolor="0.5", label="Shown"),
        Patch(facecolor="white", edgecolor="0.5", hatch="///", label="Rated"),
    ]
    axes.legend(handles=legend, loc="best", fontsize=8)
    return _render(figure, title)


def _value_label(axes: Axes, position: int, value: float) -> None:
    """The value at the bar's end, outside it, or inside it (in white) where there is no room outside."""
    inside = abs(value) > 0.8
    outward = (1 if value >= 0 else -1) * (-1 if inside else 1)
    axes.annotate(
        f"{value:+.2f}",
        (position, value),
        xytext=(0, 3 * outward),
        textcoords="offset points",
        ha="center",
        va="bottom" if outward > 0 else "top",
        fontsize=8,
        color="white" if inside else "black",
    )


def values_svg(arms: Sequence[str], values: Mapping[str, float], rated: Mapping[str, int]) -> bytes:
    """Each arm's current value (its mean reward, -1 to 1), with how many ratings it rests on."""
    title = "Current value of each distance (mean reward)"
    figure, axes = _figure(title)
    order = _arm_order(arms, values, rated)
    heights = [float(np.clip(values.get(arm, 0.0), -1, 1)) for arm in order]
    axes.bar(range(len(order)), heights, 0.6, color=[arm_colour(arm) for arm in order])
    for position, (arm, height) in enumerate(zip(order, heights, strict=True)):
        if rated.get(arm, 0):
            _value_label(axes, position, height)
    axes.set_xticks(range(len(order)), [f"{arm}\nn={rated.get(arm, 0)}" for arm in order])
    axes.set_xlim(-0.5, max(len(order), 1) - 0.5)
    axes.set_ylabel("Value (mean reward)")
    _reward_axis(axes)
    if not any(rated.get(arm, 0) for arm in order):
        _empty(axes, NO_RATINGS)
    return _render(figure, title)


def _line_axes(axes: Axes, count: int, xlabel: str, ylabel: str) -> None:
    """Integer x axis over `count` items (no ticks when there are none), and a light grid."""
    axes.set(xlabel=xlabel, ylabel=ylabel)
    if count:
        axes.set_xlim(0.5, max(count, 2) + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        axes.set_xticks([])
    axes.grid(alpha=0.3)


def rewards_svg(arms: Sequence[str], rewards: Sequence[tuple[str, int]], window: int = 20) -> bytes:
    """Rewards in rating order: a trailing moving average of all of them, and each arm's running mean."""
    title = "Rewards over time"
    figure, axes = _figure(title)
    arm_of = np.array([arm for arm, _ in rewards], dtype=object)
    reward = np.array([value for _, value in rewards], dtype=np.float64)
    x = np.arange(1, len(rewards) + 1)
    if len(rewards):
        line_x, line_y = downsample(x, moving_average(reward, window))
        axes.plot(
            line_x, line_y, color="0.2", linewidth=1.8, label=f"All, moving average of {window}", **_markers(len(x))
        )
        for arm in _arm_order(arms, arm_of):
            mine = arm_of == arm
            if mine.any():
                arm_x, arm_y = downsample(x[mine], running_mean(reward[mine]))
                axes.plot(
                    arm_x,
                    arm_y,
                    color=arm_colour(arm),
                    linewidth=1,
                    zorder=3,
                    label=f"{arm}, running mean",
                    **_markers(len(arm_x)),
                )
        axes.legend(loc="lower right", fontsize=8)
    else:
        _empty(axes, NO_RATINGS)
    _line_axes(axes, len(rewards), "Rated recommendations", "Reward")
    _reward_axis(axes)
    return _render(figure, title)


def _markers(n_points: int) -> dict[str, object]:
    """Dots on short lines, so that a line of one point is still seen."""
    return {"marker": "o", "markersize": 3} if n_points <= MARKED_POINTS else {}


def epsilon_svg(epsilons: Sequence[float]) -> bytes:
    """The exploration rate epsilon at each recommendation, in order."""
    title = "Exploration rate (epsilon) over time"
    figure, axes = _figure(title)
    if len(epsilons):
        x, y = downsample(np.arange(1, len(epsilons) + 1), np.asarray(epsilons, dtype=np.float64))
        axes.plot(x, y, color="0.2", linewidth=1.5, **_markers(len(x)))
    else:
        _empty(axes, NO_RECOMMENDATIONS)
    _line_axes(axes, len(epsilons), "Recommendations", "Epsilon")
    axes.set_ylim(0, 1.04)  # room for epsilon = 1 (the first pick)
    return _render(figure, title)
