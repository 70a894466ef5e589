"""The one place that chooses where the kernels run (CPU or CUDA).

A backend runs one LSTM layer (all its directions) forward, forward without caches, or
backward, on host NumPy arrays given and returned by :class:`numlstm.LSTM`. The layer class
never touches a kernel directly, and the kernels know nothing about layers or estimators.
"""

import os
import threading

import numba
import numpy as np

from . import _config

__all__ = ["CPUBackend", "Workspace", "get_backend", "resolve_device"]

_DEVICES = ("auto", "cpu", "cuda")


class _SingleThreadedBLAS:
    """Context manager: SciPy's BLAS runs on one thread while kernels are in flight.

    Each kernel thread calls BLAS on its own slice; a multi-threaded BLAS inside would
    oversubscribe the cores. Nested and concurrent uses share one count, so the user's
    setting is restored only when the last kernel leaves.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = None
        self._controllers = None

    def _blas_controllers(self):
        if self._controllers is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
                self._controllers = []
            else:
                self._controllers = [
                    lib for lib in ThreadpoolController().lib_controllers
                    if lib.user_api == "blas" and "scipy" in str(lib.filepath)
                ]
        return self._controllers

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                controllers = self._blas_controllers()
                self._saved = [lib.num_threads for lib in controllers]
                for lib in controllers:
                    lib.set_num_threads(1)
            self._depth += 1

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lib, n in zip(self._controllers, self._saved):
                    lib.set_num_threads(n)


_single_threaded_blas = _SingleThreadedBLAS()

# GNU OpenMP (numba's usual threading layer here) kills a forked child that starts a
# parallel region once the parent has used one. A child process (a multiprocessing "fork"
# worker, say) therefore runs the kernels on its own thread, which needs no parallel region.
_forked_child = False


def _after_fork_in_child():
    global _forked_child, _single_threaded_blas
    _forked_child = True
    _single_threaded_blas = _SingleThreadedBLAS()  # a lock held in the parent stays held


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _chunk_bounds(batch_size):
    """Batch slice of each CPU thread: at most one per thread, none too small."""
    n_threads = 1 if _forked_child else numba.get_num_threads()
    n_chunks = max(1, min(n_threads, batch_size // _config.MIN_ROWS_PER_THREAD))
    return np.linspace(0, batch_size, n_chunks + 1).round().astype(np.int64)


class Workspace:
    """Scratch arrays kept between calls, so repeated batches of one shape allocate nothing.

    Large fresh arrays cost page faults on first touch every time; a training loop calls
    the kernels with the same shapes thousands of times. Arrays handed out here are
    overwritten by the next call that asks for the same name: never return them to users.
    """

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype, allocate=np.empty):
        """Return an uninitialised array of ``shape`` and ``dtype`` registered as ``name``.

        ``allocate(shape, dtype)`` makes a new one when needed (e.g. a device allocator).
        """
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = allocate(shape, dtype)
            self._arrays[name] = array
        return array

    def clear(self):
        """Drop every array."""
        self._arrays.clear()


class _NoWorkspace:
    @staticmethod
    def get(name, shape, dtype, allocate=np.empty):
        return allocate(shape, dtype)


def _layer_outputs(x, W_ih):
    """Fresh ``out`` (B, T, D*H) and ``h_n``, ``c_n`` (D, B, H) arrays for one layer."""
    n_dirs, four_h, _ = W_ih.shape
    batch, n_steps, _ = x.shape
    out = np.empty((batch, n_steps, n_dirs * four_h // 4), x.dtype)
    h_n = np.empty((n_dirs, batch, four_h // 4), x.dtype)
    return out, h_n, np.empty_like(h_n)


class CPUBackend:
    """Runs layers with the ``@njit(parallel=True)`` kernels of :mod:`numlstm.cpu_lstm`.

    A batch too small to share between threads runs the per-rows kernel directly, without
    starting a parallel region.
    """

    name = "cpu"

    def forward(self, x, lengths, W_ih, W_hh, bias, h0, c0, workspace=None):
        """Forward one layer keeping caches; returns ``out, h_n, c_n, cache``."""
        from .cpu_lstm import lstm_layer_forward, lstm_layer_forward_rows

        ws = workspace or _NoWorkspace
        out, h_n, c_n = _layer_outputs(x, W_ih)
        n_dirs, four_h, _ = W_ih.shape
        hidden = four_h // 4
        batch, n_steps, _ = x.shape
        dtype = x.dtype
        gates = ws.get("gates", (n_dirs, batch, n_steps, four_h), dtype)
        h_prev = ws.get("h_prev", (n_dirs, batch, n_steps, hidden), dtype)
        c_prev = ws.get("c_prev", (n_dirs, batch, n_steps, hidden), dtype)
        bounds = _chunk_bounds(batch)
        with _single_threaded_blas:
            if bounds.shape[0] == 2:
                lstm_layer_forward_rows(x, lengths, W_ih, W_hh, bias, h0, c0, out, h_n, c_n,
                                        gates, h_prev, c_prev, True, 0, batch)
            else:
                lstm_layer_forward(x, lengths, W_ih, W_hh, bias, h0, c0, out, h_n, c_n,
                                   gates, h_prev, c_prev, True, bounds)
        return out, h_n, c_n, (gates, h_prev, c_prev)

    def inference(self, x, lengths, W_ih, W_hh, bias, h0, c0, workspace=None):
        """Forward one layer without caches; returns ``out, h_n, c_n``."""
        from .cpu_lstm import lstm_layer_forward, lstm_layer_forward_rows

        ws = workspace or _NoWorkspace
        out, h_n, c_n = _layer_outputs(x, W_ih)
        batch, n_steps, _ = x.shape
        work = ws.get("inference", (1, batch, n_steps, W_ih.shape[1]), x.dtype)
        bounds = _chunk_bounds(batch)
        with _single_threaded_blas:
            if bounds.shape[0] == 2:
                lstm_layer_forward_rows(x, lengths, W_ih, W_hh, bias, h0, c0, out, h_n, c_n,
                                        work, work, work, False, 0, batch)
            else:
                lstm_layer_forward(x, lengths, W_ih, W_hh, bias, h0, c0, out, h_n, c_n,
                                   work, work, work, False, bounds)
        return out, h_n, c_n

    def backward(self, x, lengths, W_ih, W_hh, cache, d_out, d_h_n, d_c_n,
                 dW_ih, dW_hh, d_bias, workspace=None):
        """Backward one layer; fills ``dW_ih, dW_hh, d_bias``, returns ``dx, d_h0, d_c0``."""
        from .cpu_lstm import lstm_layer_backward, lstm_layer_backward_rows

        ws = workspace or _NoWorkspace
        gates, h_prev, c_prev = cache
        batch = x.shape[0]
        bounds = _chunk_bounds(batch)
        n_chunks = bounds.shape[0] - 1
        dtype = x.dtype
        dx = np.empty_like(x)
        d_h0 = np.empty_like(d_h_n)
        d_c0 = np.empty_like(d_c_n)
        d_gates = ws.get("d_gates", gates.shape, dtype)
        with _single_threaded_blas:
            if n_chunks == 1:
                lstm_layer_backward_rows(x, lengths, W_ih, W_hh, gates, h_prev, c_prev, d_out,
                                         d_h_n, d_c_n, dx, d_h0, d_c0, d_gates,
                                         dW_ih, dW_hh, d_bias, 0, batch)
            else:
                lstm_layer_backward(
                    x, lengths, W_ih, W_hh, gates, h_prev, c_prev, d_out, d_h_n, d_c_n, dx,
                    dW_ih, dW_hh, d_bias, d_h0, d_c0, d_gates,
                    ws.get("partial_W_ih", (n_chunks,) + W_ih.shape, dtype),
                    ws.get("partial_W_hh", (n_chunks,) + W_hh.shape, dtype),
                    ws.get("partial_bias", (n_chunks,) + d_bias.shape, dtype), bounds)
        return dx, d_h0, d_c0


def resolve_device(device):
    """Map ``"auto"``/``"cpu"``/``"cuda"`` to the device that will run the kernels.

    Raises
    ------
    ValueError
        If ``device`` is not one of the known names.
    RuntimeError
        If ``"cuda"`` is asked for and no usable GPU is present (the message says what is
        missing).
    """
    if not isinstance(device, str) or device not in _DEVICES:
        raise ValueError(f"device must be one of {_DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    from . import _cuda_support

    problem = _cuda_support.why_unavailable()
    if device == "auto":
        # The simulator is for testing kernels: far too slow to be chosen automatically.
        return "cpu" if problem or _cuda_support.is_simulator() else "cuda"
    if problem:
        raise RuntimeError(f"device='cuda' was requested but CUDA is not usable: {problem}")
    return "cuda"


_backends = {}


def get_backend(device):
    """Return the backend object for a device name (see :func:`resolve_device`)."""
    name = resolve_device(device)
    if name not in _backends:
        if name == "cpu":
            _backends[name] = CPUBackend()
        else:
            from .gpu_lstm import CUDABackend

            _backends[name] = CUDABackend()
    return _backends[name]
