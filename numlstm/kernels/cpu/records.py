"""The records the CPU kernels of :mod:`numlstm.kernels.cpu.recurrent` take their arrays in.

A kernel call needs some thirty arrays: the weights, the layer's inputs and outputs, the
training caches, the packed weights, the gradients and each thread's scratch. They travel
as a few named tuples of arrays rather than one long list of positional arguments, so a
kernel's signature stays short and adding an array touches one record (its definition
here, and the one place that fills it: the driver :mod:`numlstm.nn.cpu_backend` or, for the
per-thread scratch, the per-rows kernel).

numba compiles a named tuple of arrays into a plain structure: reading a field inside
``@njit`` code costs nothing, and a record's type (its class and the types of its arrays)
takes part in the kernel's signature and cache key like any other argument. numba's
dispatcher fingerprints them, so :func:`numlstm.kernels.cpu.indirect_call.compiled_function`
finds an entry kernel compiled for records as for arrays, and
:func:`~numlstm.kernels.cpu.indirect_call.stashed_address` a per-rows kernel compiled for a
pointer to a tuple of records.

Shapes use the letters of :mod:`numlstm.kernels.cpu.recurrent`: ``D`` directions, ``B``
batch rows, ``T`` timesteps, ``I`` input features, ``G`` gates, ``H`` hidden units, ``R``
the size of the recurrent state (``P`` with a projection, else ``H``), ``NR`` the columns of
a packed panel (:func:`numlstm.kernels.cpu.packed_gemm.panel_width`). Arrays a layer does
not use have a size-0 axis. All arrays of a record are C-contiguous and of one float type
(``lengths`` aside).

numba's on-disk cache keys a kernel on its own source file only: after editing this
module, delete the ``*.nbi``/``*.nbc`` files under ``__pycache__``.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["BackwardIO", "BackwardScratch", "ForwardIO", "ForwardScratch", "GradientScratch",
           "GradientShares", "LayerWeights", "PackedWeights", "StepGradients",
           "TrainingCache", "WeightGradients"]


class LayerWeights(NamedTuple):
    """The weights of one layer, every direction.

    Attributes
    ----------
    W_ih : ndarray (D, G*H, I)
        Input weights; gate orders i, f, g, o (LSTM) and r, z, n (GRU), as in PyTorch.
    W_hh : ndarray (D, G*H, R)
        Recurrent weights.
    bias : ndarray (D, G*H)
        ``b_ih + b_hh``, except for the GRU's n gate, where it is ``b_in`` alone.
    bias_hn : ndarray (D, H), or (D, 0) for other cells than the GRU
        The GRU's ``b_hn``.
    peep : ndarray (D, 3, H), or (D, 3, 0) without peepholes
        The LSTM's peephole weights of the i, f and o gates.
    W_hr : ndarray (D, P, H), or (D, 0, 0) without a projection
        The LSTM's projection.
    """

    W_ih: np.ndarray
    W_hh: np.ndarray
    bias: np.ndarray
    bias_hn: np.ndarray
    peep: np.ndarray
    W_hr: np.ndarray


class ForwardIO(NamedTuple):
    """What a forward pass reads (the input and the initial state) and writes (the output
    and the final state).

    Attributes
    ----------
    x : ndarray (B, T, I)
        Layer input.
    lengths : int64 ndarray (B,)
        Valid steps of each row, each in [1, T].
    h0 : ndarray (D, B, R)
        Initial recurrent state.
    c0 : ndarray (D, B, H), or (D, B, 0) for cells without a cell state
        The LSTM's initial cell state.
    out : ndarray (B, T, D*R), written
        Layer output, direction ``d`` in columns ``d*R:(d+1)*R``, zero at padded steps.
    h_n, c_n : ndarrays like ``h0``, ``c0``, written
        Final states (each row's at its own last valid step).
    """

    x: np.ndarray
    lengths: np.ndarray
    h0: np.ndarray
    c0: np.ndarray
    out: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray


class BackwardIO(NamedTuple):
    """What a backward pass reads (the forward's input, the gradients w.r.t. the output and
    the final state) and writes (the gradients w.r.t. the input and the initial state).

    Attributes
    ----------
    x, lengths : ndarrays
        As in the forward pass (:class:`ForwardIO`).
    d_out : ndarray (B, T, D*R)
        Gradient w.r.t. the layer output (ignored at padded steps).
    d_h_n, d_c_n : ndarrays (D, B, R), (D, B, H or 0)
        Gradients w.r.t. the final states.
    dx : ndarray (B, T, I), written
        Gradient w.r.t. the input.
    d_h0, d_c0 : ndarrays like ``d_h_n``, ``d_c_n``, written
        Gradients w.r.t. the initial states.
    """

    x: np.ndarray
    lengths: np.ndarray
    d_out: np.ndarray
    d_h_n: np.ndarray
    d_c_n: np.ndarray
    dx: np.ndarray
    d_h0: np.ndarray
    d_c0: np.ndarray


class TrainingCache(NamedTuple):
    """What a training forward pass keeps for the backward pass.

    In inference (``store=False``) only ``gates[0]`` is used, as scratch for the
    pre-activations (``(1, 1, 1, G*H)`` for the plain LSTM, which infers step by step in
    per-thread blocks), and the other arrays have size 0.

    Attributes
    ----------
    gates : ndarray (D, B, T, G*H)
        Activated gate values of each step.
    h_prev : ndarray (D, B, T, R)
        The recurrent state each step started from.
    c_prev : ndarray (D, B, T, H), or (D, B, T, 0) for the plain RNN
        The LSTM's cell state each step started from, or the GRU's ``W_hn h + b_hn`` of
        each step.
    m_store : ndarray (D, B, T, H), or (D, B, T, 0) without a projection
        The projected LSTM's ``o * tanh(c)`` of each step.
    """

    gates: np.ndarray
    h_prev: np.ndarray
    c_prev: np.ndarray
    m_store: np.ndarray


class PackedWeights(NamedTuple):
    """``W_ih`` and ``W_hh`` of every direction packed in column panels for
    :func:`numlstm.kernels.cpu.packed_gemm.matmul_packed`, once per kernel call.

    Going forward the kernels pack the transposes (``x @ W_ih^T``, ``h @ W_hh^T``), going
    backward the matrices themselves (``d_gates @ W_ih``, ``d_gates @ W_hh``).

    Attributes
    ----------
    ih : ndarray (D, ceil(G*H / NR), I, NR) forward, (D, ceil(I / NR), G*H, NR) backward
    hh : ndarray (D, ceil(G*H / NR), R, NR) forward, (D, ceil(R / NR), G*H, NR) backward
    source : ndarray (1 + W_ih.size + W_hh.size,) or (0,)
        Inference only: the weights ``ih`` and ``hh`` were packed from, after a flag
        (``source[0] == 1``: they are valid; a new array of zeros: nothing packed yet).
        Calls whose weights are bit for bit the same skip the packing, which costs more
        than the arithmetic of a small call (7 us at H=64, against 1 us for one step of
        one sequence). Size 0: pack on every call (training, where every step changes
        the weights).
    products : int64 ndarray (2,)
        The addresses the kernels call the products through
        (:func:`numlstm.kernels.cpu.recurrent.product_addresses` of the float type; the
        forward pass's may leave out the weight-gradient product, which only the backward
        pass calls).
    """

    ih: np.ndarray
    hh: np.ndarray
    source: np.ndarray
    products: np.ndarray


class StepGradients(NamedTuple):
    """Gradients of each step that the backward sweep forms and the weight gradients then
    read; shared by the threads, each of which uses its own rows.

    Attributes
    ----------
    d_gates : ndarray (D, B, T, G*H)
        Gradients w.r.t. the gate pre-activations.
    d_rec : ndarray (D, B, T, G*H)
        The GRU's gradients w.r.t. the recurrent pre-activations (``W_hh h + b_hh``);
        ``d_gates`` itself for the other cells.
    dh_store : ndarray (D, B, T, R), or (D, B, T, 0) without a projection
        Gradients w.r.t. each step's projected state ``h``.
    peep_rows : ndarray (D, B, 3, H), or (D, B, 3, 0) without peepholes
        Each row's gradients w.r.t. the peephole weights, summed over its steps: the
        weight gradients then add the rows up in order, whatever the threads' slices.
    """

    d_gates: np.ndarray
    d_rec: np.ndarray
    dh_store: np.ndarray
    peep_rows: np.ndarray


class WeightGradients(NamedTuple):
    """Gradients w.r.t. the weights of one layer (of one block of rows, or the total).

    Attributes
    ----------
    W_ih, W_hh : ndarrays like :class:`LayerWeights`' ``W_ih``, ``W_hh``
    bias : ndarray (D, G*H)
        Gradient w.r.t. ``b_ih`` (which equals that w.r.t. ``b_hh``, except for the GRU).
    bias_hh : ndarray (D, G*H) for the GRU, else any float array (untouched)
        The GRU's gradient w.r.t. ``b_hh``.
    peep, W_hr : ndarrays like :class:`LayerWeights`' ``peep``, ``W_hr``
    """

    W_ih: np.ndarray
    W_hh: np.ndarray
    bias: np.ndarray
    bias_hh: np.ndarray
    peep: np.ndarray
    W_hr: np.ndarray


class GradientShares(NamedTuple):
    """How a backward pass cuts its weight gradients into shares for the threads.

    The rows of the batch are cut into a few fixed blocks, whatever the number of
    threads; a block's gradients are sums over its rows and steps, one product per
    gradient element, and the total adds the blocks in order. The threads take shares
    of a block's gate columns (each element's sum does not depend on which columns go
    together), so the gradients are the same bit for bit at any thread count. With as
    many blocks as threads, each thread sums the rows it swept, still in its cache.

    Attributes
    ----------
    blocks : int64 ndarray (n_blocks + 1,)
        The first batch row of each block, then the batch size.
    columns : int64 ndarray (n_runs + 1,)
        The first gate column of each run of columns, then ``G*H``.
    n_runs : int
        Runs of columns per block.
    bounds : int64 ndarray (n_blocks * n_runs + 1,)
        ``0, 1, ..., n_blocks * n_runs``: share ``s`` is run ``s % n_runs`` of block
        ``s // n_runs``.
    after_sweep : bool
        Whether the sweep's slices are the blocks and a block is one run: then each
        thread sums its slice's share right after its sweep, without waiting for the
        other threads.
    """

    blocks: np.ndarray
    columns: np.ndarray
    n_runs: int
    bounds: np.ndarray
    after_sweep: bool


class ForwardScratch(NamedTuple):
    """One thread's scratch in a forward pass over its ``rows`` batch rows (allocated by
    the per-rows kernel).

    Attributes
    ----------
    blas_args : tuple
        The by-reference arguments of SciPy's gemm
        (:func:`numlstm.kernels.cpu.blas.new_gemm_scratch`).
    edge : ndarray (MAX_TILE_ROWS, NR)
        Scratch of the packed products' last, partial panel.
    rec : ndarray (rows, G*H), or (rows, 0)
        The GRU's recurrent product of a step, or one step's gates of the plain LSTM's
        inference.
    m_rows : ndarray (rows, H), or (rows, 0)
        In inference, the rows that training stores in ``c_prev`` (the GRU's ``W_hn h +
        b_hn``) or ``m_store`` (the projected LSTM's ``o * tanh(c)``).
    h_rows : ndarray (rows, P), or (rows, 0) without a projection
        A step's projected state.
    no_peep : ndarray (3, H), or (3, 0) for other cells than the LSTM
        Zeros: the peephole weights of an LSTM without peepholes.
    """

    blas_args: tuple
    edge: np.ndarray
    rec: np.ndarray
    m_rows: np.ndarray
    h_rows: np.ndarray
    no_peep: np.ndarray


class BackwardScratch(NamedTuple):
    """One thread's scratch in a backward sweep over its ``rows`` batch rows (allocated by
    the per-rows kernel).

    Attributes
    ----------
    blas_args : tuple
        As in :class:`ForwardScratch`.
    edge : ndarray (MAX_TILE_ROWS, NR)
        As in :class:`ForwardScratch`.
    carry : ndarray (rows, R)
        A step's ``d_gates @ W_hh``, before it goes to the valid rows' ``d_h``.
    dm : ndarray (rows, H)
        With a projection, a step's gradients w.r.t. ``o * tanh(c)``.
    zeros : ndarray (H,)
        Zeros: the projected LSTM's gradient w.r.t. ``h`` from the next step, which
        reaches it through ``dm`` instead.
    narrow : ndarray (I, G*H), or (0, G*H)
        With few input features, ``W_ih^T`` of one direction.
    """

    blas_args: tuple
    edge: np.ndarray
    carry: np.ndarray
    dm: np.ndarray
    zeros: np.ndarray
    narrow: np.ndarray


class GradientScratch(NamedTuple):
    """One thread's scratch for the weight gradients of its ``cols`` gate columns
    (allocated by the per-rows kernel).

    Attributes
    ----------
    edge : ndarray (MAX_TILE_ROWS, NR)
        As in :class:`ForwardScratch`.
    edge_panel : ndarray (K_BLOCK, NR)
        Scratch of :func:`numlstm.kernels.cpu.packed_gemm.matmul_tn`'s last, partial panel.
    narrow : ndarray (I, cols), or (0, cols)
        With few input features, these columns of ``dW_ih^T``.
    """

    edge: np.ndarray
    edge_panel: np.ndarray
    narrow: np.ndarray
