"""The kernels of numlstm.kernels.cuda launched alone, without the drivers of numlstm.nn.

Each test configures one module-level kernel as its docstring describes and compares it
with NumPy, so a kernel can be checked (and debugged) without a layer around it.
"""

import numpy as np
import pytest
from numba import cuda

from numlstm._utils import config
from numlstm.kernels import activations as cpu_activations
from numlstm.kernels.common import CELL_CODES
from numlstm.kernels.cuda import activations, cells, gemm, lstm, reductions, tiling
from numlstm.kernels.cuda import training_ops as ops

# Launched directly, tiny grids draw numba-cuda's low-occupancy warning on a real GPU.
pytestmark = [pytest.mark.cudasim,
              pytest.mark.filterwarnings("ignore:.*Grid size .* under-utilization")]

DTYPES = [np.float64, np.float32]


def _run_gemm(kernel, span, tile, A, B, C, accumulate):
    """``C (+)= A @ B`` through ``kernel`` on flat device copies; returns the new ``C``."""
    m, k = A.shape
    n = B.shape[1]
    c_d = cuda.to_device(C.ravel())
    kernel[gemm.gemm_grid(m, n, 1, span), (tile, tile)](
        cuda.to_device(A.ravel()), cuda.to_device(B.ravel()), c_d, (m, n, k), (0, k, 0, 0),
        (0, n, 0, 0), (0, n, 0, int(accumulate)))
    return c_d.copy_to_host().reshape(C.shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_module_level_gemm_matches_numpy(dtype):
    """The module's own kernel, at the production tiling (one 16x16 block here)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 7)).astype(dtype)
    B = rng.standard_normal((7, 3)).astype(dtype)
    C = rng.standard_normal((5, 3)).astype(dtype)
    got = _run_gemm(gemm.gemm, gemm.SPAN, gemm.TILE, A, B, C, accumulate=True)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, C + A @ B, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_retiled_gemm_spans_several_blocks():
    """Small tiles: partial tiles and several blocks in every dimension."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((11, 9))
    B = rng.standard_normal((9, 10))
    kernels = tiling.retiled(gemm, 2, 2, 1)
    got = _run_gemm(kernels.gemm, 4, 2, A, B, np.full((11, 10), np.nan), accumulate=False)
    np.testing.assert_allclose(got, A @ B, rtol=1e-12)


def test_tiling_constants_are_the_module_constants():
    production = tiling.tiling_constants(tiling.TILE, tiling.REGISTER_TILE, tiling.UNIT_TILE)
    assert production == {name: getattr(tiling, name) for name in production}
    assert production["TILE"] == config.CUDA_TILE
    assert gemm.SPAN == lstm.SPAN == config.CUDA_TILE * config.CUDA_REGISTER_TILE


def test_retiled_keeps_names_and_docstrings_and_caches():
    same = tiling.retiled(lstm, tiling.TILE, tiling.REGISTER_TILE, tiling.UNIT_TILE)
    assert same.forward_steps is lstm.forward_steps
    small = tiling.retiled(lstm, 4, 2, 2)
    assert small is tiling.retiled(lstm, 4, 2, 2)
    assert small.forward_steps is not lstm.forward_steps
    for name in lstm.TILED_DEVICE_FUNCTIONS + lstm.TILED_KERNELS:
        assert getattr(small, name).__name__ == name
        assert getattr(small, name).__doc__ == getattr(lstm, name).__doc__


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sums_and_fill(dtype):
    rng = np.random.default_rng(2)
    n_rows, n_cols, per_block, rows_per_block = 13, 5, 4, 3
    a = rng.standard_normal((n_rows, n_cols)).astype(dtype)
    sums = cuda.device_array(n_cols, dtype)
    reductions.fill[2, 4](sums, dtype(0))  # a grid smaller than the array: grid stride
    grid = reductions.column_sums_grid(n_rows, n_cols, per_block, rows_per_block)
    assert grid == (2, 5)
    reductions.column_sums[grid, per_block](cuda.to_device(a.ravel()), n_rows, n_cols,
                                            rows_per_block, sums)
    got = sums.copy_to_host()
    assert got.dtype == dtype
    np.testing.assert_allclose(got, a.sum(axis=0), rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gate_nonlinearities_follow_the_float_type(dtype):
    """float32 runs the rational approximations of the CPU kernels, float64 the exact ones."""
    @cuda.jit
    def apply(x, sig, th):
        i = cuda.grid(1)
        if i < x.shape[0]:
            sig[i] = activations.sigmoid(x[i])
            th[i] = activations.tanh(x[i])

    x = np.linspace(-9.0, 9.0, 37).astype(dtype)
    sig = cuda.device_array_like(x)
    th = cuda.device_array_like(x)
    apply[1, 64](cuda.to_device(x), sig, th)
    if dtype == np.float32:
        sigmoid, tanh = cpu_activations.sigmoid_float32, cpu_activations.tanh_float32
    else:
        sigmoid, tanh = cpu_activations.sigmoid_exact, cpu_activations.tanh_exact
    # Equal on the simulator; a GPU may contract multiply-adds and round differently.
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(sig.copy_to_host(), [sigmoid(v) for v in x], rtol=rtol)
    np.testing.assert_allclose(th.copy_to_host(), [tanh(v) for v in x], rtol=rtol, atol=rtol)


def test_rnn_cell_forward_one_step():
    """One step of the tanh RNN, both directions, a padded row in the reverse direction."""
    rng = np.random.default_rng(3)
    D, B, T, H = 2, 3, 2, 4
    lengths = np.array([2, 1, 2], np.int64)
    gates = rng.standard_normal((B, T, D, H))
    rec = rng.standard_normal((D, B, H))
    bias = rng.standard_normal((D, H))
    h = rng.standard_normal((D, B, H))
    h_d = cuda.to_device(h)
    out = cuda.to_device(np.full((B, T, D * H), np.nan))
    h_prev = cuda.to_device(np.full((B, T, D, H), np.nan))
    dummy = cuda.device_array((1, 1, 1, 1))
    n_threads = D * B * H
    cells.cell_forward[1, n_threads](
        0, CELL_CODES["rnn_tanh"], True, False, False, cuda.to_device(lengths),
        cuda.to_device(bias), cuda.to_device(np.zeros((D, 1))), dummy[0], cuda.to_device(rec),
        h_d, dummy[0], cuda.to_device(gates), out, h_prev, dummy, dummy)
    got_out = out.copy_to_host()
    got_h = h_d.copy_to_host()
    for d in range(D):
        t = 0 if d == 0 else T - 1  # step u = 0 of the reverse direction is the last step
        for b in range(B):
            block = slice(d * H, (d + 1) * H)
            np.testing.assert_array_equal(h_prev.copy_to_host()[b, t, d], h[d, b])
            if t >= lengths[b]:
                np.testing.assert_array_equal(got_out[b, t, block], 0.0)
                np.testing.assert_array_equal(got_h[d, b], h[d, b])
            else:
                expected = np.tanh(gates[b, t, d] + rec[d, b] + bias[d])
                np.testing.assert_allclose(got_out[b, t, block], expected, rtol=1e-12)
                np.testing.assert_allclose(got_h[d, b], expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_block_sum_of_squares(dtype):
    rng = np.random.default_rng(4)
    values = rng.standard_normal(77).astype(dtype)
    mask = (rng.random(77) < 0.5).astype(np.uint8)
    status = cuda.to_device(np.zeros(ops.N_STATUS))
    ops.sum_squares[1, ops.REDUCE_THREADS](cuda.to_device(values), cuda.to_device(mask), True,
                                           status, ops.SQUARES, -1, 0.0)
    got = status.copy_to_host()[ops.SQUARES]
    np.testing.assert_allclose(got, np.sum(values.astype(np.float64)[mask != 0] ** 2),
                               rtol=1e-12)
