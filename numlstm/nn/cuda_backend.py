"""CUDA kernels: one recurrent layer (one or two directions), forward and backward through time.

The plain LSTM runs on the fused kernels described below. The GRU, the RNN and the LSTM with a
projection or peepholes run a simpler sweep (:func:`_generic_forward_on_device`,
:func:`_generic_backward_on_device`): per timestep, one launch of the same tiled matrix-product
kernel for the recurrent product of both directions and one elementwise kernel of the cell
(:func:`_cell_kernels`), with the cell math of :mod:`numlstm.kernels.cpu.recurrent`; the weight
gradients are the same large products after the sweep.

The ``numba.cuda`` twin of :mod:`numlstm.kernels.cpu.recurrent`, behind the same backend interface
(:class:`CUDABackend`, chosen by :mod:`numlstm.nn.backend`). Three layers, bottom up:

* private kernels, compiled once per float type by :func:`_kernels`;
* a private host driver (:func:`_forward_on_device`, :func:`_backward_on_device`) that
  allocates device buffers and launches the kernels;
* the public :class:`CUDABackend`, which moves host NumPy arrays in and out
  (:meth:`CUDABackend.forward`, ...), or takes and returns device arrays
  (:meth:`CUDABackend.forward_device`, :meth:`CUDABackend.backward_device`) for a training
  run that keeps its weights on the GPU (:mod:`numlstm.training.device_trainer`).

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
Inputs and outputs keep the CPU layout (:mod:`numlstm.kernels.cpu.recurrent`): ``x`` (B, T, I),
``out`` (B, T, D*H), ``W_ih`` (D, 4H, I), ``W_hh`` (D, 4H, H), ``bias`` (D, 4H), states (D, B, H).
The training caches are time-and-direction interleaved, ``gates`` (B, T, D, 4H) and
``h_prev``/``c_prev`` (B, T, D, H), so that the gate buffer of all timesteps is the plain row-major
matrix ``(B*T, D*4H)``: the input projection and ``dx`` need no per-direction launches.

What stays on the device: between :meth:`CUDABackend.forward` and
:meth:`CUDABackend.backward` the layer input, lengths and all training caches stay on the
GPU (inside the opaque cache object); only ``out``, ``h_n`` and ``c_n`` travel back.

Ragged batches follow :mod:`numlstm.kernels.cpu.recurrent` exactly (packed-sequence semantics),
with the same step-order function :func:`numlstm.kernels.common.step_order` and the same gate
nonlinearities (:mod:`numlstm.kernels.activations`), both called from the kernels.
"""

import functools
import warnings
from typing import NamedTuple

import numpy as np
from numba import cuda

from .._utils import config as _config
from ..kernels.activations import sigmoid_exact, sigmoid_float32, tanh_exact, tanh_float32
from ..kernels.common import step_order

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

    On a GPU: :data:`numlstm._utils.config.CUDA_TILE` and
    :data:`numlstm._utils.config.CUDA_REGISTER_TILE`. The simulator runs every thread as a
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
def _unit_of_thread(idx, batch, size):
    """``(direction, row, unit)`` of flat thread index ``idx`` over a (D, B, size) grid."""
    return idx // (size * batch), (idx // size) % batch, idx % size


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


@cuda.jit
def _fill_kernel(a, value):
    i = cuda.grid(1)
    if i < a.size:
        a[i] = value


def _zero(a):
    """Set the contiguous device array ``a`` to zero on the device (no host transfer)."""
    flat = _flat(a)
    if flat.size:
        _elementwise(_fill_kernel, flat.size)(flat, a.dtype.type(0))
    return a


def _device_zeros(shape, dtype):
    return _zero(cuda.device_array(shape, dtype))


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
                        out=None):
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
    # Both directions in one product: (B*T, D*4H) @ (D*4H, I).
    dx = cuda.device_array_like(x)
    _matmul(kern, rows, in_size, width, _Mat(dg, width), _Mat(_flat(W_ih), in_size),
            _Mat(_flat(dx), in_size))
    _zero(d_bias)  # the column sums add into it
    sums = _configured(kern.column_sums,
                       (_cdiv(width, _config.CUDA_THREADS_PER_BLOCK),
                        _cdiv(rows, _config.CUDA_ROWS_PER_SUM_BLOCK)),
                       _config.CUDA_THREADS_PER_BLOCK)
    sums(dg, rows, width, _config.CUDA_ROWS_PER_SUM_BLOCK, d_bias)
    return dx, d_h0, d_c_n, dW_ih, dW_hh, d_bias


# ------------------------------------------------- every other cell: per-step launches
# GRU, RNN and the LSTM with a projection or peepholes run an unfused sweep: per timestep
# the recurrent product is one launch of the tiled matrix-product kernel (both directions
# at once, ``blockIdx.z``), and one elementwise kernel of the cell applies the gate math.
# A thread of these kernels owns one (direction, row, unit). The projection adds one
# product and one elementwise kernel per step; the backward sweep mirrors the forward one.
# The fused LSTM kernels above remain the path of the plain LSTM.
class _CellKernels(NamedTuple):
    """The elementwise kernels of one float type and cell (see :func:`_cell_kernels`)."""

    forward: object
    backward: object
    project_commit: object
    gather_dh: object
    peephole_grads: object


@functools.lru_cache(maxsize=None)
def _cell_kernels(dtype_name, cell, peephole):
    """Build (lazily compiled) elementwise step kernels for one cell.

    ``cell`` is ``"lstm"``, ``"gru"``, ``"rnn_tanh"`` or ``"rnn_relu"``; the cell and
    ``peephole`` are compile-time constants, so each kernel holds only its own branch.
    Layouts are those of the fused kernels (gates, caches (B, T, D, ...), states
    (D, B, ...)); ``rec`` (D, B, G*H) is the recurrent product of the step, ``m`` the
    LSTM's ``o * tanh(c)`` with a projection ((B, T, D, H) stored, (B, 1, D, H) when only
    inferring).
    """
    dtype = np.dtype(dtype_name)
    zero = dtype.type(0)
    one = dtype.type(1)
    if dtype == np.float32:
        sigmoid, tanh = sigmoid_float32, tanh_float32
    else:
        sigmoid, tanh = sigmoid_exact, tanh_exact
    is_lstm = cell == "lstm"
    is_gru = cell == "gru"
    is_relu = cell == "rnn_relu"

    @cuda.jit
    def forward(u, store, proj, lengths, bias, bias_hn, peep, rec, h, c, gates, out, h_prev,
                c_prev, m):
        n_dirs, batch, rec_size = h.shape
        n_steps = gates.shape[1]
        hidden = rec.shape[2] // (4 if is_lstm else (3 if is_gru else 1))
        idx = cuda.grid(1)
        if idx >= n_dirs * batch * hidden:
            return
        d, b, j = _unit_of_thread(idx, batch, hidden)
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
            if is_relu:
                h_new = v if v > zero else v * zero
            else:
                h_new = tanh(v)
            if store:
                gates[b, t, d, j] = h_new
        h[d, b, j] = h_new
        out[b, t, d * rec_size + j] = h_new

    @cuda.jit
    def project_commit(u, store, lengths, hp, h, out, h_prev):
        """The projected state ``hp`` (D, B, P) becomes the state of the valid rows."""
        n_dirs, batch, rec_size = h.shape
        n_steps = out.shape[1]
        idx = cuda.grid(1)
        if idx >= n_dirs * batch * rec_size:
            return
        d, b, p = _unit_of_thread(idx, batch, rec_size)
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
        """With a projection: ``dh_store`` of the step gets ``d_h + d_out`` (zero at padded
        steps) and ``d_h`` of the valid rows is cleared for the recurrent product."""
        n_dirs, batch, rec_size = d_h.shape
        n_steps = d_out.shape[1]
        idx = cuda.grid(1)
        if idx >= n_dirs * batch * rec_size:
            return
        d, b, p = _unit_of_thread(idx, batch, rec_size)
        t = step_order(u, n_steps, d == 1)
        if t < lengths[b]:
            dh_store[b, t, d, p] = d_h[d, b, p] + d_out[b, t, d * rec_size + p]
            d_h[d, b, p] = zero
        else:
            dh_store[b, t, d, p] = zero

    @cuda.jit
    def backward(u, proj, lengths, peep, gates, h_prev, c_prev, d_out, dm, d_h, d_c, d_gates,
                 d_rec):
        """Gate gradients of step ``u``. ``d_h`` of the valid rows becomes the part of the
        gradient w.r.t. ``h_prev`` that does not go through ``W_hh`` (zero but for the GRU);
        the recurrent product is then added to it."""
        n_dirs, batch, rec_size = d_h.shape
        n_steps = gates.shape[1]
        n_gate_cols = gates.shape[3]
        hidden = n_gate_cols // (4 if is_lstm else (3 if is_gru else 1))
        idx = cuda.grid(1)
        if idx >= n_dirs * batch * hidden:
            return
        d, b, j = _unit_of_thread(idx, batch, hidden)
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
            if is_relu:
                d_gates[b, t, d, j] = dh if h_new > zero else zero
            else:
                d_gates[b, t, d, j] = dh * (one - h_new * h_new)
            d_h[d, b, j] = zero

    @cuda.jit
    def peephole_grads(lengths, gates, c_prev, d_gates, d_peep):
        """``d_peep[d, :, j]``: sums over the valid steps of every row."""
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

    return _CellKernels(forward, backward, project_commit, gather_dh, peephole_grads)


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
    ck = _cell_kernels(dtype.name, cell, peep is not None)
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
    c = cuda.device_array(c0.shape, dtype) if c0 is not None else dummy
    if c0 is not None:
        c.copy_to_device(c0)
    rec = cuda.device_array((n_dirs, batch, n_gate_cols), dtype)
    hp = cuda.device_array((n_dirs, batch, rec_size), dtype) if proj else dummy
    peep_arg = peep if peep is not None else dummy[0]
    cell_step = _elementwise(ck.forward, n_dirs * batch * hidden)
    commit = _elementwise(ck.project_commit, n_dirs * batch * rec_size)
    m_slots = n_steps if store else 1
    for u in range(n_steps):
        # rec[d] = h[d] @ W_hh[d]^T for both directions.
        _matmul(kern, batch, n_gate_cols, rec_size,
                _Mat(_flat(h), rec_size, stride=batch * rec_size),
                _Mat(_flat(W_hh), rec_size, stride=n_gate_cols * rec_size, trans=True),
                _Mat(_flat(rec), n_gate_cols, stride=batch * n_gate_cols), batch=n_dirs)
        cell_step(u, store, proj, lengths, bias, bias_hn, peep_arg, rec, h, c, gates, out,
                  h_prev, c_prev, m)
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


def _generic_backward_on_device(kern, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, out=None):
    """Backward pass of :func:`_generic_forward_on_device` on device arrays.

    Returns ``dx, d_h0, d_c0, dW_ih, dW_hh, d_bias, d_bias_hh, d_peep, dW_hr`` (``d_c0``,
    ``d_bias_hh`` (GRU), ``d_peep`` and ``dW_hr`` ``None`` where the layer has no such
    thing; ``d_bias`` flat (D*G*H,), ``d_bias_hh`` too). ``out``, a dict of device
    arrays keyed ``"W_ih"``, ``"W_hh"``, ``"bias"``, ``"bias_hh"``, ``"peephole"``,
    ``"W_hr"`` (any subset), receives those gradients instead of new arrays.
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
    ck = _cell_kernels(dtype.name, cell, cache.peep is not None)
    dummy = cuda.device_array((1, 1, 1, 1), dtype)
    d_gates = cuda.device_array_like(cache.gates)
    d_rec = cuda.device_array_like(cache.gates) if cell == "gru" else d_gates
    dh_store = (cuda.device_array((batch, n_steps, n_dirs, rec_size), dtype) if proj
                else dummy)
    dm = cuda.device_array((n_dirs, batch, hidden), dtype) if proj else dummy
    d_h = d_h_n  # updated in place: ends as d_h0
    d_c = d_c_n if d_c_n is not None else dummy
    peep_arg = cache.peep if cache.peep is not None else dummy[0]
    cell_step = _elementwise(ck.backward, n_dirs * batch * hidden)
    gather = _elementwise(ck.gather_dh, n_dirs * batch * rec_size)
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
        cell_step(u, proj, cache.lengths, peep_arg, cache.gates, cache.h_prev, cache.c_prev,
                  d_out, dm, d_h, d_c, d_gates, d_rec)
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
    dx = cuda.device_array_like(x)
    _matmul(kern, rows, in_size, width, _Mat(dg, width), _Mat(_flat(W_ih), in_size),
            _Mat(_flat(dx), in_size))

    def column_sums(a, name):
        given = out.get(name)
        sums = _zero(_flat(given) if given is not None else cuda.device_array(width, dtype))
        launch = _configured(kern.column_sums,
                             (_cdiv(width, _config.CUDA_THREADS_PER_BLOCK),
                              _cdiv(rows, _config.CUDA_ROWS_PER_SUM_BLOCK)),
                             _config.CUDA_THREADS_PER_BLOCK)
        launch(a, rows, width, _config.CUDA_ROWS_PER_SUM_BLOCK, sums)
        return sums

    d_bias = column_sums(dg, "bias")
    d_bias_hh = column_sums(_flat(d_rec), "bias_hh") if cell == "gru" else None
    d_peep = dW_hr = None
    if cache.peep is not None:
        d_peep = target("peephole", cache.peep)
        _elementwise(ck.peephole_grads, n_dirs * hidden)(cache.lengths, cache.gates,
                                                         cache.c_prev, d_gates, d_peep)
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
    """Runs layers with the ``numba.cuda`` kernels of this module.

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
        workspace : numlstm.nn.workspace.Workspace, optional
            Accepted for the backend interface (unused).
        grads : dict, optional
            Arrays for the gradients of the options (see
            :meth:`numlstm.nn.cpu_backend.CPUBackend.backward`).

        Returns
        -------
        dx : ndarray (B, T, I)
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
                None if d_c_n is None else put(d_c_n, dtype))
            dW_ih[...] = g_ih.copy_to_host()
            dW_hh[...] = g_hh.copy_to_host()
            d_bias[...] = g_bias.copy_to_host().reshape(d_bias.shape)
            for name, value in (("bias_hh", g_bias_hh), ("peephole", g_peep), ("W_hr", g_hr)):
                if value is not None and grads.get(name) is not None:
                    target = grads[name]
                    target[...] = value.copy_to_host().reshape(target.shape)
            return dx.copy_to_host(), d_h0.copy_to_host(), _host(d_c0)
        dx, d_h0, d_c0, g_ih, g_hh, g_bias = _backward_on_device(
            self._kernels(dtype), put(W_ih, dtype), put(W_hh, dtype), cache,
            put(d_out, dtype), put(d_h_n, dtype), put(d_c_n, dtype), self.persistent)
        dW_ih[...] = g_ih.copy_to_host()
        dW_hh[...] = g_hh.copy_to_host()
        d_bias[...] = g_bias.copy_to_host().reshape(d_bias.shape)
        return dx.copy_to_host(), d_h0.copy_to_host(), d_c0.copy_to_host()

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

    def backward_device(self, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, grads):
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

        Returns
        -------
        dx : device array (B, T, I)
        d_h0 : device array (D, B, R)
        d_c0 : device array (D, B, H) or None
        """
        kern = self._kernels(cache.gates.dtype)
        if isinstance(cache, _GenericCache):
            dx, d_h0, d_c0, *_ = _generic_backward_on_device(kern, W_ih, W_hh, cache, d_out,
                                                             d_h_n, d_c_n, out=grads)
            return dx, d_h0, d_c0
        dx, d_h0, d_c0, *_ = _backward_on_device(
            kern, W_ih, W_hh, cache, d_out, d_h_n, d_c_n, self.persistent,
            out=(grads["W_ih"], grads["W_hh"], grads["bias"]))
        return dx, d_h0, d_c0
