"""Whether numba's CUDA target can run here, and if not, why."""

__all__ = ["is_simulator", "why_unavailable"]


def is_simulator():
    """True when numba runs CUDA kernels on its CPU simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def why_unavailable():
    """Return ``None`` when CUDA kernels can run, else a sentence saying what is missing."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba always ships numba.cuda stubs
        return f"numba.cuda cannot be imported ({exc}); install numlstm[cuda]"
    try:
        available = cuda.is_available()
    except Exception as exc:  # the driver query itself can fail on broken installs
        return f"the CUDA driver could not be queried ({exc})"
    if not available:
        return ("no CUDA GPU or driver was found (numba.cuda.is_available() is False); "
                "check the NVIDIA driver and install numlstm[cuda] (numba-cuda)")
    return None
