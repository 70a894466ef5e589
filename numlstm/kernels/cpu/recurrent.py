"""CPU kernels of the recurrent layers: one layer (one or two directions) of an LSTM, GRU or
plain (Elman) RNN, forward and backward through time.

One sweep serves every cell: the cell is an integer code (:data:`CELL_CODES`) that the
sweep checks once per row and step, outside the inner loop over hidden units, to call the
small per-cell row functions (``lstm_cell_training``, ``gru_cell_forward``, ...). An integer
rather than a function argument keeps one compiled kernel per float type and keeps numba's
on-disk cache usable.

Work split (the one cuDNN uses):

1. the input projection of all timesteps is one large matrix product;
2. per timestep, one recurrent product ``h_{t-1} @ W_hh^T`` is *added* onto that
   projection, then one fused loop per row applies bias, gate nonlinearities and the state
   update. The GRU keeps its recurrent product apart (in a zeroed scratch block), since its
   candidate gate multiplies the recurrent part by the reset gate:
   ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
3. in the backward sweep, per timestep, one fused loop per row forms the gate gradients and
   one product carries ``dh`` back through ``W_hh``;
4. the weight gradients and the input gradient are large products over all timesteps after
   the sweep.

The products are numlstm's own register-blocked ones (:mod:`numlstm.kernels.cpu.packed_gemm`), with
the weights packed once per call; only the projection's products below call SciPy's BLAS.
The plain LSTM, the common case, has a sweep of its own (``_lstm_forward_rows``) that writes
the output row inside the cell loop.

LSTM options: with a projection (``proj_size`` P > 0, PyTorch semantics) the recurrent state
is ``h_t = W_hr (o_t * tanh(c_t))`` of size P: the row loop writes ``m_t = o_t * tanh(c_t)``
and one product per step maps the rows to ``h_t``. With peephole connections (Gers and
Schmidhuber, 2000) the input and forget gates also see ``c_{t-1}`` and the output gate sees
``c_t``, through diagonal weights.

Parallelism is coarse: the batch is cut into one slice per thread (``chunk_bounds``) and each
thread runs the whole time loop of its slice, with single-threaded products inside (the
caller limits SciPy's BLAS to one thread where it is used; see :mod:`numlstm.nn.backend`).
Rows never interact, so the slices need no synchronisation, and each sequence's results do
not depend on the others in its batch, bit for bit. A fork-join per timestep would cost far
more than the step itself. The weight gradients, sums over the whole batch, are cut
otherwise: over fixed blocks of rows, the same at any thread count, the blocks' sums
added in order (``GradientShares``), so they too are the same bit for bit on any number of
threads. The entry kernels (:func:`layer_forward`, :func:`layer_backward`)
pack the weights, store their records once (:func:`~numlstm.kernels.cpu.indirect_call.stash`)
and hand a pointer to them and the per-rows kernel's compiled address to one ``parallel=True``
loop that serves every kernel (:mod:`numlstm.kernels.cpu.parallel_rows`): numba neither
compiles the per-rows call tree again into each caller nor builds a parallel loop per kernel.

Arguments: besides the cell code and a few flags and bounds, the kernels take their arrays in
the records of :mod:`numlstm.kernels.cpu.records`: the layer's weights (``LayerWeights``),
what a pass reads and writes (``ForwardIO``, ``BackwardIO``), the training caches
(``TrainingCache``), the packed weights (``PackedWeights``), the backward pass's per-step
gradients (``StepGradients``), weight gradients (``WeightGradients``) and their cut between
the threads (``GradientShares``), and each thread's scratch (``ForwardScratch``,
``BackwardScratch``, ``GradientScratch``, allocated by the per-rows kernels).

Array layout (batch first, like the user's data, so a slice of rows is one contiguous block).
``G`` is the number of gates (4 LSTM, 3 GRU, 1 RNN), ``H`` the hidden size, ``R`` the size
of the recurrent state ``h`` (``P`` with a projection, else ``H``):

* ``x``: (B, T, I) layer input; ``out``: (B, T, D*R), direction ``d`` in columns
  ``d*R:(d+1)*R``, zero at padded steps;
* ``W_ih``: (D, G*H, I), ``W_hh``: (D, G*H, R); gate orders i, f, g, o (LSTM) and r, z, n
  (GRU) as in PyTorch;
* ``bias``: (D, G*H), ``b_ih + b_hh`` except for the GRU's n gate, where it is ``b_in`` alone;
  ``bias_hn``: (D, H), the GRU's ``b_hn`` (size 0 for the other cells);
* ``peep``: (D, 3, H) peephole weights of the i, f and o gates (last axis 0 without);
  ``W_hr``: (D, P, H) projection (``(D, 0, 0)`` without);
* ``h0``, ``h_n``: (D, B, R); ``c0``, ``c_n``: (D, B, H) for the LSTM (last axis 0 for the
  others);
* training caches: ``gates`` (D, B, T, G*H) activated gate values, ``h_prev`` (D, B, T, R)
  the state each step started from, ``c_prev`` (D, B, T, H) the LSTM's cell state each step
  started from or the GRU's ``W_hn h + b_hn`` of each step, ``m_store`` (D, B, T, H) the
  LSTM's ``o * tanh(c)`` of each step with a projection (unused arrays may have size 0).

Ragged batches: row ``b`` is valid at steps ``t < lengths[b]``. Padded steps leave the state
untouched and get no gradient, so the forward direction's final state is the one at its own
last valid step, and the reverse direction starts from its own last valid step (the semantics
of PyTorch's packed sequences).
"""

import numpy as np
from numba import njit

from ..common import (CELL_CODES, CELL_GRU, CELL_LSTM, CELL_RNN_TANH, N_GATES,
                      step_order)
from .blas import gemm, new_gemm_scratch
from .cells import (add_row, copy_row, copy_rows, gru_cell_backward, gru_cell_forward,
                    lstm_cell_backward, lstm_cell_inference, lstm_cell_training,
                    lstm_peephole_backward, lstm_peephole_forward, rnn_relu_backward,
                    rnn_relu_forward, rnn_tanh_backward, rnn_tanh_forward)
from .indirect_call import call_compiled, compiled_address_for, stash, unstash
from .jit_options import INNER_KERNEL_OPTIONS, KERNEL_OPTIONS, ROW_OPTIONS
from .packed_gemm import (K_BLOCK, MAX_TILE_ROWS, matmul_tn, pack, pack_transposed,
                          packed_products, panel_width)
from .parallel_rows import run_rows
from .records import BackwardScratch, ForwardScratch, GradientScratch, WeightGradients
from .views import borrowed, flat, flat_bits

__all__ = ["CELL_CODES", "N_GATES", "layer_backward", "layer_backward_rows", "layer_forward",
           "layer_forward_rows", "layer_weight_gradients", "lstm_backward_rows",
           "lstm_forward_rows", "lstm_weight_gradients", "panel_width", "product_addresses"]

_JIT = KERNEL_OPTIONS
_INNER_JIT = INNER_KERNEL_OPTIONS
# The entry kernels are called from Python only, never through a C function pointer.
_ENTRY_JIT = dict(KERNEL_OPTIONS, no_cfunc_wrapper=True)
_ROW_JIT = ROW_OPTIONS


# ------------------------------------------------------------------------ products
# The sweeps call the register-blocked products through their addresses
# (PackedWeights.products) rather than by name: numba would otherwise link each product
# into every kernel that calls it and optimise and generate its machine code again there,
# where a product is as large as the sweep itself (about a second of a first fit).
_PRODUCTS = (packed_products, matmul_tn)
_product_addresses = {}


def product_addresses(dtype, gradients=True):
    """The addresses of :func:`packed_products` (which serves :func:`matmul_packed` and
    :func:`matmul_packed2`) and :func:`matmul_tn` compiled for arrays of ``dtype``, as the
    read-only int64 array that :class:`~numlstm.kernels.cpu.records.PackedWeights`
    carries (looked up once per float type).

    With ``gradients=False`` the second address is 0: for the forward pass, whose kernels
    never call :func:`matmul_tn`, so that a first training step compiles it with the
    backward pass (which :mod:`numlstm.nn.background_compile` may compile in another
    process meanwhile).
    """
    dtype = np.dtype(dtype)
    key = (dtype, bool(gradients))
    addresses = _product_addresses.get(key)
    if addresses is None:
        from numba import from_dtype, types

        i, u = types.int64, types.uint64
        rows = types.Array(from_dtype(dtype), 2, "C")
        panels = types.Array(from_dtype(dtype), 3, "C")
        signatures = ((i, i, u, i, panels, u, i, panels, i, u, i, i, rows),
                      (i, i, i, u, i, u, i, u, i, rows, rows))
        needed = _PRODUCTS if gradients else _PRODUCTS[:1]
        addresses = np.zeros(len(_PRODUCTS), dtype=np.int64)
        addresses[:len(needed)] = [compiled_address_for(product, signature)
                                   for product, signature in zip(needed, signatures)]
        addresses.flags.writeable = False
        _product_addresses[key] = addresses
    return addresses


@njit(inline="always", **_JIT)
def _matmul_packed(products, m, n, a, lda, packed, c, ldc, edge):
    """:func:`matmul_packed` through the address of :func:`packed_products` in
    ``products``; the numbers are cast to the types it was compiled for."""
    call_compiled(products[0], (np.int64(m), np.int64(n), np.uint64(a), np.int64(lda), packed,
                                np.uint64(a), np.int64(lda), packed, np.int64(0),
                                np.uint64(c), np.int64(ldc), np.int64(1), edge))


@njit(inline="always", **_JIT)
def _matmul_packed2(products, m, n, a, lda, packed, a2, lda2, packed2, c, ldc, edge):
    """:func:`matmul_packed2` through the address of :func:`packed_products`."""
    call_compiled(products[0], (np.int64(m), np.int64(n), np.uint64(a), np.int64(lda), packed,
                                np.uint64(a2), np.int64(lda2), packed2,
                                np.int64(packed2.shape[1]), np.uint64(c), np.int64(ldc),
                                np.int64(0), edge))


@njit(inline="always", **_JIT)
def _matmul_tn(products, m, n, k, a, lda, b, ldb, c, ldc, edge, edge_panel):
    """:func:`matmul_tn` through its address in ``products``."""
    call_compiled(products[1], (np.int64(m), np.int64(n), np.int64(k), np.uint64(a),
                                np.int64(lda), np.uint64(b), np.int64(ldb), np.uint64(c),
                                np.int64(ldc), edge, edge_panel))


@njit(**_INNER_JIT)
def _project_inputs(x, products, packed_ih, n_cols, b0, b1, dest, edge):
    """``dest[rows b0:b1, all t] = x[b0:b1] @ W_ih[d]^T`` as one product; ``dest`` is the
    (contiguous) gate block of these rows, ``packed_ih`` the packed ``W_ih[d]^T``."""
    n_rows = (b1 - b0) * x.shape[1]
    if n_rows == 0:
        return
    dest[:] = 0.0
    _matmul_packed(products, n_rows, n_cols, x[b0:].ctypes.data, x.shape[2], packed_ih,
                   dest.ctypes.data, n_cols, edge)


@njit(**_INNER_JIT)
def _same_bits(a, b):
    """Whether the C-contiguous arrays ``a`` and ``b`` hold the same bytes (NaNs
    included, and -0.0 told from 0.0)."""
    x = flat_bits(a)
    y = flat_bits(b)
    n = x.shape[0]
    if y.shape[0] != n:
        return False
    # Blocks with an exit between them. The loop over one block vectorises when it runs
    # over slices from 0; indexed from `start` it did not (measured 5x slower).
    start = 0
    while start < n:
        stop = min(n, start + 1024)
        x_block = x[start:stop]
        y_block = y[start:stop]
        differ = 0
        for i in range(x_block.shape[0]):
            differ |= x_block[i] ^ y_block[i]
        if differ != 0:
            return False
        start = stop
    return True


@njit(**_INNER_JIT)
def _pack_forward_weights(weights, packed):
    """Pack ``W_ih[d]^T`` and ``W_hh[d]^T`` of every direction for :func:`matmul_packed`,
    unless ``packed.source`` shows they are packed already (see
    :class:`~numlstm.kernels.cpu.records.PackedWeights`)."""
    source = packed.source
    keep = source.shape[0] > 0
    if keep:
        n_ih = weights.W_ih.size
        from_ih = source[1:1 + n_ih]
        from_hh = source[1 + n_ih:]
        if (source[0] == 1.0 and _same_bits(weights.W_ih, from_ih)
                and _same_bits(weights.W_hh, from_hh)):
            return
    for d in range(weights.W_hh.shape[0]):
        pack_transposed(weights.W_ih[d], packed.ih[d])
        pack_transposed(weights.W_hh[d], packed.hh[d])
    if keep:
        # Loops, not slice assignments: those compile a shape check with a formatted
        # message that costs a second and a half of the first call's compile.
        copy_row(flat(weights.W_ih), from_ih)
        copy_row(flat(weights.W_hh), from_hh)
        source[0] = 1.0


# ------------------------------------------------------------------------- forward
@njit(inline="always", **_JIT)
def _lstm_forward_rows(io, weights, cache, store, packed, d, b0, b1, scratch):
    """The plain LSTM's sweep of direction ``d`` over rows ``b0:b1`` (the common case, kept
    apart from the generic sweep: measured 1.6x faster at B=32, H=32).

    Arguments as for :func:`_forward_rows`; ``scratch.rec`` (rows, 4H) holds one step's
    gates when not storing them.
    """
    # Direction d's arrays, taken out of the records once, before the loops, borrowed:
    # the loops take views of them per row and step, which then count no references.
    x = borrowed(io.x)
    lengths = io.lengths
    out = borrowed(io.out)
    bias = borrowed(weights.bias[d])
    h_n = borrowed(io.h_n[d])
    c_n = borrowed(io.c_n[d])
    g = borrowed(cache.gates[d] if store else cache.gates[0])
    h_prev = borrowed(cache.h_prev[d] if store else cache.h_prev[0])
    c_prev = borrowed(cache.c_prev[d] if store else cache.c_prev[0])
    packed_ih = packed.ih[d]
    packed_hh = packed.hh[d]
    products = packed.products
    edge = scratch.edge
    step = borrowed(scratch.rec)
    reverse = d == 1
    n_steps = x.shape[1]
    hidden = h_n.shape[1]
    col = d * hidden
    n_gate_cols = g.shape[2]
    in_size = x.shape[2]
    for s in range(n_steps):
        t = step_order(s, n_steps, reverse)
        # Both products of the step in one pass, just before the cell loop reads them:
        # onto the step's rows of the gate cache when training; when inferring, into a
        # block of their own that stays in cache (the whole (B, T, 4H) block of a long
        # batch does not, and two threads streaming it compete for memory).
        if store:
            dest = g[b0:, t].ctypes.data
            ld_dest = n_steps * n_gate_cols
        else:
            dest = step.ctypes.data
            ld_dest = n_gate_cols
        _matmul_packed2(products, b1 - b0, n_gate_cols, x[b0:, t].ctypes.data, n_steps * in_size,
                        packed_ih, h_n[b0:].ctypes.data, hidden, packed_hh, dest, ld_dest, edge)
        for b in range(b0, b1):
            h_out = out[b, t][col:col + hidden]
            if t >= lengths[b]:
                h_out[:] = 0.0
                if store:
                    # Gradients of padded steps are zero, but 0 * (garbage) may be NaN.
                    copy_row(h_n[b], h_prev[b, t])
                    copy_row(c_n[b], c_prev[b, t])
            elif store:
                # The copies stay loops of their own: stores to seven rows in one loop
                # stopped its vectorisation (measured 2.5x slower).
                copy_row(h_n[b], h_prev[b, t])
                copy_row(c_n[b], c_prev[b, t])
                lstm_cell_training(g[b, t], bias, h_n[b], c_n[b], h_out)
            else:
                lstm_cell_inference(step[b - b0], bias, h_n[b], c_n[b], h_out)


@njit(inline="always", **_JIT)
def _forward_rows(cell, io, weights, cache, store, packed, d, b0, b1, scratch):
    """Run direction ``d`` over rows ``b0:b1`` for all timesteps.

    ``io.h_n``/``io.c_n`` hold the initial state on entry and the final state on exit. With
    ``store`` the activated gates and the state each step started from are kept in ``cache``
    for the backward pass; otherwise ``cache.gates[0]`` is only scratch for the
    pre-activations. ``packed`` holds ``W_ih^T``/``W_hh^T`` packed for
    :func:`numlstm.kernels.cpu.packed_gemm.matmul_packed`; ``scratch`` is this thread's
    :class:`~numlstm.kernels.cpu.records.ForwardScratch`.
    """
    products = packed.products
    x = io.x
    lengths = io.lengths
    out = io.out
    h_n = io.h_n
    c_n = io.c_n
    W_hh = weights.W_hh
    bias = weights.bias
    bias_hn = weights.bias_hn
    peep = weights.peep
    W_hr = weights.W_hr
    gates = cache.gates
    h_prev = cache.h_prev
    c_prev = cache.c_prev
    m_store = cache.m_store
    edge = scratch.edge
    rec = scratch.rec
    m_rows = scratch.m_rows
    h_rows = scratch.h_rows
    n_steps = x.shape[1]
    n_gate_cols = W_hh.shape[1]
    rec_size = W_hh.shape[2]
    proj = W_hr.shape[1] > 0
    peephole = peep.shape[2] > 0
    hidden = c_n.shape[2] if cell == CELL_LSTM else rec_size
    reverse = d == 1
    g = gates[d] if store else gates[0]
    col = d * rec_size
    _project_inputs(x, packed.products, packed.ih[d], n_gate_cols, b0, b1, g[b0:b1], edge)
    w_hh = packed.hh[d]
    for s in range(n_steps):
        t = step_order(s, n_steps, reverse)
        if store:
            for b in range(b0, b1):
                if cell == CELL_LSTM and not proj:
                    for j in range(hidden):
                        h_prev[d, b, t, j] = h_n[d, b, j]
                        c_prev[d, b, t, j] = c_n[d, b, j]
                    continue
                for j in range(rec_size):
                    h_prev[d, b, t, j] = h_n[d, b, j]
                if cell == CELL_LSTM:
                    for j in range(hidden):
                        c_prev[d, b, t, j] = c_n[d, b, j]
            h_src = h_prev[d, b0:, t].ctypes.data
            ld_h = n_steps * rec_size
        else:
            h_src = h_n[d, b0:].ctypes.data
            ld_h = rec_size
        # The recurrent product is added straight onto the input projection (the GRU
        # keeps it apart, see the module docstring).
        if cell == CELL_GRU:
            rec[:] = 0.0
            _matmul_packed(products, b1 - b0, n_gate_cols, h_src, ld_h, w_hh, rec.ctypes.data,
                           n_gate_cols, edge)
        else:
            _matmul_packed(products, b1 - b0, n_gate_cols, h_src, ld_h, w_hh, g[b0:, t].ctypes.data,
                           n_steps * n_gate_cols, edge)
        for b in range(b0, b1):
            h_out = out[b, t][col:col + rec_size]
            if t >= lengths[b]:
                h_out[:] = 0.0
                if proj:
                    # Rows of m go into products: finite values, whatever they are.
                    if store:
                        m_store[d, b, t][:] = 0.0
                    else:
                        m_rows[b - b0][:] = 0.0
                continue
            if cell == CELL_LSTM:
                # The plain LSTM has a kernel of its own (lstm_forward_rows) that runs
                # faster; this path serves it too, as an LSTM with zero peepholes.
                # With a projection the loop writes o * tanh(c) (m), projected below;
                # without peepholes their weights are zeros (one row function less to
                # compile, for an option whose cost is in its extra product).
                if proj:
                    h_new = m_store[d, b, t] if store else m_rows[b - b0]
                else:
                    h_new = h_n[d, b]
                p = peep[d] if peephole else scratch.no_peep
                lstm_peephole_forward(g[b, t], bias[d], p[0], p[1], p[2], h_new, c_n[d, b])
            elif cell == CELL_GRU:
                rec_n = c_prev[d, b, t] if store else m_rows[b - b0]
                gru_cell_forward(g[b, t], rec[b - b0], bias[d], bias_hn[d], h_n[d, b], rec_n)
            elif cell == CELL_RNN_TANH:
                rnn_tanh_forward(g[b, t], bias[d], h_n[d, b])
            else:
                rnn_relu_forward(g[b, t], bias[d], h_n[d, b])
            if not proj:
                copy_row(h_n[d, b], h_out)
        if proj:
            if store:
                m_src = m_store[d, b0:, t].ctypes.data
                ld_m = n_steps * hidden
            else:
                m_src = m_rows.ctypes.data
                ld_m = hidden
            gemm(False, True, b1 - b0, rec_size, hidden, 1.0, m_src, ld_m,
                 W_hr[d].ctypes.data, hidden, 0.0, h_rows.ctypes.data, rec_size,
                 scratch.blas_args)
            for b in range(b0, b1):
                if t < lengths[b]:
                    copy_row(h_rows[b - b0], h_n[d, b])
                    copy_row(h_rows[b - b0], out[b, t][col:col + rec_size])


@njit(inline="always", **_JIT)
def _forward_scratch(cell, io, weights, store, packed, b0, b1):
    """This thread's :class:`~numlstm.kernels.cpu.records.ForwardScratch` for rows
    ``b0:b1``."""
    x = io.x
    n_rows = b1 - b0
    hidden = io.c_n.shape[2] if cell == CELL_LSTM else io.h_n.shape[2]
    W_hh = weights.W_hh
    W_hr = weights.W_hr
    # The GRU's recurrent products, or one step's gates of the plain LSTM's inference.
    rec = np.empty((n_rows, W_hh.shape[1] if cell == CELL_GRU or not store else 0),
                   dtype=x.dtype)
    # Rows of W_hn h + b_hn (GRU) or o * tanh(c) (projection) that training would store.
    need_m_rows = not store and (cell == CELL_GRU or W_hr.shape[1] > 0)
    return ForwardScratch(
        blas_args=new_gemm_scratch(x),
        edge=np.empty((MAX_TILE_ROWS, packed.hh.shape[3]), dtype=x.dtype),
        rec=rec,
        m_rows=np.empty((n_rows, hidden if need_m_rows else 0), dtype=x.dtype),
        h_rows=np.empty((n_rows, W_hr.shape[1]), dtype=x.dtype),
        no_peep=np.zeros((3, hidden if cell == CELL_LSTM else 0), dtype=x.dtype))


@njit(**_INNER_JIT)
def layer_forward_rows(arguments, chunk, b0, b1):
    """Forward pass of one layer (both directions) over the batch rows ``b0:b1``: one
    thread's share of :func:`layer_forward`, or the whole batch.

    Only kernels call it, through its address. ``arguments`` points to the tuple
    ``(cell, io, weights, cache, store, packed)`` of :func:`layer_forward`, the weights
    packed already; ``chunk`` (which slice these rows are) is not read.
    """
    cell, io, weights, cache, store, packed = unstash(arguments)
    scratch = _forward_prologue(cell, io, weights, store, packed, b0, b1)
    for d in range(weights.W_hh.shape[0]):
        _forward_rows(cell, io, weights, cache, store, packed, d, b0, b1, scratch)


@njit(inline="always", **_JIT)
def _forward_prologue(cell, io, weights, store, packed, b0, b1):
    """What a per-rows forward kernel does first: start from the initial states; returns
    this thread's scratch."""
    copy_rows(io.h0, io.h_n, b0, b1)
    copy_rows(io.c0, io.c_n, b0, b1)
    return _forward_scratch(cell, io, weights, store, packed, b0, b1)


@njit(**_INNER_JIT)
def lstm_forward_rows(arguments, chunk, b0, b1):
    """:func:`layer_forward_rows` of the plain LSTM (no projection, no peepholes; ``cell``
    is not read), through its own sweep.

    A kernel apart rather than a branch of :func:`layer_forward_rows`: a first fit of the
    common model then compiles only this sweep, not the other cells' (4 of 18 seconds).
    """
    cell, io, weights, cache, store, packed = unstash(arguments)
    scratch = _forward_prologue(CELL_LSTM, io, weights, store, packed, b0, b1)
    for d in range(weights.W_hh.shape[0]):
        _lstm_forward_rows(io, weights, cache, store, packed, d, b0, b1, scratch)


@njit(**_ENTRY_JIT)
def layer_forward(rows_kernel, runner, cell, io, weights, cache, store, packed, chunk_bounds):
    """Forward pass of one layer (both directions), one batch slice per thread.

    Parameters
    ----------
    rows_kernel : int
        Address of :func:`layer_forward_rows` (or :func:`lstm_forward_rows`) compiled for
        a pointer to ``(cell, io, weights, cache, store, packed)``
        (:func:`~numlstm.kernels.cpu.indirect_call.stashed_address`).
    runner : int
        :func:`~numlstm.kernels.cpu.parallel_rows.slices_runner` of ``chunk_bounds``.
    cell : int
        One of :data:`CELL_CODES`.
    io : ForwardIO
        The input and initial state, read; the output and final state, written (see
        :mod:`numlstm.kernels.cpu.records`).
    weights : LayerWeights
    cache : TrainingCache
        Written when ``store`` (activated gates, states each step started from); without,
        only ``cache.gates[0]`` is used, as scratch.
    store : bool
        Keep what the backward pass needs (training) or not (inference).
    packed : PackedWeights
        Written: ``W_ih^T`` and ``W_hh^T`` packed in panels of NR columns
        (:func:`numlstm.kernels.cpu.packed_gemm.panel_width`), once, then shared by the
        threads.
    chunk_bounds : int64 ndarray (n_chunks + 1,)
        Batch slice of each thread.
    """
    _pack_forward_weights(weights, packed)
    run_rows(rows_kernel, runner, stash((cell, io, weights, cache, store, packed)),
             chunk_bounds)


# ------------------------------------------------------------------------ backward
@njit(inline="always", **_JIT)
def _backward_rows(cell, io, weights, cache, work, packed, d, b0, b1, scratch):
    """Backward sweep of direction ``d`` over rows ``b0:b1``.

    ``io.d_h0``/``io.d_c0`` hold the gradients w.r.t. the final state on entry and w.r.t.
    the initial state on exit. ``work`` receives the gradients w.r.t. the gate
    pre-activations, the GRU's w.r.t. the recurrent pre-activations and, with a projection,
    w.r.t. each step's ``h`` and, with peepholes, each row's peephole weight gradients
    summed over its steps (``work.peep_rows``, zeroed here).
    ``packed.hh`` holds ``W_hh`` packed for
    :func:`numlstm.kernels.cpu.packed_gemm.matmul_packed`; ``scratch`` is this thread's
    :class:`~numlstm.kernels.cpu.records.BackwardScratch`.
    """
    products = packed.products
    lengths = io.lengths
    d_out = io.d_out
    d_h = io.d_h0
    d_c = io.d_c0
    W_hh = weights.W_hh
    W_hr = weights.W_hr
    peep = weights.peep
    gates = cache.gates
    h_prev = cache.h_prev
    c_prev = cache.c_prev
    d_gates = work.d_gates
    d_rec = work.d_rec
    dh_store = work.dh_store
    peep_rows = work.peep_rows
    edge = scratch.edge
    carry = scratch.carry
    dm = scratch.dm
    zeros = scratch.zeros
    n_steps = gates.shape[2]
    n_gate_cols = W_hh.shape[1]
    rec_size = W_hh.shape[2]
    proj = W_hr.shape[1] > 0
    peephole = peep.shape[2] > 0
    hidden = W_hr.shape[2]
    reverse = d == 1
    col = d * rec_size
    dg_dir = d_gates[d]
    w_hh = packed.hh[d]
    if peephole:
        _zero(peep_rows[d, b0:b1])
    for s in range(n_steps - 1, -1, -1):
        t = step_order(s, n_steps, reverse)
        if proj:
            for b in range(b0, b1):
                dh_row = dh_store[d, b, t]
                if t >= lengths[b]:
                    dh_row[:] = 0.0
                else:
                    d_h_row = d_h[d, b]
                    d_out_row = d_out[b, t][col:col + rec_size]
                    for j in range(rec_size):
                        dh_row[j] = d_h_row[j] + d_out_row[j]
            gemm(False, False, b1 - b0, hidden, rec_size, 1.0,
                 dh_store[d, b0:, t].ctypes.data, n_steps * rec_size, W_hr[d].ctypes.data,
                 hidden, 0.0, dm.ctypes.data, hidden, scratch.blas_args)
        for b in range(b0, b1):
            if t >= lengths[b]:
                dg_dir[b, t][:] = 0.0
                if cell == CELL_GRU:
                    d_rec[d, b, t][:] = 0.0
                continue
            # Separate calls rather than one call on a chosen row: the rows' array types
            # differ, and unifying them would cost the plain LSTM loop its vectorisation.
            if cell == CELL_LSTM and peephole and proj:
                lstm_peephole_backward(gates[d, b, t], c_prev[d, b, t], peep[d, 0],
                                       peep[d, 1], peep[d, 2], dm[b - b0], zeros, d_c[d, b],
                                       dg_dir[b, t], peep_rows[d, b, 0], peep_rows[d, b, 1],
                                       peep_rows[d, b, 2])
            elif cell == CELL_LSTM and peephole:
                lstm_peephole_backward(gates[d, b, t], c_prev[d, b, t], peep[d, 0],
                                       peep[d, 1], peep[d, 2], d_out[b, t][col:col + rec_size],
                                       d_h[d, b], d_c[d, b], dg_dir[b, t], peep_rows[d, b, 0],
                                       peep_rows[d, b, 1], peep_rows[d, b, 2])
            elif cell == CELL_LSTM and proj:
                lstm_cell_backward(gates[d, b, t], c_prev[d, b, t], dm[b - b0], zeros,
                                   d_c[d, b], dg_dir[b, t])
            elif cell == CELL_LSTM:
                lstm_cell_backward(gates[d, b, t], c_prev[d, b, t],
                                   d_out[b, t][col:col + rec_size], d_h[d, b], d_c[d, b],
                                   dg_dir[b, t])
            elif cell == CELL_GRU:
                gru_cell_backward(gates[d, b, t], c_prev[d, b, t], h_prev[d, b, t],
                                  d_out[b, t][col:col + rec_size], d_h[d, b], dg_dir[b, t],
                                  d_rec[d, b, t])
            elif cell == CELL_RNN_TANH:
                rnn_tanh_backward(gates[d, b, t], d_out[b, t][col:col + rec_size], d_h[d, b],
                                  dg_dir[b, t])
            else:
                rnn_relu_backward(gates[d, b, t], d_out[b, t][col:col + rec_size], d_h[d, b],
                                  dg_dir[b, t])
        if cell == CELL_GRU:
            # d_h holds dh * z of the valid rows; padded rows have zero d_rec, so adding the
            # product to every row leaves theirs unchanged.
            _matmul_packed(products, b1 - b0, rec_size, d_rec[d, b0:, t].ctypes.data,
                           n_steps * n_gate_cols, w_hh, d_h[d, b0:].ctypes.data, rec_size, edge)
        else:
            carry[:] = 0.0
            _matmul_packed(products, b1 - b0, rec_size, dg_dir[b0:, t].ctypes.data,
                           n_steps * n_gate_cols, w_hh, carry.ctypes.data, rec_size, edge)
            for b in range(b0, b1):
                if t < lengths[b]:
                    copy_row(carry[b - b0], d_h[d, b])


#: Inputs with at most this many features get their input gradient from one dot product
#: per row and feature: a product tile would compute a whole NR-column panel for them.
_DOT_MAX_INPUTS = 4


@njit(**_ROW_JIT)
def _dot(a, b):
    total = a[0] * b[0]
    for j in range(1, a.shape[0]):
        total += a[j] * b[j]
    return total


@njit(inline="always", **_JIT)
def _input_gradient(io, weights, work, packed, d, b0, b1, scratch):
    """Add direction ``d``'s share of the input gradient of rows ``b0:b1`` to ``io.dx``
    (the first direction overwrites it); arguments as for :func:`_backward_rows`. An
    ``io.dx`` without columns asks for none: the bottom layer of a network that is being
    trained has no use for it."""
    products = packed.products
    x = io.x
    dx = io.dx
    if dx.shape[2] == 0:
        return
    W_ih = weights.W_ih
    d_gates = work.d_gates
    n_steps = x.shape[1]
    in_size = x.shape[2]
    n_gate_cols = d_gates.shape[3]
    if d == 0:
        _zero(dx[b0:b1])
    if in_size <= _DOT_MAX_INPUTS:
        w_t = scratch.narrow
        for j in range(n_gate_cols):
            for i in range(in_size):
                w_t[i, j] = W_ih[d, j, i]
        for b in range(b0, b1):
            for t in range(n_steps):
                row = d_gates[d, b, t]
                dx_row = dx[b, t]
                for i in range(in_size):
                    dx_row[i] += _dot(row, w_t[i])
    else:
        _matmul_packed(products, (b1 - b0) * n_steps, in_size, d_gates[d, b0:].ctypes.data,
                       n_gate_cols, packed.ih[d], dx[b0:].ctypes.data, in_size, scratch.edge)


@njit(inline="always", **_JIT)
def _weight_gradients(io, cache, work, grads, products, d, share, scratch):
    """Direction ``d``'s gradients w.r.t. the weights and bias of gate columns ``c0:c1``
    (rows ``c0:c1`` of ``W_ih``, ``W_hh``), over batch rows ``b0:b1`` and every step,
    written to ``grads``; ``share`` is ``(b0, b1, c0, c1)``.

    Each gradient element is one product's sum over the rows and steps, in the same
    order however the columns are shared out. ``scratch`` is a
    :class:`~numlstm.kernels.cpu.records.GradientScratch` for ``c1 - c0`` columns.
    """
    b0, b1, c0, c1 = share
    x = io.x
    h_prev = cache.h_prev
    d_gates = work.d_gates
    d_rec = work.d_rec
    dW_ih = grads.W_ih[d]
    dW_hh = grads.W_hh[d]
    edge = scratch.edge
    edge_panel = scratch.edge_panel
    n_steps = x.shape[1]
    in_size = x.shape[2]
    rec_size = h_prev.shape[3]
    n_gate_cols = d_gates.shape[3]
    n_rows = (b1 - b0) * n_steps
    n_cols = c1 - c0
    size = d_gates.itemsize
    dg = d_gates[d, b0:].ctypes.data + c0 * size
    _zero(dW_ih[c0:c1])
    _zero(dW_hh[c0:c1])
    if _transposed_input_gradient(in_size, edge.shape[1]):
        dw_t = scratch.narrow
        _zero(dw_t)
        _matmul_tn(products, in_size, n_cols, n_rows, x[b0:].ctypes.data, in_size, dg,
                   n_gate_cols, dw_t.ctypes.data, n_cols, edge, edge_panel)
        for j in range(n_cols):
            for i in range(in_size):
                dW_ih[c0 + j, i] = dw_t[i, j]
    else:
        _matmul_tn(products, n_cols, in_size, n_rows, dg, n_gate_cols, x[b0:].ctypes.data,
                   in_size, dW_ih[c0:].ctypes.data, in_size, edge, edge_panel)
    _matmul_tn(products, n_cols, rec_size, n_rows, d_rec[d, b0:].ctypes.data + c0 * size,
               n_gate_cols, h_prev[d, b0:].ctypes.data, rec_size, dW_hh[c0:].ctypes.data,
               rec_size, edge, edge_panel)
    _column_sums(d_gates[d], share, grads.bias[d])


@njit(inline="always", **_JIT)
def _transposed_input_gradient(in_size, nr):
    """Whether :func:`_weight_gradients` forms ``dW_ih^T = x^T @ d_gates`` rather than
    ``dW_ih = d_gates^T @ x``: for at most one panel (NR) of input features. With few
    features (univariate series, say) the transposed product keeps its panels full where
    the other would fill one panel of NR columns with I. With one full panel the other
    reads its G*H gate columns in place, rows G*H values apart: a multiple of 1 KiB from
    H = 64 on, whose rows evict each other from the L1 cache (AMD EPYC, Zen 4, one core,
    float32, I = 32 and G*H = 512 over 3,200 rows: 59-72 GFLOP/s, transposed 69-97).
    Both sum each element's products in the same order: the same bits either way."""
    return in_size <= nr


@njit(inline="always", **_JIT)
def _column_sums(rows, share, total):
    """``total[c0:c1] = rows[b0:b1, :, c0:c1].sum(axis=(0, 1))``, adding rows and steps in
    order; summed in a private array, since another thread may write the next columns
    of ``total`` (on a shared cache line, each add would cross between the cores)."""
    b0, b1, c0, c1 = share
    sums = np.zeros(c1 - c0, dtype=total.dtype)
    for b in range(b0, b1):
        for t in range(rows.shape[1]):
            add_row(rows[b, t, c0:c1], sums)
    copy_row(sums, total[c0:c1])


@njit(inline="always", **_JIT)
def _part_of(c0, c1, n_gate_cols, n):
    """The part of ``range(n)`` that goes with gate columns ``c0:c1`` of ``n_gate_cols``:
    consecutive runs of columns cover ``range(n)`` once."""
    return c0 * n // n_gate_cols, c1 * n // n_gate_cols


@njit(inline="always", **_JIT)
def _option_gradients(cell, cache, work, grads, products, d, share, scratch):
    """The weight gradients of what the plain LSTM lacks, for direction ``d``, over batch
    rows ``b0:b1``, the part that goes with gate columns ``c0:c1``: the GRU's recurrent
    bias (those columns), the projection's (its rows in proportion) and the peepholes'
    (their units in proportion); as :func:`_weight_gradients`."""
    b0, b1, c0, c1 = share
    n_gate_cols = work.d_gates.shape[3]
    if cell == CELL_GRU:
        _column_sums(work.d_rec[d], share, grads.bias_hh[d])
    dW_hr = grads.W_hr
    if dW_hr.shape[1] > 0:
        rec_size = dW_hr.shape[1]
        hidden = dW_hr.shape[2]
        r0, r1 = _part_of(c0, c1, n_gate_cols, rec_size)
        if r1 > r0:
            _zero(dW_hr[d, r0:r1])
            _matmul_tn(products, r1 - r0, hidden, (b1 - b0) * work.dh_store.shape[2],
                       work.dh_store[d, b0:].ctypes.data + r0 * dW_hr.itemsize, rec_size,
                       cache.m_store[d, b0:].ctypes.data, hidden, dW_hr[d, r0:].ctypes.data,
                       hidden, scratch.edge, scratch.edge_panel)
    peep = grads.peep
    if peep.shape[2] > 0:
        u0, u1 = _part_of(c0, c1, n_gate_cols, peep.shape[2])
        peep_rows = work.peep_rows[d]
        for k in range(3):
            total = peep[d, k]
            copy_row(peep_rows[b0, k, u0:u1], total[u0:u1])
            for b in range(b0 + 1, b1):
                add_row(peep_rows[b, k, u0:u1], total[u0:u1])


@njit(inline="always", **_JIT)
def _backward_scratch(io, weights, packed, b0, b1):
    """This thread's :class:`~numlstm.kernels.cpu.records.BackwardScratch` for rows
    ``b0:b1``."""
    x = io.x
    n_rows = b1 - b0
    rec_size = weights.W_hh.shape[2]
    hidden = weights.W_hr.shape[2]
    nr = packed.hh.shape[3]
    in_size = x.shape[2]
    narrow_rows = in_size if in_size <= _DOT_MAX_INPUTS else 0
    return BackwardScratch(
        blas_args=new_gemm_scratch(x),
        edge=np.empty((MAX_TILE_ROWS, nr), dtype=x.dtype),
        carry=np.empty((n_rows, rec_size), dtype=x.dtype),
        dm=np.empty((n_rows, hidden), dtype=x.dtype),
        zeros=np.zeros(hidden, dtype=x.dtype),
        narrow=np.empty((narrow_rows, weights.W_ih.shape[1]), dtype=x.dtype))


@njit(inline="always", **_JIT)
def _gradient_scratch(io, packed, c0, c1):
    """This thread's :class:`~numlstm.kernels.cpu.records.GradientScratch` for gate
    columns ``c0:c1``."""
    x = io.x
    nr = packed.hh.shape[3]
    in_size = x.shape[2]
    narrow_rows = in_size if _transposed_input_gradient(in_size, nr) else 0
    return GradientScratch(
        edge=np.empty((MAX_TILE_ROWS, nr), dtype=x.dtype),
        edge_panel=np.empty((K_BLOCK, nr), dtype=x.dtype),
        narrow=np.empty((narrow_rows, c1 - c0), dtype=x.dtype))


@njit(inline="always", **_JIT)
def _start_sweep(io, b0, b1):
    """What a backward sweep over rows ``b0:b1`` starts from: the gradients w.r.t. the
    final states."""
    copy_rows(io.d_h_n, io.d_h0, b0, b1)
    copy_rows(io.d_c_n, io.d_c0, b0, b1)


@njit(**_INNER_JIT)
def layer_backward_rows(arguments, chunk, b0, b1):
    """Backward sweep through time of batch rows ``b0:b1`` (both directions) and their
    input gradient: slice ``chunk`` of :func:`layer_backward`, or the whole batch.

    Only kernels call it, through its address. ``arguments`` points to the tuple
    ``(cell, io, weights, cache, work, packed, partials, shares, gradients)`` of
    :func:`layer_backward`, the weights packed already. The weight gradients are
    :func:`layer_weight_gradients`' work (at address ``gradients``): called from here for
    share ``chunk`` when ``shares.after_sweep`` says the slice is that share.
    """
    cell, io, weights, cache, work, packed, partials, shares, gradients = unstash(arguments)
    _start_sweep(io, b0, b1)
    scratch = _backward_scratch(io, weights, packed, b0, b1)
    for d in range(weights.W_hh.shape[0]):
        _backward_rows(cell, io, weights, cache, work, packed, d, b0, b1, scratch)
        _input_gradient(io, weights, work, packed, d, b0, b1, scratch)
    if shares.after_sweep:
        call_compiled(gradients, (arguments, chunk, b0, b1))


@njit(inline="always", **_JIT)
def _gradient_share(shares, partials, share):
    """Share ``share``'s rows and columns ``(b0, b1, c0, c1)`` and the gradients of its
    block."""
    block = share // shares.n_runs
    run = share - block * shares.n_runs
    rows_and_columns = (shares.blocks[block], shares.blocks[block + 1],
                        shares.columns[run], shares.columns[run + 1])
    return rows_and_columns, _block_of(partials, block)


@njit(inline="always", **_JIT)
def _common_weight_gradients(arguments, share):
    """The gradients of share ``share`` that every cell has (:func:`_weight_gradients`,
    every direction); returns what the options' gradients then need."""
    cell, io, weights, cache, work, packed, partials, shares, gradients = unstash(arguments)
    rows_and_columns, grads = _gradient_share(shares, partials, share)
    scratch = _gradient_scratch(io, packed, rows_and_columns[2], rows_and_columns[3])
    for d in range(weights.W_hh.shape[0]):
        _weight_gradients(io, cache, work, grads, packed.products, d, rows_and_columns,
                          scratch)
    return cell, cache, work, grads, packed.products, rows_and_columns, scratch


@njit(**_INNER_JIT)
def layer_weight_gradients(arguments, share, first, last):
    """Share ``share`` of the weight gradients of :func:`layer_backward` (both directions,
    every cell and option), after the sweep: the gradients of one run of gate columns
    over one block of batch rows (see :class:`~numlstm.kernels.cpu.records.GradientShares`),
    written to that block's ``partials``. Called like :func:`layer_backward_rows`, with
    the same arguments; ``first`` and ``last`` are not read.

    A kernel apart from the sweeps: inlined into one, it slowed the sweep's own code.
    """
    cell, cache, work, grads, products, rows_and_columns, scratch = (
        _common_weight_gradients(arguments, share))
    for d in range(work.d_gates.shape[0]):
        _option_gradients(cell, cache, work, grads, products, d, rows_and_columns, scratch)


@njit(**_INNER_JIT)
def lstm_weight_gradients(arguments, share, first, last):
    """:func:`layer_weight_gradients` of the plain LSTM, without the options' code (a
    kernel apart for the first fit's compile time, like :func:`lstm_backward_rows`)."""
    _common_weight_gradients(arguments, share)


@njit(inline="always", **_JIT)
def _lstm_backward_rows(io, cache, work, packed, d, b0, b1, scratch):
    """The plain LSTM's backward sweep of direction ``d`` over rows ``b0:b1``:
    :func:`_backward_rows` without projection, peepholes or other cells."""
    lengths = io.lengths
    # Borrowed, as in _lstm_forward_rows.
    d_out = borrowed(io.d_out)
    d_h = borrowed(io.d_h0[d])
    d_c = borrowed(io.d_c0[d])
    gates = borrowed(cache.gates[d])
    c_prev = borrowed(cache.c_prev[d])
    dg = borrowed(work.d_gates[d])
    w_hh = packed.hh[d]
    products = packed.products
    edge = scratch.edge
    carry = borrowed(scratch.carry)
    n_steps = gates.shape[1]
    n_gate_cols = gates.shape[2]
    rec_size = d_h.shape[1]
    col = d * rec_size
    for s in range(n_steps - 1, -1, -1):
        t = step_order(s, n_steps, d == 1)
        for b in range(b0, b1):
            if t >= lengths[b]:
                dg[b, t][:] = 0.0
            else:
                lstm_cell_backward(gates[b, t], c_prev[b, t], d_out[b, t][col:col + rec_size],
                                   d_h[b], d_c[b], dg[b, t])
        carry[:] = 0.0
        _matmul_packed(products, b1 - b0, rec_size, dg[b0:, t].ctypes.data, n_steps * n_gate_cols,
                       w_hh, carry.ctypes.data, rec_size, edge)
        for b in range(b0, b1):
            if t < lengths[b]:
                copy_row(carry[b - b0], d_h[b])


@njit(**_INNER_JIT)
def lstm_backward_rows(arguments, chunk, b0, b1):
    """:func:`layer_backward_rows` of the plain LSTM (``cell`` is not read), through its
    own sweep; a kernel apart for the first fit's compile time, like
    :func:`lstm_forward_rows`."""
    cell, io, weights, cache, work, packed, partials, shares, gradients = unstash(arguments)
    _start_sweep(io, b0, b1)
    scratch = _backward_scratch(io, weights, packed, b0, b1)
    for d in range(weights.W_hh.shape[0]):
        _lstm_backward_rows(io, cache, work, packed, d, b0, b1, scratch)
        _input_gradient(io, weights, work, packed, d, b0, b1, scratch)
    if shares.after_sweep:
        call_compiled(gradients, (arguments, chunk, b0, b1))


@njit(**_INNER_JIT)
def _pack_backward_weights(weights, packed):
    """Pack ``W_ih[d]`` and ``W_hh[d]`` of every direction for :func:`matmul_packed`."""
    for d in range(weights.W_hh.shape[0]):
        pack(weights.W_ih[d], packed.ih[d])
        pack(weights.W_hh[d], packed.hh[d])


@njit(inline="always", **_JIT)
def _zero(array):
    """Zero the C-contiguous ``array`` (a loop: numba's slice assignment compiles once per
    number of dimensions)."""
    values = flat(array)
    for i in range(values.shape[0]):
        values[i] = 0.0


@njit(**_INNER_JIT)
def _sum_partials(partial, total):
    """``total`` = the sum of the ``len(partial) // len(total)`` consecutive blocks of
    ``partial``, in order (both flat: one compile serves every shape)."""
    size = total.shape[0]
    if size == 0:
        return
    copy_row(partial[:size], total)
    for start in range(size, partial.shape[0], size):
        add_row(partial[start:start + size], total)


@njit(inline="always", **_JIT)
def _block_of(partials, block):
    """The weight gradients of row block ``block`` in ``partials`` (arrays with a leading
    block axis)."""
    return WeightGradients(partials.W_ih[block], partials.W_hh[block], partials.bias[block],
                           partials.bias_hh[block], partials.peep[block],
                           partials.W_hr[block])


@njit(**_INNER_JIT)
def _sum_blocks(partials, grads):
    """``grads = partials.sum(axis=0)``, field by field, the blocks in order."""
    _sum_partials(flat(partials.W_ih), flat(grads.W_ih))
    _sum_partials(flat(partials.W_hh), flat(grads.W_hh))
    _sum_partials(flat(partials.bias), flat(grads.bias))
    _sum_partials(flat(partials.bias_hh), flat(grads.bias_hh))
    _sum_partials(flat(partials.peep), flat(grads.peep))
    _sum_partials(flat(partials.W_hr), flat(grads.W_hr))


@njit(**_ENTRY_JIT)
def layer_backward(kernels, runners, cell, io, weights, cache, work, packed, grads, partials,
                   bounds, shares):
    """Backward pass through time of one layer (both directions): the sweep, one batch
    slice per thread, then the weight gradients, one share per thread (each slice's
    own share right after its sweep, when the slices are the shares).

    The weight gradients are sums over every row and step. They are added up in an order
    that the number of threads does not change: over fixed blocks of batch rows, each
    block's sums in one product per gradient element, then the blocks in order
    (:class:`~numlstm.kernels.cpu.records.GradientShares`). So training gives the same
    weights bit for bit at any thread count.

    Parameters
    ----------
    kernels : (int, int)
        Addresses of :func:`layer_backward_rows` and :func:`layer_weight_gradients` (or
        :func:`lstm_backward_rows` and :func:`lstm_weight_gradients`), compiled for a
        pointer to ``(cell, io, weights, cache, work, packed, partials, shares,
        gradients)``, ``gradients`` being the
        second address (:func:`~numlstm.kernels.cpu.indirect_call.stashed_address`).
    runners : (int, int)
        :func:`~numlstm.kernels.cpu.parallel_rows.slices_runner` of ``bounds`` and of
        ``shares.bounds``.
    cell : int
        As given to :func:`layer_forward`.
    io : BackwardIO
        The forward's input and the gradients w.r.t. its output and final state, read; the
        gradients w.r.t. its input and initial state, written (see
        :mod:`numlstm.kernels.cpu.records`).
    weights, cache : LayerWeights, TrainingCache
        As given to / filled by :func:`layer_forward`.
    work : StepGradients
        Scratch: the gradients of each step.
    packed : PackedWeights
        Written: ``W_ih`` and ``W_hh`` (not transposed) packed in panels of NR columns,
        once, then shared by the threads.
    grads : WeightGradients
        The weight gradients, written: the sum of the blocks' gradients.
    partials : WeightGradients of arrays with a leading block axis
        Each row block's weight gradients. With one block, views of ``grads``
        (``grads.W_ih[None]``, ...), which the block then writes directly.
    bounds : int64 ndarray (n_slices + 1,)
        The first batch row of each thread's slice of the sweep, then the batch size.
    shares : GradientShares
        How the weight gradients are cut.
    """
    _pack_backward_weights(weights, packed)
    arguments = stash((cell, io, weights, cache, work, packed, partials, shares, kernels[1]))
    run_rows(kernels[0], runners[0], arguments, bounds)
    if not shares.after_sweep:
        run_rows(kernels[1], runners[1], arguments, shares.bounds)
    if shares.blocks.shape[0] > 2:
        _sum_blocks(partials, grads)
