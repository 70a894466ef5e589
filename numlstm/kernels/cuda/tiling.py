"""Compile-time tiling of the tiled CUDA kernels, and their recompilation for another tiling.

The matrix product (:mod:`numlstm.kernels.cuda.gemm`) and the fused LSTM step kernels
(:mod:`numlstm.kernels.cuda.lstm`) run on square blocks of ``TILE x TILE`` threads
(``threadIdx.x`` fastest) and block their work in registers: a thread accumulates
``REGISTER_TILE`` rows (and, in the product, ``REGISTER_TILE`` columns), and in the
backward step ``UNIT_TILE`` hidden units. Shared and local arrays need compile-time shapes,
and register blocking needs compile-time loop bounds, so these numbers are module-level
constants that the kernels read as globals (numba freezes a global's value when it
compiles). Derived shapes are constants of their own because numba only accepts literal
integers in an array shape (``TILE + 1`` inside the kernel would not do).

The module-level kernels are compiled for the production tiling of
:mod:`numlstm._utils.config`. :func:`retiled` compiles the same Python functions of a
kernel module against another set of constants (the simulator's small tiles of
:func:`default_tiling`, or ``CUDABackend(tiling=...)``), once per module and tiling.
"""

import functools
import types

from numba import cuda

from ..._utils import config as _config
from .simulator import simulator_active

__all__ = ["LOADS", "REGISTER_TILE", "SPAN", "SPAN_PAD", "THREADS", "TILE", "TILE_PAD",
           "UNITS", "UNITS_PAD", "UNIT_TILE", "default_tiling", "retiled",
           "tiling_constants"]

#: Edge of a thread block of the tiled kernels: ``blockDim = (TILE, TILE)``; also the
#: depth (inner-dimension slice) of each shared-memory tile.
TILE = _config.CUDA_TILE
#: Rows (and product columns) that one thread accumulates in registers.
REGISTER_TILE = _config.CUDA_REGISTER_TILE
#: Hidden units that one thread of the backward LSTM step owns.
UNIT_TILE = _config.CUDA_UNIT_TILE
#: Rows (and product columns) that one block covers.
SPAN = TILE * REGISTER_TILE
#: Shared tiles get one padding column so that column-wise stores avoid bank conflicts.
SPAN_PAD = SPAN + 1
TILE_PAD = TILE + 1
#: Hidden units that one block of the backward LSTM step covers.
UNITS = TILE * UNIT_TILE
UNITS_PAD = UNITS + 1
#: Threads of a block.
THREADS = TILE * TILE
#: Elements of a ``(SPAN, TILE)`` shared tile that each thread loads (``= REGISTER_TILE``).
LOADS = SPAN * TILE // THREADS


def tiling_constants(tile, register_tile, unit_tile):
    """The compile-time constants of a tiling, by their module-level names.

    Parameters
    ----------
    tile, register_tile, unit_tile : int
        As :data:`TILE`, :data:`REGISTER_TILE`, :data:`UNIT_TILE`.

    Returns
    -------
    dict
        ``{"TILE": tile, ..., "LOADS": ...}``, every constant that the tiled kernels read.
    """
    span = tile * register_tile
    units = tile * unit_tile
    threads = tile * tile
    return {"TILE": tile, "REGISTER_TILE": register_tile, "UNIT_TILE": unit_tile,
            "SPAN": span, "SPAN_PAD": span + 1, "TILE_PAD": tile + 1, "UNITS": units,
            "UNITS_PAD": units + 1, "THREADS": threads, "LOADS": span * tile // threads}


def default_tiling():
    """``(tile, register_tile)`` that :class:`numlstm.nn.cuda_backend.CUDABackend` uses by default.

    On a GPU: :data:`numlstm._utils.config.CUDA_TILE` and
    :data:`numlstm._utils.config.CUDA_REGISTER_TILE`. The simulator runs every thread as a
    Python thread, so there it uses ``(4, 2)``: the same code on small tiles, still
    exercising partial tiles and several tiles per dimension.
    """
    if simulator_active():
        return 4, 2
    return _config.CUDA_TILE, _config.CUDA_REGISTER_TILE


def _python_function(kernel):
    """The Python function under a ``cuda.jit`` object (numba-cuda's dispatcher keeps it as
    ``py_func``, the simulator's kernel as ``fn``)."""
    function = getattr(kernel, "py_func", None)
    return function if function is not None else kernel.fn


def _rebound(kernel, namespace):
    """``kernel``'s Python function with ``namespace`` as its globals."""
    function = _python_function(kernel)
    copy = types.FunctionType(function.__code__, namespace, function.__name__,
                              function.__defaults__, function.__closure__)
    copy.__doc__ = function.__doc__
    copy.__qualname__ = function.__qualname__
    return copy


@functools.lru_cache(maxsize=None)
def retiled(module, tile, register_tile, unit_tile=UNIT_TILE):
    """The tiled kernels of ``module`` compiled for another tiling (lazily, once).

    ``module`` lists its tiled device functions in ``TILED_DEVICE_FUNCTIONS`` and its tiled
    kernels in ``TILED_KERNELS``. Their Python functions are bound to a copy of the
    module's globals in which the constants of :func:`tiling_constants` take the new values
    and the device functions are the recompiled ones, then wrapped by ``cuda.jit`` like the
    originals. For the module's own tiling the module-level objects come back as they are.

    Parameters
    ----------
    module : module
        :mod:`numlstm.kernels.cuda.gemm` or :mod:`numlstm.kernels.cuda.lstm`.
    tile, register_tile, unit_tile : int

    Returns
    -------
    types.SimpleNamespace
        One attribute per name in ``TILED_DEVICE_FUNCTIONS`` and ``TILED_KERNELS``.
    """
    constants = tiling_constants(tile, register_tile, unit_tile)
    names = tuple(module.TILED_DEVICE_FUNCTIONS) + tuple(module.TILED_KERNELS)
    # A module need not import every constant: one it does not read cannot differ.
    if all(getattr(module, name, value) == value for name, value in constants.items()):
        return types.SimpleNamespace(**{name: getattr(module, name) for name in names})
    namespace = dict(vars(module))
    namespace.update(constants)
    # Device functions first: the kernels find them by name in the new globals.
    for name in module.TILED_DEVICE_FUNCTIONS:
        namespace[name] = cuda.jit(device=True)(_rebound(getattr(module, name), namespace))
    for name in module.TILED_KERNELS:
        namespace[name] = cuda.jit(_rebound(getattr(module, name), namespace))
    return types.SimpleNamespace(**{name: namespace[name] for name in names})
