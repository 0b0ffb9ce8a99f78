"""The int8 export (model/quantization.py) and the choice of what is served (model/onnx_model.py choose_precision):
the trained demo model's int8 export, calibrated on its training and validation posters, passes its check on the
demo catalog's held-out split and is served; a failed, damaged, stale or out-of-date check, or the precision setting,
makes the app serve float32 and say why; `posterbench index` indexes with what the app serves."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path
from types import FrameType

import numpy as np
import onnx
import pytest

from model.images import load_poster
from model.int8_check import Int8Check, Thresholds
from model.onnx_export import ALIGNMENT
from model.onnx_model import (
    INT8_DATA_FILE,
    INT8_EXPORT_FILE,
    INT8_FILE,
    PRECISION_VARIABLE,
    OnnxExportError,
    OnnxGenreModel,
    PrecisionSettingError,
)
from model.split import SPLIT_FILE, Split
from tests.conftest import HeldThread, every_file, first_movies


@pytest.fixture(scope="module")
def demo_preset_model(request: pytest.FixtureRequest, demo_catalog, training_weights: Path) -> Path:
    """The demo preset trained as `make run` trains it (its own 100 px, not the other tests' TEST_INPUT_SIZE), for 15
    epochs on the demo catalog: the int8 check is to pass on what the demo serves."""
    from model.presets import DEMO
    from tests.conftest import trained_model

    return trained_model(request, "demo-preset-model", demo_catalog, replace(DEMO, epochs=15), training_weights)[1]


@pytest.fixture(scope="module")
def int8_built(request: pytest.FixtureRequest, demo_preset_model: Path, demo_catalog) -> Path:
    """The demo preset's model with its float32 and int8 exports, and beside it ("index") the demo catalog's index
    by its float32 export, which the int8 check reuses (built once, as the model is)."""
    from model.index import build_index, model_fingerprint, served_model
    from model.onnx_export import export_onnx
    from model.quantization import export_int8
    from tests.conftest import built_once

    def build(out: Path) -> None:
        shutil.copytree(demo_preset_model, out / "model")
        export_onnx(out / "model")
        float32 = served_model(out / "model", precision="float32")  # as `posterbench index --precision float32`
        build_index(demo_catalog, float32, out / "model", out / "index", progress=False)
        export_int8(out / "model", demo_catalog.directory, index_dir=out / "index", progress=False)

    return built_once(request, "demo-int8", {"model": model_fingerprint(demo_preset_model)}, build)[0] / "model"


@pytest.fixture
def int8_dir(int8_built: Path, tmp_path: Path) -> Path:
    """A copy of the model with both exports, for a test to change."""
    return shutil.copytree(int8_built, tmp_path / "model")


def recorded(directory: Path) -> dict:
    return json.loads((directory / INT8_EXPORT_FILE).read_text())


def test_the_int8_export_passes_its_check_on_the_demo_catalog_and_is_served(
    int8_built: Path, demo_catalog, caplog: pytest.LogCaptureFixture
) -> None:
    described = recorded(int8_built)
    check = described["check"]
    assert check["passed"] is True and check["reasons"] == [], check
    held_out = Split.load(int8_built / SPLIT_FILE).test
    assert check["held_out"] == f"{len(held_out)} posters: the model's held-out test split"
    assert check["macro_roc_auc"]["int8"] >= check["macro_roc_auc"]["float32"] - 0.005
    assert min(check["agreement"].values()) >= 0.98 and min(check["overlap"].values()) >= 4.0
    assert set(check["overlap"]) == set(check["overlap_float32_index"]) == {"manhattan", "euclidean", "cosine"}
    assert described["calibration"]["drawn_from"].startswith("the training and validation splits of")
    assert described["quantization"]["format"] == "QDQ" and described["quantization"]["per_channel"] is True
    with caplog.at_level(logging.INFO, logger="model.onnx_model"):
        model = OnnxGenreModel.load(int8_built)
    assert model.precision == "int8" and model.precision_reason == f"check passed ({check['summary']})"
    assert f"serving int8: check passed ({check['summary']})" in caplog.text
    assert check["summary"].startswith("AUC ") and " %, overlap " in check["summary"]
    float32 = OnnxGenreModel.load(int8_built, precision="float32")
    assert float32.precision == "float32"
    posters = np.stack([load_poster(demo_catalog.poster_path(movie), 100) for movie in demo_catalog.movies[:8]])
    found, expected = model.predict(posters), float32.predict(posters)
    assert found.genres.shape == expected.genres.shape and found.features.shape == expected.features.shape
    assert np.abs(found.genres - expected.genres).mean() < 0.02
    assert not np.array_equal(found.features, expected.features)  # it is another network


def test_the_int8_weights_are_an_aligned_file_beside_a_small_graph(int8_built: Path) -> None:
    graph = onnx.load(str(int8_built / INT8_FILE), load_external_data=False).graph
    assert (int8_built / INT8_FILE).stat().st_size < 256 * 1024
    external = [tensor for tensor in graph.initializer if tensor.data_location == onnx.TensorProto.EXTERNAL]
    for tensor in external:
        entries = {entry.key: entry.value for entry in tensor.external_data}
        assert entries["location"] == INT8_DATA_FILE and int(entries["offset"]) % ALIGNMENT == 0
    kinds = {tensor.data_type for tensor in external}
    assert onnx.TensorProto.INT8 in kinds  # the convolutions' weights
    ops = [node.op_type for node in graph.node]
    assert ops.count("DequantizeLinear") > 13 and ops.count("Gemm") >= 4  # dense layers stay float32
    size = (int8_built / INT8_DATA_FILE).stat().st_size
    assert size < (int8_built / "model.onnx.data").stat().st_size / 3


def test_calibration_posters_come_from_the_training_and_validation_splits(int8_built: Path, demo_catalog) -> None:
    from model.quantization import calibration_ids

    split = Split.load(int8_built / SPLIT_FILE)
    ids, described = calibration_ids(demo_catalog, int8_built, 50)
    assert len(ids) == 50 and not set(ids) & set(split.test) and set(ids) <= set(split.train + split.validation)
    assert described == f"the training and validation splits of {demo_catalog.directory}"
    assert calibration_ids(demo_catalog, int8_built, 50)[0] == ids  # seeded


@pytest.fixture
def int8_app_settings(int8_built: Path, app_settings: dict) -> dict:
    """The test app's settings with the index that the int8 module's own model built (float32): an index of other
    weights is refused."""
    return {**app_settings, "INDEX": str(int8_built.parent / "index")}


def test_a_failing_check_makes_the_app_serve_float32_and_say_why(
    int8_dir: Path, int8_app_settings: dict, caplog: pytest.LogCaptureFixture
) -> None:
    described = recorded(int8_dir)
    check = described["check"]
    passed = Int8Check(
        held_out=check["held_out"],
        searched=check["searched"],
        auc_float32=check["macro_roc_auc"]["float32"],
        auc_int8=check["macro_roc_auc"]["int8"],
        agreement=check["agreement"],
        overlap=check["overlap"],
        overlap_float32_index=check["overlap_float32_index"],
        decision_thresholds=check["decision_thresholds"],
    )
    assert passed.passed and passed.to_json() == check
    impossible = replace(passed, thresholds=Thresholds(auc_drop=-1.0, agreement=1.01, overlap=5.01))
    reasons = impossible.reasons
    assert not impossible.passed and len(reasons) == 1 + 6 + 3
    assert reasons[0].startswith("macro ROC-AUC") and "at most -1 allowed" in reasons[0]
    assert "Action decisions agree with float32's on" in reasons[1] and "(101% needed)" in reasons[1]
    assert reasons[-1].startswith("cosine recommendations share") and "(5.01 needed)" in reasons[-1]
    (int8_dir / INT8_EXPORT_FILE).write_text(json.dumps({**described, "check": impossible.to_json()}))

    from app import create_app

    with caplog.at_level(logging.INFO, logger="model.onnx_model"):
        app = create_app({**int8_app_settings, "MODEL": str(int8_dir)})
    with app.app_context():
        from app.resources import get_resources

        model = get_resources().model
    assert model.precision == "float32" and model.precision_reason == "int8 check failed: " + "; ".join(reasons)
    (record,) = [record for record in caplog.records if record.name == "model.onnx_model"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "serving float32: int8 check failed: " + "; ".join(reasons)
    forced = OnnxGenreModel.load(int8_dir, precision="int8")  # the setting serves it anyway, and says so
    assert forced.precision == "int8" and forced.precision_reason.startswith(
        "the precision setting asks for int8, although its check failed: macro ROC-AUC"
    )


def test_the_precision_setting_chooses_float32(
    int8_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(PRECISION_VARIABLE, "float32")
    with caplog.at_level(logging.INFO, logger="model.onnx_model"):
        model = OnnxGenreModel.load(int8_dir)
    assert model.precision == "float32"
    assert "serving float32: the precision setting asks for float32 (POSTERBENCH_PRECISION)" in caplog.text
    assert OnnxGenreModel.load(int8_dir, precision="auto").precision == "int8"  # the parameter wins
    monkeypatch.setenv(PRECISION_VARIABLE, "fp16")
    with pytest.raises(PrecisionSettingError, match="must be one of auto, float32, int8, not 'fp16'"):
        OnnxGenreModel.load(int8_dir)


def test_the_app_setting_chooses_the_precision_and_healthz_names_it(
    int8_dir: Path, int8_app_settings: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """PRECISION (POSTERBENCH_PRECISION) reaches the model; the model's index, computed by its float32 export, gets a
    warning when the app serves int8; a setting that is no precision stops the app with what it may be."""
    app_settings = int8_app_settings
    from app import create_app

    with caplog.at_level(logging.WARNING, logger="app.resources"):
        served = create_app({**app_settings, "MODEL": str(int8_dir)})
    assert served.test_client().get("/healthz").get_json()["precision"] == "int8"
    (warning,) = [record.getMessage() for record in caplog.records if record.name == "app.resources"]
    assert "computed by the float32 model and the app serves int8" in warning and "make index" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.resources"):
        chosen = create_app({**app_settings, "MODEL": str(int8_dir), "PRECISION": "float32"})
    assert chosen.test_client().get("/healthz").get_json()["precision"] == "float32"
    assert not [record for record in caplog.records if record.name == "app.resources"]
    with pytest.raises(RuntimeError, match="must be one of auto, float32, int8, not 'bf16'"):
        create_app({**app_settings, "MODEL": str(int8_dir), "PRECISION": "bf16"})


@pytest.mark.parametrize(
    "damage",
    ["truncated data", "missing json", "json not JSON", "float32 exported again", "thresholds tuned again"],
)
def test_an_unusable_int8_export_gives_float32_with_the_reason(
    damage: str, int8_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    described = recorded(int8_dir)
    if damage == "truncated data":
        with (int8_dir / INT8_DATA_FILE).open("r+b") as handle:
            handle.truncate(1000)
        expected = f"the int8 export is unusable: {int8_dir / INT8_DATA_FILE} is damaged (1,000 bytes"
    elif damage == "missing json":
        (int8_dir / INT8_EXPORT_FILE).unlink()  # a quantization stopped half-way, or never run
        expected = "no int8 export beside it (make onnx writes one)"
    elif damage == "json not JSON":
        (int8_dir / INT8_EXPORT_FILE).write_text("{not json")
        expected = f"the int8 export is unusable: {int8_dir / INT8_EXPORT_FILE} is damaged"
    elif damage == "float32 exported again":
        described["source"]["model.onnx"]["sha256"] = "0" * 64  # as if model.onnx had been written since
        (int8_dir / INT8_EXPORT_FILE).write_text(json.dumps(described))
        expected = "was quantized from another float32 export than"
    else:
        described["check"]["decision_thresholds"][0] += 0.1
        (int8_dir / INT8_EXPORT_FILE).write_text(json.dumps(described))
        expected = "int8 check is out of date: it was made with other decision thresholds than model.json holds"
    with caplog.at_level(logging.INFO, logger="model.onnx_model"):
        model = OnnxGenreModel.load(int8_dir)
    assert model.precision == "float32" and expected in model.precision_reason, model.precision_reason
    assert f"serving float32: {model.precision_reason}" in caplog.text
    if damage != "missing json":
        assert "posterbench export-onnx" in model.precision_reason or "make onnx" in model.precision_reason
    if damage in ("truncated data", "json not JSON"):
        with pytest.raises(OnnxExportError, match="is damaged"):
            OnnxGenreModel.load(int8_dir, precision="int8")  # asked for, it must be whole


def test_an_int8_export_with_dense_layers_too_big_to_pre_pack_is_not_served(int8_built: Path, int8_dir: Path) -> None:
    served = OnnxGenreModel.load(int8_built)
    assert served.session.get_session_options().get_session_config_entry("session.disable_prepacking") == "0"
    described = recorded(int8_dir)
    described["dense_float32_bytes"] = 820 * 2**20  # the paper preset's
    (int8_dir / INT8_EXPORT_FILE).write_text(json.dumps(described))
    model = OnnxGenreModel.load(int8_dir)
    assert model.precision == "float32" and model.precision_reason.startswith("int8 check passed (AUC")
    assert "its 820 MiB of float32 dense weights are more than a worker may copy to pre-pack (64 MiB)" in (
        model.precision_reason
    )
    forced = OnnxGenreModel.load(int8_dir, precision="int8")
    assert forced.precision == "int8"
    assert forced.session.get_session_options().get_session_config_entry("session.disable_prepacking") == "1"


def test_posterbench_index_runs_the_served_int8_model(int8_built: Path, demo_catalog_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from model.__main__ import cli
    from model.index import FeatureIndex, served_model

    catalog_dir = first_movies(demo_catalog_dir, 16, tmp_path / "catalog")  # what it indexes with, not how many
    out = tmp_path / "index"
    arguments = ["index", "--catalog", str(catalog_dir), "--model", str(int8_built), "--out", str(out)]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    assert f"into {out} (ONNX Runtime, int8)" in result.output
    built, float32 = FeatureIndex.load(out), FeatureIndex.load(int8_built.parent / "index")  # the whole catalog's
    assert built.precision == "int8" and float32.precision == "float32"
    assert json.loads((out / "index.json").read_text())["precision"] == "int8"
    rows = len(built.imdb_ids)
    assert rows == 16 and built.imdb_ids == float32.imdb_ids[:rows]  # the same movies in the same order
    assert built.features.shape == float32.features[:rows].shape
    assert np.abs(built.probabilities - float32.probabilities[:rows]).mean() < 0.02  # int8 moves them a little
    assert served_model(int8_built, precision="float32").precision == "float32"  # --precision float32 indexes so
    result = CliRunner().invoke(cli, ["export-onnx", "--model", str(int8_built), "--int8-only"])
    assert result.exit_code != 0 and "--int8-only needs --catalog" in result.output


def test_the_inference_benchmark_times_float32_against_int8_in_one_run(
    int8_built: Path, demo_catalog_dir, tmp_path: Path
) -> None:
    from tests.test_bench_scripts import run_script

    catalog_dir = first_movies(demo_catalog_dir, 8, tmp_path / "catalog")  # its batches: these 8 posters
    output = run_script(
        *("bench/inference.py", "--model", str(int8_built), "--catalog", str(catalog_dir), "--runtime", "onnx"),
        *("--precision", "float32,int8", "--runs", "2", "--batches", "2"),
    )
    figures = json.loads(output.strip().splitlines()[-1])
    for name in ("float32", "int8"):
        assert figures[name]["one_median_ms"] > 0 and figures[name]["batch_per_poster_ms"] > 0
        assert figures[name]["memory"]["served"] == name and figures[name]["memory"]["rss_mib"] > 50
    assert set(figures["ratio_float32_over_int8"]) == {"one_median_ms", "one_p95_ms", "batch_per_poster_ms"}
    assert figures["int8_check"]["passed"] is True and "int8 check (passed) on" in output
    assert figures["convolution_gmacs"] == round(vgg16_convolution_macs(100, 100) / 1e9, 3)  # the demo's 100 px
    for name in ("float32", "int8"):
        rate = figures["convolution_gmacs"] * 1000 / figures[name]["batch_per_poster_ms"]
        # the script rounds its rate to 0.1 G and the figure here starts from G multiply-adds rounded to 0.001 G
        assert figures[name]["gmacs_per_second"] == pytest.approx(rate, rel=5e-4, abs=0.06)


def vgg16_convolution_macs(width: int, height: int) -> int:
    """VGG-16's 13 3 x 3 convolutions ("same" padding, each block's pooling halving the image, rounding down)."""
    blocks = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
    macs, channels = 0, 3
    for convolutions, filters in blocks:
        for _ in range(convolutions):
            macs += width * height * filters * channels * 9
            channels = filters
        width, height = width // 2, height // 2
    return macs


def test_the_load_benchmark_takes_several_precisions(demo_catalog_dir, capsys: pytest.CaptureFixture) -> None:
    from bench.load import main

    common = ["--catalog", str(demo_catalog_dir), "--model", "m", "--index", "i"]
    for arguments, message in (
        ([*common, "--precision", "float32,fp16"], "--precision takes auto, float32, int8"),
        ([*common, "--precision", "int8,int8"], "--precision takes auto, float32, int8"),
        ([*common, "--url", "http://127.0.0.1:1", "--precision", "float32,int8"], "not with --url nor --baseline"),
    ):
        with pytest.raises(SystemExit):
            main(arguments)
        assert message in capsys.readouterr().err


def unscorable_catalog(demo_catalog, model_dir: Path, out: Path, genres: str) -> Path:
    """30 movies of the demo catalog outside the model's test split, as another catalog's (other IMDb ids, so that
    the check falls back to every movie with a target genre), each tagged `genres` alone, with their posters."""
    import csv

    test = set(Split.load(model_dir / SPLIT_FILE).test)
    source = demo_catalog.directory
    with (source / "movies.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["imdb_id"] not in test][:30]
    (out / "posters").mkdir(parents=True)
    with (out / "movies.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            shutil.copy(source / row["poster"], out / row["poster"])
            writer.writerow({**row, "imdb_id": "tt98" + row["imdb_id"][4:], "genres": genres})
    return out


@pytest.mark.parametrize(
    ("genres", "expected"),
    [
        ("Documentary", "nor other posters to check on (every movie with a target genre"),
        ("Action", "no genre is both present and absent among its 30 held-out posters"),
    ],
)
def test_a_catalog_the_check_cannot_score_is_refused_and_the_previous_export_kept(
    genres: str, expected: str, int8_dir: Path, demo_catalog, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from model.__main__ import cli

    bad = unscorable_catalog(demo_catalog, int8_dir, tmp_path / "bad", genres)
    before = every_file(int8_dir)
    arguments = ["export-onnx", "--model", str(int8_dir), "--catalog", str(bad), "--int8-only"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1, result.output
    line = result.output.splitlines()[-1]  # after the posters' check's progress bar
    assert result.output.count("Error:") == 1 and "Traceback" not in result.output
    assert line.startswith(f"Error: the int8 export cannot be checked on {bad}: ") and expected in line, line
    assert every_file(int8_dir) == before
    assert OnnxGenreModel.load(int8_dir).precision == "int8"


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_an_int8_export_stopped_half_way_leaves_the_previous_one_as_it_was(
    failure: type[BaseException], int8_dir: Path, demo_catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after the new files are quantized, before the check ends (Ctrl-C, or any error)."""
    import model.quantization as quantization

    def stopped(*args: object, **kwargs: object) -> None:
        raise failure("stopped")

    monkeypatch.setattr(quantization, "predict_catalog", stopped)
    before = every_file(int8_dir)
    with pytest.raises(failure, match="stopped"):
        quantization.export_int8(int8_dir, demo_catalog.directory, calibration_posters=1, progress=False)
    assert every_file(int8_dir) == before  # no partial file left, the record and both int8 files unchanged
    assert OnnxGenreModel.load(int8_dir).precision == "int8"


def test_a_new_int8_export_replaces_the_files_a_worker_maps_by_renaming(
    int8_built: Path, int8_dir: Path, demo_catalog
) -> None:
    import mmap

    from model.quantization import export_int8

    data = int8_dir / INT8_DATA_FILE
    old_bytes, old_inode = data.read_bytes(), data.stat().st_ino
    with data.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        check = export_int8(
            int8_dir,
            demo_catalog.directory,
            calibration_posters=32,  # one batch: the files' replacement is what is tested, not the calibration's size
            index_dir=int8_built.parent / "index",
            progress=False,
        )
        assert mapped[:] == old_bytes  # what a running worker mapped was not rewritten in place
    assert check.passed and data.stat().st_ino != old_inode
    assert sorted(path.name for path in int8_dir.iterdir()) == sorted(path.name for path in int8_built.iterdir())
    assert recorded(int8_dir)["check"] == check.to_json()
    assert OnnxGenreModel.load(int8_dir).precision == "int8"  # the record names the files now beside it


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ("Bogus", "Error: ONNX Runtime's quantizer does not quantize Bogus: the operator types it quantizes are "),
        ("Conv,conv,LSTM", "Error: ONNX Runtime's quantizer does not quantize conv, LSTM: "),
        (",", "Error: no operator type to quantize is named: name some of "),
        ("Resize", "model.onnx has no Resize node, so nothing would be quantized: it has "),
    ],
)
def test_int8_ops_that_quantize_nothing_are_refused(ops: str, expected: str, int8_dir: Path, demo_catalog_dir) -> None:
    from click.testing import CliRunner

    from model.__main__ import cli

    before = every_file(int8_dir)
    arguments = ["export-onnx", "--model", str(int8_dir), "--catalog", str(demo_catalog_dir), "--int8-only"]
    result = CliRunner().invoke(cli, [*arguments, "--int8-ops", ops])
    assert result.exit_code == 1, result.output
    line = result.output.splitlines()[-1]  # after the posters' check's progress bar
    assert result.output.count("Error:") == 1 and "Traceback" not in result.output
    assert expected in line, line
    if "operator types it quantizes are" in line or "name some of" in line:
        assert "Conv, " in line and "MaxPool, " in line and "Relu, " in line  # the allowed ones are named
    assert every_file(int8_dir) == before


def test_export_onnx_refuses_int8_options_before_it_exports_float32_again(
    int8_dir: Path, demo_catalog_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown --int8-ops was refused only after the float32 export had been written again (minutes on a real
    model); --int8 typed without --catalog ended with exit 0."""
    from click.testing import CliRunner

    from model.__main__ import cli
    from tests.conftest import the_work_must_not_start

    the_work_must_not_start(monkeypatch, "model.__main__.import_tensorflow", "model.onnx_export.export_onnx")
    before = every_file(int8_dir)
    arguments = ["export-onnx", "--model", str(int8_dir), "--catalog", str(demo_catalog_dir), "--int8-ops", "Bogus"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1 and "exported" not in result.output, result.output
    assert result.output.splitlines()[-1].startswith("Error: ONNX Runtime's quantizer does not quantize Bogus")
    result = CliRunner().invoke(cli, ["export-onnx", "--model", str(int8_dir), "--int8"])
    assert result.exit_code == 2 and "--int8 needs --catalog" in result.output, result.output
    assert every_file(int8_dir) == before


def test_an_index_the_int8_check_cannot_use_is_said_not_to_be_used(
    int8_dir: Path, demo_catalog_dir, tmp_path: Path
) -> None:
    """--index naming a missing index, or one another model built, was passed over without a word."""
    from click.testing import CliRunner

    from model.__main__ import cli

    (tmp_path / "not-an-index").mkdir()
    arguments = ["export-onnx", "--model", str(int8_dir), "--catalog", str(demo_catalog_dir), "--int8-only"]
    result = CliRunner().invoke(
        cli, [*arguments, "--index", str(tmp_path / "not-an-index"), "--calibration-posters", "8"]
    )
    assert result.exit_code == 0, result.output
    assert f"--index {tmp_path / 'not-an-index'} not used: it has no index.json;" in result.output
    assert "passed: served" in result.output or "failed: float32 is served" in result.output


def test_a_node_to_leave_in_float32_that_the_graph_lacks_is_refused(int8_dir: Path, demo_catalog_dir) -> None:
    """quantize_static ignores a name in nodes_to_exclude that no node has: a misspelt --int8-exclude quantized the
    node it meant to keep, without a word."""
    from click.testing import CliRunner

    from model.__main__ import cli

    before = every_file(int8_dir)
    arguments = ["export-onnx", "--model", str(int8_dir), "--catalog", str(demo_catalog_dir), "--int8-only"]
    result = CliRunner().invoke(cli, [*arguments, "--int8-exclude", "block5_conv9"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.splitlines()[-1]
    assert "model.onnx has no node called block5_conv9 to leave in float32 (its nodes are named like " in line, line
    assert every_file(int8_dir) == before


def test_ctrl_c_while_the_files_are_renamed_waits_for_the_last_rename() -> None:
    import signal

    from model.onnx_export import signals_deferred

    # as at a terminal: a pytest-xdist worker, like a background job, starts with SIGINT ignored, which the block keeps
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done = []
        with pytest.raises(KeyboardInterrupt), signals_deferred():
            signal.raise_signal(signal.SIGINT)
            done.append("renamed")  # not stopped half-way
        assert done == ["renamed"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


# -- a worker loading while `make onnx` replaces the export ----------------------------------------------------------
# OnnxGenreModel.load runs for real in a thread held at one point (a profile hook, as a debugger's breakpoint) while
# the test renames a file in, so that the interleaving is the same at every run.


def opens_an_onnxruntime_session(frame: FrameType, event: str, arg: object) -> bool:
    """onnxruntime.InferenceSession.__init__: OnnxGenreModel.load has chosen and checked the files to serve."""
    code = frame.f_code
    return event == "call" and code.co_name == "__init__" and "onnxruntime_inference_collection" in code.co_filename


def rename_in_a_graph_of_other_weights(int8_dir: Path) -> None:
    """What `make onnx` leaves between two of its renames: a new model.int8.onnx in place, whose weights are laid out
    otherwise (here its largest weight is said to lie past the end of the data file), beside the old
    model.int8.onnx.data and the old record."""
    graph = onnx.load(str(int8_dir / INT8_FILE), load_external_data=False)
    largest = max(graph.graph.initializer, key=lambda tensor: int(external(tensor).get("length", 0)))
    data_size = (int8_dir / external(largest)["location"]).stat().st_size
    for entry in largest.external_data:
        if entry.key == "offset":
            entry.value = str(data_size)
    staged = int8_dir / f".{INT8_FILE}.new"
    onnx.save(graph, str(staged))
    os.replace(staged, int8_dir / INT8_FILE)


def external(tensor: onnx.TensorProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in tensor.external_data}


def test_a_worker_loading_while_the_int8_export_is_replaced_serves_files_that_belong_together(
    int8_built: Path, int8_dir: Path, demo_catalog
) -> None:
    """The worker checks the export's files against their record; then, before onnxruntime opens them, a new graph
    is renamed in beside the old weights: the worker must neither fail to start (gunicorn halts the whole server
    when a worker cannot boot) nor build its session from the new graph and the old weights. It loads again and
    serves what the directory then holds: here float32, since the int8 files no longer match their record."""
    posters = np.stack([load_poster(demo_catalog.poster_path(movie), 100) for movie in demo_catalog.movies[:4]])
    worker = HeldThread(lambda: OnnxGenreModel.load(int8_dir), opens_an_onnxruntime_session)
    worker.start()
    worker.wait_held()  # the export's files are checked and int8 is chosen
    rename_in_a_graph_of_other_weights(int8_dir)
    worker.release()
    assert worker.error is None, f"the worker failed to load the model: {worker.error!r}"
    loaded = worker.result
    assert isinstance(loaded, OnnxGenreModel)
    assert loaded.precision == "float32", loaded.precision_reason
    float32 = OnnxGenreModel.load(int8_built, precision="float32")
    assert np.array_equal(loaded.predict(posters).features, float32.predict(posters).features)
