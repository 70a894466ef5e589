"""Register-blocked matrix products with pre-packed weights, for the recurrent kernels.

Every timestep multiplies a few rows (one thread's share of the batch) by the same weight
matrix: ``h_{t-1} @ W_hh^T`` going forward, ``d_gates @ W_hh`` going backward. SciPy's
OpenBLAS, reached through :mod:`numlstm._blas`, repacks the weights on every call and runs
its general kernels on these small products: measured in float32 on one core, 85 GFLOP/s
for ``(32 x 128) @ (128 x 512)``, where the kernel here runs at 240 GFLOP/s.

How:

* the weights are packed once per layer call into column panels: ``packed[p, k, :]`` holds
  columns ``p*NR:(p+1)*NR`` of row ``k`` of the right-hand matrix, zero-padded, so one
  tile reads its panel as consecutive vectors;
* the innermost tile, ``MR`` rows by ``NR`` columns, keeps its ``MR * NV`` accumulators in
  vector registers for the whole ``k`` loop (one broadcast of ``A[r, k]`` and one fused
  multiply-add per vector). numba cannot spell vector registers, and LLVM's loop vectoriser
  keeps accumulators of a row loop in memory, so the tile is written in LLVM IR through a
  numba intrinsic. The vector width follows the host CPU (64 bytes with AVX-512, else 32),
  which numba's cache already keys on.

The products only *add* to their destination (``C += A @ B``); callers zero it first where
the product should overwrite.

Matrices are row-major and given by an address and a leading dimension in elements, like
:mod:`numlstm._blas`, so a thread can hand over rows of a larger array without a copy.
"""

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["MAX_TILE_ROWS", "matmul_packed", "pack", "pack_transposed", "panel_width"]

#: Bytes of one vector register the tiles use.
_VECTOR_BYTES = 64 if llvm.get_host_cpu_features().get("avx512f", False) else 32
#: Vectors per tile row (NV): with MR = 6, 12 accumulators plus 2 panel vectors and one
#: broadcast fit in the 16 registers of AVX2 as well as the 32 of AVX-512.
_VECTORS_PER_ROW = 2
#: Rows per tile (MR).
MAX_TILE_ROWS = 6

_JIT = dict(cache=True, nogil=True)


def panel_width(dtype):
    """Columns per packed panel (NR) for a float type."""
    return _VECTORS_PER_ROW * _VECTOR_BYTES // np.dtype(dtype).itemsize


def _make_tile(rows):
    """Intrinsic ``tile(packed, a, lda, panel, c, ldc)``: ``C[:rows, :NR] += A[:rows, :K] @
    panel`` where ``panel`` (an address) holds ``K`` rows of ``NR`` values and ``packed``
    only gives the float type and ``K`` (its ``shape[1]``)."""

    @intrinsic
    def tile(typingctx, packed, a, lda, panel, c, ldc):
        sig = types.void(packed, types.intp, types.intp, types.intp, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            packed_value, a_addr, lda_v, panel_addr, c_addr, ldc_v = args
            array = context.make_array(signature.args[0])(context, builder, packed_value)
            n_k = builder.extract_value(array.shape, 1)
            dtype = signature.args[0].dtype
            fty = context.get_value_type(dtype)
            width = context.get_abi_sizeof(fty)
            lanes = _VECTOR_BYTES // width
            nr = _VECTORS_PER_ROW * lanes
            vty = ir.VectorType(fty, lanes)
            intp = lda_v.type
            i32 = ir.IntType(32)
            fptr = fty.as_pointer()
            vptr = vty.as_pointer()
            a_ptr = builder.inttoptr(a_addr, fptr)
            b_ptr = builder.inttoptr(panel_addr, fptr)
            c_ptr = builder.inttoptr(c_addr, fptr)
            suffix = "f32" if width == 4 else "f64"
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty, vty, vty]),
                f"llvm.fma.v{lanes}{suffix}")
            zero = ir.Constant(vty, [ir.Constant(fty, 0.0)] * lanes)
            undef = ir.Constant(vty, ir.Undefined)
            splat_mask = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            # Entry-block allocas: LLVM promotes them to registers (SSA values).
            accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(_VECTORS_PER_ROW)]
                    for _ in range(rows)]
            with cgutils.for_range(builder, n_k) as loop:
                k = loop.index
                row_start = builder.mul(k, ir.Constant(intp, nr))
                b_vectors = []
                for v in range(_VECTORS_PER_ROW):
                    at = builder.gep(b_ptr, [builder.add(row_start, ir.Constant(intp, v * lanes))])
                    b_vectors.append(builder.load(builder.bitcast(at, vptr), align=width))
                for r in range(rows):
                    at = builder.gep(a_ptr, [builder.add(builder.mul(ir.Constant(intp, r), lda_v),
                                                         k)])
                    scalar = builder.load(at)
                    splat = builder.shuffle_vector(
                        builder.insert_element(undef, scalar, ir.Constant(i32, 0)), undef,
                        splat_mask)
                    for v in range(_VECTORS_PER_ROW):
                        acc = accs[r][v]
                        builder.store(builder.call(fma, [splat, b_vectors[v], builder.load(acc)]),
                                      acc)
            for r in range(rows):
                for v in range(_VECTORS_PER_ROW):
                    offset = builder.add(builder.mul(ir.Constant(intp, r), ldc_v),
                                         ir.Constant(intp, v * lanes))
                    at = builder.bitcast(builder.gep(c_ptr, [offset]), vptr)
                    total = builder.fadd(builder.load(at, align=width), builder.load(accs[r][v]))
                    builder.store(total, at, align=width)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile_1, _tile_2, _tile_3, _tile_4, _tile_5, _tile_6 = (
    _make_tile(rows) for rows in range(1, MAX_TILE_ROWS + 1))


@njit(inline="always", **_JIT)
def _tile(rows, packed, a, lda, panel, c, ldc):
    if rows == 6:
        _tile_6(packed, a, lda, panel, c, ldc)
    elif rows == 5:
        _tile_5(packed, a, lda, panel, c, ldc)
    elif rows == 4:
        _tile_4(packed, a, lda, panel, c, ldc)
    elif rows == 3:
        _tile_3(packed, a, lda, panel, c, ldc)
    elif rows == 2:
        _tile_2(packed, a, lda, panel, c, ldc)
    else:
        _tile_1(packed, a, lda, panel, c, ldc)


@njit(**_JIT)
def pack_transposed(w, packed):
    """Pack ``w.T`` (``w`` of shape (N, K), e.g. ``W_hh`` for ``h @ W_hh.T``) into
    ``packed`` of shape (ceil(N / NR), K, NR)."""
    n_cols, n_k = w.shape
    nr = packed.shape[2]
    for p in range(packed.shape[0]):
        for k in range(n_k):
            row = packed[p, k]
            for j in range(nr):
                col = p * nr + j
                row[j] = w[col, k] if col < n_cols else 0.0


@njit(**_JIT)
def pack(w, packed):
    """Pack ``w`` of shape (K, N) (e.g. ``W_hh`` for ``d_gates @ W_hh``) into ``packed`` of
    shape (ceil(N / NR), K, NR)."""
    n_k, n_cols = w.shape
    nr = packed.shape[2]
    for p in range(packed.shape[0]):
        for k in range(n_k):
            row = packed[p, k]
            for j in range(nr):
                col = p * nr + j
                row[j] = w[k, col] if col < n_cols else 0.0


@njit(**_JIT)
def matmul_packed(m, n, a, lda, packed, c, ldc, edge):
    """``C[:m, :n] += A[:m, :K] @ B`` with ``B`` packed by :func:`pack` or
    :func:`pack_transposed`.

    ``a`` and ``c`` are addresses of row-major matrices with leading dimensions ``lda`` and
    ``ldc`` (elements). ``edge`` is a (MAX_TILE_ROWS, NR) scratch array of this thread, used
    when ``n`` is not a multiple of NR.
    """
    n_k = packed.shape[1]
    nr = packed.shape[2]
    size = packed.itemsize
    panel_bytes = n_k * nr * size
    base = packed.ctypes.data
    full_panels = n // nr
    rest = n - full_panels * nr
    # Rows in blocks of at most MR, as even as possible: 16 rows go 6, 5, 5 rather than
    # 6, 6, 4, keeping every tile near full height.
    n_blocks = (m + MAX_TILE_ROWS - 1) // MAX_TILE_ROWS
    start = 0
    for block in range(n_blocks):
        rows = (m - start) // (n_blocks - block)
        a_rows = a + start * lda * size
        c_rows = c + start * ldc * size
        for p in range(full_panels):
            _tile(rows, packed, a_rows, lda, base + p * panel_bytes, c_rows + p * nr * size,
                  ldc)
        if rest:
            edge[:rows] = 0.0
            _tile(rows, packed, a_rows, lda, base + full_panels * panel_bytes,
                  edge.ctypes.data, nr)
            for r in range(rows):
                c_row = c_rows + r * ldc * size
                _add_row(edge[r], rest, c_row, full_panels * nr, edge)
        start += rows


@njit(inline="always", **_JIT)
def _add_row(values, count, c_row_addr, first_col, like):
    """Add ``values[:count]`` to the row at address ``c_row_addr`` from column
    ``first_col`` (``like`` is any array of the row's float type)."""
    row = _row_view(c_row_addr, first_col + count, like)
    for j in range(count):
        row[first_col + j] += values[j]


@intrinsic
def _row_view(typingctx, address, length, like):
    """A 1-D C-contiguous array of ``length`` elements at ``address`` (no ownership)."""
    array_type = types.Array(like.dtype, 1, "C")
    sig = array_type(types.intp, types.intp, like)

    def codegen(context, builder, signature, args):
        addr, count, _ = args
        ary = context.make_array(array_type)(context, builder)
        fty = context.get_data_type(array_type.dtype)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(fty))
        context.populate_array(
            ary, data=builder.inttoptr(addr, fty.as_pointer()),
            shape=cgutils.pack_array(builder, [count]),
            strides=cgutils.pack_array(builder, [itemsize]),
            itemsize=itemsize, meminfo=None)
        return ary._getvalue()

    return sig, codegen
