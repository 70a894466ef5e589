"""numlstm.dask: blocked prediction and GridSearchCV on a two-process LocalCluster.

The cluster's workers start with an empty numba cache of their own (NUMBA_CACHE_DIR in
a fresh temporary directory they share), so both compile the kernels at the same time
and write the same cache files: the results must still equal the single-process ones.
"""

import logging
import os
import pickle
import subprocess
import sys

import numba
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

dask = pytest.importorskip("dask", reason="needs dask: pip install 'dask[array]' distributed")
da = pytest.importorskip("dask.array", reason="needs dask.array: pip install 'dask[array]'")
distributed = pytest.importorskip("distributed",
                                  reason="needs distributed: pip install distributed")
import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from numlstm import LSTMClassifier, LSTMRegressor  # noqa: E402
from numlstm.dask import predict_dask  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 6, 2))
Y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
X_NEW = RNG.normal(size=(23, 6, 2))
GRID = {"hidden_size": [3, 5], "learning_rate_init": [0.01, 0.05]}


def blockwise_reference(method, X, size):
    """In-process results on the same blocks as the dask computation."""
    return np.concatenate([method(X[i:i + size]) for i in range(0, X.shape[0], size)])


@pytest.fixture(scope="module")
def fitted_classifier():
    return LSTMClassifier(hidden_size=4, max_iter=3, random_state=0).fit(X, Y)


# ------------------------------------------------------------- local scheduler
@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba"])
def test_predict_dask_matches_blockwise_predictions(fitted_classifier, method):
    clf = fitted_classifier
    X_dask = da.from_array(X_NEW, chunks=(5, 3, 2))  # time split too: merged per block
    result = predict_dask(clf, X_dask, method)
    expected = blockwise_reference(getattr(clf, method), X_NEW, 5)
    assert result.shape == expected.shape and result.dtype == expected.dtype
    assert result.chunks[0] == (5, 5, 5, 5, 3)
    computed = result.compute(scheduler="sync")
    np.testing.assert_array_equal(computed, expected)
    np.testing.assert_allclose(computed if method != "predict" else 0,
                               getattr(clf, method)(X_NEW) if method != "predict" else 0,
                               rtol=1e-5, atol=1e-6)


def test_predict_dask_output_shapes_and_inputs():
    y_seq = np.cumsum(X[:, :, :1], axis=1)
    reg = LSTMRegressor(hidden_size=3, max_iter=2, random_state=0).fit(X, y_seq)
    out = predict_dask(reg, X_NEW, chunk_size=10)  # a NumPy array is wrapped
    assert out.shape == (23, 6, 1) and out.chunks == ((10, 10, 3), (6,), (1,))
    np.testing.assert_array_equal(out.compute(scheduler="sync"),
                                  blockwise_reference(reg.predict, X_NEW, 10))

    uni = LSTMRegressor(hidden_size=3, max_iter=2, random_state=0).fit(
        X[:, :, 0], np.column_stack([X[:, :, 0].sum(axis=1), X[:, 0, 0]]))
    X2 = da.from_array(X_NEW[:, :, 0], chunks=(8, 2))
    out = predict_dask(uni, X2)
    assert out.shape == (23, 2) and out.chunks == ((8, 8, 7), (2,))
    np.testing.assert_array_equal(out.compute(scheduler="sync"),
                                  blockwise_reference(uni.predict, X_NEW[:, :, 0], 8))

    # Unknown chunk sizes along the sample axis are fine.
    masked = da.from_array(X_NEW, chunks=(10, 6, 2))
    masked = masked[masked[:, 0, 0] > -10]
    assert np.isnan(masked.shape[0])
    assert predict_dask(uni, masked[:, :, 0]).compute(scheduler="sync").shape == (23, 2)


def test_predict_dask_errors(fitted_classifier):
    with pytest.raises(NotFittedError):
        predict_dask(LSTMClassifier(), X_NEW)
    with pytest.raises(AttributeError, match="no method 'transform'"):
        predict_dask(fitted_classifier, X_NEW, "transform")
    with pytest.raises(ValueError, match="3-D"):
        predict_dask(fitted_classifier, X_NEW[0, 0])
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            predict_dask(fitted_classifier, X_NEW, chunk_size=bad)
    unknown = da.from_array(X_NEW, chunks=(10, 6, 2))
    unknown = unknown[:, unknown[0, :, 0] > -10]
    with pytest.raises(ValueError, match="timesteps and features must be known"):
        predict_dask(fitted_classifier, unknown)


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_predict_dask_passes_over_empty_blocks(fitted_classifier, method):
    """Boolean indexing can empty a block (here the second): the estimators refuse 0
    samples, so predict_dask must give that block's empty rows itself."""
    clf = fitted_classifier
    keep = np.r_[np.ones(10, bool), np.zeros(10, bool), np.ones(20, bool)]
    filtered = da.from_array(X, chunks=(10, 6, 2))[da.from_array(keep, chunks=10)]
    assert np.isnan(filtered.shape[0])
    result = predict_dask(clf, filtered, method)
    computed = result.compute(scheduler="sync")
    expected = np.concatenate([getattr(clf, method)(X[i:i + 10][keep[i:i + 10]])
                               for i in (0, 20, 30)])
    assert computed.dtype == expected.dtype and computed.shape == expected.shape
    np.testing.assert_array_equal(computed, expected)


def test_predict_dask_chunk_size_needs_known_sample_counts(fitted_classifier):
    X_dask = da.from_array(X_NEW, chunks=(10, 6, 2))
    masked = X_dask[X_dask[:, 0, 0] > -10]
    with pytest.raises(ValueError, match=r"chunk_size.*X\.compute_chunk_sizes\(\)"):
        predict_dask(fitted_classifier, masked, chunk_size=15)
    # The two ways out the message gives.
    assert predict_dask(fitted_classifier, masked).compute(scheduler="sync").shape == (23,)
    masked.compute_chunk_sizes()
    out = predict_dask(fitted_classifier, masked, chunk_size=15)
    assert out.chunks[0] == (15, 8)
    np.testing.assert_array_equal(out.compute(scheduler="sync"),
                                  blockwise_reference(fitted_classifier.predict, X_NEW, 15))


def test_clear_error_without_dask(monkeypatch, fitted_classifier):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"pip install numlstm\[dask\]"):
        predict_dask(fitted_classifier, X_NEW)


def test_estimators_pickle_small(fitted_classifier):
    """What joblib ships to the workers: parameters, then weights, never data."""
    assert len(pickle.dumps(LSTMClassifier(hidden_size=64))) < 2_000
    X_big = np.concatenate([X] * 10)
    bigger = LSTMClassifier(hidden_size=4, max_iter=3, random_state=0)
    bigger.fit(X_big, np.tile(Y, 10))
    # Training data and forward caches are not kept: size does not grow with the data.
    assert abs(len(pickle.dumps(bigger)) - len(pickle.dumps(fitted_classifier))) < 200
    n_weights = bigger.network_.get_flat_params().nbytes
    assert len(pickle.dumps(bigger)) < 10 * n_weights + 10_000


# --------------------------------------------------------- distributed cluster
@pytest.fixture(scope="module")
def client(tmp_path_factory):
    cache = tmp_path_factory.mktemp("numba-cache")
    env = {
        "NUMBA_CACHE_DIR": str(cache),  # empty: the two workers compile at the same time
        # As many numba threads as this process, so the kernels split batches alike.
        "NUMBA_NUM_THREADS": str(numba.get_num_threads()),
    }
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR, env=env) as cluster, \
            distributed.Client(cluster) as client:
        client.numba_cache = cache
        yield client


def test_grid_search_and_blocked_prediction_on_a_cluster(client):
    base = LSTMClassifier(hidden_size=3, max_iter=3, random_state=0)
    local = GridSearchCV(base, GRID, cv=2).fit(X, Y)

    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(base, GRID, cv=2, n_jobs=-1).fit(X, Y)
    # The fits really ran in the worker processes.
    fitted_there = client.run(lambda: "numlstm.kernels.cpu.recurrent" in sys.modules)
    assert any(fitted_there.values())

    for key in ("split0_test_score", "split1_test_score", "mean_test_score",
                "rank_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key], key)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.predict_proba(X_NEW), local.predict_proba(X_NEW))

    best = local.best_estimator_
    X_dask = da.from_array(X_NEW, chunks=(6, 6, 2))
    for method in ("predict", "predict_proba"):
        computed = predict_dask(best, X_dask, method).compute()  # on the cluster
        np.testing.assert_array_equal(computed,
                                      blockwise_reference(getattr(best, method), X_NEW, 6))

    # Two worker processes, which compiled and cached the kernels in their own
    # (initially empty) cache directory.
    pids = client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    index_files = list(client.numba_cache.rglob("*.nbi"))
    assert index_files, "the workers wrote no numba cache"

    # The cache the two workers wrote at the same time is whole: a new process finds
    # every kernel it needs there and compiles nothing.
    script = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import numpy as np\n"
        "from numlstm import LSTMClassifier\n"
        "from numlstm.kernels.cpu import recurrent\n"
        "X = np.random.default_rng(0).normal(size=(40, 6, 2))\n"
        "LSTMClassifier(hidden_size=3, max_iter=2).fit(X, X[:, 0, 0] > 0).predict(X)\n"
        "kernels = [recurrent.layer_forward, recurrent.layer_backward]\n"
        "print(sum(sum(k.stats.cache_hits.values()) for k in kernels),\n"
        "      sum(sum(k.stats.cache_misses.values()) for k in kernels))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(client.numba_cache))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    hits, misses = map(int, done.stdout.split())
    assert hits >= 2 and misses == 0, done.stdout  # the forward and backward kernels
