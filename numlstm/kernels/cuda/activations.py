"""Gate nonlinearities of the CUDA kernels: :mod:`numlstm.kernels.activations` chosen by
float type.

The CPU kernels pick the float32 rational approximation or the exact functions through
``numba.extending.overload``; numba-cuda does not inline those overloads, so the CUDA
kernels call these device functions instead. ``isinstance`` on the argument is resolved
when numba compiles (the other branch is pruned), and on the simulator it tests the NumPy
scalar type of the value, so both run the same function as the CPU kernels.
"""

import numpy as np
from numba import cuda

from ..activations import sigmoid_exact, sigmoid_float32, tanh_exact, tanh_float32
from .simulator import simulator_active

__all__ = ["sigmoid", "tanh"]

# Inlined by NVVM into each kernel, after numba has pruned the other float type's branch
# (numba's own ``inline="always"`` would inline before typing and keep both). The
# simulator's ``cuda.jit`` has no such option.
_INLINE = {} if simulator_active() else {"forceinline": True}


@cuda.jit(device=True, **_INLINE)
def sigmoid(x):
    """Logistic sigmoid of a scalar: the fast rational form for float32, exact otherwise."""
    if isinstance(x, np.float32):
        return sigmoid_float32(x)
    return sigmoid_exact(x)


@cuda.jit(device=True, **_INLINE)
def tanh(x):
    """Hyperbolic tangent of a scalar: the fast rational form for float32, exact otherwise."""
    if isinstance(x, np.float32):
        return tanh_float32(x)
    return tanh_exact(x)
