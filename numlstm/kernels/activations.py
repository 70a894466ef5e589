"""Gate nonlinearities for the numba kernels.

numba has no vectorised math library on every machine (no SVML here), so ``tanh`` and
``exp`` run one value at a time and dominate small models. In single precision we use a
branch-free rational approximation of ``tanh`` that the compiler can vectorise; in double
precision the exact library functions keep results to ~1e-16.

``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)`` holds exactly and never overflows, so both
gates share one code path.
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

__all__ = ["one_minus", "sigmoid", "sigmoid_exact", "sigmoid_float32", "tanh", "tanh_exact",
           "tanh_float32"]

# Minimax rational approximation of tanh on [-9, 9] (degree 13 / 6), the form used by
# Eigen's float tanh; beyond |x| = 7.9053 tanh rounds to +-1 in float32. Max error ~1e-7.
_CLAMP = np.float32(7.90531110763549805)
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)
_HALF32 = np.float32(0.5)
_ONE32 = np.float32(1.0)


@njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def tanh_float32(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    p = p * x
    q = x2 * _B6 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return p / q


@njit(cache=True, inline="always", error_model="numpy")
def tanh_exact(x):
    return math.tanh(x)


@njit(cache=True, inline="always", error_model="numpy")
def sigmoid_float32(x):
    return _HALF32 + _HALF32 * tanh_float32(_HALF32 * x)


@njit(cache=True, inline="always", error_model="numpy")
def sigmoid_exact(x):
    return 0.5 + 0.5 * math.tanh(0.5 * x)


def tanh(x):
    """Hyperbolic tangent of a scalar (fast rational form for float32)."""
    return math.tanh(x)


def sigmoid(x):
    """Logistic sigmoid of a scalar (fast rational form for float32)."""
    return 0.5 + 0.5 * math.tanh(0.5 * x)


def one_minus(x):
    """``1 - x`` in the float type of ``x``: written out in a kernel, ``1.0 - x`` turns
    a float32 ``x`` into float64 (the literal is a double), and the derivatives of the
    gates, ``s * (1 - s)`` and ``1 - t * t``, then ran in double precision, converting
    every value there and back (the LSTM's backward cell took 3.3 times as long)."""
    return 1.0 - x


# The flags of the CPU kernels that call these (kernels/cpu/jit_options.py), without the
# wrappers for calls from Python. Not inline="always": numba then ran its front end again
# at each call site (some forty in the cells), 0.45 s of a first fit's compiling; compiled
# once per float type instead, the function is small enough for LLVM to inline it into
# the loops.
_OVERLOAD_OPTIONS = dict(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"},
                         error_model="numpy", no_cpython_wrapper=True, no_cfunc_wrapper=True)


@overload(tanh, jit_options=_OVERLOAD_OPTIONS)
def _tanh_overload(x):
    if x == types.float32:
        return lambda x: tanh_float32(x)
    return lambda x: tanh_exact(x)


@overload(one_minus, jit_options=_OVERLOAD_OPTIONS)
def _one_minus_overload(x):
    if x == types.float32:
        return lambda x: _ONE32 - x
    return lambda x: 1.0 - x


@overload(sigmoid, jit_options=_OVERLOAD_OPTIONS)
def _sigmoid_overload(x):
    if x == types.float32:
        return lambda x: sigmoid_float32(x)
    return lambda x: sigmoid_exact(x)
