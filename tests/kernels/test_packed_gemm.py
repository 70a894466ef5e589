"""The register-blocked products of numlstm.kernels.cpu.packed_gemm against NumPy in float64."""

import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

from numlstm.kernels.cpu.packed_gemm import (K_BLOCK, MAX_TILE_ROWS, matmul_packed, matmul_packed2,
                                             matmul_tn, pack, pack_transposed, panel_width)


@njit
def _run(m, n, a, lda, packed, c, ldc, edge):
    matmul_packed(m, n, a.ctypes.data, lda, packed, c.ctypes.data, ldc, edge)


def _packed_for(w_t, dtype):
    """``w_t`` (N, K) packed as the right-hand matrix ``w_t.T`` of shape (K, N)."""
    n, k = w_t.shape
    width = panel_width(dtype)
    packed = np.full((-(-n // width), k, width), np.nan, dtype)
    pack_transposed(w_t, packed)
    return packed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 2, 5, 6, 7, 13, 16, 33])
# (600, 300): packed weights larger than L2, as at H >= 256.
@pytest.mark.parametrize("k, n", [(1, 1), (8, 12), (32, 128), (20, 80), (33, 100), (600, 300)])
def test_matmul_packed_adds_the_product(dtype, m, k, n):
    rng = np.random.default_rng(m * 100 + k + n)
    # Leading dimensions larger than the rows used: the kernels pass strided row blocks.
    a = rng.standard_normal((m, k + 3)).astype(dtype)
    w_t = rng.standard_normal((n, k)).astype(dtype)
    c = rng.standard_normal((m, n + 5)).astype(dtype)
    expected = c.astype(np.float64)
    expected[:, :n] += a[:, :k].astype(np.float64) @ w_t.T.astype(np.float64)
    edge = np.full((MAX_TILE_ROWS, panel_width(dtype)), np.nan, dtype)
    _run(m, n, a, a.shape[1], _packed_for(w_t, dtype), c, c.shape[1], edge)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * np.sqrt(k))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pack_and_pack_transposed_agree_and_pad_with_zeros(dtype):
    rng = np.random.default_rng(0)
    w_t = rng.standard_normal((45, 7)).astype(dtype)
    width = panel_width(dtype)
    a = _packed_for(w_t, dtype)
    b = np.full_like(a, np.nan)
    pack(np.ascontiguousarray(w_t.T), b)
    np.testing.assert_array_equal(a, b)
    flat = a.transpose(1, 0, 2).reshape(7, -1)
    np.testing.assert_array_equal(flat[:, :45], w_t.T)
    assert not np.any(flat[:, 45:]), "padding columns must be zero"
    assert a.shape == (-(-45 // width), 7, width)


def test_nan_in_the_input_reaches_the_output():
    # A diverging model must show NaN, not have it masked by the tiles.
    dtype = np.float32
    a = np.ones((3, 4), dtype)
    a[1, 2] = np.nan
    w_t = np.ones((40, 4), dtype)
    c = np.zeros((3, 40), dtype)
    _run(3, 40, a, 4, _packed_for(w_t, dtype), c, 40,
         np.empty((MAX_TILE_ROWS, panel_width(dtype)), dtype))
    assert np.isnan(c[1]).all()
    assert np.isfinite(c[[0, 2]]).all()


@njit
def _run_tn(m, n, k, a, b, c, edge, edge_panel):
    matmul_tn(m, n, k, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], c.ctypes.data,
              c.shape[1], edge, edge_panel)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# (13, 300, 250) and (130, 300, 250): enough panels that matmul_tn copies A (see
# _REPACK_FROM_PASSES), in one row group and in two.
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (7, 8, 50), (128, 32, 1600), (20, 45, 333),
                                     (12, 70, 17), (13, 300, 250), (130, 300, 250)])
@pytest.mark.parametrize("k_rows", [16, 64])
def test_matmul_tn_adds_the_transposed_product(dtype, m, n, k, k_rows):
    rng = np.random.default_rng(m + n + k)
    # Wider rows than used, as when the kernels pass a block of columns.
    a = rng.standard_normal((k, m + 2)).astype(dtype)
    b = rng.standard_normal((k, n + 3)).astype(dtype)
    c = rng.standard_normal((m, n + 1)).astype(dtype)
    expected = c.astype(np.float64)
    expected[:, :n] += a[:, :m].T.astype(np.float64) @ b[:, :n].astype(np.float64)
    width = panel_width(dtype)
    edge = np.full((MAX_TILE_ROWS, width), np.nan, dtype)
    edge_panel = np.full((k_rows, width), np.nan, dtype)
    _run_tn(m, n, k, a, b, c, edge, edge_panel)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * np.sqrt(k))


def test_matmul_tn_blocks_of_k_add_up():
    # More rows of K than one block, and a row count that is not a multiple of it.
    dtype = np.float64
    k = 2 * K_BLOCK + 37
    rng = np.random.default_rng(1)
    a = rng.standard_normal((k, 130))
    b = rng.standard_normal((k, 40))
    c = np.zeros((130, 40))
    width = panel_width(dtype)
    _run_tn(130, 40, k, a, b, c, np.empty((MAX_TILE_ROWS, width)),
            np.empty((K_BLOCK, width)))
    np.testing.assert_allclose(c, a.T @ b, rtol=1e-12, atol=1e-12)


def test_tile_heights_cover_every_row_with_little_repeated_work():
    from numlstm.kernels.cpu.packed_gemm import _SHORT_TILE_ROWS, _block_rows

    for m in range(1, 200):
        heights, left = [], m
        while left:
            rows = _block_rows(left)
            assert 1 <= rows <= min(left, MAX_TILE_ROWS)
            heights.append(rows)
            left -= rows
        work = sum(MAX_TILE_ROWS if h > _SHORT_TILE_ROWS else _SHORT_TILE_ROWS
                   for h in heights)
        # Even row counts of 4 or more never compute a repeated row; odd ones at most one
        # (two for a single leftover row below four).
        if m % 2 == 0 and m >= 4:
            assert work == m, (m, heights)
        else:
            assert work - m <= 3, (m, heights)


@njit
def _run2(m, n, a, packed, a2, packed2, c, edge):
    matmul_packed2(m, n, a.ctypes.data, a.shape[1], packed, a2.ctypes.data, a2.shape[1],
                   packed2, c.ctypes.data, c.shape[1], edge)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, k2, n", [(1, 3, 5, 4), (7, 8, 32, 128), (32, 33, 20, 100),
                                         (16, 1, 64, 256), (13, 300, 400, 260)])
def test_matmul_packed2_overwrites_with_both_products(dtype, m, k, k2, n):
    rng = np.random.default_rng(m + k + k2 + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    a2 = rng.standard_normal((m, k2)).astype(dtype)
    w_t = rng.standard_normal((n, k)).astype(dtype)
    w2_t = rng.standard_normal((n, k2)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)  # overwritten: NaN must not survive
    _run2(m, n, a, _packed_for(w_t, dtype), a2, _packed_for(w2_t, dtype), c,
          np.full((MAX_TILE_ROWS, panel_width(dtype)), np.nan, dtype))
    expected = (a.astype(np.float64) @ w_t.T.astype(np.float64)
                + a2.astype(np.float64) @ w2_t.T.astype(np.float64))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * np.sqrt(k + k2))


_OTHER_TARGET_SCRIPT = r"""
import numpy as np
import torch
from numlstm import LSTM, GRU
from numlstm.kernels.cpu.packed_gemm import (_TILE_PANELS, K_BLOCK, MAX_TILE_ROWS, matmul_tn,
                                             panel_width)

assert panel_width(np.float32) == 16 and panel_width(np.float64) == 8, panel_width(np.float32)
# AVX2's 16 registers hold the one-panel tile only.
assert _TILE_PANELS == 1, _TILE_PANELS
# The weight gradients' product with enough panels to copy A, over two row groups.
rng = np.random.default_rng(1)
a, b = rng.standard_normal((250, 130)), rng.standard_normal((250, 300))
c = np.zeros((130, 300))
matmul_tn(130, 300, 250, a.ctypes.data, 130, b.ctypes.data, 300, c.ctypes.data, 300,
          np.zeros((MAX_TILE_ROWS, 8)), np.zeros((K_BLOCK, 8)))
np.testing.assert_allclose(c, a.T @ b, rtol=1e-12, atol=1e-12)
torch.manual_seed(0)
for cls, ref in ((LSTM, torch.nn.LSTM), (GRU, torch.nn.GRU)):
    module = ref(5, 21, num_layers=2, bidirectional=True, batch_first=True).double()
    layer = cls.from_torch(module)
    x = np.random.default_rng(0).standard_normal((13, 7, 5))
    out, _ = layer.forward(x)
    _, dx = layer.backward(np.ones_like(out))
    xt = torch.from_numpy(x).requires_grad_(True)
    out_t, _ = module(xt)
    out_t.sum().backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    single = cls(5, 21, num_layers=2, bidirectional=True, dtype=np.float32)
    single.load_state_dict(layer.state_dict())
    out32, _ = single.forward(x.astype(np.float32))
    _, dx32 = single.backward(np.ones_like(out32))
    np.testing.assert_allclose(out32, out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx32, dx, rtol=1e-4, atol=1e-4)
print("ok")
"""


def test_kernels_compiled_for_an_avx2_cpu_match_torch(tmp_path):
    # The tiles take their vector width from the CPU numba compiles for: 32 bytes without
    # AVX-512, a layout this (AVX-512) machine would otherwise never run. numba's cache
    # keys on the target, and the child gets an empty one.
    pytest.importorskip("torch")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), NUMBA_CPU_NAME="haswell",
               NUMBA_CPU_FEATURES="+avx,+avx2,+fma,+sse4.2,+popcnt,+f16c,+bmi,+bmi2")
    done = subprocess.run([sys.executable, "-c", _OTHER_TARGET_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 100, 128, 300])
@pytest.mark.parametrize("alone", [1, 2])
def test_one_or_two_rows_give_the_rows_of_a_taller_product_bit_for_bit(dtype, n, alone):
    # One or two rows run tiles that cover several panels at once (a step of one or two
    # sequences); each element must still sum its products in the same order as in the
    # taller tiles, or a sequence's outputs would depend on the batch it came in.
    rng = np.random.default_rng(n + alone)
    k, k2, m = 37, 64, 7
    a = rng.standard_normal((m, k)).astype(dtype)
    a2 = rng.standard_normal((m, k2)).astype(dtype)
    packed = _packed_for(rng.standard_normal((n, k)).astype(dtype), dtype)
    packed2 = _packed_for(rng.standard_normal((n, k2)).astype(dtype), dtype)
    start = rng.standard_normal((m, n)).astype(dtype)

    def products(rows):
        edge = np.full((MAX_TILE_ROWS, panel_width(dtype)), np.nan, dtype)
        added = start[rows].copy()
        _run(added.shape[0], n, np.ascontiguousarray(a[rows]), k, packed, added, n, edge)
        both = np.full((added.shape[0], n), np.nan, dtype)
        _run2(added.shape[0], n, np.ascontiguousarray(a[rows]), packed,
              np.ascontiguousarray(a2[rows]), packed2, both, edge)
        return added, both

    tall_added, tall_both = products(slice(0, m))
    for first in range(m - alone + 1):
        added, both = products(slice(first, first + alone))
        np.testing.assert_array_equal(added, tall_added[first:first + alone])
        np.testing.assert_array_equal(both, tall_both[first:first + alone])


def test_the_weight_gradient_block_follows_the_l1_cache():
    from numlstm.kernels.cpu.packed_gemm import (_k_block_rows, _l1_data_cache_bytes,
                                                 _parse_cache_size)

    assert _parse_cache_size("48K") == 48 * 1024
    assert _parse_cache_size("1M") == 1024 ** 2
    assert _parse_cache_size("n/a") is None
    # A third of L1 for a panel block, in multiples of 16 rows within [64, 256].
    assert _k_block_rows(48 * 1024, 128) == 128   # AVX-512, 48 KiB (measured best)
    assert _k_block_rows(32 * 1024, 128) == 80    # AVX-512, 32 KiB
    assert _k_block_rows(32 * 1024, 64) == 160    # AVX2, 32 KiB
    assert _k_block_rows(1024 ** 2, 128) == 256
    assert _k_block_rows(4 * 1024, 128) == 64
    assert _l1_data_cache_bytes() >= 4 * 1024
    assert 64 <= K_BLOCK <= 256 and K_BLOCK % 16 == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_rows_leave_the_destination_untouched(dtype):
    # A batch slice without rows: neither product may write a row of C.
    rng = np.random.default_rng(5)
    w_t = rng.standard_normal((128, 32)).astype(dtype)
    packed = _packed_for(w_t, dtype)
    a = rng.standard_normal((4, 32)).astype(dtype)
    c = np.full((4, 128), 7.0, dtype)
    edge = np.empty((MAX_TILE_ROWS, panel_width(dtype)), dtype)
    _run(0, 128, a, 32, packed, c, 128, edge)
    _run2(0, 128, a, packed, a, packed, c, edge)
    np.testing.assert_array_equal(c, 7.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiles_over_a_group_of_panels_give_each_panel_alone_bit_for_bit(dtype):
    # With AVX-512 a tile spans two panels; each column must still sum its products in the
    # order of the one-panel tile, which a product one panel wide runs: in all three
    # products (matmul_tn also reads A in place or from its copy by the panel count).
    rng = np.random.default_rng(3)
    nr = panel_width(dtype)
    m, k, k2 = 17, 37, 23
    n = 9 * nr + 5
    a, a2 = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((m, k2)).astype(dtype)
    w, w2 = rng.standard_normal((k, n)).astype(dtype), rng.standard_normal((k2, n)).astype(dtype)
    edge = np.zeros((MAX_TILE_ROWS, nr), dtype)
    edge_panel = np.zeros((K_BLOCK, nr), dtype)
    n_panels = (n + nr - 1) // nr
    packed, packed2 = np.zeros((n_panels, k, nr), dtype), np.zeros((n_panels, k2, nr), dtype)
    pack(w, packed)
    pack(w2, packed2)
    whole = np.zeros((m, n), dtype)
    whole2 = np.zeros((m, n), dtype)
    matmul_packed(m, n, a.ctypes.data, k, packed, whole.ctypes.data, n, edge)
    matmul_packed2(m, n, a.ctypes.data, k, packed, a2.ctypes.data, k2, packed2,
                   whole2.ctypes.data, n, edge)
    # A^T @ B with A = a.T (rows of k) and B = w.
    a_t = np.ascontiguousarray(a.T)
    whole_tn = np.zeros((m, n), dtype)
    matmul_tn(m, n, k, a_t.ctypes.data, m, w.ctypes.data, n, whole_tn.ctypes.data, n, edge,
              edge_panel)
    for p in range(n_panels):
        cols = min(nr, n - p * nr)
        panel, panel2 = packed[p:p + 1].copy(), packed2[p:p + 1].copy()
        alone = np.zeros((m, cols), dtype)
        matmul_packed(m, cols, a.ctypes.data, k, panel, alone.ctypes.data, cols, edge)
        assert np.array_equal(alone, whole[:, p * nr:p * nr + cols]), p
        alone = np.zeros((m, cols), dtype)
        matmul_packed2(m, cols, a.ctypes.data, k, panel, a2.ctypes.data, k2, panel2,
                       alone.ctypes.data, cols, edge)
        assert np.array_equal(alone, whole2[:, p * nr:p * nr + cols]), p
        w_cols = np.ascontiguousarray(w[:, p * nr:p * nr + cols])
        alone = np.zeros((m, cols), dtype)
        matmul_tn(m, cols, k, a_t.ctypes.data, m, w_cols.ctypes.data, cols, alone.ctypes.data,
                  cols, edge, edge_panel)
        assert np.array_equal(alone, whole_tn[:, p * nr:p * nr + cols]), p
    np.testing.assert_allclose(whole, a.astype(np.float64) @ w, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(whole2, a.astype(np.float64) @ w + a2.astype(np.float64) @ w2,
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(whole_tn, whole, rtol=1e-4, atol=1e-4)
