"""The command line on bad input: an output path that holds something else, or that cannot be written, is refused
before any work and left as it was (by `posterbench` and `python -m model|embedding` alike, in one line), `train`
checks its arguments before it imports TensorFlow, numbers out of range are usage errors, a damaged catalog file,
weights file or split is named in one line, damaged posters are all named before a long job starts, a failed export
keeps the export there was, and a worker whose queue is down stops at once. Each case once destroyed data, ended in a
traceback, or looped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from posterbench import cli
from tests.conftest import first_movies, the_work_must_not_start


def run(*arguments: str):
    return CliRunner().invoke(cli.main, [str(argument) for argument in arguments])


def test_demo_catalog_never_replaces_a_file_or_another_kind_of_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    for target, message in ((a_file, "is not a directory"), (other, "holds other files and no movies.csv")):
        for force in ([], ["--force"]):  # without --force, it said "use --force", which then refused it
            refused = run("demo-catalog", target, "--movies", "1", *force)
            assert refused.exit_code == 1 and message in refused.output and "Traceback" not in refused.output
    assert a_file.read_text() == "root:x:0:0\n" and (other / "keep.txt").read_text() == "mine"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes", "passwd"]  # nothing staged left behind
    unwritable = run("demo-catalog", "/proc/posterbench-demo", "--movies", "1")  # a raw errno about a temporary name
    assert unwritable.exit_code == 1 and unwritable.output.strip() == (
        "Error: cannot write /proc/posterbench-demo: /proc is not writable (No such file or directory)"
    )
    catalog = tmp_path / "catalog"
    catalog.mkdir()  # empty: nothing to lose, so no --force needed
    assert run("demo-catalog", catalog, "--movies", "1").exit_code == 0  # few movies: their number is not tested
    again = run("demo-catalog", catalog, "--movies", "2")
    assert again.exit_code == 1 and f"{catalog} already holds a catalog; use --force to replace it" in again.output
    assert run("demo-catalog", catalog, "--movies", "2", "--force").exit_code == 0  # a catalog: replaced
    assert len((catalog / "movies.csv").read_text().splitlines()) == 3  # the header and the second one's 2 movies


def test_numbers_out_of_range_are_usage_errors(tmp_path: Path) -> None:
    for arguments in (
        ("demo-catalog", tmp_path / "d", "--movies", "0"),
        ("demo-catalog", tmp_path / "d", "--seed", "-1"),
        ("train", "--catalog", tmp_path, "--out", tmp_path / "m", "--epochs", "0"),
        ("train", "--catalog", tmp_path, "--out", tmp_path / "m", "--seed", str(2**32)),  # NumPy's seeds: 32 bits
        (
            "embed",
            "fit",
            "--catalog",
            tmp_path,
            "--model",
            tmp_path,
            "--index",
            tmp_path,
            "--out",
            tmp_path,
            "--trees",
            "0",
        ),
        ("export-onnx", "--model", tmp_path, "--check-posters", "-1"),
        ("export-onnx", "--model", tmp_path, "--int8-only", "--catalog", tmp_path, "--calibration-posters", "0"),
    ):
        answer = run(*arguments)
        assert answer.exit_code == 2 and "Invalid value" in answer.output and "Traceback" not in answer.output, (
            arguments
        )
    assert not (tmp_path / "d").exists()


def test_index_refuses_to_write_over_its_own_catalog_or_model_before_it_starts(
    demo_catalog_dir: Path, onnx_model_dir: Path, tmp_path: Path
) -> None:
    catalog = first_movies(demo_catalog_dir, 4, tmp_path / "catalog")  # the index written at the end: 4 posters
    model = shutil.copytree(onnx_model_dir, tmp_path / "model")
    for out, marker in ((catalog, "movies.csv"), (model, "model.json")):
        before = sorted(path.name for path in out.iterdir())
        refused = run("index", "--catalog", catalog, "--model", model, "--out", out)
        assert refused.exit_code == 1 and "holds other files and no index.json" in refused.output, refused.output
        assert sorted(path.name for path in out.iterdir()) == before and (out / marker).is_file()
    assert run("index", "--catalog", catalog, "--model", model, "--out", tmp_path / "index").exit_code == 0


def test_an_export_with_a_missing_catalog_keeps_the_export_there_was(onnx_model_dir: Path, tmp_path: Path) -> None:
    model = shutil.copytree(onnx_model_dir, tmp_path / "model")
    export = (model / "model.onnx.json").read_bytes()
    refused = run("export-onnx", "--model", model, "--catalog", tmp_path / "nowhere", "--no-int8")
    assert refused.exit_code == 1 and "does not exist" in refused.output
    assert (model / "model.onnx.json").read_bytes() == export


def test_a_catalog_file_that_is_not_utf8_csv_is_named_in_one_line(tmp_path: Path) -> None:
    header = "imdb_id,title,year,genres,rating,votes,poster\n"
    latin1 = tmp_path / "latin1"
    latin1.mkdir()
    (latin1 / "movies.csv").write_bytes((header + "tt0000001,Café,1990,Drama,7,10,p.jpg\n").encode("latin-1"))
    answer = run("check", latin1)
    assert answer.exit_code == 1 and "movies.csv: not UTF-8 text" in answer.output and "Traceback" not in answer.output
    huge = tmp_path / "huge"
    huge.mkdir()
    (huge / "movies.csv").write_text(header + "tt0000001," + "x" * 200_000 + ",1990,Drama,7,10,p.jpg\n")
    assert "not a CSV row we can read" in run("check", huge).output
    with_bom = tmp_path / "bom"
    with_bom.mkdir()
    Image.new("RGB", (20, 30), "navy").save(with_bom / "p.jpg")
    (with_bom / "movies.csv").write_text("\ufeff" + header + "tt0000001,Film,1990,Drama,7,10,p.jpg\n")
    answer = run("check", with_bom)
    assert answer.exit_code == 0, answer.output  # a byte-order mark (Excel's UTF-8) is no part of the first name


def test_damaged_posters_are_all_named_before_any_long_job_starts(
    small_catalog, onnx_model_dir: Path, tmp_path: Path
) -> None:
    """`check` decodes every poster as training and the app read them; `train`, `index` and the int8 export do the
    same before their first pass, so a catalog's damaged posters are named together, not the first one minutes in."""
    catalog = shutil.copytree(small_catalog.directory, tmp_path / "catalog")
    posters = sorted((catalog / "posters").iterdir())
    posters[1].write_bytes(posters[1].read_bytes()[:300])  # a cut download
    posters[4].write_text("<html>not found</html>")  # an error page saved as the poster
    damaged = {str(posters[1]): "is damaged or truncated", str(posters[4]): "is not an image we can read"}
    model = shutil.copytree(onnx_model_dir, tmp_path / "model")
    for arguments in (
        ("check", catalog),
        ("train", "--catalog", catalog, "--out", tmp_path / "m", "--weights", tmp_path / "unused.h5"),
        ("index", "--catalog", catalog, "--model", model, "--out", tmp_path / "index"),
        ("export-onnx", "--model", model, "--catalog", catalog, "--int8-only"),
    ):
        answer = run(*arguments)
        assert answer.exit_code == 1 and f"2 of {len(posters)} posters cannot be read" in answer.output, answer.output
        assert all(f"{path} {reason}" in answer.output for path, reason in damaged.items()), answer.output
        assert "Traceback" not in answer.output
    assert not (tmp_path / "m").exists() and not (tmp_path / "index").exists()
    assert sorted(path.name for path in model.iterdir()) == sorted(path.name for path in onnx_model_dir.iterdir())
    for path in damaged:
        shutil.copyfile(small_catalog.directory / "posters" / Path(path).name, path)
    answer = run("check", catalog)
    assert answer.exit_code == 0 and "every poster decodes" in answer.output


def test_init_db_wants_a_url_that_is_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url, code, message in (("not a url", 2, "is no URL"), ("mysql://x@y/z", 1, "unsupported database URL")):
        answer = run("init-db", "--database-url", url)
        assert answer.exit_code == code and message in answer.output and "Traceback" not in answer.output
    assert list(tmp_path.iterdir()) == []  # no SQLite file named "not a url"


def test_training_from_a_damaged_weights_file_says_so(small_catalog, tmp_path: Path) -> None:
    answer = run("train", "--catalog", small_catalog.directory, "--out", tmp_path / "m", "--weights", tmp_path)
    assert answer.exit_code == 1  # it said the directory "does not exist"
    assert f"VGG-16 weights file {tmp_path} is a directory, not a file" in answer.output
    truncated = tmp_path / "vgg16_notop.h5"
    truncated.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 1000)
    answer = run("train", "--catalog", small_catalog.directory, "--out", tmp_path / "m", "--weights", truncated)
    assert answer.exit_code == 1 and f"VGG-16 weights file {truncated} cannot be read" in answer.output
    assert "Traceback" not in answer.output and not (tmp_path / "m").exists()
    assert not (tmp_path / ".m.work").exists()  # nor the work directory a resumed run would read


def test_a_model_without_its_split_is_named_not_a_traceback(
    demo_catalog_dir: Path, onnx_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tune-thresholds refuses a model without its split, or a catalog without the split's validation movies, before
    TensorFlow loads (it loaded first, seconds before the refusal)."""
    the_work_must_not_start(monkeypatch, "model.__main__.import_tensorflow", "model.evaluation.GenreModel.load")
    answer = run("tune-thresholds", "--catalog", demo_catalog_dir, "--model", tmp_path / "absent")
    assert answer.exit_code == 1 and "model.json is missing: train a model first" in answer.output  # not split.json
    model = shutil.copytree(onnx_model_dir, tmp_path / "model")
    split = json.loads((model / "split.json").read_text())
    (model / "split.json").unlink()
    answer = run("tune-thresholds", "--catalog", demo_catalog_dir, "--model", model)
    assert answer.exit_code == 1 and "split.json is missing: train the model again" in answer.output
    (model / "split.json").write_text("{}")
    answer = run("tune-thresholds", "--catalog", demo_catalog_dir, "--model", model)
    assert answer.exit_code == 1 and "split.json is damaged" in answer.output
    other = first_movies(demo_catalog_dir, 8, tmp_path / "other")
    (model / "split.json").write_text(json.dumps(split))
    answer = run("tune-thresholds", "--catalog", other, "--model", model)
    assert answer.exit_code == 1 and f"does not hold the validation split of {model}" in answer.output
    (model / "split.json").write_text(json.dumps({**split, "validation": []}))
    answer = run("tune-thresholds", "--catalog", demo_catalog_dir, "--model", model)
    assert answer.exit_code == 1 and f"does not hold the validation split of {model}: it has none" in answer.output


def test_a_worker_whose_queue_cannot_be_reached_stops_at_once(
    demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """A Redis broker that is down made the worker log a traceback ten times a second, forever."""
    for setting in (*cli.SERVED_SETTINGS, "job_threads", "job_nice", "job_workers"):  # the worker sets its own
        monkeypatch.setenv(f"POSTERBENCH_{setting.upper()}", "")  # process's settings: put back after the test
        monkeypatch.delenv(f"POSTERBENCH_{setting.upper()}")
    monkeypatch.setenv("POSTERBENCH_SECRET_KEY", "test")
    monkeypatch.setenv("POSTERBENCH_JOBS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("POSTERBENCH_JOB_QUEUE_WAIT_SECONDS", "1")  # tries at 0 and 0.5 s, then stops
    served = ["--catalog", demo_catalog_dir, "--model", onnx_model_dir, "--index", index_dir]
    answer = run("worker", "--no-restart", *served, "--database", tmp_path / "d.sqlite")
    assert answer.exit_code == 1 and "the job queue at redis://127.0.0.1:1/0 cannot be reached" in answer.output


def test_scrape_and_replica_options_out_of_range_are_one_line(tmp_path: Path) -> None:
    from tools.replica.__main__ import main as replica_main

    answer = run("scrape", "--out", tmp_path / "c", "--base-url", "notaurl")
    assert answer.exit_code == 1 and "base_url" in answer.output and "Traceback" not in answer.output
    answer = CliRunner().invoke(replica_main, [str(tmp_path / "r"), "--port", "99999"])
    assert answer.exit_code == 2 and "Invalid value for '--port'" in answer.output


def test_a_damaged_clems_directory_and_wrong_recommend_eval_paths_are_one_line(
    demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path, tmp_path: Path
) -> None:
    from embedding.clems import CLEMS

    clems = tmp_path / "clems"
    clems.mkdir()
    (clems / "clems.json").write_text('{"estimator": "CLEMS", "format": 1}')
    (clems / "clems.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a whole CLEMS directory"):
        CLEMS.load(clems)
    served = ["--catalog", demo_catalog_dir, "--model", onnx_model_dir, "--index", index_dir]
    answer = run("embed", "evaluate", *served, "--clems", clems)
    assert answer.exit_code == 1 and "not a whole CLEMS directory" in answer.output
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "bench.recommend_quality", *map(str, served), "--clems", str(tmp_path / "nowhere")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr  # a usage error (2, with the usage) before
    assert done.stderr.startswith("Error: ") and "not a whole CLEMS directory" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_index_in_int8_refuses_a_model_without_an_export(demo_catalog_dir: Path, trained, tmp_path: Path) -> None:
    """It indexed with the Keras model, in float32, and said nothing."""
    keras_only = shutil.copytree(trained[1], tmp_path / "model")
    answer = run(
        "index",
        "--catalog",
        demo_catalog_dir,
        "--model",
        keras_only,
        "--out",
        tmp_path / "index",
        "--precision",
        "int8",
    )
    assert answer.exit_code == 1 and "has no ONNX export to quantize" in answer.output
    assert not (tmp_path / "index").exists()


def test_what_the_file_system_refuses_is_one_line(monkeypatch) -> None:
    """Any stage: an OSError that the stage has no message of its own for is its message, not a traceback."""

    def refused(*arguments, **options):
        raise PermissionError(13, "Permission denied", "/srv/unwritable/catalog")

    monkeypatch.setattr(cli.main.commands["check"], "callback", refused)
    answer = run("check", "anywhere")
    assert (
        answer.exit_code == 1
        and answer.output.strip() == "Error: [Errno 13] Permission denied: '/srv/unwritable/catalog'"
    )


ROOT = Path(__file__).resolve().parents[1]


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def unwritable_outputs(tmp_path: Path) -> list[tuple[Path, Path, str]]:
    """(output, the directory to name, why) for outputs that cannot be written, also as root: below a regular file;
    and, for other users only (root writes anywhere), below a read-only directory."""
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n")
    cases = [(a_file / "out", a_file, "is not a directory"), (a_file / "deeper" / "out", a_file, "is not a directory")]
    if os.geteuid() != 0:
        read_only = tmp_path / "read-only"
        read_only.mkdir()
        read_only.chmod(0o555)
        cases.append((read_only / "out", read_only, "is not writable (Permission denied)"))
    return cases


def test_index_and_embed_fit_refuse_an_unwritable_output_before_their_work(
    demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """`index` ran the whole pass over the catalog (minutes on the real one) before it made its staging directory,
    then failed naming that temporary directory ('ro/.i.ideehf8m.partial'); `embed fit` fitted its forests first."""
    the_work_must_not_start(
        monkeypatch,
        "model.__main__.checked_catalog",
        "model.index.predict_catalog",
        "embedding.clems.CLEMS.fit",
    )
    served = ["--catalog", demo_catalog_dir, "--model", onnx_model_dir]
    for out, directory, why in unwritable_outputs(tmp_path):
        for arguments in (("index", *served), ("embed", "fit", *served, "--index", index_dir)):
            answer = run(*arguments, "--out", out)
            assert answer.exit_code == 1, answer.output
            assert one_line(answer.output) == f"Error: cannot write {out}: {directory} {why}"
    assert {path.name for path in tmp_path.iterdir()} <= {"a-file", "read-only"}  # nothing staged left behind


def test_evaluate_refuses_a_report_it_cannot_write_before_evaluating(
    demo_catalog_dir: Path, onnx_model_dir: Path, index_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """The report was written last: a directory or an unwritable path as --out lost the whole evaluation, with an
    errno as its message."""
    the_work_must_not_start(monkeypatch, "model.evaluation.evaluate", "embedding.pipeline.evaluate_with_clems")
    served = ["--catalog", demo_catalog_dir, "--model", onnx_model_dir]
    refusals = [(tmp_path, f"cannot write the report to {tmp_path}: it is a directory; name a file")]
    refusals += [
        (out, f"cannot write {out}: {directory} {why}") for out, directory, why in unwritable_outputs(tmp_path)
    ]
    for out, message in refusals:
        for arguments in (("evaluate", *served), ("embed", "evaluate", *served, "--index", index_dir, "--clems", out)):
            answer = run(*arguments, "--out", out)
            assert answer.exit_code == 1 and one_line(answer.output) == f"Error: {message}", answer.output


def test_python_m_model_says_what_the_file_system_refuses_in_one_line(
    demo_catalog_dir: Path, onnx_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """`python -m model` and `python -m embedding` still work (README): an OSError ended them in a traceback, where
    `posterbench` said it in one line."""
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n")
    served = ["--catalog", str(demo_catalog_dir), "--model", str(onnx_model_dir)]
    for arguments, message in (
        (["index", *served, "--out", str(a_file / "index")], f"cannot write {a_file / 'index'}: {a_file} is not a"),
        (["evaluate", *served, "--out", str(tmp_path)], f"cannot write the report to {tmp_path}: it is a directory"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "model", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 1 and one_line(done.stderr).startswith(f"Error: {message}"), done.stderr

    from embedding.__main__ import cli as embedding_cli
    from model.__main__ import cli as model_cli

    def refused(*arguments, **options):
        raise PermissionError(13, "Permission denied", "/srv/unwritable/report.json")

    for group, arguments in (
        (model_cli, ["tune-thresholds", "--catalog", "c", "--model", "m"]),
        (embedding_cli, ["fit", "--catalog", "c", "--model", "m", "--index", "i", "--out", "o"]),
    ):
        monkeypatch.setattr(group.commands[arguments[0]], "callback", refused)
        answer = CliRunner().invoke(group, arguments)
        assert answer.exit_code == 1, answer.output
        assert one_line(answer.output) == "Error: [Errno 13] Permission denied: '/srv/unwritable/report.json'"


@pytest.mark.parametrize("case", ["no catalog", "unwritable output", "no weights file"])
def test_train_checks_its_arguments_before_importing_tensorflow(case: str, small_catalog, tmp_path: Path):
    """Importing TensorFlow took 5 s of CPU and printed absl's and oneDNN's log lines before `train` found that its
    catalog did not exist. (The small catalog: `train` decodes every poster before it looks for the weights.)"""
    a_file = tmp_path / "a-file"
    a_file.write_text("mine\n")
    catalog, out, weights = small_catalog.directory, tmp_path / "model", "imagenet"
    if case == "no catalog":
        catalog, message = tmp_path / "nowhere", "catalog directory does not exist"
    elif case == "unwritable output":
        out, message = a_file / "model", f"cannot write {a_file / 'model'}: {a_file} is not a directory"
    else:
        weights, message = str(tmp_path / "missing.h5"), "missing.h5 does not exist"
    arguments = ["train", "--catalog", str(catalog), "--out", str(out), "--weights", weights]
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)))\n"
        "from posterbench.cli import main\n"
        f"main({arguments!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout.strip().splitlines()[-1] == "[]", (done.stdout, done.stderr)
    error = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and message in error[0] and "Traceback" not in done.stderr, done.stderr
    assert "absl" not in done.stderr and "oneDNN" not in done.stderr
    assert not out.exists()


def test_tensorflow_start_up_log_stays_off_stderr(monkeypatch) -> None:
    """TensorFlow 2.19 and later log "oneDNN custom operations are on" (twice) and absl's "All log messages before
    absl::InitializeLog()" line on import, whatever TF_CPP_MIN_LOG_LEVEL says; the model commands keep them off
    stderr, and keep what else is written there."""
    from model.command_checks import without_start_up_log

    code = (
        "from model.command_checks import import_tensorflow\n"
        "import_tensorflow()\n"
        "import tensorflow\n"
        "print(tensorflow.constant(1).numpy())\n"
    )
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # the commands' own default: 2
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr
    assert "absl" not in done.stderr and "oneDNN" not in done.stderr, done.stderr
    logged = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796655876.861406    5092 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1796655876.914066    5092 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
        "2025-09-17 14:44:05.157831: W external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda\n"
        "/usr/lib/python3/site-packages/x.py:3: UserWarning: kept\n"
        "  warnings.warn(message)\n"
        "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
    )
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    assert without_start_up_log(logged) == (
        "/usr/lib/python3/site-packages/x.py:3: UserWarning: kept\n"
        "  warnings.warn(message)\n"
        "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
    )


def test_hints_name_the_posterbench_commands(demo_catalog_dir: Path, onnx_model_dir: Path, tmp_path: Path) -> None:
    answer = run("evaluate", "--catalog", demo_catalog_dir, "--model", tmp_path / "no-model")
    assert answer.exit_code == 1 and "train a model first (make train / posterbench train)" in answer.output
    served = ["--catalog", demo_catalog_dir, "--model", onnx_model_dir, "--index", tmp_path / "no-index"]
    answer = run("embed", "fit", *served, "--out", tmp_path / "clems")
    assert answer.exit_code == 1 and "build the index first (make index / posterbench index)" in answer.output
    assert "python -m" not in answer.output
