"""Fused kernels of the plain LSTM: one timestep of both directions per kernel step.

The forward step forms the recurrent product ``h_{t-1} @ W_hh^T`` in shared-memory tiles
and applies bias, gate nonlinearities and the cell update in the same kernel; the backward
step carries ``dh`` back through ``W_hh`` from the gate gradients of the step processed just
before, then forms this step's gate gradients. One extra backward step after the last
gives ``d_h0``. Each step comes twice: :func:`forward_steps`/:func:`backward_steps` run one
timestep per launch, :func:`forward_sweep`/:func:`backward_sweep` run a whole sweep in one
cooperative launch with a grid-wide barrier between timesteps (a launch costs ~50 us of
host time, more than a small step itself).

Layout (that of :mod:`numlstm.kernels.cpu.recurrent`, with time-and-direction interleaved
caches): ``W_hh`` (D, 4H, H), ``bias`` (D, 4H), ``lengths`` (B,), ``gates`` (B, T, D, 4H),
``out``/``d_out`` (B, T, D*H), ``h_prev``/``c_prev`` (B, T, D, H), states (D, B, H).
Ragged batches follow packed-sequence semantics, with the step order of
:func:`numlstm.kernels.common.step_order`.

Launch configuration
--------------------
Blocks of ``(TILE, TILE)`` threads (:mod:`numlstm.kernels.cuda.tiling`), ``blockIdx.z`` the
direction; :func:`step_grids` gives the grids.

* forward: grid ``(ceil(H / TILE), ceil(B / SPAN), D)``. A thread owns hidden unit
  ``blockIdx.x*TILE + tx`` of the ``REGISTER_TILE`` batch rows ``blockIdx.y*SPAN + ty +
  TILE*r`` and accumulates all four gates of that unit, so it has everything the cell
  update needs. Shared memory: a ``(TILE, SPAN + 1)`` tile of ``h`` and a
  ``(4, TILE, TILE + 1)`` tile of ``W_hh``.
* backward: grid ``(ceil(H / UNITS), ceil(B / SPAN), D)``. A thread owns the
  ``UNIT_TILE`` hidden units ``blockIdx.x*UNITS + tx + TILE*q`` of ``REGISTER_TILE`` batch
  rows. Shared memory: a ``(TILE, SPAN + 1)`` tile of gate gradients and a
  ``(TILE, UNITS + 1)`` tile of ``W_hh``.
* the sweeps need the whole grid resident at once (a cooperative launch); the driver
  checks ``max_cooperative_grid_blocks`` and falls back to one launch per step.

The float type is that of the arguments (numba compiles one version per argument types).
"""

from numba import cuda

from ..common import step_order
from .activations import sigmoid, tanh
from .tiling import (LOADS, REGISTER_TILE, SPAN, SPAN_PAD, THREADS, TILE, TILE_PAD,
                     UNIT_TILE, UNITS, UNITS_PAD)

__all__ = ["TILED_DEVICE_FUNCTIONS", "TILED_KERNELS", "backward_step", "backward_steps",
           "backward_sweep", "forward_step", "forward_steps", "forward_sweep", "step_grids"]

#: Recompiled by :func:`numlstm.kernels.cuda.tiling.retiled` for another tiling (the
#: device functions first: the kernels call them by name).
TILED_DEVICE_FUNCTIONS = ("forward_step", "backward_step")
TILED_KERNELS = ("forward_steps", "forward_sweep", "backward_steps", "backward_sweep")


def step_grids(batch, hidden, n_dirs, tile, register_tile, unit_tile):
    """Grid and block shapes of the forward and of the backward step kernels.

    Returns
    -------
    forward_grid, forward_block, backward_grid, backward_block : tuples of int
    """
    rows = -(-batch // (tile * register_tile))
    block = (tile, tile)
    return ((-(-hidden // tile), rows, n_dirs), block,
            (-(-hidden // (tile * unit_tile)), rows, n_dirs), block)


@cuda.jit(device=True)
def grid_sync():
    """Barrier across the whole grid (the kernel is then launched cooperatively)."""
    cuda.cg.this_grid().sync()


@cuda.jit(device=True)
def forward_step(u, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev):
    """Forward step ``u`` (processing order) of both directions.

    Parameters
    ----------
    u : int
        Position in the sweep; direction ``d`` processes timestep ``step_order(u, T, d == 1)``.
    store : bool
        Keep the training caches: the activated gates overwrite the pre-activations in
        ``gates`` and the state each step started from goes to ``h_prev``/``c_prev``.
    lengths : int64 array (B,)
    w_hh : array (D, 4H, H)
    bias : array (D, 4H)
    h, c : arrays (2, D, B, H)
        Double-buffered state: step ``u`` reads ``[u % 2]`` and writes ``[1 - u % 2]``
        (padded rows copy it).
    gates : array (B, T, D, 4H)
        Holds the input projection; the recurrent product, bias, nonlinearities and cell
        update are applied here.
    out : array (B, T, D*H)
        Written (zero at padded steps).
    h_prev, c_prev : arrays (B, T, D, H)
        Written with ``store``; any array of that rank otherwise.
    """
    zero = gates.dtype.type(0)
    d = cuda.blockIdx.z
    n_steps = gates.shape[1]
    batch = h.shape[2]
    hidden = w_hh.shape[2]
    h_s = cuda.shared.array((TILE, SPAN_PAD), gates.dtype)  # [k, row]
    w_s = cuda.shared.array((4, TILE, TILE_PAD), gates.dtype)  # [gate, k, unit]
    acc = cuda.local.array((4, REGISTER_TILE), gates.dtype)
    h_reg = cuda.local.array(REGISTER_TILE, gates.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TILE + tx
    j0 = cuda.blockIdx.x * TILE
    b0 = cuda.blockIdx.y * SPAN
    j = j0 + tx
    col = d * hidden + j
    p = u % 2
    q = 1 - p
    t = step_order(u, n_steps, d == 1)
    for g in range(4):
        for r in range(REGISTER_TILE):
            acc[g, r] = zero
    for k0 in range(0, hidden, TILE):
        kk = tid % TILE
        k = k0 + kk
        for e in range(LOADS):
            row = (tid + e * THREADS) // TILE
            b = b0 + row
            h_s[kk, row] = h[p, d, b, k] if b < batch and k < hidden else zero
        jj = tid // TILE
        jw = j0 + jj
        for g in range(4):
            w_s[g, kk, jj] = (w_hh[d, g * hidden + jw, k]
                              if jw < hidden and k < hidden else zero)
        cuda.syncthreads()
        for kk in range(TILE):
            for r in range(REGISTER_TILE):
                h_reg[r] = h_s[kk, ty + TILE * r]
            for g in range(4):
                w = w_s[g, kk, tx]
                for r in range(REGISTER_TILE):
                    acc[g, r] += w * h_reg[r]
        cuda.syncthreads()
    for r in range(REGISTER_TILE):
        b = b0 + ty + TILE * r
        if b >= batch or j >= hidden:
            continue
        hp = h[p, d, b, j]
        cp = c[p, d, b, j]
        if store:
            h_prev[b, t, d, j] = hp
            c_prev[b, t, d, j] = cp
        if t >= lengths[b]:
            h[q, d, b, j] = hp
            c[q, d, b, j] = cp
            out[b, t, col] = zero
            continue
        i_gate = sigmoid(gates[b, t, d, j] + bias[d, j] + acc[0, r])
        f_gate = sigmoid(gates[b, t, d, hidden + j] + bias[d, hidden + j] + acc[1, r])
        g_gate = tanh(gates[b, t, d, 2 * hidden + j] + bias[d, 2 * hidden + j] + acc[2, r])
        o_gate = sigmoid(gates[b, t, d, 3 * hidden + j] + bias[d, 3 * hidden + j]
                         + acc[3, r])
        c_new = f_gate * cp + i_gate * g_gate
        h_new = o_gate * tanh(c_new)
        h[q, d, b, j] = h_new
        c[q, d, b, j] = c_new
        out[b, t, col] = h_new
        if store:
            gates[b, t, d, j] = i_gate
            gates[b, t, d, hidden + j] = f_gate
            gates[b, t, d, 2 * hidden + j] = g_gate
            gates[b, t, d, 3 * hidden + j] = o_gate


@cuda.jit(device=True)
def backward_step(u, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates, d_h0):
    """Backward step for forward processing index ``u`` of both directions.

    A sweep runs ``u = T-1, ..., 0`` and then ``u = -1``. Each step first forms ``dh``: the
    product of ``W_hh`` with the gate gradients of the step processed just before (row by
    row, the last *valid* such step), or ``d_h_n`` for rows that have none yet. Step
    ``u >= 0`` then writes its gate gradients and updates ``d_c``; ``u = -1`` writes ``dh``
    to ``d_h0``.

    Parameters
    ----------
    u : int
    lengths : int64 array (B,)
    w_hh : array (D, 4H, H)
    gates : array (B, T, D, 4H)
        The activated gates i, f, g, o of the forward pass.
    c_prev : array (B, T, D, H)
    d_out : array (B, T, D*H)
    d_h_n : array (D, B, H)
    d_c : array (D, B, H)
        Updated in place: it starts as ``d_c_n`` and ends as ``d_c0``.
    d_gates : array (B, T, D, 4H)
        Written (zero at padded steps).
    d_h0 : array (D, B, H)
        Written by step ``u = -1``.
    """
    zero = gates.dtype.type(0)
    one = gates.dtype.type(1)
    d = cuda.blockIdx.z
    reverse = d == 1
    n_steps = gates.shape[1]
    batch = d_c.shape[1]
    hidden = w_hh.shape[2]
    four_h = 4 * hidden
    g_s = cuda.shared.array((TILE, SPAN_PAD), gates.dtype)  # [k, row]
    w_s = cuda.shared.array((TILE, UNITS_PAD), gates.dtype)  # [k, unit]
    acc = cuda.local.array((REGISTER_TILE, UNIT_TILE), gates.dtype)
    g_reg = cuda.local.array(REGISTER_TILE, gates.dtype)
    w_reg = cuda.local.array(UNIT_TILE, gates.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TILE + tx
    j0 = cuda.blockIdx.x * UNITS
    b0 = cuda.blockIdx.y * SPAN
    has_src = u + 1 < n_steps
    t_src = step_order(u + 1, n_steps, reverse) if has_src else 0
    for r in range(REGISTER_TILE):
        for q in range(UNIT_TILE):
            acc[r, q] = zero
    if has_src:
        for k0 in range(0, four_h, TILE):
            kk = tid % TILE
            k = k0 + kk
            for e in range(LOADS):
                row = (tid + e * THREADS) // TILE
                b = b0 + row
                v = zero
                if b < batch and k < four_h:
                    ts = min(t_src, lengths[b] - 1) if reverse else t_src
                    v = d_gates[b, ts, d, k]
                g_s[kk, row] = v
            for e in range(UNIT_TILE):
                idx = tid + e * THREADS
                jj = idx % UNITS
                kk = idx // UNITS
                jw = j0 + jj
                k = k0 + kk
                w_s[kk, jj] = (w_hh[d, k, jw]
                               if jw < hidden and k < four_h else zero)
            cuda.syncthreads()
            for kk in range(TILE):
                for r in range(REGISTER_TILE):
                    g_reg[r] = g_s[kk, ty + TILE * r]
                for q in range(UNIT_TILE):
                    w_reg[q] = w_s[kk, tx + TILE * q]
                for r in range(REGISTER_TILE):
                    for q in range(UNIT_TILE):
                        acc[r, q] += g_reg[r] * w_reg[q]
            cuda.syncthreads()
    t = step_order(u, n_steps, reverse) if u >= 0 else 0
    for r in range(REGISTER_TILE):
        b = b0 + ty + TILE * r
        if b >= batch:
            continue
        n_valid = lengths[b]
        ts = min(t_src, n_valid - 1) if reverse else t_src
        src_valid = has_src and ts < n_valid
        for q in range(UNIT_TILE):
            j = j0 + tx + TILE * q
            if j >= hidden:
                continue
            dh = acc[r, q] if src_valid else d_h_n[d, b, j]
            if u < 0:
                d_h0[d, b, j] = dh
                continue
            if t >= n_valid:
                for g in range(4):
                    d_gates[b, t, d, g * hidden + j] = zero
                continue
            i_gate = gates[b, t, d, j]
            f_gate = gates[b, t, d, hidden + j]
            g_gate = gates[b, t, d, 2 * hidden + j]
            o_gate = gates[b, t, d, 3 * hidden + j]
            cp = c_prev[b, t, d, j]
            tc = tanh(f_gate * cp + i_gate * g_gate)
            dh += d_out[b, t, d * hidden + j]
            dc = d_c[d, b, j] + dh * o_gate * (one - tc * tc)
            d_gates[b, t, d, j] = dc * g_gate * i_gate * (one - i_gate)
            d_gates[b, t, d, hidden + j] = dc * cp * f_gate * (one - f_gate)
            d_gates[b, t, d, 2 * hidden + j] = dc * i_gate * (one - g_gate * g_gate)
            d_gates[b, t, d, 3 * hidden + j] = dh * tc * o_gate * (one - o_gate)
            d_c[d, b, j] = dc * f_gate


@cuda.jit
def forward_steps(u, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev):
    """One forward timestep, ``u``, of both directions (:func:`forward_step`).

    Launched on the forward grid of :func:`step_grids`, once per timestep.
    """
    forward_step(u, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev)


@cuda.jit
def forward_sweep(u0, u1, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev):
    """Forward timesteps ``u0, ..., u1 - 1`` of both directions in one launch.

    Launched cooperatively on the forward grid of :func:`step_grids`; a grid-wide barrier
    separates the timesteps (every block must be resident at once).
    """
    for u in range(u0, u1):
        forward_step(u, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev)
        if u + 1 < u1:
            grid_sync()


@cuda.jit
def backward_steps(u, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates, d_h0):
    """One backward step, ``u``, of both directions (:func:`backward_step`).

    Launched on the backward grid of :func:`step_grids`, for ``u = T-1, ..., 0, -1``.
    """
    backward_step(u, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates, d_h0)


@cuda.jit
def backward_sweep(u0, u1, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates, d_h0):
    """Backward steps ``u0, u0 - 1, ..., u1 + 1`` of both directions in one launch.

    Launched cooperatively on the backward grid of :func:`step_grids` (a full sweep is
    ``u0 = T-1``, ``u1 = -2``); a grid-wide barrier separates the steps.
    """
    for u in range(u0, u1, -1):
        backward_step(u, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates, d_h0)
        if u - 1 > u1:
            grid_sync()
