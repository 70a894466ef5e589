"""The parallel loop over batch slices (numlstm.kernels.cpu.parallel_rows)."""

import numba
import numpy as np
import pytest
from helpers import run_twice_with_one_cache
from numba import njit, types

from numlstm.kernels.cpu.indirect_call import stash, stashed_address, unstash
from numlstm.kernels.cpu.parallel_rows import run_rows, slices_runner


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _log_slice(arguments, chunk, b0, b1):
    log, x, out = unstash(arguments)
    log[chunk, 0] = b0
    log[chunk, 1] = b1
    log[chunk, 2] += 1
    log[chunk, 3] = numba.get_thread_id()
    for b in range(b0, b1):
        out[b] = 2.0 * x[b]


@njit
def _run(rows_kernel, runner, log, x, out, chunk_bounds):
    run_rows(rows_kernel, runner, stash((log, x, out)), chunk_bounds)


def _bounds(*values):
    bounds = np.array(values, np.int64)
    bounds.flags.writeable = False  # as numlstm.nn.cpu_backend hands them over
    return bounds


@pytest.mark.parametrize("bounds", [(0, 7), (0, 3, 7), (0, 2, 4, 5, 7)])
def test_each_slice_runs_once_with_its_rows(bounds):
    bounds = _bounds(*bounds)
    n_chunks = len(bounds) - 1
    log = np.zeros((n_chunks, 4), np.int64)
    x = np.arange(7.0)
    out = np.full(7, np.nan)
    rows = stashed_address(_log_slice, (log, x, out), (types.int64,) * 3)
    _run(rows, slices_runner(bounds), log, x, out, bounds)
    np.testing.assert_array_equal(out, 2.0 * x)
    np.testing.assert_array_equal(log[:, 0], bounds[:-1])
    np.testing.assert_array_equal(log[:, 1], bounds[1:])
    np.testing.assert_array_equal(log[:, 2], 1)


def test_no_slice_runs_nothing():
    log = np.zeros((1, 4), np.int64)
    x, out = np.ones(3), np.full(3, np.nan)
    rows = stashed_address(_log_slice, (log, x, out), (types.int64,) * 3)
    for bounds in (_bounds(), _bounds(0)):
        _run(rows, slices_runner(bounds), log, x, out, bounds)
    assert np.isnan(out).all() and not log.any()


def test_a_single_slice_needs_no_parallel_loop():
    assert slices_runner(_bounds(0, 5)) == 0
    assert slices_runner(_bounds(0, 2, 5)) != 0
    # One loop per kind of bounds array (numba types a read-only array apart).
    assert slices_runner(_bounds(0, 2, 5)) == slices_runner(_bounds(0, 1, 2, 3))
    assert slices_runner(np.array([0, 2, 5])) not in (0, slices_runner(_bounds(0, 2, 5)))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_slices_run_on_several_threads():
    saved = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        bounds = _bounds(0, 1, 2)
        log = np.zeros((2, 4), np.int64)
        x, out = np.ones(2), np.zeros(2)
        rows = stashed_address(_log_slice, (log, x, out), (types.int64,) * 3)
        # numba hands out the iterations to its threads in turn: with two threads and two
        # slices each runs one (whichever thread takes it).
        seen = set()
        for _ in range(20):
            _run(rows, slices_runner(bounds), log, x, out, bounds)
            seen.update(log[:, 3].tolist())
        assert len(seen) == 2
    finally:
        numba.set_num_threads(saved)


def test_the_kernels_load_from_the_cache_in_a_new_process(tmp_path):
    # The per-rows kernel is compiled for a pointer type, the loop for a voidptr: a second
    # process finds both in numba's cache, and the addresses it looks up run correctly.
    first, second = run_twice_with_one_cache(tmp_path, "cached_slices", """
        import numpy as np
        from numba import njit, types
        from numlstm.kernels.cpu.indirect_call import stash, stashed_address, unstash
        from numlstm.kernels.cpu.parallel_rows import _run_slices, run_rows, slices_runner

        @njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
        def rows(arguments, chunk, b0, b1):
            x, out = unstash(arguments)
            for b in range(b0, b1):
                out[b] = x[b].sum()

        @njit(cache=True)
        def run(rows_kernel, runner, x, out, bounds):
            run_rows(rows_kernel, runner, stash((x, out)), bounds)

        x = np.arange(20.0).reshape(5, 4)
        out = np.zeros(5)
        bounds = np.array([0, 2, 5])
        bounds.flags.writeable = False
        run(stashed_address(rows, (x, out), (types.int64,) * 3), slices_runner(bounds), x,
            out, bounds)
        assert np.array_equal(out, x.sum(axis=1)), out
        print(sum(rows.stats.cache_hits.values()), sum(_run_slices.stats.cache_hits.values()),
              sum(rows.stats.cache_misses.values()))
    """)
    assert first[:2] == ["0", "0"]
    assert second == ["1", "1", "0"]


def test_the_products_are_looked_up_once_per_float_type():
    from numlstm.kernels.cpu.recurrent import product_addresses

    single, double = product_addresses(np.float32), product_addresses(np.float64)
    assert single is product_addresses("float32")
    assert single.dtype == np.int64 and single.shape == (2,) and not single.flags.writeable
    assert len(set(single.tolist()) | set(double.tolist())) == 4
