"""The float32 cells compute in float32: a double-precision literal in a row function
(``1.0 - x``) silently turns its arithmetic into float64, with a conversion of every value
there and back, several times slower and no more accurate where it is rounded back."""

import numba
import numpy as np
import pytest
from numba import njit

from numlstm.kernels.cpu import cells
from numlstm.kernels.cpu.jit_options import ROW_OPTIONS


_ROW_FUNCTIONS = ["lstm_cell_inference", "lstm_cell_training", "lstm_cell_backward",
                  "lstm_peephole_forward", "lstm_peephole_backward", "gru_cell_forward",
                  "gru_cell_backward", "rnn_tanh_forward", "rnn_tanh_backward",
                  "rnn_relu_forward", "rnn_relu_backward"]


@pytest.mark.parametrize("name", _ROW_FUNCTIONS)
def test_float32_cells_never_widen_to_float64(name):
    function = getattr(cells, name)
    n_args = function.py_func.__code__.co_argcount
    row = numba.float32[::1]
    signature = (row,) * n_args
    options = {key: value for key, value in ROW_OPTIONS.items() if key != "cache"}
    # A fresh compile: numba shows no IR for a function loaded from its cache.
    fresh = njit(signature, **options)(function.py_func)
    ir = fresh.inspect_llvm(signature)
    assert "fpext float" not in ir, f"{name} widens float32 values to float64"
    # The check can fail: the same loop with a double literal widens.
    if name == "rnn_tanh_backward":
        def widened(d_out, d_h, h_new, d_pre):
            for j in range(d_h.shape[0]):
                d_pre[j] = (d_h[j] + d_out[j]) * (1.0 - h_new[j] * h_new[j])

        plain = njit((row,) * 4, **options)(widened)
        assert "fpext float" in plain.inspect_llvm((row,) * 4)


@pytest.mark.parametrize("x", [np.float32(0.25), np.float64(0.25)])
def test_one_minus_keeps_the_float_type(x):
    from numlstm.kernels.activations import one_minus

    @njit
    def call(value):
        return one_minus(value)

    assert call(x) == 0.75
    assert call.nopython_signatures[0].return_type == numba.typeof(x)
