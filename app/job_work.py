"""What the job worker computes (app/jobs.py runs it): a comparison of 2 to 6 drafts of a poster, and the heatmap of one
genre of one poster (model/explain.py). Each takes the job, its posters (as the web request checked and re-encoded
them) and a progress callback, and returns the job's JSON result and its files (the sheet, the heatmap).

A comparison predicts every draft in one batch and gives, per draft, what /api/recommend gives (genres, decade, year,
rating, whether it looks like a poster, five recommended movies) and, for the genres the designer intends, the drafts
ranked by how strongly they read as each, and how far each draft's genre profile is from the intended one. The five
recommended movies use one fixed distance for all drafts, the bandit's current best (its greedy arm: the highest mean
rating so far, manhattan while nothing is rated), so that the drafts are compared alike; a comparison is no bandit
recommendation: it is not logged, chooses no arm and cannot be voted on."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
from flask import current_app
from PIL import Image, ImageDraw, ImageFont

from app.bandit_state import current_policy
from app.db import get_db
from app.job_store import Job, JobPoster
from app.jobs import JobError
from app.poster_pipeline import JOB_IMAGE_SIDE, evoked_json
from app.resources import Resources, get_resources
from model.artifacts import Prediction
from model.explain import DEFAULT_GRID, explanation_json, occlusion_map, overlay_png
from model.images import PosterImageError, decode_poster, poster_array
from recommend import DISTANCES, decade_mask, recommend

Progress = Callable[[float], None]
Work = Callable[[Job, Sequence[JobPoster], Progress], tuple[dict[str, Any], dict[str, bytes]]]
PROFILE_MEASURE = (
    "mean absolute difference between the draft's genre probabilities and the intended profile (1 for each intended "
    "genre, 0 for the others): 0 reads exactly as intended, 1 as the opposite"
)
INTENDED_COLOUR = "#D55E00"  # Okabe-Ito vermilion: the intended genres' bars
OTHER_COLOUR = "#0072B2"  # Okabe-Ito blue
SHEET_LABEL_CHARS = 30
SHEET_MARGIN = 24
SHEET_COLUMN = 250  # pixels per draft
SHEET_TITLE = 56
SHEET_POSTER = (220, 326)  # the box each draft's poster is fitted into
SHEET_BAR = 22


# ---------------------------------------------------------------- the posters


def poster_image(resources: Resources, poster: JobPoster) -> Image.Image:
    """The poster as an RGB image of at most JOB_IMAGE_SIDE pixels a side: the job's own JPEG, or the catalog
    movie's poster file."""
    if poster.image is not None:
        with Image.open(io.BytesIO(poster.image)) as image:
            return image.convert("RGB")
    movie = resources.catalog.get(poster.imdb_id)
    try:
        image = decode_poster(resources.catalog.poster_path(movie), (JOB_IMAGE_SIDE, JOB_IMAGE_SIDE))
    except (PosterImageError, OSError) as error:
        raise JobError(f"the catalog's poster of {poster.label} cannot be read: {error}") from error
    image.thumbnail((JOB_IMAGE_SIDE, JOB_IMAGE_SIDE))
    return image


def predictions(resources: Resources, posters: Sequence[JobPoster]) -> list[Prediction]:
    """Each poster's prediction: the model's, in one batch, for the posters with an image; the index's for catalog
    movies."""
    size = resources.model.input_size
    drawn = [position for position, poster in enumerate(posters) if poster.image is not None]
    found: dict[int, Prediction] = {}
    if drawn:
        batch = np.stack([poster_array(poster_image(resources, posters[position]), size) for position in drawn])
        predicted = resources.model.predict(batch)
        for row, position in enumerate(drawn):
            found[position] = one_row(predicted, row)
    for position, poster in enumerate(posters):
        if position not in found:
            found[position] = resources.index.prediction([resources.catalog.position(poster.imdb_id)])
    return [found[position] for position in range(len(posters))]


def one_row(prediction: Prediction, row: int) -> Prediction:
    return Prediction(**{name: getattr(prediction, name)[row : row + 1] for name in Prediction.__annotations__})


def poster_json(position: int, poster: JobPoster) -> dict[str, Any]:
    """A job's poster in its result: its position in the job (from 1), kind, label, IMDb id, and whether it is a
    catalog movie (shown with the catalog's poster; else the job keeps its image)."""
    return {
        "position": position,
        "kind": poster.kind,
        "label": poster.label,
        "imdb_id": poster.imdb_id,
        "in_catalog": poster.image is None,
    }


# ---------------------------------------------------------------- a comparison


def greedy_distance(config: Mapping[str, Any]) -> str:
    """The distance the bandit values most now (ties: the first in DISTANCES)."""
    values = current_policy(get_db(), str(config["BANDIT_POLICY"]), config["BANDIT_PARAMS"]).values()
    return max(DISTANCES, key=lambda arm: values.get(arm, 0.0))


def profile_distance(probabilities: np.ndarray, intended: np.ndarray) -> float:
    """How far a genre profile is from the intended one: see PROFILE_MEASURE."""
    return float(np.mean(np.abs(probabilities - intended)))


def compare(job: Job, posters: Sequence[JobPoster], progress: Progress) -> tuple[dict[str, Any], dict[str, bytes]]:
    resources = get_resources()
    model = resources.model
    genres = list(model.genres)
    targets = [genre for genre in job.params.get("targets", []) if genre in genres]
    progress(0.05)
    predicted = predictions(resources, posters)
    progress(0.5)
    distance = greedy_distance(current_app.config)
    intended = np.array([1.0 if genre in targets else 0.0 for genre in genres])
    drafts = []
    for position, (poster, prediction) in enumerate(zip(posters, predicted, strict=True), start=1):
        probabilities = resources.genre_probabilities(prediction.features, prediction.genres)[0]
        own_row = [] if poster.image is not None else [resources.catalog.position(poster.imdb_id)]
        rows = recommend(
            resources.search,
            resources.labels,
            prediction.features[0],
            probabilities,
            distance,
            exclude_rows=own_row,
            era=decade_mask(prediction.decades[0], model.description.decades, resources.decades),
        )
        drafts.append(
            {
                **poster_json(position, poster),
                "genres": {genre: round(float(p), 4) for genre, p in zip(genres, probabilities, strict=True)},
                **evoked_json(prediction, model.description, model.detector),
                "recommendations": [resources.catalog.movies[row].imdb_id for row in rows],
                "profile_distance": round(profile_distance(probabilities, intended), 4) if targets else None,
            }
        )
    progress(0.65)
    result = {
        "distance": distance,
        "targets": targets,
        "genres": genres,
        "posters": drafts,
        "rankings": [
            {
                "genre": genre,
                "order": [
                    {"position": draft["position"], "probability": draft["genres"][genre]}
                    for draft in sorted(drafts, key=lambda draft: -draft["genres"][genre])
                ],
            }
            for genre in targets
        ],
        "closest_to_intended": (
            [draft["position"] for draft in sorted(drafts, key=lambda draft: draft["profile_distance"])]
            if targets
            else []
        ),
        "profile_measure": PROFILE_MEASURE,
    }
    images = [poster_image(resources, poster) for poster in posters]
    progress(0.75)
    return result, {"sheet.png": sheet_png(result, images)}


def short(text: str, limit: int = SHEET_LABEL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def ranking_lines(result: Mapping[str, Any]) -> list[str]:
    """The rankings as lines of text for the sheet."""
    labels = {draft["position"]: f"#{draft['position']} {short(draft['label'], 22)}" for draft in result["posters"]}
    lines = []
    for ranking in result["rankings"]:
        order = "   ".join(
            f"{place}. {labels[entry['position']]} ({entry['probability'] * 100:.0f}%)"
            for place, entry in enumerate(ranking["order"], start=1)
        )
        lines.append(f"Reads most as {ranking['genre']}:   {order}")
    if result["closest_to_intended"]:
        distance_of = {draft["position"]: draft["profile_distance"] for draft in result["posters"]}
        order = "   ".join(
            f"{place}. {labels[position]} ({distance_of[position]:.2f})"
            for place, position in enumerate(result["closest_to_intended"], start=1)
        )
        lines.append(f"Closest to the intended profile ({', '.join(result['targets'])}):   {order}")
    return lines


def draft_lines(draft: Mapping[str, Any]) -> list[str]:
    decade = max(draft["decade"], key=draft["decade"].get)
    rating = draft["rating"]
    lines = [
        f"evokes the {decade} most (expected year about {draft['year']:.0f})",
        f"IMDb rating {rating['expected']:.1f} ({rating['low']:.1f} to {rating['high']:.1f})",
        "looks like a poster" if draft["looks_like_poster"]["value"] else "does NOT look like a poster",
    ]
    if draft["profile_distance"] is not None:
        lines.append(f"distance from intended: {draft['profile_distance']:.2f}")
    return lines


def sheet_png(result: Mapping[str, Any], images: Sequence[Image.Image]) -> bytes:
    """One PNG a designer can send: the drafts side by side (poster, genre bars with the intended genres in
    vermilion, era, rating, whether it looks like a poster, distance from the intended profile), and the rankings
    under them. Drawn with Pillow: matplotlib took 1.3 s for the same sheet of 4 drafts, most of the 1.5 s a
    comparison may take."""
    drafts = result["posters"]
    genres = result["genres"]
    width = SHEET_MARGIN * 2 + SHEET_COLUMN * max(len(drafts), 3)
    title_font, font, small = sheet_font(20), sheet_font(14), sheet_font(12)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rankings = [
        part for line in ranking_lines(result) for part in wrap_text(line, font, width - 2 * SHEET_MARGIN, measure)
    ] or ["No intended genre given: choose one or more to rank the drafts."]
    bars_top = SHEET_TITLE + SHEET_POSTER[1] + 30
    text_top = bars_top + SHEET_BAR * len(genres) + 8
    rankings_top = text_top + 18 * 4 + 16
    sheet = Image.new("RGB", (width, rankings_top + 22 * len(rankings) + SHEET_MARGIN), "white")
    draw = ImageDraw.Draw(sheet)
    targets = ", ".join(result["targets"])
    title = "PosterBench: drafts compared" + (f", intended as {targets}" if targets else "")
    draw.text((SHEET_MARGIN, 14), title, fill="black", font=title_font)
    label_width = max(measure.textlength(genre, font=small) for genre in genres) + 6
    for column, (draft, image) in enumerate(zip(drafts, images, strict=True)):
        left = SHEET_MARGIN + column * SHEET_COLUMN
        poster = image.copy()
        poster.thumbnail(SHEET_POSTER, Image.Resampling.LANCZOS)
        sheet.paste(poster, (left + (SHEET_POSTER[0] - poster.width) // 2, SHEET_TITLE))
        caption = short(f"#{draft['position']} {draft['label']}", 30)
        draw.text((left, SHEET_TITLE + SHEET_POSTER[1] + 6), caption, fill="black", font=font)
        bar_left, bar_width = left + label_width, SHEET_COLUMN - label_width - 56
        for row, genre in enumerate(genres):
            top = bars_top + row * SHEET_BAR
            probability = draft["genres"][genre]
            colour = INTENDED_COLOUR if genre in result["targets"] else OTHER_COLOUR
            draw.text((left, top + 2), genre, fill="#333333", font=small)
            draw.rectangle((bar_left, top + 3, bar_left + bar_width, top + SHEET_BAR - 5), fill="#eeeeee")
            if probability > 0:
                draw.rectangle(
                    (bar_left, top + 3, bar_left + probability * bar_width, top + SHEET_BAR - 5), fill=colour
                )
            draw.text((bar_left + bar_width + 6, top + 2), f"{probability * 100:.0f}%", fill="#333333", font=small)
        middle = bar_left + bar_width / 2  # the 50 % line: a genre is predicted beyond it
        draw.line((middle, bars_top, middle, bars_top + SHEET_BAR * len(genres) - 4), fill="#999999")
        for number, line in enumerate(draft_lines(draft)):
            flagged = line.startswith("does NOT")
            draw.text((left, text_top + 18 * number), line, fill="#b00020" if flagged else "#333333", font=small)
    for number, line in enumerate(rankings):
        draw.text((SHEET_MARGIN, rankings_top + 22 * number), line, fill="black", font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@cache
def sheet_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def wrap_text(text: str, font: Any, width: float, draw: ImageDraw.ImageDraw) -> list[str]:
    """`text` in lines no wider than `width` pixels, broken between words (later lines indented)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word if not lines else f"    {word}")
    return lines


# ---------------------------------------------------------------- a heatmap


def explain(job: Job, posters: Sequence[JobPoster], progress: Progress) -> tuple[dict[str, Any], dict[str, bytes]]:
    resources = get_resources()
    image = poster_image(resources, posters[0])
    progress(0.05)
    explanation = occlusion_map(
        resources.model,
        image,
        str(job.params["genre"]),
        grid=int(job.params.get("grid") or DEFAULT_GRID),
        progress=lambda done, total: progress(0.05 + 0.85 * done / max(total, 1)),
    )
    heatmap = overlay_png(image, explanation)
    return {"poster": poster_json(1, posters[0]), **explanation_json(explanation)}, {"heatmap.png": heatmap}


WORK: dict[str, Work] = {"compare": compare, "explain": explain}
