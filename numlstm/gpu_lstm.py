"""CUDA kernels: one LSTM layer (one or two directions), forward and backward through time.

The ``numba.cuda`` twin of :mod:`numlstm.cpu_lstm`, behind the same backend interface
(:class:`CUDABackend`, chosen by :mod:`numlstm._backend`). Three layers, bottom up:

* private kernels, compiled once per float type by :func:`_kernels`;
* a private host driver (:func:`_forward_on_device`, :func:`_backward_on_device`) that
  allocates device buffers and launches the kernels;
* the public :class:`CUDABackend`, which moves host NumPy arrays in and out.

Work split
----------
1. The input projection of all timesteps and both directions is one tiled
   (shared-memory) matrix product, ``x (B*T, I) @ W_ih (D*4H, I)^T``, written straight
   into the gate buffer.
2. Per timestep, one kernel step serves both directions (``blockIdx.z`` is the
   direction): ``forward_step`` forms the recurrent product ``h_{t-1} @ W_hh^T`` in
   shared-memory tiles and applies bias, gate nonlinearities and the cell update in the
   same kernel. A thread owns one hidden unit of a few batch rows and accumulates all four
   gates of that unit, so it has everything the cell update needs without another launch.
3. The backward sweep likewise (``backward_step``): the thread first carries ``dh`` back
   through ``W_hh`` from the gate gradients of the step processed just before (its
   recurrent product), then forms this step's gate gradients. One extra step after the
   last gives ``d_h0``.

   Each sweep runs either as one launch per timestep or, when the steps are small and the
   grid fits on the GPU at once, as a single cooperative launch with a grid-wide barrier
   between timesteps (:func:`_sweep`): a launch costs ~50 us of host time, more than a
   small step itself.
4. After the sweep the weight gradients and the input gradient are large products over
   all timesteps, with the same matrix-product kernel (transposed operands are read in
   place through flags, never copied): ``dW_ih`` and ``dW_hh`` as one batched launch over
   the directions each, ``dx`` as one launch whose inner dimension runs over both
   directions (so their contributions add up inside the product), and ``d_bias`` as
   column sums.

Device layout
-------------
Inputs and outputs keep the CPU layout (:mod:`numlstm.cpu_lstm`): ``x`` (B, T, I), ``out``
(B, T, D*H), ``W_ih`` (D, 4H, I), ``W_hh`` (D, 4H, H), ``bias`` (D, 4H), states (D, B, H).
The training caches are time-and-direction interleaved, ``gates`` (B, T, D, 4H) and
``h_prev``/``c_prev`` (B, T, D, H), so that the gate buffer of all timesteps is the plain
row-major matrix ``(B*T, D*4H)``: the input projection and ``dx`` need no per-direction
launches.

What stays on the device: between :meth:`CUDABackend.forward` and
:meth:`CUDABackend.backward` the layer input, lengths and all training caches stay on the
GPU (inside the opaque cache object); only ``out``, ``h_n`` and ``c_n`` travel back.

Ragged batches follow :mod:`numlstm.cpu_lstm` exactly (packed-sequence semantics), with the
same step-order function :func:`numlstm.cpu_lstm.step_order` and the same gate
nonlinearities (:mod:`numlstm._activations`), both called from the kernels.
"""

import functools
import warnings
from typing import NamedTuple

import numpy as np
from numba import cuda

from . import _config
from ._activations import sigmoid_exact, sigmoid_float32, tanh_exact, tanh_float32
from .cpu_lstm import step_order

__all__ = ["CUDABackend"]


def _simulator_active():
    """Whether ``numba.cuda`` runs on the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    try:
        from numba.cuda.core import config as cuda_config  # numba-cuda >= 0.20
    except ImportError:  # pragma: no cover - older numba-cuda reads numba's own config
        from numba.core import config as cuda_config
    return bool(cuda_config.ENABLE_CUDASIM)


def default_tiling():
    """``(tile, register_tile)`` used by :class:`CUDABackend` by default.

    On a GPU: :data:`numlstm._config.CUDA_TILE` and
    :data:`numlstm._config.CUDA_REGISTER_TILE`. The simulator runs every thread as a
    Python thread, so there it uses ``(4, 2)``: the same code on small tiles, still
    exercising partial tiles and several tiles per dimension.
    """
    if _simulator_active():
        return 4, 2
    return _config.CUDA_TILE, _config.CUDA_REGISTER_TILE


def _cdiv(a, b):
    return -(-a // b)


# ---------------------------------------------------------------------------- kernels
@cuda.jit(device=True)
def _grid_sync():
    """Barrier across the whole grid (the kernel is then launched cooperatively)."""
    cuda.cg.this_grid().sync()


class _Kernels(NamedTuple):
    """The kernels of one float type and tiling, and the shape of their blocks.

    ``forward_steps``/``backward_steps`` run one timestep per launch;
    ``forward_sweep``/``backward_sweep`` are the same code with a grid-wide barrier between
    timesteps, launched cooperatively to run a whole sweep in one launch.
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
def _kernels(dtype_name, tile, reg, unit_reg=_config.CUDA_UNIT_TILE):
    """Build (lazily compiled) kernels for ``dtype_name`` with the given tiling.

    Every kernel runs on blocks of ``tile x tile`` threads (``threadIdx.x`` fastest). A
    block of the matrix product covers ``tile*reg`` rows and columns of the output (each
    thread ``reg x reg`` of them); a block of the forward step covers ``tile`` hidden units
    (all four gates) and ``tile*reg`` batch rows; a block of the backward step covers
    ``tile*unit_reg`` hidden units and ``tile*reg`` batch rows. Shared tiles get one padding
    column so that column-wise stores avoid bank conflicts.
    """
    dtype = np.dtype(dtype_name)
    nbt = dtype.type  # element type of shared and local arrays
    zero = dtype.type(0)
    one = dtype.type(1)
    if dtype == np.float32:
        sigmoid, tanh = sigmoid_float32, tanh_float32
    else:
        sigmoid, tanh = sigmoid_exact, tanh_exact
    span = tile * reg  # rows (and product columns) a block covers
    n_threads = tile * tile
    loads = span * tile // n_threads  # elements of a (span x tile) tile each thread loads
    span_pad = span + 1  # shared-array shapes must be compile-time constants
    tile_pad = tile + 1
    units = tile * unit_reg  # hidden units a backward block covers
    units_pad = units + 1

    @cuda.jit
    def gemm(a, b, c, mnk, a_geom, b_geom, c_geom):
        """``C_z (=|+=) op(A_z) @ op(B_z)`` for ``z = blockIdx.z`` on flat buffers.

        ``mnk = (m, n, k)``; ``a_geom``/``b_geom`` are ``(offset, ld, batch_stride,
        transposed)``: element ``(i, p)`` of ``op(A_z)`` is ``a[offset + z*batch_stride +
        i*ld + p]``, or ``a[... + p*ld + i]`` when transposed (likewise ``B``);
        ``c_geom = (offset, ld, batch_stride, accumulate)``.
        """
        m, n, k = mnk
        a_off, lda, a_bs, a_t = a_geom
        b_off, ldb, b_bs, b_t = b_geom
        c_off, ldc, c_bs, accumulate = c_geom
        a_s = cuda.shared.array((tile, span_pad), nbt)  # [p, i]
        b_s = cuda.shared.array((tile, span_pad), nbt)  # [p, j]
        acc = cuda.local.array((reg, reg), nbt)
        a_reg = cuda.local.array(reg, nbt)
        b_reg = cuda.local.array(reg, nbt)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * tile + tx
        i0 = cuda.blockIdx.y * span
        j0 = cuda.blockIdx.x * span
        z = cuda.blockIdx.z
        a_base = a_off + z * a_bs
        b_base = b_off + z * b_bs
        c_base = c_off + z * c_bs
        for r in range(reg):
            for q in range(reg):
                acc[r, q] = zero
        for p0 in range(0, k, tile):
            for e in range(loads):
                idx = tid + e * n_threads
                # Consecutive threads read consecutive addresses of the stored operand.
                if a_t:
                    ii = idx % span
                    pp = idx // span
                else:
                    pp = idx % tile
                    ii = idx // tile
                gi = i0 + ii
                gp = p0 + pp
                v = zero
                if gi < m and gp < k:
                    v = a[a_base + gp * lda + gi] if a_t else a[a_base + gi * lda + gp]
                a_s[pp, ii] = v
                if b_t:
                    pp = idx % tile
                    jj = idx // tile
                else:
                    jj = idx % span
                    pp = idx // span
                gj = j0 + jj
                gp = p0 + pp
                v = zero
                if gj < n and gp < k:
                    v = b[b_base + gj * ldb + gp] if b_t else b[b_base + gp * ldb + gj]
                b_s[pp, jj] = v
            cuda.syncthreads()
            for pp in range(tile):
                for r in range(reg):
                    a_reg[r] = a_s[pp, ty + tile * r]
                for q in range(reg):
                    b_reg[q] = b_s[pp, tx + tile * q]
                for r in range(reg):
                    for q in range(reg):
                        acc[r, q] += a_reg[r] * b_reg[q]
            cuda.syncthreads()
        for r in range(reg):
            gi = i0 + ty + tile * r
            if gi < m:
                for q in range(reg):
                    gj = j0 + tx + tile * q
                    if gj < n:
                        pos = c_base + gi * ldc + gj
                        if accumulate:
                            c[pos] += acc[r, q]
                        else:
                            c[pos] = acc[r, q]

    @cuda.jit(device=True)
    def forward_step(u, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev):
        """Forward step ``u`` (processing order) of both directions.

        ``h``/``c`` are (2, D, B, H): step ``u`` reads the state from ``[u % 2]`` and
        writes it to ``[1 - u % 2]`` (padded rows copy it).
        ``gates`` holds the input projection; the recurrent product with ``W_hh`` is
        added, then bias, nonlinearities and cell update; the output goes to ``out``.
        With ``store`` the activated gates overwrite the pre-activations and the state
        each step started from goes to ``h_prev``/``c_prev``.
        """
        d = cuda.blockIdx.z
        n_steps = gates.shape[1]
        batch = h.shape[2]
        hidden = w_hh.shape[2]
        h_s = cuda.shared.array((tile, span_pad), nbt)  # [k, row]
        w_s = cuda.shared.array((4, tile, tile_pad), nbt)  # [gate, k, unit]
        acc = cuda.local.array((4, reg), nbt)
        h_reg = cuda.local.array(reg, nbt)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * tile + tx
        j0 = cuda.blockIdx.x * tile
        b0 = cuda.blockIdx.y * span
        j = j0 + tx
        col = d * hidden + j
        p = u % 2
        q = 1 - p
        t = step_order(u, n_steps, d == 1)
        for g in range(4):
            for r in range(reg):
                acc[g, r] = zero
        for k0 in range(0, hidden, tile):
            kk = tid % tile
            k = k0 + kk
            for e in range(loads):
                row = (tid + e * n_threads) // tile
                b = b0 + row
                h_s[kk, row] = h[p, d, b, k] if b < batch and k < hidden else zero
            jj = tid // tile
            jw = j0 + jj
            for g in range(4):
                w_s[g, kk, jj] = (w_hh[d, g * hidden + jw, k]
                                  if jw < hidden and k < hidden else zero)
            cuda.syncthreads()
            for kk in range(tile):
                for r in range(reg):
                    h_reg[r] = h_s[kk, ty + tile * r]
                for g in range(4):
                    w = w_s[g, kk, tx]
                    for r in range(reg):
                        acc[g, r] += w * h_reg[r]
            cuda.syncthreads()
        for r in range(reg):
            b = b0 + ty + tile * r
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
            f_gate = sigmoid(gates[b, t, d, hidden + j] + bias[d, hidden + j]
                             + acc[1, r])
            g_gate = tanh(gates[b, t, d, 2 * hidden + j] + bias[d, 2 * hidden + j]
                          + acc[2, r])
            o_gate = sigmoid(gates[b, t, d, 3 * hidden + j]
                             + bias[d, 3 * hidden + j] + acc[3, r])
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

        A sweep runs ``u = T-1, ..., 0`` and then ``u = -1``. Each step first forms
        ``dh``: the product of ``W_hh`` with the gate gradients of the step processed
        just before (row by row, the last *valid* such step), or ``d_h_n`` for rows
        that have none yet. Step ``u >= 0`` then writes its gate gradients to
        ``d_gates`` (zero at padded steps) and updates ``d_c`` in place (it ends as
        ``d_c0``); ``u = -1`` writes ``dh`` to ``d_h0``.
        """
        d = cuda.blockIdx.z
        reverse = d == 1
        n_steps = gates.shape[1]
        batch = d_c.shape[1]
        hidden = w_hh.shape[2]
        four_h = 4 * hidden
        g_s = cuda.shared.array((tile, span_pad), nbt)  # [k, row]
        w_s = cuda.shared.array((tile, units_pad), nbt)  # [k, unit]
        acc = cuda.local.array((reg, unit_reg), nbt)
        g_reg = cuda.local.array(reg, nbt)
        w_reg = cuda.local.array(unit_reg, nbt)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * tile + tx
        j0 = cuda.blockIdx.x * units
        b0 = cuda.blockIdx.y * span
        has_src = u + 1 < n_steps
        t_src = step_order(u + 1, n_steps, reverse) if has_src else 0
        for r in range(reg):
            for q in range(unit_reg):
                acc[r, q] = zero
        if has_src:
            for k0 in range(0, four_h, tile):
                kk = tid % tile
                k = k0 + kk
                for e in range(loads):
                    row = (tid + e * n_threads) // tile
                    b = b0 + row
                    v = zero
                    if b < batch and k < four_h:
                        ts = min(t_src, lengths[b] - 1) if reverse else t_src
                        v = d_gates[b, ts, d, k]
                    g_s[kk, row] = v
                for e in range(unit_reg):
                    idx = tid + e * n_threads
                    jj = idx % units
                    kk = idx // units
                    jw = j0 + jj
                    k = k0 + kk
                    w_s[kk, jj] = (w_hh[d, k, jw]
                                   if jw < hidden and k < four_h else zero)
                cuda.syncthreads()
                for kk in range(tile):
                    for r in range(reg):
                        g_reg[r] = g_s[kk, ty + tile * r]
                    for q in range(unit_reg):
                        w_reg[q] = w_s[kk, tx + tile * q]
                    for r in range(reg):
                        for q in range(unit_reg):
                            acc[r, q] += g_reg[r] * w_reg[q]
                cuda.syncthreads()
        t = step_order(u, n_steps, reverse) if u >= 0 else 0
        for r in range(reg):
            b = b0 + ty + tile * r
            if b >= batch:
                continue
            n_valid = lengths[b]
            ts = min(t_src, n_valid - 1) if reverse else t_src
            src_valid = has_src and ts < n_valid
            for q in range(unit_reg):
                j = j0 + tx + tile * q
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
                d_gates[b, t, d, 2 * hidden + j] = (dc * i_gate
                                                    * (one - g_gate * g_gate))
                d_gates[b, t, d, 3 * hidden + j] = dh * tc * o_gate * (one - o_gate)
                d_c[d, b, j] = dc * f_gate

    # Each step kernel comes twice: one timestep per launch, or a whole sweep in one
    # cooperative launch with a grid-wide barrier between timesteps.
    @cuda.jit
    def forward_steps(u, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev):
        forward_step(u, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev)

    @cuda.jit
    def forward_sweep(u0, u1, store, lengths, w_hh, bias, h, c, gates, out, h_prev,
                      c_prev):
        for u in range(u0, u1):
            forward_step(u, store, lengths, w_hh, bias, h, c, gates, out, h_prev, c_prev)
            if u + 1 < u1:
                _grid_sync()

    @cuda.jit
    def backward_steps(u, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates, d_h0):
        backward_step(u, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates, d_h0)

    @cuda.jit
    def backward_sweep(u0, u1, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates,
                       d_h0):
        for u in range(u0, u1, -1):
            backward_step(u, lengths, w_hh, gates, c_prev, d_out, d_h_n, d_c, d_gates,
                          d_h0)
            if u - 1 > u1:
                _grid_sync()

    @cuda.jit
    def column_sums(a, n_rows, n_cols, rows_per_block, sums):
        """``sums[j] += a[rows of this block, j]`` for the row-major ``(n_rows, n_cols)`` a."""
        j = cuda.grid(1)
        if j >= n_cols:
            return
        r0 = cuda.blockIdx.y * rows_per_block
        r1 = min(n_rows, r0 + rows_per_block)
        s = zero
        for r in range(r0, r1):
            s += a[r * n_cols + j]
        cuda.atomic.add(sums, j, s)

    return _Kernels(gemm, forward_steps, forward_sweep, backward_steps, backward_sweep,
                    column_sums, tile, reg, unit_reg)


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
    span = kern.tile * kern.register_tile
    launch = _configured(kern.gemm, (_cdiv(n, span), _cdiv(m, span), batch),
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
    """Grid and block shapes of the forward and the backward step kernels."""
    rows = _cdiv(batch, kern.tile * kern.register_tile)
    block = (kern.tile, kern.tile)
    return ((_cdiv(hidden, kern.tile), rows, n_dirs), block,
            (_cdiv(hidden, kern.tile * kern.unit_tile), rows, n_dirs), block)


def _flat(a):
    return a.reshape(a.size)


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


def _backward_on_device(kern, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, persistent=True):
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

    Returns
    -------
    dx : device array (B, T, I)
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
    dW_ih = cuda.device_array_like(W_ih)
    dW_hh = cuda.device_array_like(W_hh)
    _matmul(kern, four_h, in_size, rows, dg_t, _Mat(_flat(x), in_size),
            _Mat(_flat(dW_ih), in_size, stride=four_h * in_size), batch=n_dirs)
    _matmul(kern, four_h, hidden, rows, dg_t,
            _Mat(_flat(cache.h_prev), n_dirs * hidden, stride=hidden),
            _Mat(_flat(dW_hh), hidden, stride=four_h * hidden), batch=n_dirs)
    # Both directions in one product: (B*T, D*4H) @ (D*4H, I).
    dx = cuda.device_array_like(x)
    _matmul(kern, rows, in_size, width, _Mat(dg, width), _Mat(_flat(W_ih), in_size),
            _Mat(_flat(dx), in_size))
    d_bias = cuda.to_device(np.zeros(width, dtype))
    sums = _configured(kern.column_sums,
                       (_cdiv(width, _config.CUDA_THREADS_PER_BLOCK),
                        _cdiv(rows, _config.CUDA_ROWS_PER_SUM_BLOCK)),
                       _config.CUDA_THREADS_PER_BLOCK)
    sums(dg, rows, width, _config.CUDA_ROWS_PER_SUM_BLOCK, d_bias)
    return dx, d_h0, d_c_n, dW_ih, dW_hh, d_bias


# ------------------------------------------------------------------------ public API
class CUDABackend:
    """Runs layers with the ``numba.cuda`` kernels of this module.

    Same methods, arguments and return values as :class:`numlstm._backend.CPUBackend`:
    host NumPy arrays in and out. The training cache returned by :meth:`forward` holds
    device arrays, so the layer input and the forward caches stay on the GPU until
    :meth:`backward`.

    Parameters
    ----------
    tiling : tuple of int, optional
        ``(tile, register_tile)`` or ``(tile, register_tile, unit_tile)`` of the kernels
        (see :func:`_kernels`); :func:`default_tiling` when omitted.
    persistent : bool, default=True
        Run each sweep through time as one cooperative launch when the grid fits on the
        GPU at once and the steps are small
        (:data:`numlstm._config.CUDA_SWEEP_MAX_STEP_FMA`), instead of one launch per
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
        """Why this backend cannot run such a layer, or ``None`` when it can.

        Parameters
        ----------
        cell : {"lstm", "gru", "rnn_tanh", "rnn_relu"}
        proj_size : int, default=0
        peephole : bool, default=False
        """
        if cell != "lstm":
            return (f"the CUDA backend runs LSTM layers only, not cell={cell!r}; use "
                    "device='cpu'")
        if proj_size or peephole:
            return ("the CUDA backend does not run LSTMs with proj_size or peephole "
                    "connections; use device='cpu'")
        return None

    def _check_spec(self, spec):
        if spec is not None:
            problem = self.supports(spec.cell, 0 if spec.W_hr is None else 1,
                                    spec.peephole is not None)
            if problem:
                raise NotImplementedError(problem)

    @staticmethod
    def _to_device(a, dtype=None):
        return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))

    def _run_forward(self, x, lengths, W_ih, W_hh, bias, h0, c0, store):
        dtype = x.dtype
        put = self._to_device
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
        workspace : numlstm._backend.Workspace, optional
            Accepted for the backend interface; device buffers are allocated per call.
        spec : numlstm._backend.LayerSpec, optional
            Must describe an LSTM without options (:meth:`supports`).

        Returns
        -------
        out : ndarray (B, T, D*H)
        h_n, c_n : ndarrays (D, B, H)
        cache : object
            Opaque; device arrays to hand back to :meth:`backward`.
        """
        self._check_spec(spec)
        out, h_n, c_n, cache = self._run_forward(x, lengths, W_ih, W_hh, bias, h0, c0, True)
        return out.copy_to_host(), h_n.copy_to_host(), c_n.copy_to_host(), cache

    def inference(self, x, lengths, W_ih, W_hh, bias, h0, c0, workspace=None, spec=None):
        """Forward one layer without caches; returns ``out, h_n, c_n`` (see :meth:`forward`)."""
        self._check_spec(spec)
        out, h_n, c_n, _ = self._run_forward(x, lengths, W_ih, W_hh, bias, h0, c0, False)
        return out.copy_to_host(), h_n.copy_to_host(), c_n.copy_to_host()

    def backward(self, x, lengths, W_ih, W_hh, cache, d_out, d_h_n, d_c_n,
                 dW_ih, dW_hh, d_bias, workspace=None, grads=None):
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
        workspace : numlstm._backend.Workspace, optional
            Accepted for the backend interface (unused).
        grads : dict, optional
            Accepted for the backend interface (an LSTM without options has no further
            gradients).

        Returns
        -------
        dx : ndarray (B, T, I)
        d_h0, d_c0 : ndarrays (D, B, H)
        """
        dtype = cache.gates.dtype
        put = self._to_device
        dx, d_h0, d_c0, g_ih, g_hh, g_bias = _backward_on_device(
            self._kernels(dtype), put(W_ih, dtype), put(W_hh, dtype), cache,
            put(d_out, dtype), put(d_h_n, dtype), put(d_c_n, dtype), self.persistent)
        dW_ih[...] = g_ih.copy_to_host()
        dW_hh[...] = g_hh.copy_to_host()
        d_bias[...] = g_bias.copy_to_host().reshape(d_bias.shape)
        return dx.copy_to_host(), d_h0.copy_to_host(), d_c0.copy_to_host()
