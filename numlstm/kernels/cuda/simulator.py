"""Whether ``numba.cuda`` runs on the CUDA simulator.

The simulator (``NUMBA_ENABLE_CUDASIM=1``) runs every CUDA thread as a Python thread, so
some compile-time sizes are smaller there (:mod:`numlstm.kernels.cuda.tiling`,
:data:`numlstm.kernels.cuda.training_ops.REDUCE_THREADS`): the same code on smaller blocks.
"""

__all__ = ["simulator_active"]


def simulator_active():
    """Whether ``numba.cuda`` runs on the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    try:
        from numba.cuda.core import config as cuda_config  # numba-cuda >= 0.20
    except ImportError:  # pragma: no cover - older numba-cuda reads numba's own config
        from numba.core import config as cuda_config
    return bool(cuda_config.ENABLE_CUDASIM)
