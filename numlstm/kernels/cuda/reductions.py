"""Column sums and fills of flat device arrays.

:func:`column_sums` gives the bias gradients after a backward sweep (and the dense head's
intercept gradient); :func:`fill` zeroes buffers on the device without a host transfer.
The float type is that of the arguments.
"""

from numba import cuda

__all__ = ["column_sums", "column_sums_grid", "fill"]


def column_sums_grid(n_rows, n_cols, threads_per_block, rows_per_block):
    """Grid of :func:`column_sums`: ``(ceil(n_cols / threads_per_block),
    ceil(n_rows / rows_per_block))``."""
    return (-(-n_cols // threads_per_block), -(-n_rows // rows_per_block))


@cuda.jit
def column_sums(a, n_rows, n_cols, rows_per_block, sums):
    """``sums[j] += a[rows of this block, j]`` for the row-major ``(n_rows, n_cols)`` ``a``.

    Parameters
    ----------
    a : 1-D device array
        The matrix, flat.
    n_rows, n_cols : int
    rows_per_block : int
        Rows that one block sums.
    sums : 1-D device array (n_cols,)
        Added to (atomically: the blocks of a column add their partial sums), so zero it
        first for plain column sums.

    Notes
    -----
    Launch: 1-D blocks (:data:`numlstm._utils.config.CUDA_THREADS_PER_BLOCK` threads) on the
    2-D grid of :func:`column_sums_grid`; the thread ``blockIdx.x * blockDim.x + tx`` owns
    column ``j`` of the ``rows_per_block`` rows of block row ``blockIdx.y``. Consecutive
    threads read consecutive columns of a row (coalesced). No shared memory.
    """
    j = cuda.grid(1)
    if j >= n_cols:
        return
    r0 = cuda.blockIdx.y * rows_per_block
    r1 = min(n_rows, r0 + rows_per_block)
    s = sums.dtype.type(0)
    for r in range(r0, r1):
        s += a[r * n_cols + j]
    cuda.atomic.add(sums, j, s)


@cuda.jit
def fill(a, value):
    """``a[:] = value`` for the 1-D device array ``a``.

    Launch: any 1-D grid; the loop strides by the grid size, so a bounded grid covers any
    length and a grid of ``len(a)`` threads does one element each.
    """
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        a[i] = value
