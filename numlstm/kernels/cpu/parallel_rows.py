"""Run a per-rows kernel over a batch cut into slices, one slice per thread.

The batch's rows never interact, so each thread runs the whole time loop of its own slice
(see :mod:`numlstm.kernels.cpu.recurrent`). One ``parallel=True`` loop serves every
per-rows kernel, cell, float type and pass: it takes the kernel's address and one untyped
pointer to the kernel's arguments (:func:`~numlstm.kernels.cpu.indirect_call.stash`), so
numba compiles it once. A loop per kernel, taking the arguments' records, cost 2.6 of a
first fit's 11.6 s of compiling: numba builds each ``prange`` body into a function of its
own, with a wrapper that converts every array of every record.

numba's on-disk cache checks a kernel against its own source file only, and the entry
kernels of :mod:`numlstm.kernels.cpu.recurrent` inline :func:`run_rows`: after changing
what :func:`_run_slices` or a per-rows kernel takes, delete the ``*.nbi``/``*.nbc`` files
under ``__pycache__``, or cached entry kernels call them the old way.
"""

import numpy as np
from numba import njit, prange, typeof, types

from .indirect_call import call_compiled, compiled_address_for, erase_type
from .jit_options import INNER_KERNEL_OPTIONS, KERNEL_OPTIONS

__all__ = ["run_rows", "slices_runner"]


@njit(parallel=True, **INNER_KERNEL_OPTIONS)
def _run_slices(rows_kernel, arguments, chunk_bounds):
    """``rows_kernel(arguments, chunk, b0, b1)`` for each slice ``chunk``, ``b0:b1`` of
    ``chunk_bounds``, in parallel; ``arguments`` is a ``voidptr``."""
    for chunk in prange(chunk_bounds.shape[0] - 1):
        call_compiled(rows_kernel, (arguments, np.int64(chunk), np.int64(chunk_bounds[chunk]),
                                    np.int64(chunk_bounds[chunk + 1])))


_runners = {}


def slices_runner(chunk_bounds):
    """The address that :func:`run_rows` takes as ``runner``, for slices like
    ``chunk_bounds`` (an int64 array): the parallel loop, compiled on first use; 0 (not
    needed) for a single slice."""
    if chunk_bounds.shape[0] <= 2:
        return 0
    # Keyed by what decides the array's numba type: typing it and hashing that type on
    # every call took 7 us.
    flags = chunk_bounds.flags
    key = (chunk_bounds.dtype, chunk_bounds.ndim, flags.c_contiguous, flags.writeable,
           flags.aligned)
    address = _runners.get(key)
    if address is None:
        address = _runners[key] = compiled_address_for(
            _run_slices, (types.int64, types.voidptr, typeof(chunk_bounds)))
    return address


@njit(inline="always", **KERNEL_OPTIONS)
def run_rows(rows_kernel, runner, arguments, chunk_bounds):
    """``rows_kernel(arguments, chunk, b0, b1)`` for each batch slice of ``chunk_bounds``.

    Parameters
    ----------
    rows_kernel : int
        Address of the per-rows kernel, compiled for ``(type of arguments, int64, int64,
        int64)`` (:func:`~numlstm.kernels.cpu.indirect_call.stashed_address`).
    runner : int
        From :func:`slices_runner`: the parallel loop, or 0 for a single slice, which runs
        on the calling thread without starting a parallel region.
    arguments : pointer
        The kernel's arguments, stored by :func:`~numlstm.kernels.cpu.indirect_call.stash`.
    chunk_bounds : int64 ndarray (n_chunks + 1,)
        The first row of each slice, then the batch size.
    """
    if chunk_bounds.shape[0] < 2:
        return  # no slice
    if chunk_bounds.shape[0] == 2:
        call_compiled(rows_kernel, (arguments, np.int64(0), np.int64(chunk_bounds[0]),
                                    np.int64(chunk_bounds[1])))
    else:
        call_compiled(runner, (rows_kernel, erase_type(arguments), chunk_bounds))
