"""Kept images against the upload: how far the genres of the images the app keeps (a recommendation's thumbnail, which
a heatmap of that recommendation reads; a job's poster, which comparisons and heatmaps read) are from the genres of
the upload itself, as /recommend predicts them, with the model the app serves. For each catalog poster taken as an
upload: the largest genre difference, in probability points, and the kept image's bytes. The last line is one JSON
object.

    python -m bench.kept_images --model var/runs/<catalog>/model-default --catalog ../shared/data [--posters 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from app.poster_pipeline import THUMBNAIL_QUALITY, decode_query_image, job_image, thumbnail
from catalog import read_catalog
from model.images import decode_poster, poster_array
from model.index import precision_of, served_model

THUMBNAIL_WAYS = {
    f"thumbnail, quality {THUMBNAIL_QUALITY}, full colour (kept)": (THUMBNAIL_QUALITY, True),
    "thumbnail, quality 85, halved colour (before)": (85, False),
}


def genres(model, image) -> np.ndarray:
    return model.predict(poster_array(image, model.input_size)[np.newaxis]).genres[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a model directory (its ONNX export is served)")
    parser.add_argument("--catalog", type=Path, required=True, help="a catalog whose posters are taken as uploads")
    parser.add_argument("--posters", type=int, default=60, help="posters taken, spread over the catalog (default 60)")
    args = parser.parse_args()

    model = served_model(args.model, threads=1)
    resources = SimpleNamespace(model=model)  # what job_image reads of the app's resources
    catalog = read_catalog(args.catalog)
    movies = catalog.movies
    step = max(1, len(movies) // args.posters)
    differences: dict[str, list[float]] = {way: [] for way in (*THUMBNAIL_WAYS, "job poster (PNG)")}
    sizes: dict[str, list[int]] = {way: [] for way in differences}
    for movie in movies[::step][: args.posters]:
        data = catalog.poster_path(movie).read_bytes()
        image = decode_query_image(data, model.input_size, movie.imdb_id, 400)  # as /recommend decodes an upload
        upload = genres(model, image)
        kept = {way: thumbnail(image, quality, full) for way, (quality, full) in THUMBNAIL_WAYS.items()}
        kept["job poster (PNG)"] = job_image(resources, data, movie.imdb_id, 400)
        for way, stored in kept.items():
            again = decode_poster(stored, model.input_size)
            differences[way].append(float(np.abs(genres(model, again) - upload).max()) * 100)
            sizes[way].append(len(stored))
    print(f"{len(sizes[next(iter(sizes))])} posters of {args.catalog}, model {args.model} ({precision_of(model)})")
    summary = {}
    for way, points in differences.items():
        summary[way] = {
            "max_points": round(max(points), 2),
            "median_points": round(statistics.median(points), 2),
            "mean_kb": round(statistics.mean(sizes[way]) / 1000, 1),
        }
        figures = summary[way]
        print(
            f"  {way}: genres within {figures['max_points']} points of the upload's (median "
            f"{figures['median_points']}), {figures['mean_kb']} KB"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
