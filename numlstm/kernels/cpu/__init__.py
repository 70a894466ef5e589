"""CPU kernels (``@njit``, ``parallel=True`` where the batch is split between threads)."""
