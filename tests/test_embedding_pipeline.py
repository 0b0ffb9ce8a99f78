"""CLEMS as a pipeline stage: fit beside a trained model from its index, then one report holding the
model, model + CLEMS and the baselines."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from embedding.__main__ import cli


def test_fit_then_evaluate_model_and_clems_in_one_report(demo_catalog_dir, trained, index_dir, tmp_path) -> None:
    runner = CliRunner()
    clems_dir = tmp_path / "clems-hamming"
    common = ["--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(index_dir)]
    fitted = runner.invoke(cli, ["fit", *common, "--out", str(clems_dir), "--trees", "20"])
    assert fitted.exit_code == 0, fitted.output
    assert (clems_dir / "clems.json").is_file() and (clems_dir / "clems.npz").is_file()

    evaluated = runner.invoke(cli, ["evaluate", *common, "--clems", str(clems_dir)])
    assert evaluated.exit_code == 0, evaluated.output
    summary = json.loads(evaluated.output.strip().splitlines()[-1])
    assert set(summary) == {
        "model",
        "served",
        "model+clems",
        "most_frequent",
        "all_six",
    }  # CLEMS reads the served features
    assert summary["model+clems"]["n"] == summary["model"]["n"] == len(trained[0].split.test)
    # it learnt something: it ranks genres far better than a constant (AUC 0.5) and beats the best constant answer
    assert summary["model+clems"]["macro_auc"] > 0.7
    assert summary["model+clems"]["micro_f1"] > summary["most_frequent"]["micro_f1"]
    assert "model+clems, hamming cost" in evaluated.output
    assert Path(clems_dir / "evaluation-demo.json").is_file()


def test_evaluate_names_a_missing_index(demo_catalog_dir, trained, tmp_path) -> None:
    result = CliRunner().invoke(
        cli,
        ["fit", "--catalog", str(demo_catalog_dir), "--model", str(trained[1]), "--index", str(tmp_path)]
        + ["--out", str(tmp_path / "c")],
    )
    assert result.exit_code != 0 and "build the index first" in result.output
