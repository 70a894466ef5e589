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


def test_row_functions_round_each_operation_on_its_own():
    assert "contract" not in _jit_options.ROW_OPTIONS["fastmath"]
    assert "contract" in _jit_options.KERNEL_OPTIONS["fastmath"]


def test_a_process_that_compiles_the_kernels_computes_what_one_that_loads_them_does(
        tmp_path):
    """The copy of a cell inside a kernel and numba's own compile of it compute the same
    bits, whichever a process runs (it compiled the kernels, or loaded them from the
    cache); and training's forward equals inference's."""
    from helpers import run_twice_with_one_cache

    compiled, loaded = run_twice_with_one_cache(tmp_path, "cold_and_warm", """
        import hashlib
        import numpy as np
        from numlstm import LSTM

        layer = LSTM(3, 8, dtype=np.float64, random_state=0)
        x = np.random.default_rng(5).normal(size=(5, 7, 3))
        inferred, _ = layer.forward(x, requires_grad=False)
        out, _ = layer.forward(x)
        grads, dx = layer.backward(np.ones_like(out))
        print(np.array_equal(inferred, out))
        print(hashlib.sha256(out.tobytes() + dx.tobytes()
                             + b"".join(g.tobytes() for g in grads.values())).hexdigest())
    """)
    assert compiled[0] == loaded[0] == "True"
    assert compiled[1] == loaded[1]
