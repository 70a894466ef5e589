"""CUDA backend: the host driver of one recurrent layer (one or two directions), forward and
backward through time.

The ``numba.cuda`` twin of :mod:`numlstm.nn.cpu_backend`, behind the same backend interface
(:class:`CUDABackend`, chosen by :mod:`numlstm.nn.backend`). The kernels are in
:mod:`numlstm.kernels.cuda` (each with its launch configuration); this module allocates the
device buffers, describes the operands and launches. Three layers, bottom up:

* the kernels of :mod:`numlstm.kernels.cuda`, gathered per tiling by :func:`_kernels`;
* private host drivers (:func:`_forward_on_device`, :func:`_backward_on_device` for the
  plain LSTM, :func:`_generic_forward_on_device`, :func:`_generic_backward_on_device` for
  the other cells) that allocate device buffers and launch the kernels;
* the public :class:`CUDABackend`, which moves host NumPy arrays in and out
  (:meth:`CUDABackend.forward`, ...), or takes and returns device arrays
  (:meth:`CUDABackend.forward_device`, :meth:`CUDABackend.backward_device`) for a training
  run that keeps its weights on the GPU (:mod:`numlstm.training.device_trainer`).

Work split of the plain LSTM
----------------------------
1. The input projection of all timesteps and both directions is one matrix product
   (:func:`numlstm.kernels.cuda.gemm.gemm`), ``x (B*T, I) @ W_ih (D*4H, I)^T``, written
   straight into the gate buffer.
2. Per timestep, one fused step of :mod:`numlstm.kernels.cuda.lstm` serves both directions:
   recurrent product, bias, nonlinearities and cell update in one kernel. The backward
   sweep likewise, with one extra step after the last for ``d_h0``.

   Each sweep runs either as one launch per timestep or, when the steps are small and the
   grid fits on the GPU at once, as a single cooperative launch with a grid-wide barrier
   between timesteps (:func:`_sweep`): a launch costs ~50 us of host time, more than a
   small step itself.
3. After the sweep the weight gradients and the input gradient are large products over
   all timesteps (transposed operands are read in place through flags, never copied):
   ``dW_ih`` and ``dW_hh`` as one batched launch over the directions each, ``dx`` as one
   launch whose inner dimension runs over both directions (so their contributions add up
   inside the product), and ``d_bias`` as column sums
   (:func:`numlstm.kernels.cuda.reductions.column_sums`).

The GRU, the RNN and the LSTM with a projection or peepholes run a simpler sweep: per
timestep, one product launch for the recurrent product of both directions and one
elementwise kernel of the cell (:mod:`numlstm.kernels.cuda.cells`); the weight gradients
are the same large products after the sweep.

Device layout
-------------
Inputs and outputs keep the CPU layout (:mod:`numlstm.kernels.cpu.recurrent`): ``x`` (B, T, I),
``out`` (B, T, D*H), ``W_ih`` (D, 4H, I), ``W_hh`` (D, 4H, H), ``bias`` (D, 4H), states (D, B, H).
The training caches are time-and-direction interleaved, ``gates`` (B, T, D, 4H) and
``h_prev``/``c_prev`` (B, T, D, H), so that the gate buffer of all timesteps is the plain row-major
matrix ``(B*T, D*4H)``: the input projection and ``dx`` need no per-direction launches.

What stays on the device: between :meth:`CUDABackend.forward` and
:meth:`CUDABackend.backward` the layer input, lengths and all training caches stay on the
GPU (inside the opaque cache object); only ``out``, ``h_n`` and ``c_n`` travel back.
"""

import functools
import warnings
from typing import NamedTuple

import numpy as np
from numba import cuda

from .._utils import config as _config
from ..kernels.common import CELL_CODES, step_order
from ..kernels.cuda import cells as _cells
from ..kernels.cuda import gemm as _gemm
from ..kernels.cuda import lstm as _lstm
from ..kernels.cuda.reductions import column_sums as _column_sums
from ..kernels.cuda.reductions import column_sums_grid as _column_sums_grid
from ..kernels.cuda.reductions import fill as _fill
from ..kernels.cuda.simulator import simulator_active as _simulator_active
from ..kernels.cuda.tiling import default_tiling, retiled

__all__ = ["CUDABackend"]


def _cdiv(a, b):
    return -(-a // b)


class _Kernels(NamedTuple):
    """The kernels of one tiling, and the shape of their blocks.

    ``forward_steps``/``backward_steps`` run one timestep per launch;
    ``forward_sweep``/``backward_sweep`` are the same code with a grid-wide barrier between
    timesteps, launched cooperatively to run a whole sweep in one launch
    (:mod:`numlstm.kernels.cuda.lstm`).
    """

    gemm: object
    forward_steps: object
    forward_sweep: object
    backward_steps: object
    backward_sweep: object
    column_sums: object
    tile: int
    register_tile: int
    unit_tile: int


@functools.lru_cache(maxsize=None)
def _tiled_kernels(tile, reg, unit_reg):
    gemm = retiled(_gemm, tile, reg, unit_reg)
    lstm = retiled(_lstm, tile, reg, unit_reg)
    return _Kernels(gemm.gemm, lstm.forward_steps, lstm.forward_sweep, lstm.backward_steps,
                    lstm.backward_sweep, _column_sums, tile, reg, unit_reg)


def _kernels(dtype_name, tile, reg, unit_reg=_config.CUDA_UNIT_TILE):
    """The kernels of a tiling (:func:`numlstm.kernels.cuda.tiling.retiled`; compiled lazily).

    Every tiled kernel runs on blocks of ``tile x tile`` threads. A block of the matrix
    product covers ``tile*reg`` rows and columns of the output (each thread ``reg x reg``
    of them); a block of the forward step covers ``tile`` hidden units (all four gates) and
    ``tile*reg`` batch rows; a block of the backward step covers ``tile*unit_reg`` hidden
    units and ``tile*reg`` batch rows.

    ``dtype_name`` names the float type the caller will run; the kernels take theirs from
    their array arguments (numba compiles one version per argument types), so every float
    type shares the record of a tiling.
    """
    return _tiled_kernels(int(tile), int(reg), int(unit_reg))


# ------------------------------------------------------------------------ host driver
class _Mat(NamedTuple):
    """A row-major matrix in a flat device buffer, as the product kernel reads it.

    Element ``(i, j)`` of entry ``z`` of a batch is ``buf[offset + z*stride + i*ld + j]``;
    with ``trans`` the operand is the transpose of that matrix.
    """

    buf: object
    ld: int
    offset: int = 0
    stride: int = 0
    trans: bool = False

    def geometry(self, flag):
        return (int(self.offset), int(self.ld), int(self.stride), int(flag))


def _configured(kernel, grid, block):
    """``kernel[grid, block]``, without numba's low-occupancy warning for small problems."""
    with warnings.catch_warnings():
        # numba-cuda's own NumbaPerformanceWarning class, matched by its message.
        warnings.filterwarnings("ignore", message=".*Grid size .* under-utilization")
        return kernel[grid, block]


def _matmul(kern, m, n, k, a, b, c, accumulate=False, batch=1):
    """``c (=|+=) op(a) @ op(b)`` for each of ``batch`` entries; one launch.

    ``a`` (m x k), ``b`` (k x n) and ``c`` (m x n) are :class:`_Mat` descriptions.
    """
    launch = _configured(kern.gemm,
                         _gemm.gemm_grid(m, n, batch, kern.tile * kern.register_tile),
                         (kern.tile, kern.tile))
    launch(a.buf, b.buf, c.buf, (int(m), int(n), int(k)), a.geometry(a.trans),
           b.geometry(b.trans), c.geometry(accumulate))


def _sweep(steps, sweep, grid, block, first, stop, args, persistent):
    """Run timesteps ``first, first±1, ..., stop`` (exclusive) of a forward or backward sweep.

    With ``persistent``, one cooperative launch of ``sweep`` runs them all (a grid-wide
    barrier separates the steps), provided the whole grid can be resident on the GPU at
    once; otherwise ``steps`` is launched once per timestep. ``args`` follow the two step
    step (or the two sweep bounds) in the kernels' argument lists.
    """
    direction = 1 if stop > first else -1
    launcher = None
    if persistent:
        launcher = _cooperative_launcher(sweep, grid, block, (first, stop) + args)
    if launcher is not None:
        launcher(first, stop, *args)
        return
    launch = _configured(steps, grid, block)
    for u in range(first, stop, direction):
        launch(u, *args)


_cooperative_problem = []  # why cooperative launches failed here, once they have


def _cooperative_launcher(kernel, grid, block, args):
    """``kernel`` configured for one cooperative launch with ``args``, or ``None``.

    ``None`` when the grid does not fit on the GPU at once (a grid-wide barrier would then
    deadlock; the driver refuses such launches) or when cooperative kernels cannot be built
    here (they link CUDA's ``cudadevrt`` library); the latter is remembered and reported
    once with a warning.
    """
    if _cooperative_problem:
        return None
    n_blocks = grid[0] * grid[1] * grid[2]
    if _simulator_active():
        # The simulator runs cooperative grids of one block only.
        return _configured(kernel, grid, block) if n_blocks == 1 else None
    try:
        compiled = kernel.specialize(*args)  # compiles and links for these argument types
        capacity = next(iter(compiled.overloads.values())).max_cooperative_grid_blocks(block)
    except Exception as exc:  # noqa: BLE001 - any build failure means: launch per step
        _cooperative_problem.append(f"{type(exc).__name__}: {exc}")
        warnings.warn("numlstm: cooperative CUDA kernels are unavailable "
                      f"({_cooperative_problem[0]}); running one launch per timestep",
                      RuntimeWarning, stacklevel=4)
        return None
    return _configured(compiled, grid, block) if n_blocks <= capacity else None


def _one_launch_pays(batch, hidden, n_dirs):
    """Whether a sweep is small enough per step to run as one launch (see
    :data:`_config.CUDA_SWEEP_MAX_STEP_FMA`)."""
    return batch * 4 * hidden * hidden * n_dirs <= _config.CUDA_SWEEP_MAX_STEP_FMA


def _step_grids(kern, batch, hidden, n_dirs):
    """Grid and block shapes of the forward and the backward step kernels
    (:func:`numlstm.kernels.cuda.lstm.step_grids`)."""
    return _lstm.step_grids(batch, hidden, n_dirs, kern.tile, kern.register_tile,
                            kern.unit_tile)


def _flat(a):
    return a.reshape(a.size)


def _zero(a):
    """Set the contiguous device array ``a`` to zero on the device (no host transfer)."""
    flat = _flat(a)
    if flat.size:
        _elementwise(_fill, flat.size)(flat, a.dtype.type(0))
    return a


def _device_zeros(shape, dtype):
    return _zero(cuda.device_array(shape, dtype))


def _column_sums_into(kern, a, n_rows, n_cols, sums):
    """``sums = a.sum(axis=0)`` of the flat row-major ``(n_rows, n_cols)`` device matrix
    ``a``, on the device (:func:`numlstm.kernels.cuda.reductions.column_sums`)."""
    _zero(sums)  # the blocks add their partial sums into it
    per_block = _config.CUDA_THREADS_PER_BLOCK
    launch = _configured(kern.column_sums,
                         _column_sums_grid(n_rows, n_cols, per_block,
                                           _config.CUDA_ROWS_PER_SUM_BLOCK), per_block)
    launch(a, n_rows, n_cols, _config.CUDA_ROWS_PER_SUM_BLOCK, sums)
    return sums


class _DeviceCache:
    """What :meth:`CUDABackend.backward` needs, kept on the device after the forward pass.

    Attributes
    ----------
    x : device array (B, T, I)
        The layer input.
    lengths : device int64 array (B,)
    gates : device array (B, T, D, 4H)
        Activated gates i, f, g, o.
    h_prev, c_prev : device arrays (B, T, D, H)
        The state each step started from.
    """

    __slots__ = ("x", "lengths", "gates", "h_prev", "c_prev")

    def __init__(self, x, lengths, gates, h_prev, c_prev):
        self.x = x
        self.lengths = lengths
        self.gates = gates
        self.h_prev = h_prev
        self.c_prev = c_prev


def _forward_on_device(kern, x, lengths, W_ih, W_hh, bias, h0, c0, store, persistent=True):
    """Forward pass of one layer on device arrays.

    Parameters
    ----------
    kern : _Kernels
    x : device array (B, T, I)
    lengths : device int64 array (B,)
    W_ih, W_hh, bias : device arrays (D, 4H, I), (D, 4H, H), (D, 4H)
    h0, c0 : device arrays (D, B, H)
    store : bool
        Keep the caches of the backward pass.
    persistent : bool, default=True
        Run the sweep in one cooperative launch where that pays (see :func:`_sweep`).

    Returns
    -------
    out : device array (B, T, D*H)
    h_n, c_n : device arrays (D, B, H)
    cache : _DeviceCache or None
    """
    n_dirs, four_h, in_size = W_ih.shape
    hidden = four_h // 4
    batch, n_steps, _ = x.shape
    dtype = x.dtype
    gates = cuda.device_array((batch, n_steps, n_dirs, four_h), dtype)
    out = cuda.device_array((batch, n_steps, n_dirs * hidden), dtype)
    if store:
        h_prev = cuda.device_array((batch, n_steps, n_dirs, hidden), dtype)
        c_prev = cuda.device_array_like(h_prev)
    else:
        h_prev = c_prev = cuda.device_array((1, 1, 1, 1), dtype)
    # All timesteps and directions at once: (B*T, I) @ (D*4H, I)^T -> (B*T, D*4H).
    _matmul(kern, batch * n_steps, n_dirs * four_h, in_size,
            _Mat(_flat(x), in_size), _Mat(_flat(W_ih), in_size, trans=True),
            _Mat(_flat(gates), n_dirs * four_h))
    h = cuda.device_array((2,) + h0.shape, dtype)
    c = cuda.device_array((2,) + c0.shape, dtype)
    h[0].copy_to_device(h0)
    c[0].copy_to_device(c0)
    grid, block, _, _ = _step_grids(kern, batch, hidden, n_dirs)
    _sweep(kern.forward_steps, kern.forward_sweep, grid, block, 0, n_steps,
           (store, lengths, W_hh, bias, h, c, gates, out, h_prev, c_prev),
           persistent and _one_launch_pays(batch, hidden, n_dirs))
    # The last step, u = T-1, wrote the state to [T % 2].
    h_n, c_n = h[n_steps % 2], c[n_steps % 2]
    cache = _DeviceCache(x, lengths, gates, h_prev, c_prev) if store else None
    return out, h_n, c_n, cache


def _backward_on_device(kern, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, persistent=True,
                        out=None, input_gradient=True):
    """Backward pass through time of one layer on device arrays.

    Parameters
    ----------
    kern : _Kernels
    W_ih, W_hh : device arrays (D, 4H, I), (D, 4H, H)
    cache : _DeviceCache
    d_out : device array (B, T, D*H)
    d_h_n : device array (D, B, H)
    d_c_n : device array (D, B, H), overwritten with ``d_c0``
    persistent : bool, default=True
        Run the sweep in one cooperative launch where that pays (see :func:`_sweep`).
    out : tuple of device arrays, optional
        ``(dW_ih, dW_hh, d_bias)`` to write the weight gradients into (``d_bias`` of
        D*4H elements, any contiguous shape), e.g. views of a training run's gradient
        vector; new arrays when omitted.
    input_gradient : bool, default=True
        Whether to compute ``dx`` (``None`` otherwise).

    Returns
    -------
    dx : device array (B, T, I) or None
    d_h0, d_c0 : device arrays (D, B, H)
    dW_ih, dW_hh, d_bias : device arrays (D, 4H, I), (D, 4H, H), (D*4H,)
    """
    n_dirs, four_h, in_size = W_ih.shape
    hidden = four_h // 4
    x = cache.x
    batch, n_steps, _ = x.shape
    dtype = x.dtype
    d_gates = cuda.device_array_like(cache.gates)
    d_h0 = cuda.device_array_like(d_h_n)
    _, _, grid, block = _step_grids(kern, batch, hidden, n_dirs)
    _sweep(kern.backward_steps, kern.backward_sweep, grid, block, n_steps - 1, -2,
           (cache.lengths, W_hh, cache.gates, cache.c_prev, d_out, d_h_n, d_c_n, d_gates,
            d_h0), persistent and _one_launch_pays(batch, hidden, n_dirs))
    rows = batch * n_steps
    width = n_dirs * four_h
    dg = _flat(d_gates)
    # Direction d's gate gradients are columns d*4H:(d+1)*4H of the (B*T, D*4H) matrix.
    dg_t = _Mat(dg, width, stride=four_h, trans=True)
    if out is None:
        dW_ih = cuda.device_array_like(W_ih)
        dW_hh = cuda.device_array_like(W_hh)
        d_bias = cuda.device_array(width, dtype)
    else:
        dW_ih, dW_hh, d_bias = out
        d_bias = _flat(d_bias)
    _matmul(kern, four_h, in_size, rows, dg_t, _Mat(_flat(x), in_size),
            _Mat(_flat(dW_ih), in_size, stride=four_h * in_size), batch=n_dirs)
    _matmul(kern, four_h, hidden, rows, dg_t,
            _Mat(_flat(cache.h_prev), n_dirs * hidden, stride=hidden),
            _Mat(_flat(dW_hh), hidden, stride=four_h * hidden), batch=n_dirs)
    dx = None
    if input_gradient:
        # Both directions in one product: (B*T, D*4H) @ (D*4H, I).
        dx = cuda.device_array_like(x)
        _matmul(kern, rows, in_size, width, _Mat(dg, width), _Mat(_flat(W_ih), in_size),
                _Mat(_flat(dx), in_size))
    _column_sums_into(kern, dg, rows, width, d_bias)
    return dx, d_h0, d_c_n, dW_ih, dW_hh, d_bias


# ------------------------------------------------- every other cell: per-step launches
# GRU, RNN and the LSTM with a projection or peepholes run an unfused sweep: per timestep
# the recurrent product is one launch of the product kernel (both directions at once,
# ``blockIdx.z``), and one elementwise kernel of the cell (numlstm.kernels.cuda.cells)
# applies the gate math. The projection adds one product and one elementwise kernel per
# step; the backward sweep mirrors the forward one. The fused LSTM kernels remain the path
# of the plain LSTM.
def _elementwise(kernel, n_threads):
    """``kernel`` configured for a 1-D grid of at least ``n_threads`` threads."""
    per_block = _config.CUDA_THREADS_PER_BLOCK
    return _configured(kernel, _cdiv(n_threads, per_block), per_block)


def _step_rows(u, n_slots, n_dirs, width):
    """``(offset, stride)`` of the rows of step ``u`` of both directions in a
    (B, n_slots, D, width) buffer, for one product batched over the directions.

    The directions are at different timesteps (``t_d = step_order(u, T, d == 1)``), but
    entry ``z`` of a batched product starts at ``offset + z * stride``: with two entries any
    two starting points fit, the stride negative if need be. With one slot (a buffer of
    only the current step) both directions use slot 0.
    """
    def start(d):
        t = step_order(u, n_slots, d == 1) if n_slots > 1 else 0
        return (t * n_dirs + d) * width

    offset = start(0)
    return offset, (start(1) - offset if n_dirs == 2 else 0)


class _GenericCache:
    """What the backward pass of a GRU, RNN or LSTM with options needs, on the device.

    Attributes
    ----------
    x, lengths, gates : device arrays
        As in :class:`_DeviceCache` (``gates`` (B, T, D, G*H)).
    h_prev : device array (B, T, D, R)
    c_prev : device array (B, T, D, H)
        The LSTM's cell state each step started from, or the GRU's ``W_hn h + b_hn``.
    m : device array (B, T, D, H)
        The projected LSTM's ``o * tanh(c)`` (dummy without projection).
    cell : str
    peep, W_hr : device arrays or None
    """

    __slots__ = ("x", "lengths", "gates", "h_prev", "c_prev", "m", "cell", "peep", "W_hr")

    def __init__(self, x, lengths, gates, h_prev, c_prev, m, cell, peep, W_hr):
        self.x = x
        self.lengths = lengths
        self.gates = gates
        self.h_prev = h_prev
        self.c_prev = c_prev
        self.m = m
        self.cell = cell
        self.peep = peep
        self.W_hr = W_hr


def _generic_forward_on_device(kern, cell, x, lengths, W_ih, W_hh, bias, bias_hn, peep, W_hr,
                               h0, c0, store):
    """Forward pass of one GRU, RNN or LSTM-with-options layer on device arrays.

    ``bias_hn`` (D, H) is the GRU's (else a dummy), ``peep`` (D, 3, H) and ``W_hr`` (D, P, H)
    the LSTM's options or ``None``; ``c0`` is ``None`` but for the LSTM. Returns ``out,
    h_n, c_n, cache`` like :func:`_forward_on_device` (``c_n`` ``None`` without a cell
    state).
    """
    n_dirs, n_gate_cols, in_size = W_ih.shape
    rec_size = W_hh.shape[2]
    batch, n_steps, _ = x.shape
    dtype = x.dtype
    proj = W_hr is not None
    hidden = W_hr.shape[2] if proj else (c0.shape[2] if c0 is not None else rec_size)
    code = CELL_CODES[cell]
    # The cell kernels type every cell's branch, so what a cell lacks is a placeholder of
    # the rank the kernel reads (dummy: 4-D, dummy[0]: 3-D).
    dummy = cuda.device_array((1, 1, 1, 1), dtype)
    gates = cuda.device_array((batch, n_steps, n_dirs, n_gate_cols), dtype)
    out = cuda.device_array((batch, n_steps, n_dirs * rec_size), dtype)
    h_prev = cuda.device_array((batch, n_steps, n_dirs, rec_size), dtype) if store else dummy
    c_prev = (cuda.device_array((batch, n_steps, n_dirs, hidden), dtype)
              if store and cell in ("lstm", "gru") else dummy)
    m = (cuda.device_array((batch, n_steps if store else 1, n_dirs, hidden), dtype)
         if proj else dummy)
    _matmul(kern, batch * n_steps, n_dirs * n_gate_cols, in_size,
            _Mat(_flat(x), in_size), _Mat(_flat(W_ih), in_size, trans=True),
            _Mat(_flat(gates), n_dirs * n_gate_cols))
    h = cuda.device_array(h0.shape, dtype)
    h.copy_to_device(h0)
    c = cuda.device_array(c0.shape, dtype) if c0 is not None else dummy[0]
    if c0 is not None:
        c.copy_to_device(c0)
    rec = cuda.device_array((n_dirs, batch, n_gate_cols), dtype)
    hp = cuda.device_array((n_dirs, batch, rec_size), dtype) if proj else dummy
    peep_arg = peep if peep is not None else dummy[0]
    cell_step = _elementwise(_cells.cell_forward, n_dirs * batch * hidden)
    commit = _elementwise(_cells.project_commit, n_dirs * batch * rec_size)
    m_slots = n_steps if store else 1
    for u in range(n_steps):
        # rec[d] = h[d] @ W_hh[d]^T for both directions.
        _matmul(kern, batch, n_gate_cols, rec_size,
                _Mat(_flat(h), rec_size, stride=batch * rec_size),
                _Mat(_flat(W_hh), rec_size, stride=n_gate_cols * rec_size, trans=True),
                _Mat(_flat(rec), n_gate_cols, stride=batch * n_gate_cols), batch=n_dirs)
        cell_step(u, code, store, proj, peep is not None, lengths, bias, bias_hn, peep_arg,
                  rec, h, c, gates, out, h_prev, c_prev, m)
        if proj:
            # hp[d] = m[:, step, d] @ W_hr[d]^T; forward and reverse are at different steps.
            offset, stride = _step_rows(u, n_steps if store else 1, n_dirs, hidden)
            _matmul(kern, batch, rec_size, hidden,
                    _Mat(_flat(m), m_slots * n_dirs * hidden, offset=offset, stride=stride),
                    _Mat(_flat(W_hr), hidden, stride=rec_size * hidden, trans=True),
                    _Mat(_flat(hp), rec_size, stride=batch * rec_size), batch=n_dirs)
            commit(u, store, lengths, hp, h, out, h_prev)
    cache = (_GenericCache(x, lengths, gates, h_prev, c_prev, m, cell, peep, W_hr)
             if store else None)
    return out, h, (c if c0 is not None else None), cache


def _generic_backward_on_device(kern, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, out=None,
                                input_gradient=True):
    """Backward pass of :func:`_generic_forward_on_device` on device arrays.

    Returns ``dx, d_h0, d_c0, dW_ih, dW_hh, d_bias, d_bias_hh, d_peep, dW_hr`` (``d_c0``,
    ``d_bias_hh`` (GRU), ``d_peep`` and ``dW_hr`` ``None`` where the layer has no such
    thing; ``d_bias`` flat (D*G*H,), ``d_bias_hh`` too). ``out``, a dict of device
    arrays keyed ``"W_ih"``, ``"W_hh"``, ``"bias"``, ``"bias_hh"``, ``"peephole"``,
    ``"W_hr"`` (any subset), receives those gradients instead of new arrays.
    ``dx`` is ``None`` with ``input_gradient=False``.
    """
    out = out or {}

    def target(name, like):
        given = out.get(name)
        return given if given is not None else cuda.device_array_like(like)

    n_dirs, n_gate_cols, in_size = W_ih.shape
    rec_size = W_hh.shape[2]
    x = cache.x
    batch, n_steps, _ = x.shape
    dtype = x.dtype
    cell = cache.cell
    proj = cache.W_hr is not None
    hidden = cache.W_hr.shape[2] if proj else n_gate_cols // {"lstm": 4, "gru": 3}.get(cell, 1)
    code = CELL_CODES[cell]
    peephole = cache.peep is not None
    # Placeholders of the rank the cell kernels read (see _generic_forward_on_device).
    dummy = cuda.device_array((1, 1, 1, 1), dtype)
    d_gates = cuda.device_array_like(cache.gates)
    d_rec = cuda.device_array_like(cache.gates) if cell == "gru" else d_gates
    dh_store = (cuda.device_array((batch, n_steps, n_dirs, rec_size), dtype) if proj
                else dummy)
    dm = cuda.device_array((n_dirs, batch, hidden), dtype) if proj else dummy[0]
    d_h = d_h_n  # updated in place: ends as d_h0
    d_c = d_c_n if d_c_n is not None else dummy[0]
    peep_arg = cache.peep if peephole else dummy[0]
    cell_step = _elementwise(_cells.cell_backward, n_dirs * batch * hidden)
    gather = _elementwise(_cells.gather_dh, n_dirs * batch * rec_size)
    for u in range(n_steps - 1, -1, -1):
        if proj:
            gather(u, cache.lengths, d_h, d_out, dh_store)
            # dm[d] = dh_store[:, t_d, d] @ W_hr[d]
            offset, stride = _step_rows(u, n_steps, n_dirs, rec_size)
            _matmul(kern, batch, hidden, rec_size,
                    _Mat(_flat(dh_store), n_steps * n_dirs * rec_size, offset=offset,
                         stride=stride),
                    _Mat(_flat(cache.W_hr), hidden, stride=rec_size * hidden),
                    _Mat(_flat(dm), hidden, stride=batch * hidden), batch=n_dirs)
        cell_step(u, code, proj, peephole, cache.lengths, peep_arg, cache.gates, cache.h_prev,
                  cache.c_prev, d_out, dm, d_h, d_c, d_gates, d_rec)
        # d_h[d] += d_rec[:, t_d, d] @ W_hh[d]; padded rows have zero d_rec.
        offset, stride = _step_rows(u, n_steps, n_dirs, n_gate_cols)
        _matmul(kern, batch, rec_size, n_gate_cols,
                _Mat(_flat(d_rec), n_steps * n_dirs * n_gate_cols, offset=offset,
                     stride=stride),
                _Mat(_flat(W_hh), rec_size, stride=n_gate_cols * rec_size),
                _Mat(_flat(d_h), rec_size, stride=batch * rec_size), accumulate=True,
                batch=n_dirs)
    rows = batch * n_steps
    width = n_dirs * n_gate_cols
    dg = _flat(d_gates)
    dW_ih = target("W_ih", W_ih)
    dW_hh = target("W_hh", W_hh)
    _matmul(kern, n_gate_cols, in_size, rows, _Mat(dg, width, stride=n_gate_cols, trans=True),
            _Mat(_flat(x), in_size), _Mat(_flat(dW_ih), in_size, stride=n_gate_cols * in_size),
            batch=n_dirs)
    _matmul(kern, n_gate_cols, rec_size, rows,
            _Mat(_flat(d_rec), width, stride=n_gate_cols, trans=True),
            _Mat(_flat(cache.h_prev), n_dirs * rec_size, stride=rec_size),
            _Mat(_flat(dW_hh), rec_size, stride=n_gate_cols * rec_size), batch=n_dirs)
    dx = None
    if input_gradient:
        dx = cuda.device_array_like(x)
        _matmul(kern, rows, in_size, width, _Mat(dg, width), _Mat(_flat(W_ih), in_size),
                _Mat(_flat(dx), in_size))

    def column_sums(a, name):
        given = out.get(name)
        sums = _flat(given) if given is not None else cuda.device_array(width, dtype)
        return _column_sums_into(kern, a, rows, width, sums)

    d_bias = column_sums(dg, "bias")
    d_bias_hh = column_sums(_flat(d_rec), "bias_hh") if cell == "gru" else None
    d_peep = dW_hr = None
    if peephole:
        d_peep = target("peephole", cache.peep)
        _elementwise(_cells.peephole_grads, n_dirs * hidden)(
            cache.lengths, cache.gates, cache.c_prev, d_gates, d_peep)
    if proj:
        dW_hr = target("W_hr", cache.W_hr)
        _matmul(kern, rec_size, hidden, rows,
                _Mat(_flat(dh_store), n_dirs * rec_size, stride=rec_size, trans=True),
                _Mat(_flat(cache.m), n_dirs * hidden, stride=hidden),
                _Mat(_flat(dW_hr), hidden, stride=rec_size * hidden), batch=n_dirs)
    return (dx, d_h, d_c_n, dW_ih, dW_hh, d_bias, d_bias_hh, d_peep, dW_hr)


# ------------------------------------------------------------------------ public API
def _plain_lstm(spec):
    """Whether ``spec`` (a :class:`numlstm.nn.layer_spec.LayerSpec` or ``None``) runs on the
    fused LSTM kernels."""
    return spec is None or (spec.cell == "lstm" and spec.peephole is None
                            and spec.W_hr is None)


def _host(array):
    return None if array is None else array.copy_to_host()


class CUDABackend:
    """Runs layers with the ``numba.cuda`` kernels of :mod:`numlstm.kernels.cuda`.

    Same methods, arguments and return values as :class:`numlstm.nn.cpu_backend.CPUBackend`:
    host NumPy arrays in and out. The training cache returned by :meth:`forward` holds
    device arrays, so the layer input and the forward caches stay on the GPU until
    :meth:`backward`. :meth:`forward_device` and :meth:`backward_device` take and return
    device arrays instead (weights as views of a device parameter vector, gradients
    written into views of a device gradient vector), with no host copy at all.

    Parameters
    ----------
    tiling : tuple of int, optional
        ``(tile, register_tile)`` or ``(tile, register_tile, unit_tile)`` of the kernels
        (see :func:`_kernels`); :func:`default_tiling` when omitted.
    persistent : bool, default=True
        Run each sweep through time as one cooperative launch when the grid fits on the
        GPU at once and the steps are small
        (:data:`numlstm._utils.config.CUDA_SWEEP_MAX_STEP_FMA`), instead of one launch per
        timestep (which costs ~50 microseconds of host time per step).
    """

    name = "cuda"

    def __init__(self, tiling=None, persistent=True):
        self.tiling = tuple(tiling) if tiling is not None else default_tiling()
        self.persistent = bool(persistent)

    def _kernels(self, dtype):
        return _kernels(np.dtype(dtype).name, *self.tiling)

    @staticmethod
    def supports(cell, proj_size=0, peephole=False):
        """Why this backend cannot run such a layer, or ``None`` when it can (always).

        Parameters
        ----------
        cell : {"lstm", "gru", "rnn_tanh", "rnn_relu"}
        proj_size : int, default=0
        peephole : bool, default=False
        """
        return None

    @staticmethod
    def _to_device(a, dtype=None):
        return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))

    def _run_forward(self, x, lengths, W_ih, W_hh, bias, h0, c0, store, spec=None):
        dtype = x.dtype
        put = self._to_device
        if not _plain_lstm(spec):
            def optional(a):
                return None if a is None else put(a, dtype)

            n_dirs = W_ih.shape[0]
            bias_hn = spec.bias_hn if spec.bias_hn is not None else np.zeros((n_dirs, 1))
            return _generic_forward_on_device(
                self._kernels(dtype), spec.cell, put(x), put(lengths, np.int64),
                put(W_ih, dtype), put(W_hh, dtype), put(bias, dtype), put(bias_hn, dtype),
                optional(spec.peephole), optional(spec.W_hr), put(h0, dtype),
                optional(c0 if spec.cell == "lstm" else None), store)
        return _forward_on_device(
            self._kernels(dtype), put(x), put(lengths, np.int64), put(W_ih, dtype),
            put(W_hh, dtype), put(bias, dtype), put(h0, dtype), put(c0, dtype), store,
            self.persistent)

    def forward(self, x, lengths, W_ih, W_hh, bias, h0, c0, workspace=None, spec=None):
        """Forward one layer keeping caches; returns ``out, h_n, c_n, cache``.

        Parameters
        ----------
        x : ndarray (B, T, I)
        lengths : int ndarray (B,), each in [1, T]
        W_ih, W_hh, bias : ndarrays (D, 4H, I), (D, 4H, H), (D, 4H)
        h0, c0 : ndarrays (D, B, H)
        workspace : numlstm.nn.workspace.Workspace, optional
            Accepted for the backend interface; device buffers are allocated per call.
        spec : numlstm.nn.layer_spec.LayerSpec, optional
            The cell and its options; an LSTM without options when omitted. That one runs
            on the fused kernels; the other cells and options on per-step launches of the
            matrix-product kernel and an elementwise kernel of the cell.

        Returns
        -------
        out : ndarray (B, T, D*H)
        h_n, c_n : ndarrays (D, B, H)
        cache : object
            Opaque; device arrays to hand back to :meth:`backward`.
        """
        out, h_n, c_n, cache = self._run_forward(x, lengths, W_ih, W_hh, bias, h0, c0, True,
                                                 spec)
        return out.copy_to_host(), h_n.copy_to_host(), _host(c_n), cache

    def inference(self, x, lengths, W_ih, W_hh, bias, h0, c0, workspace=None, spec=None):
        """Forward one layer without caches; returns ``out, h_n, c_n`` (see :meth:`forward`)."""
        out, h_n, c_n, _ = self._run_forward(x, lengths, W_ih, W_hh, bias, h0, c0, False,
                                             spec)
        return out.copy_to_host(), h_n.copy_to_host(), _host(c_n)

    @staticmethod
    def inference_scope():
        """What decides an inference runner besides the arrays' shapes: nothing here."""
        return None

    def inference_runner(self, x, lengths, W_ih, W_hh, bias, h0, c0, workspace, spec):
        """:meth:`inference` as a callable ``run(x, lengths, W_ih, W_hh, bias, h0, c0,
        spec)`` (what a stream calls; nothing is prepared ahead here)."""
        def run(x, lengths, W_ih, W_hh, bias, h0, c0, spec):
            return self.inference(x, lengths, W_ih, W_hh, bias, h0, c0, workspace, spec)

        return run

    def backward(self, x, lengths, W_ih, W_hh, cache, d_out, d_h_n, d_c_n,
                 dW_ih, dW_hh, d_bias, workspace=None, grads=None, input_gradient=True):
        """Backward one layer; fills ``dW_ih, dW_hh, d_bias``, returns ``dx, d_h0, d_c0``.

        Parameters
        ----------
        x, lengths : ndarrays
            As given to :meth:`forward` (the device copies in ``cache`` are used).
        W_ih, W_hh : ndarrays (D, 4H, I), (D, 4H, H)
        cache : object
            As returned by :meth:`forward`.
        d_out : ndarray (B, T, D*H)
            Gradient w.r.t. the layer output (ignored at padded steps).
        d_h_n, d_c_n : ndarrays (D, B, H)
            Gradients w.r.t. the final states.
        dW_ih, dW_hh, d_bias : ndarrays (D, 4H, I), (D, 4H, H), (D, 4H)
            Written with the weight gradients.
        workspace : numlstm.nn.workspace.Workspace, optional
            Accepted for the backend interface (unused).
        grads : dict, optional
            Arrays for the gradients of the options (see
            :meth:`numlstm.nn.cpu_backend.CPUBackend.backward`).
        input_gradient : bool, default=True
            Whether to compute ``dx`` (``None`` otherwise).

        Returns
        -------
        dx : ndarray (B, T, I) or None
        d_h0, d_c0 : ndarrays (D, B, H)
        """
        dtype = cache.gates.dtype
        put = self._to_device
        if isinstance(cache, _GenericCache):
            grads = grads or {}
            (dx, d_h0, d_c0, g_ih, g_hh, g_bias, g_bias_hh, g_peep,
             g_hr) = _generic_backward_on_device(
                self._kernels(dtype), put(W_ih, dtype), put(W_hh, dtype), cache,
                put(d_out, dtype), put(d_h_n, dtype),
                None if d_c_n is None else put(d_c_n, dtype), input_gradient=input_gradient)
            dW_ih[...] = g_ih.copy_to_host()
            dW_hh[...] = g_hh.copy_to_host()
            d_bias[...] = g_bias.copy_to_host().reshape(d_bias.shape)
            for name, value in (("bias_hh", g_bias_hh), ("peephole", g_peep), ("W_hr", g_hr)):
                if value is not None and grads.get(name) is not None:
                    target = grads[name]
                    target[...] = value.copy_to_host().reshape(target.shape)
            return _host(dx), d_h0.copy_to_host(), _host(d_c0)
        dx, d_h0, d_c0, g_ih, g_hh, g_bias = _backward_on_device(
            self._kernels(dtype), put(W_ih, dtype), put(W_hh, dtype), cache,
            put(d_out, dtype), put(d_h_n, dtype), put(d_c_n, dtype), self.persistent,
            input_gradient=input_gradient)
        dW_ih[...] = g_ih.copy_to_host()
        dW_hh[...] = g_hh.copy_to_host()
        d_bias[...] = g_bias.copy_to_host().reshape(d_bias.shape)
        return _host(dx), d_h0.copy_to_host(), d_c0.copy_to_host()

    # ---------------------------------------------------------- device arrays in and out A
    # training run that keeps its weights on the GPU (numlstm.training.device_trainer) calls these:
    # every argument and result is a device array, so nothing crosses the bus.
    def forward_device(self, x, lengths, W_ih, W_hh, bias, h0, c0=None, spec=None,
                       store=True):
        """Forward one layer on device arrays; returns device ``out, h_n, c_n, cache``.

        Parameters
        ----------
        x : device array (B, T, I)
        lengths : device int64 array (B,), each in [1, T]
        W_ih, W_hh, bias : device arrays (D, G*H, I), (D, G*H, R), (D, G*H)
            Contiguous; views into a larger parameter vector are fine (they are read,
            never copied).
        h0 : device array (D, B, R)
        c0 : device array (D, B, H) or None
            The LSTM's initial cell state (``None`` for the other cells).
        spec : numlstm.nn.layer_spec.LayerSpec, optional
            As for :meth:`forward`, with ``bias_hn``, ``peephole`` and ``W_hr`` given as
            device arrays.
        store : bool, default=True
            Keep the caches of :meth:`backward_device` (``cache`` is ``None`` otherwise).

        Returns
        -------
        out : device array (B, T, D*R)
        h_n : device array (D, B, R)
        c_n : device array (D, B, H) or None
        cache : object or None
        """
        dtype = x.dtype
        if not _plain_lstm(spec):
            n_dirs = W_ih.shape[0]
            bias_hn = (spec.bias_hn if spec.bias_hn is not None
                       else cuda.device_array((n_dirs, 1), dtype))  # read by the GRU only
            return _generic_forward_on_device(
                self._kernels(dtype), spec.cell, x, lengths, W_ih, W_hh, bias, bias_hn,
                spec.peephole, spec.W_hr, h0, c0 if spec.cell == "lstm" else None, store)
        return _forward_on_device(self._kernels(dtype), x, lengths, W_ih, W_hh, bias, h0,
                                  c0, store, self.persistent)

    def backward_device(self, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, grads,
                        input_gradient=True):
        """Backward one layer on device arrays, writing the weight gradients in place.

        Parameters
        ----------
        W_ih, W_hh : device arrays
            As given to :meth:`forward_device`.
        cache : object
            As returned by :meth:`forward_device`.
        d_out : device array (B, T, D*R)
        d_h_n : device array (D, B, R)
            Overwritten (the sweep carries the state gradient in it).
        d_c_n : device array (D, B, H) or None
            Overwritten likewise.
        grads : dict of device arrays
            Targets of the gradients: ``"W_ih"``, ``"W_hh"``, ``"bias"`` (w.r.t. ``b_ih``)
            always; ``"bias_hh"`` (GRU), ``"peephole"``, ``"W_hr"`` when the layer has
            them. Views into a larger gradient vector are fine.
        input_gradient : bool, default=True
            Whether to compute ``dx`` (``None`` otherwise).

        Returns
        -------
        dx : device array (B, T, I) or None
        d_h0 : device array (D, B, R)
        d_c0 : device array (D, B, H) or None
        """
        kern = self._kernels(cache.gates.dtype)
        if isinstance(cache, _GenericCache):
            dx, d_h0, d_c0, *_ = _generic_backward_on_device(
                kern, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, out=grads,
                input_gradient=input_gradient)
            return dx, d_h0, d_c0
        dx, d_h0, d_c0, *_ = _backward_on_device(
            kern, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, self.persistent,
            out=(grads["W_ih"], grads["W_hh"], grads["bias"]), input_gradient=input_gradient)
        return dx, d_h0, d_c0
