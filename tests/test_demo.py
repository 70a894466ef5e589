"""The main job: training reduces the loss on a learnable task, and the adding-problem
demo (``python -m numlstm demo``) beats the naive baseline by 10x in MSE."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from numlstm.__main__ import main, run_demo
from numlstm.datasets import make_adding_problem
from numlstm.estimators import LSTMRegressor


def test_training_reduces_loss_on_learnable_task():
    X, y = make_adding_problem(n_samples=400, seq_len=20, random_state=0)
    X_test, y_test = make_adding_problem(n_samples=200, seq_len=20, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = LSTMRegressor(hidden_size=16, max_iter=25, random_state=0).fit(X, y)
    curve = np.array(reg.loss_curve_)
    assert curve[-1] < 0.2 * curve[0]
    mse = np.mean((reg.predict(X_test) - y_test) ** 2)
    baseline = np.mean((y.mean() - y_test) ** 2)
    assert mse < baseline / 5


@pytest.mark.slow
def test_demo_beats_baseline_tenfold(capsys):
    result = run_demo()  # the defaults of `python -m numlstm demo`: length 100
    out = capsys.readouterr().out
    assert result["ratio"] >= 10, out
    assert result["mse"] * 10 <= result["baseline_mse"]
    assert 0.14 < result["baseline_mse"] < 0.19  # 1/6, the variance of the target
    epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(epochs) == result["model"].n_iter_ == 10
    assert "naive baseline" in out and "beats the 10x target" in out
    print(f"demo: MSE {result['mse']:.5f} vs baseline {result['baseline_mse']:.5f} "
          f"({result['ratio']:.0f}x), {result['seconds']:.1f} s")


def test_cli_small_run(capsys):
    assert main(["demo", "--seq-len", "10", "--n-train", "100", "--n-test", "50",
                 "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test MSE" in out and "baseline MSE" in out
    assert "Epoch" not in out


def test_cli_rejects_bad_arguments(capsys):
    assert main(["demo", "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    for seed in ("-1", str(2**32 - 1)):
        assert main(["demo", "--seed", seed]) == 2
        assert "--seed must be between 0 and 4294967294" in capsys.readouterr().err
    # Sizes beyond the machine: the estimator's message in one line, no traceback.
    assert main(["demo", "--hidden-size", "1000000", "--n-train", "10", "--n-test", "10",
                 "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("numlstm demo: This fit needs about")
    with pytest.raises(SystemExit):
        main([])
    with pytest.raises(SystemExit):
        main(["train"])


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "numlstm", "demo", "--seq-len", "8", "--n-train", "50",
         "--n-test", "20", "--epochs", "1", "--hidden-size", "4"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Epoch 1:" in proc.stdout and "naive baseline" in proc.stdout
