"""Concurrency: threads sharing a fitted estimator, processes sharing a cold numba cache,
forked processes, and prediction on a million samples in bounded memory."""

import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc

import numpy as np
import pytest

import numlstm
from numlstm.datasets import make_adding_problem
from numlstm.estimators import LSTMClassifier, LSTMRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(numlstm.__file__)))
X, Y = make_adding_problem(300, 12, random_state=0)


def _env(**extra):
    return {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
            **extra}


@pytest.fixture(scope="module")
def fitted():
    # long sequences: each pass runs long enough for concurrent passes to overlap
    X_long, y_long = make_adding_problem(300, 100, random_state=0)
    reg = LSTMRegressor(hidden_size=8, max_iter=1, random_state=0).fit(X_long, y_long)
    clf = LSTMClassifier(hidden_size=8, max_iter=1, bidirectional=True,
                         random_state=0).fit(X_long, y_long > 1)
    return reg, clf, X_long


@pytest.mark.parametrize("method", ["reg.predict", "clf.predict_proba"])
def test_threads_predicting_on_one_estimator_agree_with_sequential_calls(fitted, method):
    reg, clf, X_long = fitted
    predict = getattr({"reg": reg, "clf": clf}[method.split(".")[0]], method.split(".")[1])
    # different data of one shape in each thread (the layer reuses its scratch arrays
    # between passes of one shape: without the network's lock this fails most runs),
    # batches large enough for per-thread kernel slices
    chunks = [X_long[:150], X_long[150:], X_long[::2], X_long[1::2]]
    expected = [predict(chunk) for chunk in chunks]
    failures = []
    barrier = threading.Barrier(len(chunks))

    def worker(i):
        barrier.wait()
        for _ in range(10):
            got = predict(chunks[i])
            if not np.array_equal(got, expected[i]):
                failures.append((i, float(np.abs(got - expected[i]).max())))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_predict_on_a_million_samples_in_bounded_memory():
    reg = LSTMRegressor(hidden_size=2, max_iter=1, random_state=0).fit(X[:64, :4], Y[:64])
    big = np.random.default_rng(0).normal(size=(1_000_000, 4, 2))
    reg.predict(big[:70_000])  # warm up: compile, scratch arrays of a full chunk
    tracemalloc.start()
    try:
        pred = reg.predict(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pred.shape == (1_000_000,) and np.isfinite(pred).all()
    # Beyond the output, a bounded working set: one chunk's standardised copy, layer
    # scratch and outputs (about 24 MiB here), whatever the number of samples. Processing
    # the whole input at once would need several times the 61 MiB input.
    assert peak - pred.nbytes < 32 * 2**20, peak / 2**20
    np.testing.assert_allclose(pred[:1000], reg.predict(big[:1000]), rtol=1e-6)


@pytest.mark.slow
def test_grid_search_two_processes_cold_numba_cache(tmp_path):
    """Two worker processes compile the kernels at once into one empty cache directory."""
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    script = textwrap.dedent("""
        import os, warnings
        warnings.simplefilter("ignore")
        import numlstm
        from numlstm.datasets import make_adding_problem
        from numlstm.estimators import LSTMRegressor
        from sklearn.model_selection import GridSearchCV
        X, y = make_adding_problem(64, 5, random_state=0)
        grid = GridSearchCV(LSTMRegressor(max_iter=1, random_state=0),
                            {"hidden_size": [2, 3]}, cv=2, n_jobs=2, refit=False)
        grid.fit(X, y)
        assert len(grid.cv_results_["mean_test_score"]) == 2
        print("ok", sum(len(files) for _, _, files in os.walk(os.environ["NUMBA_CACHE_DIR"])))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=_env(NUMBA_CACHE_DIR=str(cache)), timeout=540)
    assert result.returncode == 0, result.stderr[-3000:]
    status, n_files = result.stdout.split()[-2:]
    assert status == "ok" and int(n_files) > 0
    # a later process uses what they wrote
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=_env(NUMBA_CACHE_DIR=str(cache)), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_forked_child_can_predict():
    script = textwrap.dedent("""
        import os, warnings
        import numpy as np
        warnings.simplefilter("ignore")
        from numlstm.datasets import make_adding_problem
        from numlstm.estimators import LSTMRegressor
        X, y = make_adding_problem(64, 5, random_state=0)
        reg = LSTMRegressor(hidden_size=4, max_iter=1, random_state=0).fit(X, y)
        expected = reg.predict(X)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if np.array_equal(reg.predict(X), expected) else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "0", result.stderr[-2000:]


def test_layer_inference_from_two_threads_matches_serial():
    # Each thread has its own scratch: same-shaped batches at once must not mix.
    from concurrent.futures import ThreadPoolExecutor

    from numlstm import LSTM

    layer = LSTM(3, 16, num_layers=2, random_state=0)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((8, 200, 3)).astype(np.float32) for _ in range(8)]
    expected = [layer.forward(x, requires_grad=False)[0] for x in batches]
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda x: layer.forward(x, requires_grad=False)[0], batches))
    # Mixed-up scratch shows as wrong values (~0.1-1 here); a worker thread's BLAS may round
    # the last float32 bit differently from the main thread's.
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
