"""Smoke test of ``benchmarks/real_data.py --quick``: it runs and writes well-formed JSON.

The quick run fits with ``max_iter=5``, so its scores say nothing about the defaults;
this test checks the benchmark's plumbing (data loading, baselines, JSON fields, table,
plot), not whether the defaults meet the issue's bars (``docs/real_data.rst`` reports the
full measurements).
"""

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("sktime.datasets",
                    reason="the data sets ship with sktime (pip install numlstm[examples])")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "real_data.py")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real_data")
    out, image = folder / "results.json", folder / "plot.png"
    completed = subprocess.run(
        [sys.executable, SCRIPT, "--quick", "--out", str(out), "--plot", str(image)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    with open(out) as f:
        return json.load(f), completed.stdout, image


def test_quick_run_prints_the_environment_and_the_table(quick_run):
    _, stdout, image = quick_run
    assert "CPU: " in stdout and "load average" in stdout
    assert "bars met" in stdout
    assert image.exists() and image.stat().st_size > 0


def test_quick_run_json_environment(quick_run):
    data, _, _ = quick_run
    environment = data["environment"]
    for key in ("cpu", "logical_cores", "date", "numlstm", "numba", "sktime", "threads",
                "seeds", "load_before", "load_after", "estimator_params"):
        assert key in environment
    assert environment["quick"] is True
    assert len(environment["seeds"]) == 2


def test_quick_run_json_results(quick_run):
    data, _, _ = quick_run
    results = {r["name"]: r for r in data["results"]}
    assert set(results) == {"UnitTest", "Covid3Month"}
    for result in results.values():
        assert result["n_train"] > 0 and result["n_test"] > 0 and result["n_channels"] >= 1
        assert 1 <= result["length_min"] <= result["length_max"]
        assert set(result["numlstm"]) == {str(t) for t in data["environment"]["threads"]}
        for lstm in result["numlstm"].values():
            assert len(lstm["fits"]) == 2
            assert lstm["fit_seconds_mean"] > 0
            for key in ("mean_met", "worst_met", "met", "fit_under_limit"):
                assert isinstance(lstm["bars"][key], bool)
            if result["task"] == "classification":
                assert 0.0 <= lstm["worst"] <= lstm["mean"] <= lstm["best"] <= 1.0
            else:
                assert 0.0 <= lstm["best"] <= lstm["mean"] <= lstm["worst"]
                assert math.isfinite(lstm["r2_mean"])
            assert lstm["sd"] >= 0.0

    unit_test = results["UnitTest"]
    assert unit_test["task"] == "classification"
    assert (unit_test["n_train"], unit_test["n_test"], unit_test["length"]) == (20, 22, "24")
    assert 0.5 <= unit_test["baselines"]["knn"]["score"] <= 1.0
    assert 0.0 <= unit_test["baselines"]["mlp"]["mean"] <= 1.0
    assert len(unit_test["baselines"]["mlp"]["scores"]) == 2

    covid = results["Covid3Month"]
    assert covid["task"] == "regression" and covid["metric"] == "rmse"
    for baseline in ("knn", "ridge"):
        assert covid["baselines"][baseline]["score"] >= 0.0
        assert math.isfinite(covid["baselines"][baseline]["r2"])


def test_from_json_rerenders_the_table(quick_run, tmp_path):
    data, _, _ = quick_run
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(data))
    completed = subprocess.run([sys.executable, SCRIPT, "--from-json", str(path)], cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "UnitTest" in completed.stdout and "Covid3Month" in completed.stdout


def test_ablation_script_scores_variants_on_held_out_training_data(tmp_path):
    out = tmp_path / "ablation.json"
    script = os.path.join(ROOT, "benchmarks", "real_data_ablation.py")
    completed = subprocess.run(
        [sys.executable, script, "--datasets", "UnitTest", "Covid3Month", "--seeds", "2",
         "--variants", "last:max_iter=3,patch_length=1", "patched:max_iter=3,_steps=8",
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "mean rank" in completed.stdout and "CPU: " in completed.stdout
    with open(out) as f:
        data = json.load(f)
    assert data["evaluate"] == "validation"
    runs = data["results"]
    assert len(runs) == 2 * 2 * 2  # data sets x variants x seeds
    patched = [r for r in runs if r["variant"] == "patched"]
    assert {r["params"]["patch_length"] for r in patched} == {3, 11}  # 24 and 84 steps
    for r in runs:
        assert r["score"] <= 1.0 and math.isfinite(r["score"])
