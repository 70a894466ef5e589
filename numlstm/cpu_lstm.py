"""CPU kernels: one LSTM layer (one or two directions), forward and backward through time.

Work split (the one cuDNN uses):

1. the input projection of all timesteps is one large matrix product;
2. per timestep, one recurrent product ``h_{t-1} @ W_hh^T`` is *accumulated* into that
   projection by BLAS (``beta=1``), then one fused loop applies bias, gate nonlinearities
   and the cell update;
3. in the backward sweep, per timestep, one fused loop forms the gate gradients and one
   product carries ``dh`` back through ``W_hh``;
4. the weight gradients and the input gradient are large products over all timesteps after
   the sweep.

Parallelism is coarse: the batch is cut into one slice per thread (``chunk_bounds``) and each
thread runs the whole time loop of its slice, with single-threaded BLAS inside (the caller
limits BLAS threads; see :mod:`numlstm._backend`). Rows never interact, so the slices need
no synchronisation. A fork-join per timestep would cost far more than the step itself.

Array layout (batch first, like the user's data, so a slice of rows is one contiguous block):

* ``x``: (B, T, I) layer input; ``out``: (B, T, D*H), direction ``d`` in columns
  ``d*H:(d+1)*H``, zero at padded steps;
* ``W_ih``: (D, 4H, I), ``W_hh``: (D, 4H, H), ``bias``: (D, 4H) = ``b_ih + b_hh``;
  gate order i, f, g, o as in PyTorch;
* ``h0``, ``c0``, ``h_n``, ``c_n``: (D, B, H);
* training caches: ``gates`` (D, B, T, 4H) activated gate values, ``h_prev``/``c_prev``
  (D, B, T, H) the state each step started from.

Ragged batches: row ``b`` is valid at steps ``t < lengths[b]``. Padded steps leave the state
untouched and get no gradient, so the forward direction's final state is the one at its own
last valid step, and the reverse direction starts from its own last valid step (the semantics
of PyTorch's packed sequences).
"""

import numpy as np
from numba import njit, prange

from ._activations import sigmoid, tanh
from ._blas import gemm, new_gemm_scratch

__all__ = ["step_order", "lstm_layer_backward", "lstm_layer_backward_rows", "lstm_layer_forward",
           "lstm_layer_forward_rows"]

# Fast-math without the no-NaN/no-inf assumptions: a diverging model must still show NaN.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
# error_model="numpy": division without a zero check, which otherwise blocks vectorisation.
_JIT = dict(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")


@njit(**_JIT)
def _project_inputs(x, W_ih, d, b0, b1, dest, ld_dest, scratch):
    """``dest[rows b0:b1, all t] = x[b0:b1] @ W_ih[d]^T`` as one product."""
    n_rows = (b1 - b0) * x.shape[1]
    if n_rows == 0:
        return
    in_size = x.shape[2]
    four_h = W_ih.shape[1]
    gemm(False, True, n_rows, four_h, in_size, 1.0,
         x[b0:].ctypes.data, in_size, W_ih[d].ctypes.data, in_size,
         0.0, dest, ld_dest, scratch)


@njit(**_JIT)
def step_order(t_index, n_steps, reverse):
    """Timestep processed at position ``t_index`` of a sweep (shared with the CUDA kernels)."""
    return n_steps - 1 - t_index if reverse else t_index


@njit(**_JIT)
def _lstm_cell_forward(pre, bias, h, c):
    """One LSTM step of one sequence: gate math and cell update of ``h``/``c`` in place.

    ``pre`` holds the gate pre-activations without bias (blocks i, f, g, o of H each).
    Working on 1-D rows, with no stores besides the state, keeps the loop simple enough
    for the compiler to vectorise.
    """
    hidden = h.shape[0]
    for j in range(hidden):
        i_gate = sigmoid(pre[j] + bias[j])
        f_gate = sigmoid(pre[hidden + j] + bias[hidden + j])
        g_gate = tanh(pre[2 * hidden + j] + bias[2 * hidden + j])
        o_gate = sigmoid(pre[3 * hidden + j] + bias[3 * hidden + j])
        c_new = f_gate * c[j] + i_gate * g_gate
        c[j] = c_new
        h[j] = o_gate * tanh(c_new)


@njit(**_JIT)
def _lstm_cell_forward_keep(pre, bias, h, c):
    """Like :func:`_lstm_cell_forward`, and ``pre`` becomes the activated gates.

    A separate loop rather than a flag: a runtime branch on the stores inside the loop kept
    the compiler from vectorising the inference path (measured 4x slower at H=32).
    """
    hidden = h.shape[0]
    for j in range(hidden):
        i_gate = sigmoid(pre[j] + bias[j])
        f_gate = sigmoid(pre[hidden + j] + bias[hidden + j])
        g_gate = tanh(pre[2 * hidden + j] + bias[2 * hidden + j])
        o_gate = sigmoid(pre[3 * hidden + j] + bias[3 * hidden + j])
        c_new = f_gate * c[j] + i_gate * g_gate
        c[j] = c_new
        h[j] = o_gate * tanh(c_new)
        pre[j] = i_gate
        pre[hidden + j] = f_gate
        pre[2 * hidden + j] = g_gate
        pre[3 * hidden + j] = o_gate


@njit(**_JIT)
def _forward_rows(x, lengths, W_ih, W_hh, bias, h_n, c_n, out,
                  gates, h_prev, c_prev, store, d, b0, b1, scratch):
    """Run direction ``d`` over rows ``b0:b1`` for all timesteps.

    ``h_n``/``c_n`` hold the initial state on entry and the final state on exit. With
    ``store`` the activated gates and the state each step started from are kept for the
    backward pass; otherwise ``gates[0]`` is only scratch for the pre-activations.
    """
    n_steps = x.shape[1]
    hidden = W_hh.shape[2]
    four_h = 4 * hidden
    reverse = d == 1
    g = gates[d] if store else gates[0]
    _project_inputs(x, W_ih, d, b0, b1, g[b0:].ctypes.data, four_h, scratch)
    w_hh = W_hh[d].ctypes.data
    for s in range(n_steps):
        t = step_order(s, n_steps, reverse)
        if store:
            for b in range(b0, b1):
                for j in range(hidden):
                    h_prev[d, b, t, j] = h_n[d, b, j]
                    c_prev[d, b, t, j] = c_n[d, b, j]
            h_src = h_prev[d, b0:, t].ctypes.data
            ld_h = n_steps * hidden
        else:
            h_src = h_n[d, b0:].ctypes.data
            ld_h = hidden
        gemm(False, True, b1 - b0, four_h, hidden, 1.0, h_src, ld_h, w_hh, hidden,
             1.0, g[b0:, t].ctypes.data, n_steps * four_h, scratch)
        col = d * hidden
        for b in range(b0, b1):
            h_out = out[b, t][col:col + hidden]
            if t >= lengths[b]:
                h_out[:] = 0.0
                continue
            if store:
                _lstm_cell_forward_keep(g[b, t], bias[d], h_n[d, b], c_n[d, b])
            else:
                _lstm_cell_forward(g[b, t], bias[d], h_n[d, b], c_n[d, b])
            h_out[:] = h_n[d, b]


@njit(**_JIT)
def lstm_layer_forward_rows(x, lengths, W_ih, W_hh, bias, h0, c0, out, h_n, c_n,
                            gates, h_prev, c_prev, store, b0, b1):
    """Both directions of one layer over rows ``b0:b1``: one thread's share, or the whole
    batch when a single thread runs it (no parallel region to start).
    """
    h_n[:, b0:b1] = h0[:, b0:b1]
    c_n[:, b0:b1] = c0[:, b0:b1]
    scratch = new_gemm_scratch(x)
    for d in range(W_hh.shape[0]):
        _forward_rows(x, lengths, W_ih, W_hh, bias, h_n, c_n, out,
                      gates, h_prev, c_prev, store, d, b0, b1, scratch)


@njit(parallel=True, **_JIT)
def lstm_layer_forward(x, lengths, W_ih, W_hh, bias, h0, c0, out, h_n, c_n,
                       gates, h_prev, c_prev, store, chunk_bounds):
    """Forward pass of one layer, one batch slice per thread.

    Parameters
    ----------
    x : ndarray (B, T, I)
    lengths : int64 ndarray (B,), each in [1, T]
    W_ih, W_hh, bias : ndarrays (D, 4H, I), (D, 4H, H), (D, 4H)
    h0, c0 : ndarrays (D, B, H)
    out : ndarray (B, T, D*H), written
    h_n, c_n : ndarrays (D, B, H), written
    gates : ndarray (D, B, T, 4H), written (activated i, f, g, o); with ``store=False``
        only ``gates[0]`` is used, as scratch
    h_prev, c_prev : ndarrays (D, B, T, H), written when ``store``
    store : bool
        Keep what the backward pass needs (training) or not (inference).
    chunk_bounds : int64 ndarray (n_chunks + 1,), batch slice of each thread
    """
    for chunk in prange(chunk_bounds.shape[0] - 1):
        lstm_layer_forward_rows(x, lengths, W_ih, W_hh, bias, h0, c0, out, h_n, c_n, gates,
                                h_prev, c_prev, store, chunk_bounds[chunk],
                                chunk_bounds[chunk + 1])


@njit(**_JIT)
def _lstm_cell_backward(gates, c_prev, d_out, d_h, d_c, d_pre):
    """Gradients through one LSTM step of one sequence.

    ``gates`` are the activated gates of the step, ``c_prev`` the cell state it started
    from; ``d_h``/``d_c`` carry the gradient w.r.t. the state after the step in (``d_h`` is
    added to ``d_out``) and ``d_c`` is updated in place to the gradient w.r.t. ``c_prev``.
    ``d_pre`` receives the gradient w.r.t. the gate pre-activations.
    """
    hidden = d_h.shape[0]
    for j in range(hidden):
        i_gate = gates[j]
        f_gate = gates[hidden + j]
        g_gate = gates[2 * hidden + j]
        o_gate = gates[3 * hidden + j]
        c_new = f_gate * c_prev[j] + i_gate * g_gate
        tc = tanh(c_new)
        dh = d_h[j] + d_out[j]
        dc = d_c[j] + dh * o_gate * (1.0 - tc * tc)
        d_pre[j] = dc * g_gate * i_gate * (1.0 - i_gate)
        d_pre[hidden + j] = dc * c_prev[j] * f_gate * (1.0 - f_gate)
        d_pre[2 * hidden + j] = dc * i_gate * (1.0 - g_gate * g_gate)
        d_pre[3 * hidden + j] = dh * tc * o_gate * (1.0 - o_gate)
        d_c[j] = dc * f_gate


@njit(**_JIT)
def _backward_rows(lengths, W_hh, gates, c_prev, d_out, d_gates, d_h, d_c, carry,
                   d, b0, b1, scratch):
    """Backward sweep of direction ``d`` over rows ``b0:b1``.

    ``d_h``/``d_c`` hold the gradients w.r.t. the final state on entry and w.r.t. the initial
    state on exit; ``carry`` is (b1-b0, H) scratch for the recurrent product.
    """
    n_steps = gates.shape[2]
    hidden = W_hh.shape[2]
    four_h = 4 * hidden
    reverse = d == 1
    col = d * hidden
    dg_dir = d_gates[d]
    w_hh = W_hh[d].ctypes.data
    for s in range(n_steps - 1, -1, -1):
        t = step_order(s, n_steps, reverse)
        for b in range(b0, b1):
            if t >= lengths[b]:
                dg_dir[b, t][:] = 0.0
                continue
            _lstm_cell_backward(gates[d, b, t], c_prev[d, b, t], d_out[b, t][col:col + hidden],
                                d_h[d, b], d_c[d, b], dg_dir[b, t])
        gemm(False, False, b1 - b0, hidden, four_h, 1.0,
             dg_dir[b0:, t].ctypes.data, n_steps * four_h, w_hh, hidden,
             0.0, carry.ctypes.data, hidden, scratch)
        for b in range(b0, b1):
            if t < lengths[b]:
                d_h[d, b][:] = carry[b - b0]


@njit(**_JIT)
def _weight_gradients(x, W_ih, h_prev, d_gates, dx, dW_ih, dW_hh, d_bias, d, b0, b1,
                      scratch):
    """Accumulate this slice's weight gradients and its input gradient for direction d."""
    n_steps = x.shape[1]
    in_size = x.shape[2]
    hidden = h_prev.shape[3]
    four_h = 4 * hidden
    n_rows = (b1 - b0) * n_steps
    dg = d_gates[d, b0:].ctypes.data
    gemm(True, False, four_h, in_size, n_rows, 1.0, dg, four_h,
         x[b0:].ctypes.data, in_size, 1.0, dW_ih[d].ctypes.data, in_size, scratch)
    gemm(True, False, four_h, hidden, n_rows, 1.0, dg, four_h,
         h_prev[d, b0:].ctypes.data, hidden, 1.0, dW_hh[d].ctypes.data, hidden, scratch)
    # dx of both directions add up: the first direction overwrites, the second adds.
    gemm(False, False, n_rows, in_size, four_h, 1.0, dg, four_h,
         W_ih[d].ctypes.data, in_size, 1.0 if d > 0 else 0.0,
         dx[b0:].ctypes.data, in_size, scratch)
    db = d_bias[d]
    for b in range(b0, b1):
        for t in range(n_steps):
            row = d_gates[d, b, t]
            for j in range(four_h):
                db[j] += row[j]


@njit(**_JIT)
def lstm_layer_backward_rows(x, lengths, W_ih, W_hh, gates, h_prev, c_prev, d_out, d_h_n,
                             d_c_n, dx, d_h0, d_c0, d_gates, partial_W_ih, partial_W_hh,
                             partial_bias, b0, b1):
    """Both directions of one layer over rows ``b0:b1``; the weight gradients of these rows
    go to ``partial_*`` (overwritten). Serial use passes the final gradient arrays there.
    """
    d_h0[:, b0:b1] = d_h_n[:, b0:b1]
    d_c0[:, b0:b1] = d_c_n[:, b0:b1]
    scratch = new_gemm_scratch(x)
    carry = np.empty((b1 - b0, W_hh.shape[2]), dtype=x.dtype)
    partial_W_ih[:] = 0.0
    partial_W_hh[:] = 0.0
    partial_bias[:] = 0.0
    for d in range(W_hh.shape[0]):
        _backward_rows(lengths, W_hh, gates, c_prev, d_out, d_gates, d_h0, d_c0,
                       carry, d, b0, b1, scratch)
        _weight_gradients(x, W_ih, h_prev, d_gates, dx, partial_W_ih, partial_W_hh,
                          partial_bias, d, b0, b1, scratch)


@njit(**_JIT)
def _sum_partials(partial_W_ih, partial_W_hh, partial_bias, dW_ih, dW_hh, d_bias):
    dW_ih[:] = partial_W_ih[0]
    dW_hh[:] = partial_W_hh[0]
    d_bias[:] = partial_bias[0]
    for chunk in range(1, partial_W_ih.shape[0]):
        dW_ih += partial_W_ih[chunk]
        dW_hh += partial_W_hh[chunk]
        d_bias += partial_bias[chunk]


@njit(parallel=True, **_JIT)
def lstm_layer_backward(x, lengths, W_ih, W_hh, gates, h_prev, c_prev, d_out,
                        d_h_n, d_c_n, dx, dW_ih, dW_hh, d_bias, d_h0, d_c0,
                        d_gates, partial_W_ih, partial_W_hh, partial_bias, chunk_bounds):
    """Backward pass through time of one layer.

    Parameters
    ----------
    x, lengths, W_ih, W_hh, gates, h_prev, c_prev, chunk_bounds
        As given to / filled by :func:`lstm_layer_forward`.
    d_out : ndarray (B, T, D*H)
        Gradient w.r.t. the layer output (ignored at padded steps).
    d_h_n, d_c_n : ndarrays (D, B, H)
        Gradients w.r.t. the final states.
    dx : ndarray (B, T, I), written
    dW_ih, dW_hh, d_bias : ndarrays like ``W_ih``, ``W_hh``, (D, 4H); written
    d_h0, d_c0 : ndarrays (D, B, H), written
    d_gates : ndarray like ``gates``, scratch (gradients of the gate pre-activations)
    partial_W_ih, partial_W_hh, partial_bias : ndarrays with a leading ``n_chunks`` axis,
        scratch for each thread's share of the weight gradients
    """
    for chunk in prange(chunk_bounds.shape[0] - 1):
        lstm_layer_backward_rows(x, lengths, W_ih, W_hh, gates, h_prev, c_prev, d_out,
                                 d_h_n, d_c_n, dx, d_h0, d_c0, d_gates, partial_W_ih[chunk],
                                 partial_W_hh[chunk], partial_bias[chunk],
                                 chunk_bounds[chunk], chunk_bounds[chunk + 1])
    _sum_partials(partial_W_ih, partial_W_hh, partial_bias, dW_ih, dW_hh, d_bias)
