"""Tunables shared by the kernels and their drivers."""

#: Fewest batch rows a CPU thread is given. Below this, splitting the batch costs more in
#: thread start-up than the smaller per-step products save.
MIN_ROWS_PER_THREAD = 4

#: Float types the kernels are compiled for.
SUPPORTED_DTYPES = ("float32", "float64")

#: CUDA threads per block for the elementwise gate kernels.
CUDA_THREADS_PER_BLOCK = 128

#: Edge of the square tiles of the CUDA matrix-product kernel (shared memory).
CUDA_TILE = 16
