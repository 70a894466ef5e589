"""Tiled matrix product on flat device buffers: ``C_z (=|+=) op(A_z) @ op(B_z)``.

Every large product of the CUDA backend runs on :func:`gemm`: the input projection of all
timesteps, the weight gradients and the input gradient after a backward sweep, the
per-step recurrent products of the generic cells and the dense head of the device
trainer. Operands are described by offsets, leading dimensions, batch strides and a
transposed flag, so transposed operands, column slices and per-direction batches are read
in place, never copied.

Launch configuration
--------------------
* block: ``(TILE, TILE)`` threads (:mod:`numlstm.kernels.cuda.tiling`);
* grid: ``(ceil(n / SPAN), ceil(m / SPAN), batch)``: block ``(x, y, z)`` computes rows
  ``y*SPAN ...`` and columns ``x*SPAN ...`` of ``C_z``;
* a thread owns ``REGISTER_TILE x REGISTER_TILE`` elements of ``C``: rows
  ``ty + TILE*r`` and columns ``tx + TILE*q`` of its block's span, accumulated in
  registers;
* shared memory: two ``(TILE, SPAN + 1)`` tiles of the float type (a slice of depth
  ``TILE`` of ``A``'s rows and ``B``'s columns), ``2 * TILE * (SPAN + 1) * itemsize``
  bytes.

The float type is that of the arguments (numba compiles one version per argument types).
"""

from numba import cuda

from .tiling import LOADS, REGISTER_TILE, SPAN, SPAN_PAD, THREADS, TILE

__all__ = ["TILED_DEVICE_FUNCTIONS", "TILED_KERNELS", "gemm", "gemm_grid"]

#: Recompiled by :func:`numlstm.kernels.cuda.tiling.retiled` for another tiling.
TILED_DEVICE_FUNCTIONS = ()
TILED_KERNELS = ("gemm",)


def gemm_grid(m, n, batch, span):
    """Grid of :func:`gemm` for an ``m x n`` product of ``batch`` entries on blocks that
    cover ``span`` (``TILE * REGISTER_TILE``) rows and columns."""
    return (-(-n // span), -(-m // span), batch)


@cuda.jit
def gemm(a, b, c, mnk, a_geom, b_geom, c_geom):
    """``C_z (=|+=) op(A_z) @ op(B_z)`` for ``z = blockIdx.z`` on flat buffers.

    Parameters
    ----------
    a, b, c : 1-D device arrays of one float type
        The buffers holding the operands and the result.
    mnk : tuple of int
        ``(m, n, k)``: ``op(A_z)`` is ``m x k``, ``op(B_z)`` is ``k x n``.
    a_geom, b_geom : tuple of int
        ``(offset, ld, batch_stride, transposed)``: element ``(i, p)`` of ``op(A_z)`` is
        ``a[offset + z*batch_stride + i*ld + p]``, or ``a[... + p*ld + i]`` when
        transposed (likewise ``B``).
    c_geom : tuple of int
        ``(offset, ld, batch_stride, accumulate)``: with ``accumulate`` the product is
        added to ``C_z``, else it overwrites it.

    Notes
    -----
    Launched on :func:`gemm_grid` blocks of ``(TILE, TILE)`` threads (see the module
    docstring).
    """
    m, n, k = mnk
    a_off, lda, a_bs, a_t = a_geom
    b_off, ldb, b_bs, b_t = b_geom
    c_off, ldc, c_bs, accumulate = c_geom
    zero = c.dtype.type(0)
    a_s = cuda.shared.array((TILE, SPAN_PAD), c.dtype)  # [p, i]
    b_s = cuda.shared.array((TILE, SPAN_PAD), c.dtype)  # [p, j]
    acc = cuda.local.array((REGISTER_TILE, REGISTER_TILE), c.dtype)
    a_reg = cuda.local.array(REGISTER_TILE, c.dtype)
    b_reg = cuda.local.array(REGISTER_TILE, c.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TILE + tx
    i0 = cuda.blockIdx.y * SPAN
    j0 = cuda.blockIdx.x * SPAN
    z = cuda.blockIdx.z
    a_base = a_off + z * a_bs
    b_base = b_off + z * b_bs
    c_base = c_off + z * c_bs
    for r in range(REGISTER_TILE):
        for q in range(REGISTER_TILE):
            acc[r, q] = zero
    for p0 in range(0, k, TILE):
        for e in range(LOADS):
            idx = tid + e * THREADS
            # Consecutive threads read consecutive addresses of the stored operand.
            if a_t:
                ii = idx % SPAN
                pp = idx // SPAN
            else:
                pp = idx % TILE
                ii = idx // TILE
            gi = i0 + ii
            gp = p0 + pp
            v = zero
            if gi < m and gp < k:
                v = a[a_base + gp * lda + gi] if a_t else a[a_base + gi * lda + gp]
            a_s[pp, ii] = v
            if b_t:
                pp = idx % TILE
                jj = idx // TILE
            else:
                jj = idx % SPAN
                pp = idx // SPAN
            gj = j0 + jj
            gp = p0 + pp
            v = zero
            if gj < n and gp < k:
                v = b[b_base + gj * ldb + gp] if b_t else b[b_base + gp * ldb + gj]
            b_s[pp, jj] = v
        cuda.syncthreads()
        for pp in range(TILE):
            for r in range(REGISTER_TILE):
                a_reg[r] = a_s[pp, ty + TILE * r]
            for q in range(REGISTER_TILE):
                b_reg[q] = b_s[pp, tx + TILE * q]
            for r in range(REGISTER_TILE):
                for q in range(REGISTER_TILE):
                    acc[r, q] += a_reg[r] * b_reg[q]
        cuda.syncthreads()
    for r in range(REGISTER_TILE):
        gi = i0 + ty + TILE * r
        if gi < m:
            for q in range(REGISTER_TILE):
                gj = j0 + tx + TILE * q
                if gj < n:
                    pos = c_base + gi * ldc + gj
                    if accumulate:
                        c[pos] += acc[r, q]
                    else:
                        c[pos] = acc[r, q]
