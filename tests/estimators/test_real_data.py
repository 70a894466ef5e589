"""LSTMClassifier on real data (UCR archive splits bundled with sktime, no download).

On ItalyPowerDemand and GunPoint, with default settings apart from ``hidden_size`` and
``random_state``, the classifier should

* beat the published 1-NN Euclidean test accuracy (UCR archive 2018 summary: 95.53% and
  91.33%; recomputed here as a check that the data are the archive's splits),
* do at least as well as scikit-learn's default ``MLPClassifier`` on the flattened
  series (no worse than two standard errors of the difference of the means), and
* fit in under a minute on two cores.

Accuracies are means over several seeds, for the LSTM and the MLP alike: one lucky or
unlucky initialisation decides nothing. The LSTM's accuracy also moves with the number
of Numba threads (they change float32 rounding, which long training amplifies), so the
seed counts below are what keeps the checks stable across thread counts; see
``docs/real_data.rst`` for the measurements.

The estimator runs with its defaults: only ``hidden_size`` and ``random_state`` are set.
"""

import functools
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier

from numlstm import LSTMClassifier

sktime_datasets = pytest.importorskip(
    "sktime.datasets",
    reason="the UCR data sets ship with sktime (pip install numlstm[examples])")

pytestmark = pytest.mark.slow

#: Published 1-NN Euclidean test accuracy (UCR time series archive, 2018 summary).
PUBLISHED_1NN = {"ItalyPowerDemand": 0.9553, "GunPoint": 0.9133}
LOADERS = {"ItalyPowerDemand": "load_italy_power_demand", "GunPoint": "load_gunpoint"}
HIDDEN_SIZE = {"ItalyPowerDemand": 64, "GunPoint": 64}
#: ItalyPowerDemand's margin over 1-NN is small (about 0.5 point), so it gets more seeds.
SEEDS = {"ItalyPowerDemand": tuple(range(10)), "GunPoint": (0, 1, 2)}
FIT_SECONDS = 60.0


def _load(name, split):
    X, y = getattr(sktime_datasets, LOADERS[name])(split=split, return_type="numpy3D")
    return X.transpose(0, 2, 1), y  # sktime: (n, channels, time); numlstm: (n, time, features)


def _warm_up():
    """Compile (or load from the cache) the float32 kernels outside the timed fits."""
    X = np.random.default_rng(0).normal(size=(16, 5, 1))
    LSTMClassifier(hidden_size=4, max_iter=1, random_state=0).fit(X, np.arange(16) % 2)


@functools.lru_cache(maxsize=None)
def _measure(name):
    X_train, y_train = _load(name, "train")
    X_test, y_test = _load(name, "test")
    flat_train = X_train.reshape(len(X_train), -1)
    flat_test = X_test.reshape(len(X_test), -1)
    knn = KNeighborsClassifier(n_neighbors=1).fit(flat_train, y_train)

    lstm_acc, mlp_acc, seconds = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _warm_up()
        for seed in SEEDS[name]:
            clf = LSTMClassifier(hidden_size=HIDDEN_SIZE[name], random_state=seed)
            start = time.perf_counter()
            clf.fit(X_train, y_train)
            seconds.append(time.perf_counter() - start)
            lstm_acc.append(clf.score(X_test, y_test))
            mlp = MLPClassifier(random_state=seed).fit(flat_train, y_train)
            mlp_acc.append(mlp.score(flat_test, y_test))
    lstm_mean, mlp_mean = float(np.mean(lstm_acc)), float(np.mean(mlp_acc))
    report = (f"{name}: LSTMClassifier(hidden_size={HIDDEN_SIZE[name]}) test accuracy "
              f"{[round(a, 4) for a in lstm_acc]} (mean {lstm_mean:.4f}); "
              f"MLPClassifier {[round(a, 4) for a in mlp_acc]} (mean {mlp_mean:.4f}); "
              f"1-NN {knn.score(flat_test, y_test):.4f}, published "
              f"{PUBLISHED_1NN[name]:.4f}; fit seconds {[round(s, 1) for s in seconds]}")
    print(report)
    # Standard error of the difference of the two means over the seeds.
    n = len(lstm_acc)
    se = float(np.sqrt(np.var(lstm_acc, ddof=1) / n + np.var(mlp_acc, ddof=1) / n))
    return {"knn": knn.score(flat_test, y_test), "lstm": lstm_mean, "mlp": mlp_mean,
            "se_difference": se, "seconds": seconds, "report": report}


@pytest.mark.parametrize("name", list(LOADERS))
def test_data_are_the_archive_splits(name):
    X_train, y_train = _load(name, "train")
    X_test, y_test = _load(name, "test")
    knn = KNeighborsClassifier(n_neighbors=1).fit(X_train.reshape(len(X_train), -1), y_train)
    assert knn.score(X_test.reshape(len(X_test), -1), y_test) == pytest.approx(
        PUBLISHED_1NN[name], abs=5e-5)


@pytest.mark.parametrize("name", list(LOADERS))
def test_lstm_beats_published_1nn(name):
    result = _measure(name)
    assert result["lstm"] > PUBLISHED_1NN[name], result["report"]


@pytest.mark.parametrize("name", list(LOADERS))
def test_lstm_matches_default_mlp(name):
    # "At least as well" on means of a few seeds is a non-inferiority check: on
    # ItalyPowerDemand the two means are within a tenth of a point (96.4 and 96.3 where
    # measured), well inside their seed-to-seed noise, so float32 rounding that differs
    # between CPUs could order them either way. The check fails when the LSTM is worse by
    # more than two standard errors of the difference (about 0.3 points there).
    result = _measure(name)
    margin = 2.0 * result["se_difference"]
    assert result["lstm"] >= result["mlp"] - margin, (
        f"{result['report']}; allowed margin {margin:.4f}")


@pytest.mark.parametrize("name", list(LOADERS))
def test_lstm_fits_in_under_a_minute(name):
    result = _measure(name)
    assert max(result["seconds"]) < FIT_SECONDS, result["report"]
