"""BLAS ``gemm`` callable from numba-compiled code.

numba's ``np.dot`` only accepts contiguous operands, always writes a fresh product and
cannot accumulate. The LSTM kernels need more: the recurrent product of every timestep is
*added* to the precomputed input projection (``beta=1``), and each thread works on a strided
slice of the batch. So the kernels call the BLAS that numba itself uses (SciPy's
``cython_blas``) directly.

The BLAS entry points are registered with LLVM under fixed symbol names and declared as
external functions. Compiled code refers to them by name, not by address, which keeps the
kernels valid in numba's on-disk cache across processes.

Every function here works on row-major (C-ordered) matrices given by an address and a
leading dimension, so callers can hand over rows ``b0:b1`` of a larger array without a copy.
"""

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.extending import get_cython_function_address

__all__ = ["GemmScratch", "gemm", "new_gemm_scratch"]

for _name in ("sgemm", "dgemm"):
    llvm.add_symbol(
        "numlstm_" + _name,
        get_cython_function_address("scipy.linalg.cython_blas", _name),
    )

# Fortran BLAS takes every argument by reference. Addresses travel as machine integers:
# numba cannot form a ``void*`` from an array slice, and the C ABI passes both alike.
_signature = types.void(*([types.intp] * 13))
_sgemm = types.ExternalFunction("numlstm_sgemm", _signature)
_dgemm = types.ExternalFunction("numlstm_dgemm", _signature)

_CHAR_N = np.uint8(ord("N"))
_CHAR_T = np.uint8(ord("T"))


@njit(cache=True)
def new_gemm_scratch(dtype_example):
    """Return the small per-thread arrays that carry gemm's by-reference arguments.

    ``dtype_example`` is any array of the float type the products will use.
    """
    ints = np.empty(6, dtype=np.int32)
    floats = np.empty(2, dtype=dtype_example.dtype)
    chars = np.empty(2, dtype=np.uint8)
    return ints, floats, chars


GemmScratch = tuple  # (ints, floats, chars) as returned by new_gemm_scratch


@njit(cache=True, inline="always")
def gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, scratch):
    """Row-major ``C[:m, :n] = alpha * op(A) @ op(B) + beta * C``.

    ``a``, ``b``, ``c`` are addresses (``array.ctypes.data`` plus an offset in bytes);
    ``lda``, ``ldb``, ``ldc`` are row strides in elements; ``op(A)`` is ``m x k``,
    ``op(B)`` is ``k x n``. ``scratch`` comes from :func:`new_gemm_scratch` and decides
    single or double precision; it must not be shared between threads.
    """
    ints, floats, chars = scratch
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands
    # and keep their transpose flags.
    chars[0] = _CHAR_T if trans_b else _CHAR_N
    chars[1] = _CHAR_T if trans_a else _CHAR_N
    ints[0] = n
    ints[1] = m
    ints[2] = k
    ints[3] = ldb
    ints[4] = lda
    ints[5] = ldc
    floats[0] = alpha
    floats[1] = beta
    ip = ints.ctypes.data
    fp = floats.ctypes.data
    cp = chars.ctypes.data
    fsz = floats.itemsize
    if fsz == 4:
        _sgemm(cp, cp + 1, ip, ip + 4, ip + 8, fp, b, ip + 12, a, ip + 16, fp + fsz, c, ip + 20)
    else:
        _dgemm(cp, cp + 1, ip, ip + 4, ip + 8, fp, b, ip + 12, a, ip + 16, fp + fsz, c, ip + 20)
