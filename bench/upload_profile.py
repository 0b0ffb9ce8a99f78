"""Where an upload's time goes: posts catalog posters to POST /recommend through the Flask test client, one at a
time, under cProfile, and prints the mean time per upload of each stage (their cumulative time: a stage includes what
it calls). The last line is one JSON object {stage: milliseconds}.

    python -m bench.upload_profile --catalog DIR --model MODEL_DIR --index INDEX_DIR [--clems CLEMS_DIR]
        [--runtime auto|keras|onnx]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.load import add_served_arguments, model_for_runtime
from catalog import read_catalog

# Stage -> (file, function) of the code that does it, as cProfile names them.
STAGES = {
    "upload (whole request)": ("app/views.py", "recommend_view"),
    "decode and resize": ("model/images.py", "decode_poster"),
    "network": ("app/poster_pipeline.py", "predict"),
    "thumbnail": ("app/poster_pipeline.py", "thumbnail"),
    "CLEMS": ("app/resources.py", "genre_probabilities"),
    "nearest movies": ("recommend/candidates.py", "recommend"),
    "bandit from the tables": ("app/bandit_state.py", "current_policy"),
    "database write": ("app/recommendations.py", "record_recommendation"),
}
MODEL_FILES = ("model/onnx_model.py", "model/artifacts.py")  # where `predict` lives, for either runtime


def stage_times(stats: pstats.Stats, uploads: int) -> dict[str, float]:
    """Mean cumulative milliseconds per upload of each of STAGES."""
    found = dict.fromkeys(STAGES, 0.0)
    for (file, _line, function), (_calls, _primitive, _total, cumulative, _callers) in stats.stats.items():
        for stage, (stage_file, stage_function) in STAGES.items():
            files = MODEL_FILES if stage == "network" else (stage_file,)
            if function == stage_function and any(file.endswith(name) for name in files):
                found[stage] += cumulative * 1000 / uploads
    return {stage: round(milliseconds, 1) for stage, milliseconds in found.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_served_arguments(parser)
    parser.add_argument("--uploads", type=int, default=40, help="posters uploaded under the profiler (default 40)")
    args = parser.parse_args(argv)

    from app import create_app

    catalog = read_catalog(args.catalog)
    chosen = np.random.default_rng(0).choice(len(catalog), size=min(args.uploads, len(catalog)), replace=False)
    posters = [catalog.poster_path(catalog.movies[row]).read_bytes() for row in chosen]
    with tempfile.TemporaryDirectory(prefix="posterbench-profile-") as state:
        model = model_for_runtime(args.model, args.runtime, Path(state))
        settings = {"CATALOG": args.catalog, "MODEL": model, "INDEX": args.index, "CLEMS": args.clems}
        app = create_app({**settings, "TESTING": True, "SECRET_KEY": "profile", "DATABASE": f"{state}/p.sqlite"})
        client = app.test_client()
        with client.session_transaction() as session:
            session["csrf_token"] = "profile"

        def upload(poster: bytes) -> None:
            answer = client.post("/recommend", data={"csrf_token": "profile", "poster": (io.BytesIO(poster), "p.jpg")})
            if answer.status_code != 303:
                sys.exit(f"an upload was answered {answer.status_code}, not 303")

        for poster in posters[:5]:  # warm-up
            upload(poster)
        start = time.perf_counter()
        for poster in posters:
            upload(poster)
        unprofiled = (time.perf_counter() - start) * 1000 / len(posters)
        profiler = cProfile.Profile()
        profiler.enable()
        for poster in posters:
            upload(poster)
        profiler.disable()
    times = stage_times(pstats.Stats(profiler), len(posters))
    print(f"{len(posters)} uploads, {unprofiled:.1f} ms each without the profiler; under it, per upload:")
    for stage, milliseconds in times.items():
        print(f"  {stage:<24} {milliseconds:7.1f} ms")
    print(json.dumps({"unprofiled_ms": round(unprofiled, 1), **times}))


if __name__ == "__main__":
    main()
