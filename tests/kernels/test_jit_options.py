"""Compiler options of the CPU kernels: ``noalias`` for the per-row cell functions, and
512-bit vectors for their loops."""

import numpy as np
from numba import njit

from numlstm.kernels.cpu import jit_options as _jit_options
from numlstm.kernels.cpu.cells import lstm_cell_backward


def test_row_options_add_noalias_where_numba_has_the_flag():
    options = _jit_options.row_options(cache=False)
    assert options["cache"] is False
    assert options.get("noalias", False) is _jit_options._NOALIAS
    # The numba this project pins has the flag: losing it silently would cost 2-5x.
    assert _jit_options._NOALIAS


def test_cell_rows_are_compiled_with_noalias():
    assert lstm_cell_backward.targetoptions.get("noalias") is True


def test_a_noalias_function_computes_what_a_plain_one_does():
    def axpy(x, y, out):
        for j in range(out.shape[0]):
            out[j] = 2.0 * x[j] + y[j]

    plain = njit(axpy)
    restricted = njit(**_jit_options.row_options())(axpy)
    x = np.arange(37, dtype=np.float32)
    y = np.ones(37, dtype=np.float32)
    a, b = np.empty_like(x), np.empty_like(x)
    plain(x, y, a)
    restricted(x, y, b)
    np.testing.assert_array_equal(a, b)


def test_wide_vectors_marks_the_function_and_changes_no_result():
    from numlstm.kernels.activations import sigmoid

    def gate(pre, out):
        for j in range(out.shape[0]):
            out[j] = sigmoid(pre[j]) * pre[j]

    def wide_gate(pre, out):
        _jit_options.wide_vectors()
        for j in range(out.shape[0]):
            out[j] = sigmoid(pre[j]) * pre[j]

    plain = njit(**_jit_options.row_options())(gate)
    wide = njit(**_jit_options.row_options())(wide_gate)
    pre = np.linspace(-9, 9, 1001, dtype=np.float32)
    a, b = np.empty_like(pre), np.empty_like(pre)
    plain(pre, a)
    wide(pre, b)
    np.testing.assert_array_equal(a, b)
    ir = next(iter(wide.inspect_llvm().values()))
    assert '"prefer-vector-width"="512"' in ir
    assert '"prefer-vector-width"' not in next(iter(plain.inspect_llvm().values()))
