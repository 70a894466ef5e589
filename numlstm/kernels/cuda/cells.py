"""Per-step elementwise kernels of the GRU, the RNN and the LSTM with a projection or peepholes.

These cells run an unfused sweep (:func:`numlstm.nn.cuda_backend._generic_forward_on_device`):
per timestep, the recurrent product of both directions is one launch of
:func:`numlstm.kernels.cuda.gemm.gemm`, and :func:`cell_forward` applies the gate math of
:mod:`numlstm.kernels.cpu.cells`. The projection adds one product and one
:func:`project_commit` per step; the backward sweep mirrors the forward one
(:func:`gather_dh`, :func:`cell_backward`), and :func:`peephole_grads` sums the peephole
gradients after it.

The cell (a code of :data:`numlstm.kernels.common.CELL_CODES`) and the options
(``proj``, ``peephole``) are runtime arguments: all threads of a launch take the same
branch, so they cost no divergence, and every cell shares one compiled kernel per float
type. Since numba types every branch, each array argument has the same rank for every
cell (the drivers pass small placeholders of that rank for what a cell lacks).

Layouts are those of the fused kernels (:mod:`numlstm.kernels.cuda.lstm`): gates and
caches (B, T, D, ...), states (D, B, ...); ``rec`` (D, B, G*H) is the recurrent product of
the step, ``m`` the projected LSTM's ``o * tanh(c)`` ((B, T, D, H) stored, (B, 1, D, H)
when only inferring).

Launch configuration
--------------------
One-dimensional grids of :data:`numlstm._utils.config.CUDA_THREADS_PER_BLOCK`-thread
blocks, at least as many threads as the work items; no shared memory. A thread of
:func:`cell_forward`/:func:`cell_backward` owns one ``(direction, row, hidden unit)``
(``D*B*H`` threads), of :func:`project_commit`/:func:`gather_dh` one ``(direction, row,
state unit)`` (``D*B*R``), of :func:`peephole_grads` one ``(direction, hidden unit)``
(``D*H``). The float type is that of the arguments.
"""

from numba import cuda

from ..common import CELL_GRU, CELL_LSTM, CELL_RNN_RELU, N_GATES, step_order
from .activations import sigmoid, tanh

__all__ = ["cell_backward", "cell_forward", "gather_dh", "peephole_grads", "project_commit",
           "unit_of_thread"]


@cuda.jit(device=True)
def unit_of_thread(idx, batch, size):
    """``(direction, row, unit)`` of flat thread index ``idx`` over a (D, B, size) grid."""
    return idx // (size * batch), (idx // size) % batch, idx % size


@cuda.jit
def cell_forward(u, cell, store, proj, peephole, lengths, bias, bias_hn, peep, rec, h, c,
                 gates, out, h_prev, c_prev, m):
    """Gates and state update of forward step ``u`` of both directions.

    Parameters
    ----------
    u : int
        Position in the sweep (direction ``d`` is at ``step_order(u, T, d == 1)``).
    cell : int
        :data:`numlstm.kernels.common.CELL_CODES` code.
    store : bool
        Keep the training caches (activated gates in ``gates``, ``h_prev``, ``c_prev``).
    proj : bool
        The LSTM has a projection: ``o * tanh(c)`` goes to ``m`` (the state is committed by
        :func:`project_commit` after the product with ``W_hr``).
    peephole : bool
        The LSTM has peepholes ``peep`` (D, 3, H).
    lengths : int64 array (B,)
    bias : array (D, G*H)
    bias_hn : array (D, H)
        The GRU's ``b_hn``, inside the reset gate's product (read by the GRU only).
    peep : array (D, 3, H)
    rec : array (D, B, G*H)
        ``h_{t-1} @ W_hh^T`` of the step.
    h : array (D, B, R)
        The state, updated in place for the valid rows (without a projection).
    c : array (D, B, H)
        The LSTM's cell state, updated in place.
    gates : array (B, T, D, G*H)
        The input projection; the activated gates with ``store``.
    out : array (B, T, D*R)
    h_prev : array (B, T, D, R)
    c_prev : array (B, T, D, H)
        The LSTM's cell state each step started from, or the GRU's ``W_hn h + b_hn``.
    m : array (B, T or 1, D, H)

    Notes
    -----
    One thread per ``(direction, row, hidden unit)`` (see the module docstring).
    """
    zero = gates.dtype.type(0)
    is_lstm = cell == CELL_LSTM
    is_gru = cell == CELL_GRU
    n_dirs, batch, rec_size = h.shape
    n_steps = gates.shape[1]
    hidden = rec.shape[2] // N_GATES[cell]
    idx = cuda.grid(1)
    if idx >= n_dirs * batch * hidden:
        return
    d, b, j = unit_of_thread(idx, batch, hidden)
    t = step_order(u, n_steps, d == 1)
    if store and not proj:
        h_prev[b, t, d, j] = h[d, b, j]
    ts = t if store else 0
    if t >= lengths[b]:
        if proj:
            m[b, ts, d, j] = zero  # a row of a product later: finite, whatever it is
        else:
            out[b, t, d * rec_size + j] = zero
        return
    if is_lstm:
        cp = c[d, b, j]
        a_i = gates[b, t, d, j] + rec[d, b, j] + bias[d, j]
        a_f = gates[b, t, d, hidden + j] + rec[d, b, hidden + j] + bias[d, hidden + j]
        a_g = (gates[b, t, d, 2 * hidden + j] + rec[d, b, 2 * hidden + j]
               + bias[d, 2 * hidden + j])
        a_o = (gates[b, t, d, 3 * hidden + j] + rec[d, b, 3 * hidden + j]
               + bias[d, 3 * hidden + j])
        if peephole:
            a_i += peep[d, 0, j] * cp
            a_f += peep[d, 1, j] * cp
        i_gate = sigmoid(a_i)
        f_gate = sigmoid(a_f)
        g_gate = tanh(a_g)
        c_new = f_gate * cp + i_gate * g_gate
        if peephole:
            a_o += peep[d, 2, j] * c_new
        o_gate = sigmoid(a_o)
        h_new = o_gate * tanh(c_new)
        c[d, b, j] = c_new
        if store:
            c_prev[b, t, d, j] = cp
            gates[b, t, d, j] = i_gate
            gates[b, t, d, hidden + j] = f_gate
            gates[b, t, d, 2 * hidden + j] = g_gate
            gates[b, t, d, 3 * hidden + j] = o_gate
        if proj:
            m[b, ts, d, j] = h_new
            return
    elif is_gru:
        r_gate = sigmoid(gates[b, t, d, j] + rec[d, b, j] + bias[d, j])
        z_gate = sigmoid(gates[b, t, d, hidden + j] + rec[d, b, hidden + j]
                         + bias[d, hidden + j])
        a = rec[d, b, 2 * hidden + j] + bias_hn[d, j]
        n_gate = tanh(gates[b, t, d, 2 * hidden + j] + bias[d, 2 * hidden + j]
                      + r_gate * a)
        h_new = n_gate + z_gate * (h[d, b, j] - n_gate)
        if store:
            c_prev[b, t, d, j] = a
            gates[b, t, d, j] = r_gate
            gates[b, t, d, hidden + j] = z_gate
            gates[b, t, d, 2 * hidden + j] = n_gate
    else:
        v = gates[b, t, d, j] + rec[d, b, j] + bias[d, j]
        if cell == CELL_RNN_RELU:
            h_new = v if v > zero else v * zero
        else:
            h_new = tanh(v)
        if store:
            gates[b, t, d, j] = h_new
    h[d, b, j] = h_new
    out[b, t, d * rec_size + j] = h_new


@cuda.jit
def project_commit(u, store, lengths, hp, h, out, h_prev):
    """The projected state ``hp`` (D, B, P) becomes the state of the valid rows of step ``u``.

    ``h`` (D, B, P) is updated in place and goes to ``out`` (B, T, D*P) (zero at padded
    steps); with ``store`` the state the step started from goes to ``h_prev``
    (B, T, D, P). One thread per ``(direction, row, state unit)``.
    """
    zero = out.dtype.type(0)
    n_dirs, batch, rec_size = h.shape
    n_steps = out.shape[1]
    idx = cuda.grid(1)
    if idx >= n_dirs * batch * rec_size:
        return
    d, b, p = unit_of_thread(idx, batch, rec_size)
    t = step_order(u, n_steps, d == 1)
    if store:
        h_prev[b, t, d, p] = h[d, b, p]
    if t < lengths[b]:
        h[d, b, p] = hp[d, b, p]
        out[b, t, d * rec_size + p] = hp[d, b, p]
    else:
        out[b, t, d * rec_size + p] = zero


@cuda.jit
def gather_dh(u, lengths, d_h, d_out, dh_store):
    """With a projection: the gradient w.r.t. the projected state of backward step ``u``.

    ``dh_store`` (B, T, D, P) of the step gets ``d_h + d_out`` (zero at padded steps) and
    ``d_h`` (D, B, P) of the valid rows is cleared for the recurrent product. One thread
    per ``(direction, row, state unit)``.
    """
    zero = d_h.dtype.type(0)
    n_dirs, batch, rec_size = d_h.shape
    n_steps = d_out.shape[1]
    idx = cuda.grid(1)
    if idx >= n_dirs * batch * rec_size:
        return
    d, b, p = unit_of_thread(idx, batch, rec_size)
    t = step_order(u, n_steps, d == 1)
    if t < lengths[b]:
        dh_store[b, t, d, p] = d_h[d, b, p] + d_out[b, t, d * rec_size + p]
        d_h[d, b, p] = zero
    else:
        dh_store[b, t, d, p] = zero


@cuda.jit
def cell_backward(u, cell, proj, peephole, lengths, peep, gates, h_prev, c_prev, d_out, dm,
                  d_h, d_c, d_gates, d_rec):
    """Gate gradients of backward step ``u`` of both directions.

    ``d_h`` (D, B, R) of the valid rows becomes the part of the gradient w.r.t. ``h_prev``
    that does not go through ``W_hh`` (zero but for the GRU); the driver then adds the
    recurrent product to it.

    Parameters
    ----------
    u, cell, proj, peephole, lengths, peep
        As for :func:`cell_forward`.
    gates, h_prev, c_prev : arrays
        The caches of the forward pass.
    d_out : array (B, T, D*R)
    dm : array (D, B, H)
        With ``proj``: the gradient w.r.t. the LSTM's ``o * tanh(c)`` of the step.
    d_h : array (D, B, R)
    d_c : array (D, B, H)
        The LSTM's cell-state gradient, updated in place.
    d_gates : array (B, T, D, G*H)
        Written (zero at padded steps).
    d_rec : array (B, T, D, G*H)
        The GRU's gradient w.r.t. the recurrent product (``r`` scales its candidate part);
        ``d_gates`` itself for the other cells.

    Notes
    -----
    One thread per ``(direction, row, hidden unit)`` (see the module docstring).
    """
    zero = gates.dtype.type(0)
    one = gates.dtype.type(1)
    is_lstm = cell == CELL_LSTM
    is_gru = cell == CELL_GRU
    n_dirs, batch, rec_size = d_h.shape
    n_steps = gates.shape[1]
    n_gate_cols = gates.shape[3]
    hidden = n_gate_cols // N_GATES[cell]
    idx = cuda.grid(1)
    if idx >= n_dirs * batch * hidden:
        return
    d, b, j = unit_of_thread(idx, batch, hidden)
    t = step_order(u, n_steps, d == 1)
    if t >= lengths[b]:
        for g in range(n_gate_cols // hidden):
            d_gates[b, t, d, g * hidden + j] = zero
            if is_gru:
                d_rec[b, t, d, g * hidden + j] = zero
        return
    if is_lstm:
        if proj:
            dh = dm[d, b, j]
        else:
            dh = d_h[d, b, j] + d_out[b, t, d * rec_size + j]
            d_h[d, b, j] = zero
        i_gate = gates[b, t, d, j]
        f_gate = gates[b, t, d, hidden + j]
        g_gate = gates[b, t, d, 2 * hidden + j]
        o_gate = gates[b, t, d, 3 * hidden + j]
        cp = c_prev[b, t, d, j]
        c_new = f_gate * cp + i_gate * g_gate
        tc = tanh(c_new)
        do_pre = dh * tc * o_gate * (one - o_gate)
        dc = d_c[d, b, j] + dh * o_gate * (one - tc * tc)
        if peephole:
            dc += do_pre * peep[d, 2, j]
        di_pre = dc * g_gate * i_gate * (one - i_gate)
        df_pre = dc * cp * f_gate * (one - f_gate)
        d_gates[b, t, d, j] = di_pre
        d_gates[b, t, d, hidden + j] = df_pre
        d_gates[b, t, d, 2 * hidden + j] = dc * i_gate * (one - g_gate * g_gate)
        d_gates[b, t, d, 3 * hidden + j] = do_pre
        dc_prev = dc * f_gate
        if peephole:
            dc_prev += di_pre * peep[d, 0, j] + df_pre * peep[d, 1, j]
        d_c[d, b, j] = dc_prev
    elif is_gru:
        dh = d_h[d, b, j] + d_out[b, t, d * rec_size + j]
        r_gate = gates[b, t, d, j]
        z_gate = gates[b, t, d, hidden + j]
        n_gate = gates[b, t, d, 2 * hidden + j]
        dn_pre = dh * (one - z_gate) * (one - n_gate * n_gate)
        dz_pre = dh * (h_prev[b, t, d, j] - n_gate) * z_gate * (one - z_gate)
        dr_pre = dn_pre * c_prev[b, t, d, j] * r_gate * (one - r_gate)
        d_gates[b, t, d, j] = dr_pre
        d_gates[b, t, d, hidden + j] = dz_pre
        d_gates[b, t, d, 2 * hidden + j] = dn_pre
        d_rec[b, t, d, j] = dr_pre
        d_rec[b, t, d, hidden + j] = dz_pre
        d_rec[b, t, d, 2 * hidden + j] = dn_pre * r_gate
        d_h[d, b, j] = dh * z_gate
    else:
        dh = d_h[d, b, j] + d_out[b, t, d * rec_size + j]
        h_new = gates[b, t, d, j]
        if cell == CELL_RNN_RELU:
            d_gates[b, t, d, j] = dh if h_new > zero else zero
        else:
            d_gates[b, t, d, j] = dh * (one - h_new * h_new)
        d_h[d, b, j] = zero


@cuda.jit
def peephole_grads(lengths, gates, c_prev, d_gates, d_peep):
    """``d_peep[d, :, j]`` (D, 3, H): the peephole gradients, summed over the valid steps of
    every row. One thread per ``(direction, hidden unit)``, each looping over rows and
    steps."""
    zero = gates.dtype.type(0)
    n_dirs = d_peep.shape[0]
    hidden = d_peep.shape[2]
    batch = gates.shape[0]
    idx = cuda.grid(1)
    if idx >= n_dirs * hidden:
        return
    j = idx % hidden
    d = idx // hidden
    s_i = zero
    s_f = zero
    s_o = zero
    for b in range(batch):
        for t in range(lengths[b]):
            cp = c_prev[b, t, d, j]
            c_new = (gates[b, t, d, hidden + j] * cp
                     + gates[b, t, d, j] * gates[b, t, d, 2 * hidden + j])
            s_i += d_gates[b, t, d, j] * cp
            s_f += d_gates[b, t, d, hidden + j] * cp
            s_o += d_gates[b, t, d, 3 * hidden + j] * c_new
    d_peep[d, 0, j] = s_i
    d_peep[d, 1, j] = s_f
    d_peep[d, 2, j] = s_o
