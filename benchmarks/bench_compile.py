"""Compile and cache-load time of the numba kernels, in seconds.

Each measurement runs in a fresh Python process whose ``NUMBA_CACHE_DIR`` is a new empty
folder: first with that folder empty ("cold": every kernel is compiled and written to the
cache), then a second process with the same folder ("warm": kernels are loaded from it).
A kernel's compile time is its first call minus its second call, so the arithmetic itself
is subtracted out. The processes share one ``setup_cache`` run, so the suite pays for one
cold compile only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

# Run in the child process. Prints one JSON line.
_CHILD = r"""
import inspect, json, sys, time, warnings
mode = sys.argv[1]
t0 = time.perf_counter()
import numpy as np
import numlstm
result = {"import": time.perf_counter() - t0}


def first_minus_second(step):
    t = time.perf_counter(); step(); first = time.perf_counter() - t
    t = time.perf_counter(); step(); second = time.perf_counter() - t
    return max(first - second, 0.0)


def tiny_estimator_fit():
    from numlstm import LSTMRegressor
    accepted = inspect.signature(LSTMRegressor.__init__).parameters
    kwargs = {"hidden_size": 4, "max_iter": 1, "batch_size": 8, "random_state": 0,
              "early_stopping": False}
    model = LSTMRegressor(**{k: v for k, v in kwargs.items() if k in accepted})
    X = np.random.default_rng(0).standard_normal((16, 5, 2))
    y = X[:, :, 0].sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
        model.predict(X)


def has_estimators():
    try:
        from numlstm import LSTMRegressor  # noqa: F401
    except ImportError:
        return False
    return True


if mode == "kernels":
    from numlstm import GRU, LSTM
    for dtype in ("float32", "float64"):
        # Two bidirectional layers: the code path of layer k > 0. The plain LSTM has
        # kernels of its own; a GRU runs the kernels of every other cell and option. A
        # batch of 4 runs on one thread, one of 32 in the parallel loop (one slice per
        # thread, given two threads or more): a first fit meets both.
        layers = [cls(3, 4, num_layers=2, bidirectional=True, dtype=dtype, random_state=0)
                  for cls in (LSTM, GRU)]
        batches = []
        for batch in (4, 32):
            x = np.random.default_rng(0).standard_normal((batch, 5, 3))
            lengths = [5, 4, 3, 1] * (batch // 4)
            batches.append((x, lengths, np.ones((batch, 5, 8))))

        def step():
            for layer in layers:
                for x, lengths, d_out in batches:
                    layer.forward(x, requires_grad=False)
                    layer.forward(x, lengths=lengths)
                    layer.backward(d_out)

        result[dtype] = first_minus_second(step)
    if has_estimators():
        # Not measured: fills the cache with whatever else a fit compiles.
        tiny_estimator_fit()
elif mode == "fit":
    result["first_fit"] = first_minus_second(tiny_estimator_fit) if has_estimators() else None
print(json.dumps(result))
"""


def _run_child(mode, cache_dir):
    import numlstm

    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    env.pop("NUMBA_DISABLE_JIT", None)
    # The child must import the numlstm this process benchmarks, wherever it comes from.
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(numlstm.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_parent, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", _CHILD, mode], env=env, capture_output=True,
                          text=True, timeout=540, cwd=cache_dir)
    if proc.returncode != 0:
        raise RuntimeError(f"compile-time child ({mode}) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class _CompileBench:
    unit = "seconds"
    # Track benchmarks are read once; there is nothing to repeat.
    repeat = 1
    number = 1

    def setup_cache(self):
        cache_dir = tempfile.mkdtemp(prefix="numlstm-numba-cache-")
        first_fit_dir = tempfile.mkdtemp(prefix="numlstm-numba-cache-")
        try:
            cold = _run_child("kernels", cache_dir)
            warm = _run_child("kernels", cache_dir)
            fit = _run_child("fit", cache_dir)
            # A newcomer's first fit: a fresh process and an empty cache, compiling only
            # what the fit needs (one float type, the plain LSTM).
            first_fit = _run_child("fit", first_fit_dir)
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
            shutil.rmtree(first_fit_dir, ignore_errors=True)
        return {"cold": cold, "warm": warm, "fit": fit, "first_fit": first_fit}

    # Cold compile of both dtypes takes 30-60 s on 2 busy cores, a cold first fit 8-20 s.
    setup_cache.timeout = 600


class Compile(_CompileBench):
    """First call of forward, inference and backward (every kernel: the plain LSTM's and
    the other cells') in a fresh process."""

    params = [["cold", "warm"], ["float32", "float64", "all"]]
    param_names = ["numba_cache", "dtype"]

    def track_kernels(self, results, numba_cache, dtype):
        run = results[numba_cache]
        if dtype == "all":
            return run["float32"] + run["float64"]
        return run[dtype]

    track_kernels.unit = "seconds"


class Import(_CompileBench):
    """``import numlstm`` in a fresh process."""

    params = [["cold", "warm"]]
    param_names = ["numba_cache"]

    def track_import(self, results, numba_cache):
        return results[numba_cache]["import"]

    track_import.unit = "seconds"


class FirstFit(_CompileBench):
    """Compile/load overhead of the first estimator ``fit`` in a fresh process: with the
    kernels in numba's cache, and with an empty cache (everything the fit needs compiled)."""

    def setup(self, results):
        if results["fit"].get("first_fit") is None:
            raise NotImplementedError("numlstm estimators are not available")

    def track_first_fit_warm_cache(self, results):
        return results["fit"]["first_fit"]

    track_first_fit_warm_cache.unit = "seconds"

    def track_first_fit_cold_cache(self, results):
        return results["first_fit"]["first_fit"]

    track_first_fit_cold_cache.unit = "seconds"
