"""Per-row cell math of the CPU kernels: one step of one sequence, for each cell.

Each function works on 1-D rows (one sequence's gates and states), simple enough for LLVM
to vectorise over the hidden units; the sweeps of :mod:`numlstm.kernels.cpu.recurrent` call
them row by row. Array layouts are described there.
"""

from numba import njit

from ..activations import one_minus, sigmoid, tanh
from .jit_options import KERNEL_OPTIONS, ROW_OPTIONS, wide_vectors

_JIT = KERNEL_OPTIONS
_ROW_JIT = ROW_OPTIONS


@njit(**_JIT)
def copy_row(src, dst):
    """``dst[:] = src`` for rows of equal length. An explicit loop: numba's slice
    assignment adds a shape check whose error path (a formatted message) costs seconds of
    compile time for every kernel that uses it."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@njit(**_JIT)
def add_row(src, dst):
    """``dst[:] += src`` for rows of equal length. A function of its own: written inline
    in a loop over rows, the same loop stayed scalar (numba cannot tell LLVM that the two
    rows never overlap there), ten times slower for the bias gradients of 1,024 gate
    columns; here it is vectorised, and each element is still added in row order."""
    for j in range(dst.shape[0]):
        dst[j] += src[j]


@njit(**_JIT)
def copy_rows(src, dst, b0, b1):
    """``dst[:, b0:b1] = src[:, b0:b1]`` for (D, B, n) states (see :func:`copy_row`)."""
    for d in range(dst.shape[0]):
        for b in range(b0, b1):
            copy_row(src[d, b], dst[d, b])


# ------------------------------------------------------------------ per-row cell math
# Every row loop takes its trip count from the state row it writes (``h``, or ``d_h`` going
# backward): with the count taken from ``c``, LLVM left the LSTM loops scalar (measured
# 40% slower training forward at H=32, 2.7x slower peephole inference at H=128).
@njit(**_ROW_JIT)
def lstm_cell_inference(pre, bias, h, c, h_out):
    """One LSTM step of one sequence: gate math and cell update of ``h``/``c`` in place,
    and the new ``h`` also written to the output row ``h_out`` (one pass, no copy loop).

    ``pre`` holds the gate pre-activations without bias (blocks i, f, g, o of H each).
    Working on 1-D rows keeps the loop simple enough for the compiler to vectorise.
    """
    wide_vectors()
    hidden = h.shape[0]
    for j in range(hidden):
        i_gate = sigmoid(pre[j] + bias[j])
        f_gate = sigmoid(pre[hidden + j] + bias[hidden + j])
        g_gate = tanh(pre[2 * hidden + j] + bias[2 * hidden + j])
        o_gate = sigmoid(pre[3 * hidden + j] + bias[3 * hidden + j])
        c_new = f_gate * c[j] + i_gate * g_gate
        c[j] = c_new
        h_new = o_gate * tanh(c_new)
        h[j] = h_new
        h_out[j] = h_new


@njit(**_ROW_JIT)
def lstm_cell_training(pre, bias, h, c, h_out):
    """Like :func:`lstm_cell_inference`, and ``pre`` becomes the activated gates (what the
    backward pass needs). A separate loop rather than a flag: a runtime branch on the
    stores inside the loop kept the compiler from vectorising (measured 4x slower at H=32).
    """
    wide_vectors()
    hidden = h.shape[0]
    for j in range(hidden):
        c_old = c[j]
        i_gate = sigmoid(pre[j] + bias[j])
        f_gate = sigmoid(pre[hidden + j] + bias[hidden + j])
        g_gate = tanh(pre[2 * hidden + j] + bias[2 * hidden + j])
        o_gate = sigmoid(pre[3 * hidden + j] + bias[3 * hidden + j])
        c_new = f_gate * c_old + i_gate * g_gate
        c[j] = c_new
        h_new = o_gate * tanh(c_new)
        h[j] = h_new
        h_out[j] = h_new
        pre[j] = i_gate
        pre[hidden + j] = f_gate
        pre[2 * hidden + j] = g_gate
        pre[3 * hidden + j] = o_gate


@njit(**_ROW_JIT)
def lstm_peephole_forward(pre, bias, p_i, p_f, p_o, h, c):
    """LSTM step with peepholes: ``i``/``f`` see ``c_{t-1}`` (weights ``p_i``/``p_f``), ``o``
    sees ``c_t`` (``p_o``). ``pre`` becomes the activated gates (harmless scratch stores
    when only inferring: one loop serves both).
    """
    wide_vectors()
    hidden = h.shape[0]
    for j in range(hidden):
        c_old = c[j]
        i_gate = sigmoid(pre[j] + bias[j] + p_i[j] * c_old)
        f_gate = sigmoid(pre[hidden + j] + bias[hidden + j] + p_f[j] * c_old)
        g_gate = tanh(pre[2 * hidden + j] + bias[2 * hidden + j])
        c_new = f_gate * c_old + i_gate * g_gate
        o_gate = sigmoid(pre[3 * hidden + j] + bias[3 * hidden + j] + p_o[j] * c_new)
        c[j] = c_new
        h[j] = o_gate * tanh(c_new)
        pre[j] = i_gate
        pre[hidden + j] = f_gate
        pre[2 * hidden + j] = g_gate
        pre[3 * hidden + j] = o_gate


@njit(**_ROW_JIT)
def gru_cell_forward(pre, rec, bias, bias_hn, h, rec_n):
    """One GRU step of one sequence, ``h`` updated in place.

    ``pre`` is the input projection (r, z, n blocks, no bias) and becomes the activated
    gates; ``rec`` is the recurrent product ``W_hh h`` (no bias); ``rec_n`` receives
    ``W_hn h + b_hn``, which the backward pass needs.
    """
    wide_vectors()
    hidden = h.shape[0]
    for j in range(hidden):
        r_gate = sigmoid(pre[j] + rec[j] + bias[j])
        z_gate = sigmoid(pre[hidden + j] + rec[hidden + j] + bias[hidden + j])
        a = rec[2 * hidden + j] + bias_hn[j]
        n_gate = tanh(pre[2 * hidden + j] + bias[2 * hidden + j] + r_gate * a)
        h[j] = n_gate + z_gate * (h[j] - n_gate)
        pre[j] = r_gate
        pre[hidden + j] = z_gate
        pre[2 * hidden + j] = n_gate
        rec_n[j] = a


@njit(**_ROW_JIT)
def rnn_tanh_forward(pre, bias, h):
    """One tanh RNN step: ``pre`` (input and recurrent products) becomes ``h``, and ``h``."""
    wide_vectors()
    for j in range(h.shape[0]):
        v = tanh(pre[j] + bias[j])
        h[j] = v
        pre[j] = v


@njit(**_ROW_JIT)
def rnn_relu_forward(pre, bias, h):
    """One ReLU RNN step, like :func:`rnn_tanh_forward` (NaN stays NaN, as in PyTorch)."""
    wide_vectors()
    for j in range(h.shape[0]):
        v = pre[j] + bias[j]
        v = v if v > 0.0 else v * 0.0
        h[j] = v
        pre[j] = v


@njit(**_ROW_JIT)
def lstm_cell_backward(gates, c_prev, d_out, d_h, d_c, d_pre):
    """Gradients through one LSTM step of one sequence.

    ``gates`` are the activated gates of the step, ``c_prev`` the cell state it started
    from; ``d_h``/``d_c`` carry the gradient w.r.t. the state after the step in (``d_h`` is
    added to ``d_out``) and ``d_c`` is updated in place to the gradient w.r.t. ``c_prev``.
    ``d_pre`` receives the gradient w.r.t. the gate pre-activations.
    """
    wide_vectors()
    hidden = d_h.shape[0]
    for j in range(hidden):
        i_gate = gates[j]
        f_gate = gates[hidden + j]
        g_gate = gates[2 * hidden + j]
        o_gate = gates[3 * hidden + j]
        c_new = f_gate * c_prev[j] + i_gate * g_gate
        tc = tanh(c_new)
        dh = d_h[j] + d_out[j]
        dc = d_c[j] + dh * o_gate * one_minus(tc * tc)
        d_pre[j] = dc * g_gate * i_gate * one_minus(i_gate)
        d_pre[hidden + j] = dc * c_prev[j] * f_gate * one_minus(f_gate)
        d_pre[2 * hidden + j] = dc * i_gate * one_minus(g_gate * g_gate)
        d_pre[3 * hidden + j] = dh * tc * o_gate * one_minus(o_gate)
        d_c[j] = dc * f_gate


@njit(**_ROW_JIT)
def lstm_peephole_backward(gates, c_prev, p_i, p_f, p_o, d_out, d_h, d_c, d_pre,
                           dp_i, dp_f, dp_o):
    """Like :func:`lstm_cell_backward` for :func:`lstm_peephole_forward`; the peephole
    weight gradients of this row and step are added to ``dp_i``, ``dp_f``, ``dp_o``.
    """
    wide_vectors()
    hidden = d_h.shape[0]
    for j in range(hidden):
        i_gate = gates[j]
        f_gate = gates[hidden + j]
        g_gate = gates[2 * hidden + j]
        o_gate = gates[3 * hidden + j]
        c_old = c_prev[j]
        c_new = f_gate * c_old + i_gate * g_gate
        tc = tanh(c_new)
        dh = d_h[j] + d_out[j]
        do_pre = dh * tc * o_gate * one_minus(o_gate)
        dc = d_c[j] + dh * o_gate * one_minus(tc * tc) + do_pre * p_o[j]
        di_pre = dc * g_gate * i_gate * one_minus(i_gate)
        df_pre = dc * c_old * f_gate * one_minus(f_gate)
        d_pre[j] = di_pre
        d_pre[hidden + j] = df_pre
        d_pre[2 * hidden + j] = dc * i_gate * one_minus(g_gate * g_gate)
        d_pre[3 * hidden + j] = do_pre
        d_c[j] = dc * f_gate + di_pre * p_i[j] + df_pre * p_f[j]
        dp_i[j] += di_pre * c_old
        dp_f[j] += df_pre * c_old
        dp_o[j] += do_pre * c_new


@njit(**_ROW_JIT)
def gru_cell_backward(gates, rec_n, h_prev, d_out, d_h, d_pre, d_rec):
    """Gradients through one GRU step of one sequence.

    ``d_pre`` receives the gradient w.r.t. the input-side pre-activations (and ``b_ih``),
    ``d_rec`` w.r.t. the recurrent ones ``W_hh h + b_hh`` (they differ in the n block, which
    the reset gate scales). ``d_h`` becomes the direct part ``dh * z`` of the gradient
    w.r.t. ``h_prev``; the caller adds ``d_rec @ W_hh``.
    """
    wide_vectors()
    hidden = d_h.shape[0]
    for j in range(hidden):
        r_gate = gates[j]
        z_gate = gates[hidden + j]
        n_gate = gates[2 * hidden + j]
        dh = d_h[j] + d_out[j]
        dn_pre = dh * one_minus(z_gate) * one_minus(n_gate * n_gate)
        dz_pre = dh * (h_prev[j] - n_gate) * z_gate * one_minus(z_gate)
        dr_pre = dn_pre * rec_n[j] * r_gate * one_minus(r_gate)
        d_pre[j] = dr_pre
        d_pre[hidden + j] = dz_pre
        d_pre[2 * hidden + j] = dn_pre
        d_rec[j] = dr_pre
        d_rec[hidden + j] = dz_pre
        d_rec[2 * hidden + j] = dn_pre * r_gate
        d_h[j] = dh * z_gate


@njit(**_ROW_JIT)
def rnn_tanh_backward(h_new, d_out, d_h, d_pre):
    wide_vectors()
    for j in range(d_h.shape[0]):
        d_pre[j] = (d_h[j] + d_out[j]) * one_minus(h_new[j] * h_new[j])


@njit(**_ROW_JIT)
def rnn_relu_backward(h_new, d_out, d_h, d_pre):
    wide_vectors()
    for j in range(d_h.shape[0]):
        d_pre[j] = d_h[j] + d_out[j] if h_new[j] > 0.0 else 0.0
