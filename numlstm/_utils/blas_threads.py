"""Keep the BLAS libraries (NumPy's and SciPy's) on one thread while numlstm's own
threads use the cores.

numba's worker threads keep spinning for a moment after each parallel region. A
multi-threaded BLAS call made in that moment (NumPy's ``dot`` of a weight vector, the
dense layer's products) starts its own threads on the same cores, and both sides then
wait on each other: a training step of a 64-unit LSTM on two cores took ten times longer
with two threads than with one. The products involved are small, so one BLAS thread costs
nothing; a kernel thread that calls BLAS on its own slice needs one thread for the same
reason.
"""

import os
import threading

__all__ = ["single_threaded_blas"]


class _SingleThreadedBLAS:
    """Context manager: every loaded BLAS library runs on one thread inside it.

    Nested and concurrent uses share one count, so the user's settings are restored only
    when the last user leaves.
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
                self._controllers = [lib for lib in ThreadpoolController().lib_controllers
                                     if lib.user_api == "blas"]
        return self._controllers

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                controllers = self._blas_controllers()
                self._saved = [lib.num_threads for lib in controllers]
                for lib, n in zip(controllers, self._saved):
                    if n != 1:
                        lib.set_num_threads(1)
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lib, n in zip(self._controllers, self._saved):
                    if n != 1:
                        lib.set_num_threads(n)


_guard = _SingleThreadedBLAS()


def single_threaded_blas():
    """The process's guard (a context manager): BLAS on one thread inside it."""
    return _guard


def _after_fork_in_child():
    global _guard
    _guard = _SingleThreadedBLAS()  # a lock held in the parent stays held in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
