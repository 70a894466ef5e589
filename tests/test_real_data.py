"""LSTMClassifier on real data (UCR archive splits bundled with sktime, no download).

On ItalyPowerDemand and GunPoint, with default settings apart from ``hidden_size`` and
``random_state``, the classifier must

* beat the published 1-NN Euclidean test accuracy (UCR archive 2018 summary: 95.53% and
  91.33%; recomputed here as a check that the data are the archive's splits), and
* do at least as well as scikit-learn's default ``MLPClassifier`` on the flattened
  series,

each fit in under a minute on two cores. Accuracies are means over the same few seeds
for the LSTM and the MLP, so one lucky or unlucky initialisation decides nothing.

``PROPOSED_DEFAULTS`` holds the settings the measurements in ``docs/real_data.rst``
support as defaults; any of them that the estimator does not use by default yet is
passed explicitly (and reported), so this test measures the proposal until the
defaults adopt it, and the defaults themselves afterwards.
"""

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
HIDDEN_SIZE = {"ItalyPowerDemand": 64, "GunPoint": 64}
SEEDS = (0, 1, 2)
#: Settings found to reach the targets on both data sets (docs/real_data.rst).
PROPOSED_DEFAULTS = {"learning_rate_init": 0.005, "max_iter": 500, "n_iter_no_change": 50}
FIT_SECONDS = 60.0

LOADERS = {"ItalyPowerDemand": "load_italy_power_demand", "GunPoint": "load_gunpoint"}


def _load(name, split):
    X, y = getattr(sktime_datasets, LOADERS[name])(split=split, return_type="numpy3D")
    return X.transpose(0, 2, 1), y  # sktime: (n, channels, time); numlstm: (n, time, features)


def _overrides():
    defaults = LSTMClassifier().get_params()
    return {k: v for k, v in PROPOSED_DEFAULTS.items() if defaults[k] != v}


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    """Compile (or load from the cache) the float32 kernels outside the timed fits."""
    X = np.random.default_rng(0).normal(size=(16, 5, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LSTMClassifier(hidden_size=4, max_iter=1, random_state=0).fit(X, np.arange(16) % 2)


@pytest.mark.parametrize("name", list(LOADERS))
def test_lstm_classifier_beats_published_1nn_and_matches_mlp(name):
    X_train, y_train = _load(name, "train")
    X_test, y_test = _load(name, "test")
    flat_train = X_train.reshape(len(X_train), -1)
    flat_test = X_test.reshape(len(X_test), -1)

    knn = KNeighborsClassifier(n_neighbors=1).fit(flat_train, y_train)
    knn_acc = knn.score(flat_test, y_test)
    assert knn_acc == pytest.approx(PUBLISHED_1NN[name], abs=5e-5), (
        "1-NN Euclidean does not reproduce the published accuracy: the bundled data are "
        "not the UCR archive's splits")

    overrides = _overrides()
    lstm_acc, mlp_acc, seconds = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in SEEDS:
            clf = LSTMClassifier(hidden_size=HIDDEN_SIZE[name], random_state=seed,
                                 **overrides)
            start = time.perf_counter()
            clf.fit(X_train, y_train)
            seconds.append(time.perf_counter() - start)
            lstm_acc.append(clf.score(X_test, y_test))
            mlp = MLPClassifier(random_state=seed).fit(flat_train, y_train)
            mlp_acc.append(mlp.score(flat_test, y_test))

    lstm_mean, mlp_mean = float(np.mean(lstm_acc)), float(np.mean(mlp_acc))
    report = (f"{name}: LSTMClassifier(hidden_size={HIDDEN_SIZE[name]}"
              + "".join(f", {k}={v}" for k, v in overrides.items())
              + f") test accuracy {[round(a, 4) for a in lstm_acc]} (mean {lstm_mean:.4f}); "
              f"MLPClassifier {[round(a, 4) for a in mlp_acc]} (mean {mlp_mean:.4f}); "
              f"published 1-NN {PUBLISHED_1NN[name]:.4f}; "
              f"fit seconds {[round(s, 1) for s in seconds]}")
    print(report)
    assert lstm_mean > PUBLISHED_1NN[name], report
    assert lstm_mean >= mlp_mean, report
    assert max(seconds) < FIT_SECONDS, report
