"""Register-blocked matrix products with pre-packed weights, for the recurrent kernels.

Every timestep multiplies a few rows (one thread's share of the batch) by the same weight matrix:
``h_{t-1} @ W_hh^T`` going forward, ``d_gates @ W_hh`` going backward. SciPy's OpenBLAS, reached
through :mod:`numlstm.kernels.cpu.blas`, repacks the weights on every call and runs its general
kernels on these small products: measured in float32 on one core of an Intel Xeon, 109 GFLOP/s
for ``(32 x 128) @ (128 x 512)`` (Python's call included), where the kernel here runs at 142.

How:

* the weights are packed once per layer call into column panels: ``packed[p, k, :]`` holds
  columns ``p*NR:(p+1)*NR`` of row ``k`` of the right-hand matrix, zero-padded, so one
  tile reads its panel as consecutive vectors;
* the innermost tile, ``MR`` rows by ``NR`` columns, keeps its ``MR * NV`` accumulators in
  vector registers for the whole ``k`` loop (one broadcast of ``A[r, k]`` and one fused
  multiply-add per vector). numba cannot spell vector registers, and LLVM's loop vectoriser
  keeps accumulators of a row loop in memory, so the tile is written in LLVM IR through a
  numba intrinsic. The vector width follows the CPU numba compiles for (64 bytes with
  AVX-512, else 32), which numba's cache already keys on, and so does the number of
  panels one tile spans (two with AVX-512's 32 vector registers, else one: see
  ``_TILE_PANELS``).

Three products use the tile: :func:`matmul_packed` (``C += A @ B``, packed ``B``: the
per-step products, input projections and input gradients), :func:`matmul_packed2`
(``C = A @ B + A2 @ B2``: a step's input and recurrent products in one pass) and
:func:`matmul_tn` (``C += A^T @ B``, nothing packed: the weight gradients).

numba's on-disk cache keys a kernel on its own source file only: after editing this
module, delete the ``*.nbi``/``*.nbc`` files under ``__pycache__`` or the kernels of
:mod:`numlstm.kernels.cpu.recurrent` keep running the old tiles.

Matrices are row-major and given by an address and a leading dimension in elements, like
:mod:`numlstm.kernels.cpu.blas`, so a thread can hand over rows of a larger array without a copy.
"""

import os

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic

__all__ = ["K_BLOCK", "MAX_TILE_ROWS", "matmul_packed", "matmul_packed2", "matmul_tn", "pack",
           "pack_transposed", "packed_products", "panel_width"]


def _target_vector_bytes():
    """Bytes of a vector register of the CPU numba compiles for: the host's, or the one
    named by ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` (numba's cache keys on the same)."""
    features = config.CPU_FEATURES
    if features is None:
        avx512 = bool(llvm.get_host_cpu_features().get("avx512f", False))
    else:
        avx512 = "+avx512f" in features.replace(" ", "").split(",")
    return 64 if avx512 else 32


#: Bytes of one vector register the tiles use.
_VECTOR_BYTES = _target_vector_bytes()
#: Vectors per tile row and panel (NV): with MR = 6, 12 accumulators plus 2 panel vectors
#: and one broadcast fit in the 16 registers of AVX2 as well as the 32 of AVX-512.
_VECTORS_PER_ROW = 2
#: Panels per tile of the full-width products. AVX-512 has 32 vector registers: a tile over
#: two panels holds 24 accumulators, 4 panel vectors and one broadcast, and each
#: broadcast of ``A`` feeds four multiply-adds instead of two. On one core of an Intel Xeon
#: (float32) this took the step products from 97-140 to 108-156 GFLOP/s (5-18%, most for
#: the (64 x 640) @ (640 x 2048) step at H=512) and the weight gradients' ``A^T @ B`` from
#: 97-108 to 110-117. AVX2's 16 registers hold one panel's tile only.
_TILE_PANELS = 2 if _VECTOR_BYTES >= 64 else 1
#: Whether the products run tiles over groups of panels. A constant: numba drops the
#: group loops when it is false, so AVX2 targets compile no second copy of their tiles.
_GROUPED_TILES = _TILE_PANELS > 1
#: Rows per tile (MR).
MAX_TILE_ROWS = 6

_JIT = dict(cache=True, nogil=True)


def panel_width(dtype):
    """Columns per packed panel (NR) for a float type."""
    return _VECTORS_PER_ROW * _VECTOR_BYTES // np.dtype(dtype).itemsize


def _make_tile(max_rows, n_panels=1):
    """Intrinsic ``tile(like, rows, k, a, a_row, a_col, b, ldb, k2, a2, a2_row, a2_col, b2,
    ldb2, c, ldc, accumulate, panel_step, panel_step2)``: ``C[:rows, :W] (+)= A[:rows, :k]
    @ B[:k, :W] + A2[:rows, :k2] @ B2[:k2, :W]`` for ``1 <= rows <= max_rows`` and
    ``W = n_panels * NR``; ``C`` is added to when ``accumulate`` is nonzero, else
    overwritten.

    Panel ``q`` of ``B`` (and ``B2``) starts ``q * panel_step`` (``q * panel_step2``)
    elements after the first; its columns go to ``C[:, q*NR:(q+1)*NR]``. Several panels
    serve tiles of one or two rows (a step of one or two sequences): each accumulator waits
    for its previous multiply-add, and one row's two accumulators alone left the
    arithmetic units idle three cycles in four. More panels give more independent
    accumulators while every element sums its products in the same order as in the
    taller tiles, so a sequence's results stay the same in any batch, bit for bit. On
    AVX-512 the taller tiles span two panels as well (see ``_TILE_PANELS``).

    Addresses ``a``, ``b``, ``c``; ``A[r, kk]`` lies at ``a + (r * a_row + kk * a_col)``
    elements (so a transposed ``A`` costs nothing), row ``kk`` of ``B`` at ``b + kk * ldb``
    (``ldb = NR`` for a packed panel), row ``r`` of ``C`` at ``c + r * ldc``; likewise for
    the second pair (``k2 = 0``: none). Two pairs let one pass over ``C`` hold a step's input
    and recurrent products. ``like`` is any array of the float type.

    The tile always computes ``max_rows`` rows (rows past ``rows`` repeat the last one) and
    stores only the first ``rows``: one tile body per height rather than one per row count
    keeps the compiled kernels small, each call site inlining every body it may run.
    """

    @intrinsic
    def tile(typingctx, like, rows, k, a, a_row, a_col, b, ldb, k2, a2, a2_row, a2_col, b2,
             ldb2, c, ldc, accumulate, panel_step, panel_step2):
        sig = types.void(like, *([types.intp] * 18))

        def codegen(context, builder, signature, args):
            (_, rows_v, n_k, a_addr, a_row_v, a_col_v, b_addr, ldb_v, n_k2, a2_addr,
             a2_row_v, a2_col_v, b2_addr, ldb2_v, c_addr, ldc_v, accumulate_v,
             panel_step_v, panel_step2_v) = args
            fty = context.get_value_type(signature.args[0].dtype)
            width = context.get_abi_sizeof(fty)
            lanes = _VECTOR_BYTES // width
            vty = ir.VectorType(fty, lanes)
            intp = ldc_v.type
            i32 = ir.IntType(32)
            fptr = fty.as_pointer()
            vptr = vty.as_pointer()
            c_ptr = builder.inttoptr(c_addr, fptr)
            suffix = "f32" if width == 4 else "f64"
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty, vty, vty]),
                f"llvm.fma.v{lanes}{suffix}")
            zero = ir.Constant(vty, [ir.Constant(fty, 0.0)] * lanes)
            undef = ir.Constant(vty, ir.Undefined)
            splat_mask = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            last = builder.sub(rows_v, ir.Constant(intp, 1))
            # Entry-block allocas: LLVM promotes them to registers (SSA values).
            # Accumulator of row r, panel q, vector v: accs[r][q * NV + v].
            n_vectors = n_panels * _VECTORS_PER_ROW
            accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(n_vectors)]
                    for _ in range(max_rows)]

            def product(count, a_base, a_row_step, a_col_step, b_base, ld_b, panel_step):
                b_ptr = builder.inttoptr(b_base, fptr)
                row_ptrs = []
                for r in range(max_rows):
                    # Rows past the last valid one read the last one again (memory that
                    # exists).
                    index = builder.select(
                        builder.icmp_signed("<", ir.Constant(intp, r), rows_v),
                        ir.Constant(intp, r), last)
                    offset = builder.mul(index, a_row_step)
                    row_ptrs.append(builder.gep(builder.inttoptr(a_base, fptr), [offset]))
                with cgutils.for_range(builder, count) as loop:
                    kk = loop.index
                    row_start = builder.mul(kk, ld_b)
                    b_vectors = []
                    for q in range(n_panels):
                        panel_start = builder.add(
                            row_start, builder.mul(ir.Constant(intp, q), panel_step))
                        for v in range(_VECTORS_PER_ROW):
                            at = builder.gep(b_ptr, [builder.add(
                                panel_start, ir.Constant(intp, v * lanes))])
                            b_vectors.append(builder.load(builder.bitcast(at, vptr),
                                                          align=width))
                    a_k = builder.mul(kk, a_col_step)
                    for r in range(max_rows):
                        scalar = builder.load(builder.gep(row_ptrs[r], [a_k]))
                        splat = builder.shuffle_vector(
                            builder.insert_element(undef, scalar, ir.Constant(i32, 0)), undef,
                            splat_mask)
                        for v in range(n_vectors):
                            acc = accs[r][v]
                            builder.store(
                                builder.call(fma, [splat, b_vectors[v], builder.load(acc)]),
                                acc)

            product(n_k, a_addr, a_row_v, a_col_v, b_addr, ldb_v, panel_step_v)
            product(n_k2, a2_addr, a2_row_v, a2_col_v, b2_addr, ldb2_v, panel_step2_v)
            adding = builder.icmp_signed("!=", accumulate_v, ir.Constant(intp, 0))
            for r in range(max_rows):
                valid = builder.icmp_signed("<", ir.Constant(intp, r), rows_v)
                with builder.if_then(valid, likely=True):
                    # Panel q's columns follow panel q-1's in C: vector v of the row lies
                    # v * lanes elements in, whatever the panel.
                    for v in range(n_vectors):
                        offset = builder.add(builder.mul(ir.Constant(intp, r), ldc_v),
                                             ir.Constant(intp, v * lanes))
                        at = builder.bitcast(builder.gep(c_ptr, [offset]), vptr)
                        with builder.if_then(adding):
                            builder.store(builder.fadd(builder.load(at, align=width),
                                                       builder.load(accs[r][v])), accs[r][v])
                        builder.store(builder.load(accs[r][v]), at, align=width)
            return context.get_dummy_value()

        return sig, codegen

    return tile


#: The two tile heights: blocks of MR rows, and a shorter one for the rest of a product
#: (at most 4 rows, so 32 rows cost 5 x 6 + 4 = 34 rows of work, not 6 x 6 = 36).
_tile_full = _make_tile(MAX_TILE_ROWS)
_SHORT_TILE_ROWS = 4
_tile_short = _make_tile(_SHORT_TILE_ROWS)
#: Tiles of one and two rows over several panels (see :func:`_make_tile`): 8 accumulators
#: each, like the one-panel tiles' 12 and 8, within AVX2's 16 registers.
_SINGLE_PANELS = 4
_PAIR_PANELS = 2
_tile_single_wide = _make_tile(1, _SINGLE_PANELS)
_tile_pair_wide = _make_tile(2, _PAIR_PANELS)
#: The two tile heights over ``_TILE_PANELS`` panels, for every full group of panels.
_tile_full_group = _make_tile(MAX_TILE_ROWS, _TILE_PANELS)
_tile_short_group = _make_tile(_SHORT_TILE_ROWS, _TILE_PANELS)


@njit(inline="always", **_JIT)
def _block_rows(left):
    """Height of the next tile when ``left`` rows remain: tiles of 6 and 4 rows that cover
    the rest with the least repeated work (32 rows go 6, 6, 6, 6, 4, 4)."""
    if left >= 10 or left == 5 or left == 6 or left == 9:
        return min(MAX_TILE_ROWS, left)
    return min(_SHORT_TILE_ROWS, left)


@njit(inline="always", **_JIT)
def _tile(rows, like, k, a, a_row, a_col, b, ldb, k2, a2, a2_row, a2_col, b2, ldb2, c, ldc,
          accumulate, n_valid, edge):
    """One tile (see :func:`_make_tile`): straight into ``C`` when ``n_valid`` is NR;
    otherwise into ``edge`` (MAX_TILE_ROWS, NR), whose first ``n_valid`` columns then go
    to ``C``."""
    nr = edge.shape[1]
    full = n_valid == nr
    if full:
        dest = c
        ld_dest = ldc
        mode = accumulate
    else:
        dest = edge.ctypes.data
        ld_dest = nr
        mode = 0
    if rows > _SHORT_TILE_ROWS:
        _tile_full(like, rows, k, a, a_row, a_col, b, ldb, k2, a2, a2_row, a2_col, b2, ldb2,
                   dest, ld_dest, mode, 0, 0)
    else:
        _tile_short(like, rows, k, a, a_row, a_col, b, ldb, k2, a2, a2_row, a2_col, b2, ldb2,
                    dest, ld_dest, mode, 0, 0)
    if not full:
        size = edge.itemsize
        for r in range(rows):
            row = _row_view(c + r * ldc * size, n_valid, edge)
            values = edge[r]
            if accumulate:
                for j in range(n_valid):
                    row[j] += values[j]
            else:
                for j in range(n_valid):
                    row[j] = values[j]


@njit(inline="always", **_JIT)
def _group_tile(rows, like, k, a, a_row, a_col, b, ldb, k2, a2, a2_row, a2_col, b2, ldb2, c,
                ldc, accumulate, panel_step, panel_step2):
    """One tile over ``_TILE_PANELS`` full panels, ``panel_step`` (``panel_step2``)
    elements apart in ``B`` (``B2``); arguments as for :func:`_make_tile`."""
    if rows > _SHORT_TILE_ROWS:
        _tile_full_group(like, rows, k, a, a_row, a_col, b, ldb, k2, a2, a2_row, a2_col, b2,
                         ldb2, c, ldc, accumulate, panel_step, panel_step2)
    else:
        _tile_short_group(like, rows, k, a, a_row, a_col, b, ldb, k2, a2, a2_row, a2_col, b2,
                          ldb2, c, ldc, accumulate, panel_step, panel_step2)


@njit(**_JIT)
def pack_transposed(w, packed):
    """Pack ``w.T`` (``w`` of shape (N, K), e.g. ``W_hh`` for ``h @ W_hh.T``) into
    ``packed`` of shape (ceil(N / NR), K, NR)."""
    pack(w.T, packed)


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
    packed_products(m, n, a, lda, packed, a, lda, packed, 0, c, ldc, 1, edge)


@njit(**_JIT)
def matmul_packed2(m, n, a, lda, packed, a2, lda2, packed2, c, ldc, edge):
    """``C[:m, :n] = A[:m, :K] @ B + A2[:m, :K2] @ B2`` (overwritten, not added), both
    right-hand matrices packed like :func:`matmul_packed`'s and of ``n`` columns.

    One pass over ``C`` for a timestep's input and recurrent products: no zeroing, no
    second load and store of the destination.
    """
    packed_products(m, n, a, lda, packed, a2, lda2, packed2, packed2.shape[1], c, ldc, 0,
                    edge)


@njit(**_JIT)
def packed_products(m, n, a, lda, packed, a2, lda2, packed2, n_k2, c, ldc, accumulate,
                    edge):
    """``C[:m, :n] (+)= A[:m, :K] @ B + A2[:m, :n_k2] @ B2``: the products of
    :func:`matmul_packed` (``n_k2 = 0``, ``accumulate = 1``) and :func:`matmul_packed2`
    (``n_k2 = K2``, ``accumulate = 0``) in one compiled function, which the recurrent
    kernels call for both: each tile body costs compile time, and a first fit compiles
    the products once rather than twice.
    """
    if m <= 0:
        # No rows: the one- and two-row tiles below would still write two.
        return
    n_k = packed.shape[1]
    nr = packed.shape[2]
    size = packed.itemsize
    panel_bytes = n_k * nr * size
    panel_bytes2 = packed2.shape[1] * nr * size
    base = packed.ctypes.data
    base2 = packed2.ctypes.data
    n_panels = (n + nr - 1) // nr
    first = 0
    if m <= 2:
        # One or two rows: full panels several at a time (see _make_tile).
        group = _SINGLE_PANELS if m == 1 else _PAIR_PANELS
        while first + group <= n // nr:
            b_first = base + first * panel_bytes
            b2_first = base2 + first * panel_bytes2
            c_first = c + first * nr * size
            if m == 1:
                _tile_single_wide(packed, 1, n_k, a, lda, 1, b_first, nr, n_k2, a2, lda2, 1,
                                  b2_first, nr, c_first, ldc, accumulate, n_k * nr,
                                  packed2.shape[1] * nr)
            else:
                _tile_pair_wide(packed, 2, n_k, a, lda, 1, b_first, nr, n_k2, a2, lda2, 1,
                                b2_first, nr, c_first, ldc, accumulate, n_k * nr,
                                packed2.shape[1] * nr)
            first += group
    elif _GROUPED_TILES:
        # Full panels a group at a time, then the rest (and a partial panel) one by one.
        while first + _TILE_PANELS <= n // nr:
            start = 0
            while start < m:
                rows = _block_rows(m - start)
                _group_tile(rows, packed, n_k, a + start * lda * size, lda, 1,
                            base + first * panel_bytes, nr, n_k2, a2 + start * lda2 * size,
                            lda2, 1, base2 + first * panel_bytes2, nr,
                            c + (start * ldc + first * nr) * size, ldc, accumulate, n_k * nr,
                            packed2.shape[1] * nr)
                start += rows
            first += _TILE_PANELS
    for p in range(first, n_panels):
        start = 0
        while start < m:
            rows = _block_rows(m - start)
            _tile(rows, packed, n_k, a + start * lda * size, lda, 1, base + p * panel_bytes, nr,
                  n_k2, a2 + start * lda2 * size, lda2, 1, base2 + p * panel_bytes2, nr,
                  c + (start * ldc + p * nr) * size, ldc, accumulate, min(nr, n - p * nr),
                  edge)
            start += rows


def _parse_cache_size(text):
    """Bytes in a sysfs cache size such as ``"48K"`` or ``"1M"`` (None if unreadable)."""
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024 ** 2}.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in ("K", "M") else text
    return int(digits) * scale if digits.isdigit() else None


def _l1_data_cache_bytes(default=32 * 1024):
    """Size of the level-1 data cache of CPU 0, from Linux's sysfs; ``default`` where it
    cannot be read."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return default
    for entry in entries:
        fields = {}
        for name in ("level", "type", "size"):
            try:
                with open(os.path.join(base, entry, name)) as file:
                    fields[name] = file.read().strip()
            except OSError:
                break
        if fields.get("level") == "1" and fields.get("type") in ("Data", "Unified"):
            return _parse_cache_size(fields.get("size", "")) or default
    return default


def _k_block_rows(l1_bytes, panel_row_bytes):
    """Rows of ``B`` per block of :func:`matmul_tn`: a panel block takes about a third of
    L1, leaving room for the tiles' rows of ``A`` and ``C``; a multiple of 16 in
    [64, 256]. Measured on a 48 KiB L1 (AVX-512, 128-byte panel rows) with one-panel
    tiles: blocks of 128 rows ran 2-12% faster than blocks of 256. With two-panel tiles
    (two panel blocks, 32 KiB) blocks of 64 to 256 rows measured within the noise of each
    other (one core, 98-125 GFLOP/s), so the rule stayed."""
    rows = l1_bytes // 3 // panel_row_bytes
    return max(64, min(256, rows // 16 * 16))


#: Blocking of :func:`matmul_tn` (the scheme of GotoBLAS): ``K`` goes in blocks of
#: ``K_BLOCK`` rows (also the rows of the ``edge_panel`` scratch it takes), so one panel
#: of ``B`` (``K_BLOCK x NR``) stays in L1 while the row blocks of a group of
#: ``_ROW_GROUP`` result rows pass over it, and that group's block of ``A`` stays in L2;
#: each tile of ``C`` is loaded and stored once per block of ``K``. The block follows the
#: size of this CPU's L1 (the kernels read it from their scratch, not from here).
K_BLOCK = _k_block_rows(_l1_data_cache_bytes(), _VECTORS_PER_ROW * _VECTOR_BYTES)
_ROW_GROUP = 20 * MAX_TILE_ROWS
#: Passes over ``A`` from which :func:`matmul_tn` copies each row group's block of it.
_REPACK_FROM_PASSES = 4


@njit(**_JIT)
def matmul_tn(m, n, k, a, lda, b, ldb, c, ldc, edge, edge_panel):
    """``C[:m, :n] += A[:k, :m]^T @ B[:k, :n]``, all row-major, no packing.

    The shape of the weight gradients (``d_gates^T @ inputs`` over all rows and steps:
    ``k`` is large, ``m`` and ``n`` are the weights' sizes). ``a``, ``b``, ``c`` are
    addresses with leading dimensions ``lda``, ``ldb``, ``ldc``. ``edge`` (MAX_TILE_ROWS,
    NR) and ``edge_panel`` (K_BLOCK, NR) are scratch for the last ``n % NR``
    columns, whose rows of ``B`` are copied into a zero-padded panel.
    """
    nr = edge.shape[1]
    size = edge.itemsize
    full_panels = n // nr
    rest = n - full_panels * nr
    n_panels = full_panels + (1 if rest else 0)
    k_step = edge_panel.shape[0]
    # The tiles pass over A once per group of panels (and once per panel left over).
    # Strided reads of A cost more than a copy of it only from about four passes on. On
    # one core of an Intel Xeon, float32: with the 2-panel tiles, reading A in place ran
    # at 126-142 GFLOP/s and copying it at 107-128 for 1-3 passes (64-160 columns of B),
    # level at 4 and 8 passes; with one-panel AVX2 tiles (compiled for Haswell), in place
    # 91 and copied 68 at 2 passes, level at 4 and 8.
    passes = full_panels // _TILE_PANELS + full_panels % _TILE_PANELS + (1 if rest else 0)
    repack = passes >= _REPACK_FROM_PASSES
    a_packed = np.empty(_ROW_GROUP * k_step if repack else 0, dtype=edge.dtype)
    for k0 in range(0, k, k_step):
        kc = min(k_step, k - k0)
        a_k = a + k0 * lda * size
        b_k = b + k0 * ldb * size
        if rest:
            for kk in range(kc):
                row = _row_view(b_k + kk * ldb * size, n, edge)
                dest = edge_panel[kk]
                for j in range(rest):
                    dest[j] = row[full_panels * nr + j]
                for j in range(rest, nr):
                    dest[j] = 0.0
        for m0 in range(0, m, _ROW_GROUP):
            m1 = min(m, m0 + _ROW_GROUP)
            if repack:
                # Each tile's columns of A, copied so that a tile reads them in order:
                # tile-major, then k, then the tile's rows (at most MR).
                start = m0
                while start < m1:
                    rows = _block_rows(m1 - start)
                    dest = a_packed[(start - m0) * k_step:]
                    for kk in range(kc):
                        src = _row_view(a_k + (kk * lda + start) * size, rows, edge)
                        for r in range(rows):
                            dest[kk * rows + r] = src[r]
                    start += rows
            # Full panels a group at a time (see _TILE_PANELS), then the rest one by one.
            first = 0
            if _GROUPED_TILES:
                while first + _TILE_PANELS <= full_panels:
                    b_panel = b_k + first * nr * size
                    start = m0
                    while start < m1:
                        rows = _block_rows(m1 - start)
                        a_rows, a_col = _tile_columns_of_a(repack, a_packed, a_k, lda, start,
                                                           m0, k_step, rows)
                        _group_tile(rows, edge, kc, a_rows, 1, a_col, b_panel, ldb, 0, a_rows,
                                    1, a_col, b_panel, ldb,
                                    c + (start * ldc + first * nr) * size, ldc, 1, nr, 0)
                        start += rows
                    first += _TILE_PANELS
            for p in range(first, n_panels):
                n_valid = min(nr, n - p * nr)
                if n_valid == nr:
                    b_panel = b_k + p * nr * size
                    ld_panel = ldb
                else:
                    b_panel = edge_panel.ctypes.data
                    ld_panel = nr
                start = m0
                while start < m1:
                    rows = _block_rows(m1 - start)
                    a_rows, a_col = _tile_columns_of_a(repack, a_packed, a_k, lda, start, m0,
                                                       k_step, rows)
                    _tile(rows, edge, kc, a_rows, 1, a_col, b_panel, ld_panel, 0, a_rows, 1,
                          a_col, b_panel, ld_panel, c + (start * ldc + p * nr) * size, ldc, 1,
                          n_valid, edge)
                    start += rows


@njit(inline="always", **_JIT)
def _tile_columns_of_a(repack, a_packed, a_k, lda, start, m0, k_step, rows):
    """Address of the tile's first element of ``A`` in :func:`matmul_tn` and the elements
    between its steps of ``k``: in the copy when ``repack``, else in ``A`` itself."""
    if repack:
        return a_packed.ctypes.data + (start - m0) * k_step * a_packed.itemsize, rows
    return a_k + start * a_packed.itemsize, lda


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
