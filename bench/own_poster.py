"""How often an upload of a catalog poster is recommended its own movie first, as the app answers /api/recommend:
catalog posters drawn at random (seeded), each uploaded through the app (Flask's test client, the served export),
counted. The last line is one JSON object.

    posterbench bench own_poster --catalog ../shared/data --model var/runs/<run>/model-default \
        --index var/runs/<run>/index-default [--posters 30]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import secrets
import tempfile
from pathlib import Path

from bench import at_least


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="the served model directory (its ONNX export)")
    parser.add_argument("--index", type=Path, required=True, help="the catalog's index built with that model")
    parser.add_argument("--posters", type=at_least(1), default=30, help="catalog posters uploaded (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from app import create_app
    from catalog import read_catalog

    catalog = read_catalog(args.catalog, check_posters=False)
    movies = random.Random(args.seed).sample(catalog.movies, min(args.posters, len(catalog.movies)))
    first, shown = [], []
    with tempfile.TemporaryDirectory() as scratch:
        settings = {"TESTING": True, "SECRET_KEY": secrets.token_hex(16), "DATABASE": str(Path(scratch) / "db.sqlite")}
        app = create_app({**settings, "CATALOG": str(args.catalog), "MODEL": str(args.model), "INDEX": str(args.index)})
        client = app.test_client()
        for movie in movies:
            upload = {"image": (io.BytesIO(catalog.poster_path(movie).read_bytes()), Path(movie.poster).name)}
            answer = client.post("/api/recommend", data=upload, headers={"X-Requested-With": "bench"})
            if answer.status_code != 201:
                parser.exit(1, f"{movie.imdb_id}: /api/recommend answered {answer.status_code}: {answer.get_data()}\n")
            recommended = [picked["imdb_id"] for picked in answer.get_json()["recommendations"]]
            first.append(recommended[0] == movie.imdb_id)
            shown.append(movie.imdb_id in recommended)
    missed = [movie.imdb_id for movie, was_first in zip(movies, first, strict=True) if not was_first]
    print(f"{len(movies)} catalog posters of {args.catalog} uploaded to {args.model}'s app (seed {args.seed}):")
    print(f"  own movie first: {sum(first)}; among the five: {sum(shown)}; not first: {', '.join(missed) or 'none'}")
    print(json.dumps({"posters": len(movies), "own_first": sum(first), "own_shown": sum(shown)}))


if __name__ == "__main__":
    main()
